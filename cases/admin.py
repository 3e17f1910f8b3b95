"""Admin screens: view-only and scoped through the selectors; the few writes go through services."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, ClassVar

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, Exists, Model, OuterRef, Q, QuerySet, Value
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from guardian.admin import GuardedModelAdmin
from guardian.shortcuts import get_groups_with_perms, get_users_with_perms
from rest_framework.exceptions import APIException

from audit.models import AuditAction
from audit.services import audit_record
from cases import selectors, services
from cases.models import (
    Agency,
    AuthToken,
    Case,
    CaseGroupObjectPermission,
    CaseNumberCounter,
    CaseUserObjectPermission,
    CustodyEvent,
    DeconflictionHit,
    EvidenceItem,
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffLead,
    Identifier,
    Lead,
    LeadIdentifier,
    Profile,
    Role,
)
from cases.permissions import CasePerm

User = get_user_model()

admin.site.site_header = "caseapi administration"
admin.site.site_title = "caseapi"
admin.site.index_title = "Administration"

ALL_ROLES = frozenset(Role.values)
CASE_ROLES = frozenset({Role.INVESTIGATOR, Role.SUPERVISOR, Role.PROSECUTOR})
"""Roles that may read case content (scope still comes from object permissions)."""

TABLE_LIMIT = 50
"""Rows shown per table on a change page; the rest are one link away (constant queries)."""

NO_PROFILE = "has no agency profile"
SELF_DEACTIVATE = "you cannot deactivate your own account"
AGENCY_REQUIRED = "Choose the agency the new user belongs to."
OUTSIDE_SCOPE = "(outside your scope)"


# ---------------------------------------------------------------- scope helpers


def is_agency_admin(user: AbstractBaseUser) -> bool:
    return Role.AGENCY_ADMIN in selectors.user_roles(user) and selectors.user_agency_id(user) is not None


def people_filter(user: AbstractBaseUser, prefix: str = "") -> Q:
    """Who `user` may see among people: an agency admin their whole agency (active or not),
    anyone else only themselves. `prefix` is the path from the queried model to the User."""
    if is_agency_admin(user):
        return Q(**{f"{prefix}profile__agency_id": selectors.user_agency_id(user)})
    return Q(**{f"{prefix}pk" if prefix else "pk": user.pk})


def with_case_visibility(qs: QuerySet, user: AbstractBaseUser, *fields: str) -> QuerySet:
    """Annotate `<field>_visible` for each case foreign key in `fields`: whether `user` may see
    that case. One EXISTS per field inside the same query, so lists stay constant in queries."""
    if user.is_superuser:
        return qs.annotate(**{f"{f}_visible": Value(True, output_field=BooleanField()) for f in fields})
    scope = selectors.case_ids_for(user)
    return qs.annotate(**{f"{f}_visible": Exists(scope.filter(id=OuterRef(f"{f}_id"))) for f in fields})


def admin_link(obj: Model | None, text: Any = None) -> str:
    if obj is None:
        return "—"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def when(value: datetime | None) -> str:
    return formats.localize(timezone.localtime(value)) if value else ""


def html_table(headers: Iterable[str], rows: Iterable[Iterable[Any]], empty: str) -> str:
    rows = [[("—" if cell in (None, "") else cell) for cell in row] for row in rows]
    if not rows:
        return format_html("<p>{}</p>", empty)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),) for row in rows)
    )
    return format_html('<table class="caseapi-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def more_link(model: type[Model], lookup: str, value: Any, shown: int) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return format_html('<p><a href="{}?{}={}">Showing the first {}; see all</a></p>', url, lookup, value, shown)


def limited_table(
    qs: QuerySet, headers: Iterable[str], row: Callable[[Any], Iterable[Any]], empty: str, more: Callable[[], str]
) -> str:
    """A table of at most TABLE_LIMIT rows of `qs`, fetched in one query (one extra row tells
    whether there are more)."""
    items = list(qs[: TABLE_LIMIT + 1])
    table = html_table(headers, (row(item) for item in items[:TABLE_LIMIT]), empty)
    if len(items) > TABLE_LIMIT:
        return format_html("{}{}", table, more())
    return table


def error_text(exc: Exception) -> str:
    if isinstance(exc, APIException):
        return str(exc.detail)
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    if isinstance(exc, Profile.DoesNotExist):
        return NO_PROFILE
    return str(exc) or exc.__class__.__name__


ROW_ERRORS = (APIException, PermissionDenied, ValidationError, Profile.DoesNotExist)


def report_unseen(model_admin: admin.ModelAdmin, request: HttpRequest, rows: list[Any], noun: str) -> None:
    """Say so when some selected ids were not in the caller's scope (the admin drops them from
    the action's queryset): nothing is done to them, and the caller should know."""
    selected = set(request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
    unseen = len(selected) - len(rows)
    if unseen > 0:
        model_admin.message_user(
            request, f"{unseen} selected {noun}(s) outside your scope: nothing was done to them.", messages.ERROR
        )


# ---------------------------------------------------------------- the base screen


class IdentifierSearch:
    """Admin search that also finds rows by an identifier typed in any form: identifier values
    are stored encrypted, so the term goes through selectors.identifier_search_terms and is
    matched on the blind index (`identifier_lookup`), never on the value."""

    identifier_lookup: ClassVar[str] = "value_index__in"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)  # type: ignore[misc]
        terms = selectors.identifier_search_terms(search_term.strip()) if search_term.strip() else []
        if terms:
            digests = [Identifier.index_of(kind, value) for kind, value in terms]
            found = found | queryset.filter(**{self.identifier_lookup: digests})
            may_have_duplicates = True
        return found, may_have_duplicates


class ScopedReadOnlyAdmin(admin.ModelAdmin):
    """A view-only screen. Superusers see every row; anyone else must hold one of `roles` and
    sees only `scoped_queryset` (built from the selectors). Global model permissions are never
    consulted, so one can neither open a screen nor widen its scope. Nothing is added, changed
    or deleted here; reads of case content are audited like the API's."""

    roles: ClassVar[frozenset[str]] = frozenset()
    list_audit_action: ClassVar[str | None] = None
    view_audit_action: ClassVar[str | None] = None

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return self.model._default_manager.all()

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return self.model._default_manager.none()

    def may_open(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        return user.is_superuser or bool(selectors.user_roles(user) & self.roles)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        if request.user.is_superuser:
            qs = self.full_queryset(request)
        elif self.may_open(request):
            qs = self.scoped_queryset(request)
        else:
            qs = self.model._default_manager.none()
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        """The object in scope, or None; it remembers who is looking (`admin_viewer`) so a
        read-only field can scope what it lists."""
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj.admin_viewer = request.user
            self._scope_cache(request)[(self.model._meta.label, obj.pk)] = True
        return obj

    @staticmethod
    def _scope_cache(request: HttpRequest) -> dict[tuple[str, Any], bool]:
        return request.__dict__.setdefault("_caseapi_admin_scope", {})

    def in_scope(self, request: HttpRequest, obj: Model) -> bool:
        cache = self._scope_cache(request)
        key = (self.model._meta.label, obj.pk)
        if key not in cache:
            cache[key] = self.get_queryset(request).filter(pk=obj.pk).exists()
        return cache[key]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.may_open(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if not self.may_open(request):
            return False
        return obj is None or request.user.is_superuser or self.in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def audit_case_id(self, obj: Model) -> Any:
        return None

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        if self.list_audit_action and request.method == "GET" and response.status_code == 200:
            audit_record(
                actor=request.user,
                action=self.list_audit_action,
                changes={"via": "admin", "query": {k: request.GET.getlist(k) for k in request.GET}},
            )
        return response

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Model | None = None,
    ) -> TemplateResponse:
        if obj is not None and request.method == "GET" and self.view_audit_action:
            audit_record(
                actor=request.user,
                action=self.view_audit_action,
                target=obj,
                case_id=self.audit_case_id(obj),
                changes={"via": "admin"},
            )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)


class InternalRecordAdmin(ScopedReadOnlyAdmin):
    """The fallback for a model without its own screen yet: superusers read every column."""

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [field.name for field in self.model._meta.concrete_fields]

    def get_list_display(self, request: HttpRequest) -> list[str]:
        return [field.name for field in self.model._meta.concrete_fields][:8]


def register_remaining(app_label: str) -> None:
    """Register every model of `app_label` that has no screen with `InternalRecordAdmin`, so
    no model is missing from the admin (and none is writable by accident)."""
    for model in apps.get_app_config(app_label).get_models():
        if not admin.site.is_registered(model):
            admin.site.register(model, InternalRecordAdmin)


# ---------------------------------------------------------------- people and accounts


class AccountActionsMixin:
    """Unlock, deactivate and reactivate accounts through the audited services. Each row is
    its own transaction; a refused row becomes an error message, never a 500."""

    actions = ("unlock_accounts", "deactivate_accounts", "reactivate_accounts")

    def users_of(self, queryset: QuerySet) -> list[AbstractBaseUser]:
        raise NotImplementedError

    def has_manage_accounts_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or is_agency_admin(request.user)

    def _for_each_user(
        self, request: HttpRequest, queryset: QuerySet, verb: str, operation: Callable[[AbstractBaseUser], None]
    ) -> None:
        done: list[str] = []
        users = self.users_of(queryset)
        report_unseen(self, request, users, "account")
        for user in users:
            try:
                operation(user)
            except ROW_ERRORS as exc:
                self.message_user(request, f"{user.get_username()} was not {verb}: {error_text(exc)}", messages.ERROR)
            else:
                done.append(user.get_username())
        if done:
            self.message_user(request, f"{verb.capitalize()}: {', '.join(done)}.", messages.SUCCESS)

    @admin.action(description="Unlock selected accounts", permissions=["manage_accounts"])
    def unlock_accounts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._for_each_user(
            request, queryset, "unlocked", lambda user: services.account_unlock(user=user, actor=request.user)
        )

    @admin.action(description="Deactivate selected accounts", permissions=["manage_accounts"])
    def deactivate_accounts(self, request: HttpRequest, queryset: QuerySet) -> None:
        def deactivate(user: AbstractBaseUser) -> None:
            if user.pk == request.user.pk:
                raise PermissionDenied(SELF_DEACTIVATE)
            services.user_set_active(actor=request.user, user=user, active=False)

        self._for_each_user(request, queryset, "deactivated", deactivate)

    @admin.action(description="Reactivate selected accounts", permissions=["manage_accounts"])
    def reactivate_accounts(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._for_each_user(
            request,
            queryset,
            "reactivated",
            lambda user: services.user_set_active(actor=request.user, user=user, active=True),
        )


def lock_state(profile: Profile | None) -> str:
    if profile is None:
        return "—"
    if profile.locked_until and profile.locked_until > timezone.now():
        return f"locked until {profile.locked_until:%Y-%m-%d %H:%M %Z}"
    return "not locked"


class UserAddForm(UserCreationForm):
    """Creates nothing itself: the admin hands the cleaned data to `services.user_ensure`, which
    writes and audits. The password is checked by Django's password validators. For an agency
    admin the agency is their own (`fixed_agency`) and not a field."""

    fixed_agency: ClassVar[Agency | None] = None

    agency = forms.ModelChoiceField(queryset=Agency.objects.all(), required=False)
    role = forms.ChoiceField(choices=Role.choices)
    title = forms.CharField(max_length=120, required=False)
    phone = forms.CharField(max_length=32, required=False)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name", "last_name", "email")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.fixed_agency is not None:
            del self.fields["agency"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.fixed_agency is not None:
            cleaned["agency"] = self.fixed_agency
        elif not cleaned.get("agency"):
            self.add_error("agency", AGENCY_REQUIRED)
        return cleaned

    def save(self, commit: bool = False) -> AbstractBaseUser:
        """The unsaved user (no password hashed here); `UserAdmin.save_model` creates it."""
        if commit:
            raise ValueError("UserAddForm does not save; the admin calls services.user_ensure")
        return forms.ModelForm.save(self, commit=False)


class ProfileInline(admin.StackedInline):
    """Shown only inside a user page the viewer may already see, so it adds no scope check."""

    model = Profile
    can_delete = False
    fields = ("agency", "title", "phone", "failed_logins", "failed_window_started_at", "locked_until", "lock")
    readonly_fields = ("lock",)

    @admin.display(description="Lock state")
    def lock(self, profile: Profile) -> str:
        return lock_state(profile)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class RoleListFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(Role.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in Role.values:
            prefix = "" if queryset.model is User else "user__"
            return queryset.filter(**{f"{prefix}groups__name": self.value()})
        return queryset


class LockedListFilter(admin.SimpleListFilter):
    title = "lock state"
    parameter_name = "locked"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Locked"), ("no", "Not locked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        prefix = "profile__" if queryset.model is User else ""
        locked = Q(**{f"{prefix}locked_until__gt": timezone.now()})
        if self.value() == "yes":
            return queryset.filter(locked)
        if self.value() == "no":
            return queryset.exclude(locked)
        return queryset


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(AccountActionsMixin, ScopedReadOnlyAdmin):
    """People with their profile. View-only, except adding a user (agency admins: in their own
    agency) through `services.user_ensure`, and the account actions."""

    roles = ALL_ROLES
    list_audit_action = AuditAction.USER_LISTED
    inlines = (ProfileInline,)
    list_display = ("username", "full_name", "agency_code", "role_names", "is_active", "lock")
    list_filter = ("is_active", RoleListFilter, LockedListFilter)
    search_fields = ("username", "first_name", "last_name", "email")
    ordering = ("username",)
    fieldsets = (
        (None, {"fields": ("username", "first_name", "last_name", "email")}),
        ("Access", {"fields": ("role_names", "is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("role_names",)

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return User.objects.select_related("profile__agency").prefetch_related("groups")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return self.full_queryset(request).filter(people_filter(request.user))

    def users_of(self, queryset: QuerySet) -> list[AbstractBaseUser]:
        return list(queryset)

    def get_inlines(self, request: HttpRequest, obj: Model | None) -> tuple[type, ...]:
        return self.inlines if obj is not None else ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.may_open(request) and (request.user.is_superuser or is_agency_admin(request.user))

    def _fixed_agency(self, request: HttpRequest) -> Agency | None:
        return None if request.user.is_superuser else request.user.profile.agency

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is not None:
            return super().get_fieldsets(request, obj)
        placement = ("role", "title", "phone") if self._fixed_agency(request) else ("agency", "role", "title", "phone")
        return (
            (None, {"fields": ("username", "password1", "password2")}),
            ("Person", {"fields": ("first_name", "last_name", "email")}),
            ("Agency and role", {"fields": placement}),
        )

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = type("UserAddForm", (UserAddForm,), {"fixed_agency": self._fixed_agency(request)})
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Only reached from the add form: the user is created by the audited service and `obj`
        takes its identity so the admin's log and redirect point at it."""
        if change:
            raise PermissionDenied
        data = form.cleaned_data
        user, _ = services.user_ensure(
            username=obj.username,
            agency=data["agency"],
            role=data["role"],
            password=data["password1"],
            actor=request.user,
            first_name=obj.first_name,
            last_name=obj.last_name,
            email=obj.email,
            title=data.get("title", ""),
            phone=data.get("phone", ""),
        )
        obj.pk = user.pk
        obj._state.adding = False
        obj._state.db = user._state.db

    @admin.display(description="Name")
    def full_name(self, user: AbstractBaseUser) -> str:
        return user.get_full_name()

    @admin.display(description="Agency", ordering="profile__agency__code")
    def agency_code(self, user: AbstractBaseUser) -> str:
        profile = getattr(user, "profile", None)
        return profile.agency.code if profile else "—"

    @admin.display(description="Roles")
    def role_names(self, user: AbstractBaseUser) -> str:
        return ", ".join(sorted(g.name for g in user.groups.all() if g.name in Role.values)) or "—"

    @admin.display(description="Lock state")
    def lock(self, user: AbstractBaseUser) -> str:
        return lock_state(getattr(user, "profile", None))


@admin.register(Profile)
class ProfileAdmin(AccountActionsMixin, ScopedReadOnlyAdmin):
    roles = ALL_ROLES
    list_display = ("user", "agency", "title", "phone", "failed_logins", "lock")
    list_select_related = ("user", "agency")
    list_filter = (RoleListFilter, LockedListFilter)
    search_fields = ("user__username", "user__first_name", "user__last_name", "title")
    fields = ("user", "agency", "title", "phone", "failed_logins", "failed_window_started_at", "locked_until", "lock")
    readonly_fields = ("lock",)

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return Profile.objects.select_related("user", "agency")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return self.full_queryset(request).filter(people_filter(request.user, prefix="user__"))

    def users_of(self, queryset: QuerySet) -> list[AbstractBaseUser]:
        return [profile.user for profile in queryset.select_related("user")]

    @admin.display(description="Lock state")
    def lock(self, profile: Profile) -> str:
        return lock_state(profile)


@admin.register(Agency)
class AgencyAdmin(ScopedReadOnlyAdmin):
    """Agencies are created and renamed by `manage.py add_agency` (audited)."""

    roles = ALL_ROLES
    list_display = ("code", "name", "kind", "created_at")
    list_filter = ("kind",)
    search_fields = ("code", "name")
    fields = ("code", "name", "kind", "supervisors", "created_at")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return Agency.objects.filter(pk=selectors.user_agency_id(request.user))


@admin.register(AuthToken)
class AuthTokenAdmin(ScopedReadOnlyAdmin):
    """Own tokens for everyone, the agency's for an agency admin. Only digests are stored."""

    roles = ALL_ROLES
    actions = ("revoke_tokens",)
    list_display = ("prefix", "user", "created_at", "expires_at", "last_used_at", "revoked_at", "state")
    list_select_related = ("user",)
    search_fields = ("prefix", "user__username")
    fields = ("user", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", "state")
    readonly_fields = ("state",)

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return AuthToken.objects.select_related("user")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return self.full_queryset(request).filter(people_filter(request.user, prefix="user__"))

    @admin.display(description="State")
    def state(self, token: AuthToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "expired" if token.expires_at <= timezone.now() else "active"

    @admin.action(description="Revoke selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet) -> None:
        revoked = 0
        tokens = list(queryset.select_related("user"))
        report_unseen(self, request, tokens, "token")
        for token in tokens:
            if token.revoked_at is not None:
                continue
            try:
                services.token_revoke(token=token, actor=request.user)
            except ROW_ERRORS as exc:
                self.message_user(request, f"Token {token.prefix}… was not revoked: {error_text(exc)}", messages.ERROR)
            else:
                revoked += 1
        if revoked:
            self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(CaseNumberCounter)
class CaseNumberCounterAdmin(ScopedReadOnlyAdmin):
    """Internal counters: superusers only."""

    list_display = ("agency", "year", "last_value")
    list_select_related = ("agency",)
    fields = ("agency", "year", "last_value")


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(ScopedReadOnlyAdmin):
    """Role groups are managed by `services.user_ensure` (audited); superusers may look."""

    list_display = ("name",)
    search_fields = ("name",)
    fields = ("name", "permissions")


# ---------------------------------------------------------------- cases and teams


@admin.register(Case)
class CaseAdmin(ScopedReadOnlyAdmin, GuardedModelAdmin):
    """Cases in scope (object permissions only). Superusers can read the guardian object
    permissions page; team changes go through the API so they are audited."""

    roles = CASE_ROLES
    list_audit_action = AuditAction.CASE_LISTED
    view_audit_action = AuditAction.CASE_VIEWED
    change_form_template = "admin/cases/case/change_form.html"
    obj_perms_view_template = "admin/cases/case/obj_perms_view.html"
    list_display = ("number", "title", "kind", "status", "priority", "agency", "lead_investigator", "created_at")
    list_select_related = ("agency", "lead_investigator")
    list_filter = ("status", "kind", "priority")
    search_fields = ("number", "title")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "title",
                    "kind",
                    "status",
                    "priority",
                    "agency",
                    "lead_investigator",
                    "parent_case",
                    "summary",
                )
            },
        ),
        ("Team", {"fields": ("team_table",)}),
        ("Leads", {"fields": ("leads_table",)}),
        ("Evidence", {"fields": ("evidence_table",)}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at", "closed_at")}),
    )
    readonly_fields = ("parent_case", "team_table", "leads_table", "evidence_table")

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return Case.objects.select_related("agency", "lead_investigator", "lead_investigator__profile", "parent")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.case_list(user=request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_case_visibility(super().get_queryset(request), request.user, "parent")

    def audit_case_id(self, obj: Case) -> Any:
        return obj.pk

    @admin.display(description="Parent operation")
    def parent_case(self, case: Case) -> str:
        if case.parent_id is None:
            return "—"
        return admin_link(case.parent) if case.parent_visible else OUTSIDE_SCOPE

    @admin.display(description="Team")
    def team_table(self, case: Case) -> str:
        rows = []
        for member in selectors.case_team(case=case):
            user = member["user"]
            profile = getattr(user, "profile", None)
            rows.append(
                (
                    user.get_username(),
                    user.get_full_name(),
                    profile.agency.code if profile else "",
                    member["role"],
                )
            )
        return html_table(("User", "Name", "Agency", "Team role"), rows, "No team members.")

    @admin.display(description="Leads")
    def leads_table(self, case: Case) -> str:
        return limited_table(
            Lead.objects.filter(case=case).select_related("assignee").order_by("-priority", "-created_at", "id"),
            ("Lead", "Status", "Priority", "Assignee", "Last seen"),
            lambda lead: (
                admin_link(lead),
                lead.status,
                lead.priority,
                lead.assignee.get_username() if lead.assignee else "",
                when(lead.last_seen_at),
            ),
            "No leads.",
            lambda: more_link(Lead, "case__exact", case.pk, TABLE_LIMIT),
        )

    @admin.display(description="Evidence")
    def evidence_table(self, case: Case) -> str:
        return limited_table(
            EvidenceItem.objects.filter(case=case).select_related("lead").order_by("-created_at", "id"),
            ("Item", "Description", "SHA-256", "Status", "Collected", "Lead"),
            lambda item: (
                admin_link(item, item.kind),
                Truncator(item.description).chars(80),
                f"{item.sha256[:16]}…",
                item.status,
                when(item.collected_at),
                str(item.lead) if item.lead else "",
            ),
            "No evidence.",
            lambda: more_link(EvidenceItem, "case__exact", case.pk, TABLE_LIMIT),
        )

    def obj_perms_manage_view(self, request: HttpRequest, object_pk: str) -> HttpResponse:
        """Read-only for superusers: who holds which object permission on the case."""
        if not request.user.is_superuser or request.method != "GET":
            raise PermissionDenied
        case = self.get_object(request, unquote(object_pk))
        if case is None:
            raise Http404
        context = self.get_obj_perms_base_context(request, case)
        users = get_users_with_perms(case, attach_perms=True, with_group_users=False)
        groups = get_groups_with_perms(case, attach_perms=True)
        context["users_perms"] = sorted(users.items(), key=lambda item: item[0].get_username())
        context["groups_perms"] = sorted(groups.items(), key=lambda item: item[0].name)
        request.current_app = self.admin_site.name
        return render(request, self.obj_perms_view_template, context)

    def obj_perms_manage_user_view(self, request: HttpRequest, object_pk: str, user_id: str) -> HttpResponse:
        raise PermissionDenied

    def obj_perms_manage_group_view(self, request: HttpRequest, object_pk: str, group_id: str) -> HttpResponse:
        raise PermissionDenied


class CasePermissionAdmin(ScopedReadOnlyAdmin):
    """Team rows on cases in scope."""

    roles = CASE_ROLES
    holder: ClassVar[str]

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return self.model.objects.select_related("content_object", self.holder, "permission")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return self.full_queryset(request).filter(content_object_id__in=selectors.case_ids_for(request.user))

    @admin.display(description="Case", ordering="content_object__number")
    def case_number(self, row: Any) -> str:
        return row.content_object.number

    @admin.display(description="Permission", ordering="permission__codename")
    def codename(self, row: Any) -> str:
        return row.permission.codename


@admin.register(CaseUserObjectPermission)
class CaseUserObjectPermissionAdmin(CasePermissionAdmin):
    holder = "user"
    list_display = ("case_number", "user", "codename")
    search_fields = ("content_object__number", "user__username")
    fields = ("content_object", "user", "permission")


@admin.register(CaseGroupObjectPermission)
class CaseGroupObjectPermissionAdmin(CasePermissionAdmin):
    holder = "group"
    list_display = ("case_number", "group", "codename")
    search_fields = ("content_object__number", "group__name")
    fields = ("content_object", "group", "permission")


# ---------------------------------------------------------------- leads and identifiers


@admin.register(Lead)
class LeadAdmin(IdentifierSearch, ScopedReadOnlyAdmin):
    """Names are encrypted at rest: search is by case number or by identifier (blind index)."""

    roles = CASE_ROLES
    list_audit_action = AuditAction.LEAD_LISTED
    view_audit_action = AuditAction.LEAD_VIEWED
    list_display = ("__str__", "case_number", "status", "source", "priority", "assignee", "last_seen_at")
    list_select_related = ("case", "assignee")
    list_filter = ("status", "source")
    search_fields = ("case__number",)
    identifier_lookup = "identifiers__value_index__in"
    fieldsets = (
        (None, {"fields": ("case", "display_name", "source", "status", "assignee", "identifier_list")}),
        (
            "Priority",
            {
                "fields": (
                    "priority",
                    "priority_score",
                    "priority_override",
                    "priority_factors",
                    "minor_age_mentioned",
                    "payment_discussed",
                    "meeting_arranged",
                    "repeat_contact",
                )
            },
        ),
        ("Evidence", {"fields": ("evidence_table",)}),
        ("Record", {"fields": ("first_seen_at", "last_seen_at", "notes", "created_by", "created_at", "updated_at")}),
    )
    readonly_fields = ("identifier_list", "evidence_table")

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return Lead.objects.select_related("case", "case__agency", "assignee").prefetch_related("identifiers")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.lead_list(user=request.user)

    def audit_case_id(self, obj: Lead) -> Any:
        return obj.case_id

    @admin.display(description="Case", ordering="case__number")
    def case_number(self, lead: Lead) -> str:
        return lead.case.number

    @admin.display(description="Identifiers")
    def identifier_list(self, lead: Lead) -> str:
        return ", ".join(str(i) for i in lead.identifiers.all()) or "—"

    @admin.display(description="Evidence")
    def evidence_table(self, lead: Lead) -> str:
        """The lead's evidence the viewer may see: a prosecutor sees a lead through a handoff,
        and only the items that handoff includes."""
        viewer = lead.admin_viewer
        items = EvidenceItem.objects.all() if viewer.is_superuser else selectors.evidence_list(user=viewer)
        return limited_table(
            items.filter(lead=lead).order_by("-created_at", "id"),
            ("Item", "Description", "SHA-256", "Status", "Collected"),
            lambda item: (
                admin_link(item, item.kind),
                Truncator(item.description).chars(80),
                f"{item.sha256[:16]}…",
                item.status,
                when(item.collected_at),
            ),
            "No evidence.",
            lambda: more_link(EvidenceItem, "lead__exact", lead.pk, TABLE_LIMIT),
        )


@admin.register(Identifier)
class IdentifierAdmin(IdentifierSearch, ScopedReadOnlyAdmin):
    """Identifiers carried by leads in scope; the leads shown are in scope too (deconfliction
    answers for the rest)."""

    roles = CASE_ROLES
    list_display = ("kind", "value", "created_at")
    list_filter = ("kind",)
    search_fields = ("=kind",)
    fields = ("kind", "value", "created_at", "lead_table")
    readonly_fields = ("lead_table",)

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        links = LeadIdentifier.objects.filter(lead_id__in=selectors.lead_list(user=request.user).values("id"))
        return Identifier.objects.filter(id__in=links.values("identifier_id"))

    @admin.display(description="Leads")
    def lead_table(self, identifier: Identifier) -> str:
        viewer = identifier.admin_viewer
        links = LeadIdentifier.objects.filter(identifier=identifier).select_related("lead__case", "added_by")
        if not viewer.is_superuser:
            links = links.filter(lead_id__in=selectors.lead_list(user=viewer).values("id"))
        return limited_table(
            links.order_by("-added_at", "id"),
            ("Lead", "Case", "Added by", "Added"),
            lambda link: (
                admin_link(link.lead),
                link.lead.case.number,
                link.added_by.get_username(),
                when(link.added_at),
            ),
            "No leads in your scope.",
            lambda: more_link(LeadIdentifier, "identifier__exact", identifier.pk, TABLE_LIMIT),
        )


@admin.register(LeadIdentifier)
class LeadIdentifierAdmin(IdentifierSearch, ScopedReadOnlyAdmin):
    roles = CASE_ROLES
    list_display = ("identifier", "lead", "case_number", "added_by", "added_at")
    list_select_related = ("identifier", "lead__case", "added_by")
    search_fields = ("lead__case__number",)
    identifier_lookup = "identifier__value_index__in"
    fields = ("lead", "identifier", "added_by", "added_at")

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return LeadIdentifier.objects.select_related("identifier", "lead__case", "added_by")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return self.full_queryset(request).filter(lead_id__in=selectors.lead_list(user=request.user).values("id"))

    @admin.display(description="Case", ordering="lead__case__number")
    def case_number(self, link: LeadIdentifier) -> str:
        return link.lead.case.number


@admin.register(DeconflictionHit)
class DeconflictionHitAdmin(ScopedReadOnlyAdmin):
    """Hits for the requester, the supervisors of both agencies and the matched case's leads.
    A case outside the viewer's scope shows as its agency only, never its number or title."""

    roles = frozenset({Role.INVESTIGATOR, Role.SUPERVISOR})
    list_display = (
        "created_at",
        "identifier",
        "requested_by",
        "requesting_agency",
        "requesting_case_shown",
        "matched_agency",
        "matched_case_shown",
    )
    list_select_related = ("identifier", "requested_by", "requesting_agency", "matched_agency")
    search_fields = ("identifier__value", "requested_by__username")
    fields = (
        "created_at",
        "identifier",
        "requested_by",
        "requesting_agency",
        "requesting_case_shown",
        "matched_agency",
        "matched_case_shown",
    )
    readonly_fields = ("requesting_case_shown", "matched_case_shown")

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return DeconflictionHit.objects.select_related(
            "identifier", "requested_by", "requesting_agency", "matched_agency", "requesting_case", "matched_case"
        )

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        user = request.user
        scope = Q(requested_by_id=user.pk) | Q(matched_case_id__in=selectors.case_ids_for(user, CasePerm.MANAGE_TEAM))
        agency_id = selectors.user_agency_id(user)
        if Role.SUPERVISOR in selectors.user_roles(user) and agency_id is not None:
            scope |= Q(requesting_agency_id=agency_id) | Q(matched_agency_id=agency_id)
        return self.full_queryset(request).filter(scope)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return with_case_visibility(super().get_queryset(request), request.user, "requesting_case", "matched_case")

    @admin.display(description="Requesting case")
    def requesting_case_shown(self, hit: DeconflictionHit) -> str:
        if hit.requesting_case_id is None:
            return "—"
        return admin_link(hit.requesting_case) if hit.requesting_case_visible else OUTSIDE_SCOPE

    @admin.display(description="Matched case")
    def matched_case_shown(self, hit: DeconflictionHit) -> str:
        return admin_link(hit.matched_case) if hit.matched_case_visible else OUTSIDE_SCOPE


# ---------------------------------------------------------------- evidence and custody


@admin.register(EvidenceItem)
class EvidenceItemAdmin(ScopedReadOnlyAdmin):
    roles = CASE_ROLES
    list_audit_action = AuditAction.EVIDENCE_LISTED
    view_audit_action = AuditAction.EVIDENCE_VIEWED
    list_display = ("__str__", "case_number", "kind", "status", "short_sha256", "size_bytes", "collected_at")
    list_select_related = ("case",)
    list_filter = ("status", "kind")
    search_fields = ("sha256", "description", "original_filename", "case__number")
    fieldsets = (
        (None, {"fields": ("case", "lead", "kind", "description", "status", "withdrawn_reason")}),
        (
            "Content",
            {
                "fields": (
                    "sha256",
                    "size_bytes",
                    "media_type",
                    "original_filename",
                    "stored",
                    "external_uri",
                )
            },
        ),
        ("Custody", {"fields": ("custody_table",)}),
        (
            "Record",
            {
                "fields": (
                    "collected_at",
                    "collected_by",
                    "withdrawn_at",
                    "withdrawn_by",
                    "created_by",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    readonly_fields = ("stored", "custody_table")

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return EvidenceItem.objects.select_related("case", "collected_by", "created_by", "withdrawn_by")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.evidence_list(user=request.user)

    def audit_case_id(self, obj: EvidenceItem) -> Any:
        return obj.case_id

    @admin.display(description="Case", ordering="case__number")
    def case_number(self, item: EvidenceItem) -> str:
        return item.case.number

    @admin.display(description="SHA-256")
    def short_sha256(self, item: EvidenceItem) -> str:
        return f"{item.sha256[:16]}…"

    @admin.display(description="Stored content", boolean=True)
    def stored(self, item: EvidenceItem) -> bool:
        return item.is_stored

    @admin.display(description="Chain of custody")
    def custody_table(self, item: EvidenceItem) -> str:
        return limited_table(
            selectors.custody_list(evidence=item),
            ("Event", "Action", "By", "From", "To", "Where", "When", "Note"),
            lambda event: (
                admin_link(event, str(event.pk)[:8]),
                event.action,
                event.actor.get_username(),
                event.from_party,
                event.to_party,
                event.location,
                when(event.occurred_at),
                Truncator(event.note).chars(80),
            ),
            "No custody events.",
            lambda: more_link(CustodyEvent, "evidence__exact", item.pk, TABLE_LIMIT),
        )


@admin.register(CustodyEvent)
class CustodyEventAdmin(ScopedReadOnlyAdmin):
    """Append-only: read-only for everyone, superusers included."""

    roles = CASE_ROLES
    list_audit_action = AuditAction.CUSTODY_LISTED
    list_display = ("occurred_at", "action", "evidence", "case_number", "actor", "from_party", "to_party", "location")
    list_select_related = ("evidence__case", "actor")
    list_filter = ("action",)
    search_fields = ("evidence__sha256", "evidence__case__number", "from_party", "to_party", "location")
    fields = (
        "evidence",
        "action",
        "actor",
        "from_party",
        "to_party",
        "location",
        "occurred_at",
        "note",
        "details",
        "created_at",
    )

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return CustodyEvent.objects.select_related("evidence__case", "actor")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        in_scope = selectors.evidence_list(user=request.user).values("id")
        return self.full_queryset(request).filter(evidence_id__in=in_scope)

    @admin.display(description="Case", ordering="evidence__case__number")
    def case_number(self, event: CustodyEvent) -> str:
        return event.evidence.case.number


# ---------------------------------------------------------------- handoffs and packets


class HandoffItemInline(admin.TabularInline):
    """The items of a handoff page the viewer may already open, each filtered through the
    viewer's own lead or evidence scope: a prosecutor sees what the API shows them (nothing
    while the handoff is back in draft or review). Read-only."""

    extra = 0
    can_delete = False
    item_field: ClassVar[str]

    def scoped_items(self, user: AbstractBaseUser) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request).select_related(self.item_field).order_by("id")
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.item_field}_id__in": self.scoped_items(request.user).values("id")})

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class HandoffLeadInline(HandoffItemInline):
    model = HandoffLead
    item_field = "lead"
    fields = ("lead",)
    readonly_fields = ("lead",)
    verbose_name = "included lead"

    def scoped_items(self, user: AbstractBaseUser) -> QuerySet:
        return selectors.lead_list(user=user)


class HandoffEvidenceInline(HandoffItemInline):
    model = HandoffEvidence
    item_field = "evidence"
    fields = ("evidence", "sha256")
    readonly_fields = ("evidence", "sha256")
    verbose_name = "included evidence item"
    verbose_name_plural = "included evidence"

    def scoped_items(self, user: AbstractBaseUser) -> QuerySet:
        return selectors.evidence_list(user=user)

    @admin.display(description="SHA-256")
    def sha256(self, link: HandoffEvidence) -> str:
        return link.evidence.sha256


@admin.register(Handoff)
class HandoffAdmin(ScopedReadOnlyAdmin):
    """Handoffs in scope (the case's team, and the addressed prosecutor once it was sent).
    Workflow steps go through the API so they are reviewed and audited."""

    roles = CASE_ROLES
    list_audit_action = AuditAction.HANDOFF_LISTED
    view_audit_action = AuditAction.HANDOFF_VIEWED
    inlines = (HandoffLeadInline, HandoffEvidenceInline)
    list_display = ("number", "case_number", "status", "prosecutor", "prosecutor_office", "sent_at", "updated_at")
    list_select_related = ("case", "prosecutor", "prosecutor_office")
    list_filter = ("status",)
    search_fields = ("number", "case__number", "prosecutor__username")
    fieldsets = (
        (None, {"fields": ("case", "number", "status", "prosecutor", "prosecutor_office")}),
        ("Content", {"fields": ("charges_list", "narrative")}),
        (
            "Workflow",
            {
                "fields": (
                    "created_by",
                    "submitted_by",
                    "submitted_at",
                    "reviewed_by",
                    "reviewed_at",
                    "review_note_shown",
                    "sent_at",
                    "acknowledged_at",
                    "decided_at",
                    "decision_note",
                )
            },
        ),
        ("Packets", {"fields": ("packets_table",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("charges_list", "review_note_shown", "packets_table")

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return Handoff.objects.select_related("case", "prosecutor", "prosecutor_office", "created_by")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.handoff_list(user=request.user)

    def audit_case_id(self, obj: Handoff) -> Any:
        return obj.case_id

    @admin.display(description="Case", ordering="case__number")
    def case_number(self, handoff: Handoff) -> str:
        return handoff.case.number

    @admin.display(description="Charges")
    def charges_list(self, handoff: Handoff) -> str:
        rows = [(charge.get("statute", ""), charge.get("text", "")) for charge in handoff.charges or []]
        return html_table(("Statute", "Text"), rows, "No charges.")

    @admin.display(description="Review note")
    def review_note_shown(self, handoff: Handoff) -> str:
        """Internal to the agency: the addressed prosecutor does not see it (as in the API)."""
        if getattr(handoff, "in_case_scope", True) is False:
            return "(internal to the agency)"
        return handoff.review_note or "—"

    @admin.display(description="Export packets")
    def packets_table(self, handoff: Handoff) -> str:
        viewer = handoff.admin_viewer
        packets = ExportPacket.objects.all() if viewer.is_superuser else selectors.packet_list(user=viewer)
        return limited_table(
            packets.filter(handoff=handoff).select_related("requested_by").order_by("-created_at", "id"),
            ("Packet", "Status", "Progress", "SHA-256", "Size", "Requested by", "Requested"),
            lambda packet: (
                admin_link(packet, str(packet.pk)[:8]),
                packet.status,
                f"{packet.progress}%",
                f"{packet.sha256[:16]}…" if packet.sha256 else "",
                packet.size_bytes,
                packet.requested_by.get_username(),
                when(packet.created_at),
            ),
            "No packets in your scope.",
            lambda: more_link(ExportPacket, "handoff__exact", handoff.pk, TABLE_LIMIT),
        )


@admin.register(ExportPacket)
class ExportPacketAdmin(ScopedReadOnlyAdmin):
    """Packets for the case's leads and supervisors and for the addressed prosecutor (the
    packet_list selector); downloads go through the API, which audits them."""

    roles = CASE_ROLES
    list_display = ("short_id", "handoff", "case_number", "status", "progress", "stage", "short_sha256", "created_at")
    list_select_related = ("handoff__case",)
    list_filter = ("status",)
    search_fields = ("sha256", "handoff__number", "handoff__case__number")
    fieldsets = (
        (None, {"fields": ("handoff", "status", "progress", "stage", "error", "attempts")}),
        (
            "Result",
            {"fields": ("file_name", "sha256", "size_bytes", "manifest_sha256", "checkpoint_size", "signature")},
        ),
        ("Record", {"fields": ("requested_by", "created_at", "started_at", "finished_at")}),
    )

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return ExportPacket.objects.select_related("handoff__case", "requested_by")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.packet_list(user=request.user)

    def audit_case_id(self, obj: ExportPacket) -> Any:
        return obj.handoff.case_id

    @admin.display(description="Packet")
    def short_id(self, packet: ExportPacket) -> str:
        return str(packet.pk)[:8]

    @admin.display(description="Case", ordering="handoff__case__number")
    def case_number(self, packet: ExportPacket) -> str:
        return packet.handoff.case.number

    @admin.display(description="SHA-256")
    def short_sha256(self, packet: ExportPacket) -> str:
        return f"{packet.sha256[:16]}…" if packet.sha256 else "—"


register_remaining("cases")
