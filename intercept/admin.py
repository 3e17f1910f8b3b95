"""Admin screens of intercept ingest, scoped like the rest (cases.admin.ScopedReadOnlyAdmin):
ingest sources for agency admins (create, rotate, deactivate: through the audited services,
each new secret shown once), conversations and ads read-only through their case, and the
supervisors' operation dashboard."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from audit.services import audit_record
from cases import selectors as case_selectors
from cases.admin import (
    CASE_ROLES,
    ROW_ERRORS,
    TABLE_LIMIT,
    InternalRecordAdmin,
    ScopedReadOnlyAdmin,
    admin_link,
    error_text,
    is_agency_admin,
    limited_table,
    more_link,
    report_unseen,
    when,
)
from cases.models import Case, CaseKind, CaseStatus, Role
from intercept import charts, selectors, services
from intercept.events import InterceptAction
from intercept.models import (
    Ad,
    AdPhone,
    Conversation,
    IngestSource,
    Message,
    OperationDashboard,
    SeenSignature,
    TranscriptSnapshot,
)

SECRET_TEMPLATE = "admin/intercept/ingestsource/secret.html"  # noqa: S105 - a template name
ADD_TEMPLATE = "admin/intercept/ingestsource/add.html"
DASHBOARD_TEMPLATE = "admin/intercept/dashboard.html"
BAD_DATE = "Dates are YYYY-MM-DD; showing the default period instead."


# ---------------------------------------------------------------- ingest sources


class IngestSourceAddForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Letters, digits, '.', '_' or '-'; e.g. nightfall-bot-1.")
    case = forms.ModelChoiceField(queryset=Case.objects.none(), label="Operation")

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        operations = (
            Case.objects.filter(kind=CaseKind.OPERATION)
            .exclude(status=CaseStatus.CLOSED)
            .select_related("agency")
            .order_by("number")
        )
        if not user.is_superuser:
            operations = operations.filter(agency_id=case_selectors.user_agency_id(user))
        field = self.fields["case"]
        field.queryset = operations
        field.label_from_instance = lambda case: f"{case.number} ({case.agency.code})"


def secret_response(request: HttpRequest, admin_site: admin.AdminSite, issued: list[Any], verb: str) -> HttpResponse:
    """The page that shows new secrets, once; never cached."""
    context = {
        **admin_site.each_context(request),
        "title": f"Ingest source secret {verb}",
        "issued": issued,
        "verb": verb,
        "changelist": reverse("admin:intercept_ingestsource_changelist"),
    }
    response = TemplateResponse(request, SECRET_TEMPLATE, context)
    response["Cache-Control"] = "no-store"
    return response


@admin.register(IngestSource)
class IngestSourceAdmin(ScopedReadOnlyAdmin):
    """An agency admin sees and manages the sources of their agency; secrets are never shown
    here except right after they are made."""

    roles = frozenset({Role.AGENCY_ADMIN})
    actions = ("rotate_secrets", "deactivate_sources", "activate_sources")
    list_display = ("name", "agency", "case", "is_active", "rotated_at", "previous_valid_until", "created_at")
    list_select_related = ("agency", "case")
    list_filter = ("is_active",)
    search_fields = ("name", "case__number")
    fields = (
        "id",
        "name",
        "agency",
        "case",
        "is_active",
        "rotated_at",
        "previous_valid_until",
        "created_by",
        "created_at",
        "updated_at",
    )

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.ingest_sources(agency_id=None)

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.ingest_sources(agency_id=case_selectors.user_agency_id(request.user))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.may_open(request) and (request.user.is_superuser or is_agency_admin(request.user))

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = IngestSourceAddForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                issued = services.ingest_source_create(
                    actor=request.user, name=form.cleaned_data["name"], case=form.cleaned_data["case"]
                )
            except ROW_ERRORS as exc:
                form.add_error(None, error_text(exc))
            else:
                return secret_response(request, self.admin_site, [issued], "created")
        context = {
            **self.admin_site.each_context(request),
            "title": "Add ingest source",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, ADD_TEMPLATE, context)

    def _sources(self, request: HttpRequest, queryset: QuerySet) -> list[IngestSource]:
        sources = list(queryset)
        report_unseen(self, request, sources, "source")
        return sources

    @admin.action(description="Rotate the secret (the old one keeps working for 24 hours)")
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        issued = []
        for source in self._sources(request, queryset):
            try:
                issued.append(services.ingest_source_rotate(actor=request.user, source=source))
            except ROW_ERRORS as exc:
                self.message_user(request, f"{source.name} was not rotated: {error_text(exc)}", messages.ERROR)
        return secret_response(request, self.admin_site, issued, "rotated") if issued else None

    def _set_active(self, request: HttpRequest, queryset: QuerySet, active: bool) -> None:
        done = []
        for source in self._sources(request, queryset):
            try:
                services.ingest_source_set_active(actor=request.user, source=source, active=active)
            except ROW_ERRORS as exc:
                self.message_user(request, f"{source.name}: {error_text(exc)}", messages.ERROR)
            else:
                done.append(source.name)
        if done:
            verb = "Activated" if active else "Deactivated"
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)

    @admin.action(description="Deactivate (its requests are refused)")
    def deactivate_sources(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, False)

    @admin.action(description="Activate")
    def activate_sources(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, True)


# ---------------------------------------------------------------- conversations and ads


@admin.register(Conversation)
class ConversationAdmin(ScopedReadOnlyAdmin):
    roles = CASE_ROLES
    list_audit_action = InterceptAction.CONVERSATION_LISTED
    view_audit_action = InterceptAction.CONVERSATION_VIEWED
    list_display = ("__str__", "case_number", "lead", "message_count", "closed", "minor_age_mentioned", "created_at")
    list_select_related = ("case", "lead", "source")
    list_filter = ("closed", "minor_age_mentioned", "payment_discussed", "platform")
    search_fields = ("external_id", "case__number")
    fields = (
        "case",
        "source",
        "lead",
        "external_id",
        "platform",
        "bot",
        "ad_site",
        "ad_external_id",
        "buyer",
        "minor_age_mentioned",
        "payment_discussed",
        "meeting_requested",
        "deterrence_sent_at",
        "closed",
        "closed_at",
        "message_count",
        "first_message_at",
        "last_message_at",
        "snapshot_table",
        "message_table",
    )
    readonly_fields = ("snapshot_table", "message_table")

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return Conversation.objects.select_related("case", "lead", "source")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.conversation_list(user=request.user)

    def audit_case_id(self, obj: Conversation) -> Any:
        return obj.case_id

    @admin.display(description="Case", ordering="case__number")
    def case_number(self, conversation: Conversation) -> str:
        return conversation.case.number

    @admin.display(description="Transcript snapshots")
    def snapshot_table(self, conversation: Conversation) -> str:
        return limited_table(
            conversation.snapshots.select_related("evidence").order_by("number"),
            ("#", "Evidence", "SHA-256", "Messages", "Reason", "Taken"),
            lambda snap: (
                snap.number,
                admin_link(snap.evidence, snap.evidence_id),
                snap.evidence.sha256,
                snap.message_count,
                snap.reason,
                when(snap.created_at),
            ),
            "No snapshot yet.",
            lambda: more_link(TranscriptSnapshot, "conversation__exact", conversation.pk, TABLE_LIMIT),
        )

    @admin.display(description="Messages")
    def message_table(self, conversation: Conversation) -> str:
        return limited_table(
            conversation.messages.order_by("seq"),
            ("#", "Sent", "Direction", "Message"),
            lambda m: (m.seq, when(m.sent_at), m.direction, Truncator(m.body).chars(200)),
            "No messages.",
            lambda: format_html("<p>Showing the first {}; the API lists them all.</p>", TABLE_LIMIT),
        )


@admin.register(Ad)
class AdAdmin(ScopedReadOnlyAdmin):
    roles = CASE_ROLES
    list_audit_action = InterceptAction.AD_LISTED
    list_display = ("__str__", "case_number", "title", "city", "posted_at", "first_seen_at")
    list_select_related = ("case",)
    list_filter = ("site",)
    search_fields = ("external_id", "title", "identifiers__value")
    fields = (
        "case",
        "source",
        "site",
        "external_id",
        "url",
        "title",
        "posted_at",
        "city",
        "region",
        "phones",
        "text",
        "first_seen_at",
        "updated_at",
    )

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return Ad.objects.select_related("case", "source")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.ad_list(user=request.user)

    @admin.display(description="Case", ordering="case__number")
    def case_number(self, ad: Ad) -> str:
        return ad.case.number


for model in (Message, TranscriptSnapshot, AdPhone, SeenSignature):
    admin.site.register(model, InternalRecordAdmin)


# ---------------------------------------------------------------- the operation dashboard


def _day(raw: str | None) -> date | None:
    return date.fromisoformat(raw) if raw else None


@admin.register(OperationDashboard)
class OperationDashboardAdmin(ScopedReadOnlyAdmin):
    """Supervisors (and investigators) see the operations in their scope at a glance: the
    weekly series as charts, the totals, and the highest-priority open leads."""

    roles = frozenset({Role.SUPERVISOR, Role.INVESTIGATOR})

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return selectors.conversation_list(user=request.user)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        user = request.user
        operations = list(
            Case.objects.filter(kind=CaseKind.OPERATION).order_by("-created_at", "id")
            if user.is_superuser
            else selectors.operations_in_scope(user=user)
        )
        chosen = next((op for op in operations if str(op.pk) == request.GET.get("case")), None)
        case = chosen or (operations[0] if operations else None)
        default = selectors.default_period()
        try:
            since, until = _day(request.GET.get("since")), _day(request.GET.get("until"))
        except ValueError:
            since = until = None
            self.message_user(request, BAD_DATE, messages.WARNING)
        period = selectors.Period(since=since or default.since, until=until or default.until)
        if period.until < period.since:
            period = default
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "Operation dashboard",
            "opts": self.model._meta,
            "operations": operations,
            "case": case,
            "period": period,
        }
        if case is not None:
            summary = selectors.analytics_summary(user=user, case=case, period=period)
            audit_record(
                actor=user,
                action=InterceptAction.ANALYTICS_VIEWED,
                target=case,
                case_id=case.pk,
                changes={"since": period.since, "until": period.until, "format": "dashboard", "via": "admin"},
            )
            context.update(
                summary=summary,
                conversations_chart=charts.weekly_bars(
                    "Conversations per week",
                    [(row["week"], row["count"]) for row in summary["conversations_per_week"]],
                ),
                ads_chart=charts.stacked_weekly_bars(
                    "Ads per site per week",
                    [(row["week"], row["site"], row["count"]) for row in summary["ads_per_site_per_week"]],
                ),
                top_leads=selectors.top_open_leads(case=case),
                csv_url=reverse("analytics-summary")
                + f"?case={case.pk}&since={period.since.isoformat()}&until={period.until.isoformat()}&format=csv",
            )
        return TemplateResponse(request, DASHBOARD_TEMPLATE, context)
