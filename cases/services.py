"""Every write of the case domain: validation, permission, the change and its audit event in
one transaction. Services are keyword-only and raise domain errors with constant messages."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm
from rest_framework.exceptions import AuthenticationFailed, NotFound, PermissionDenied, UnsupportedMediaType

from audit.models import AuditAction, AuditEvent
from audit.services import audit_record, diff, snapshot
from caseapi import crypto
from caseapi.appendonly import AppendOnlyModel
from caseapi.exceptions import Conflict, Locked
from caseapi.fields import encrypted_columns, reseal_column
from cases import identifiers as ident
from cases import selectors, uploads
from cases.models import (
    Agency,
    AgencyKind,
    AuthToken,
    Case,
    CaseKind,
    CaseNumberCounter,
    CaseStatus,
    CustodyAction,
    CustodyEvent,
    DeconflictionHit,
    EvidenceItem,
    EvidenceStatus,
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffLead,
    HandoffStatus,
    HandoffUserObjectPermission,
    Identifier,
    Lead,
    LeadIdentifier,
    LeadStatus,
    PacketStatus,
    Profile,
    Role,
    TeamRole,
)
from cases.permissions import SUPERVISOR_GROUP_PERMS, TEAM_ROLE_PERMS, CasePerm, HandoffPerm, role_for_perms
from cases.tokens import token_digest
from outbox.services import outbox_enqueue

User = get_user_model()
logger = logging.getLogger(__name__)

# Domain error messages (tests assert these constants).
NOT_ALLOWED = "You do not have permission to perform this action."
CASE_CREATE_ROLE = "Only investigators and supervisors can open cases."
CASE_CLOSED = "This case is closed; reopen it before changing it."
CASE_STATUS_TRANSITION = "A case cannot go from {old} to {new}."
CASE_PARENT_NOT_OPERATION = "The parent case must be an operation of the same agency."
CASE_LEAD_INVESTIGATOR_NOT_LEAD = "The lead investigator must hold the lead role on the case team."
TEAM_LAST_LEAD = "The last lead of a case cannot be removed or demoted."
TEAM_LEAD_INVESTIGATOR = "The case's lead investigator cannot be removed or demoted; reassign the case first."
TEAM_USER_INACTIVE = "Only active users with an agency can join a case team."
TEAM_ROLE_NOT_CASEWORK = "Only investigators and supervisors can join a case team."
TEAM_NOT_MEMBER = "That user is not on this case's team."
LEAD_STATUS_TRANSITION = "A lead cannot go from {old} to {new}."
LEAD_ASSIGNED_NEEDS_ASSIGNEE = "A lead in status assigned or investigating needs an assignee."
LEAD_ASSIGNEE_NO_ACCESS = "The assignee cannot see this case; add them to the case team first."
EVIDENCE_LEAD_OTHER_CASE = "The lead belongs to another case."
EVIDENCE_SHA256_MISMATCH = "The declared SHA-256 does not match the uploaded content (server computed {computed})."
EVIDENCE_SHA256_FORMAT = "A SHA-256 is 64 hexadecimal characters."
EVIDENCE_WITHDRAWN = "This evidence item is withdrawn; it can no longer be changed."
EVIDENCE_WITHDRAW_REASON = "Withdrawing evidence needs a withdrawn_reason."
EVIDENCE_NOT_STORED = "This item is a reference to an external system; there is no stored content to re-hash."
EVIDENCE_CONTENT_MISSING = "The stored content of this item cannot be read; report it to the evidence custodian."
EVIDENCE_COLLECTED_IN_FUTURE = "collected_at cannot be in the future."
EVIDENCE_TYPE_NOT_ALLOWED = (
    "The uploaded content is {detected} (detected from its bytes, not its name or declared type), "
    "which is not an accepted evidence type."
)
LEAD_SEEN_ORDER = "last_seen_at cannot be earlier than first_seen_at."
EVIDENCE_CONTENT_OR_REFERENCE = "Give either uploaded content or an external_uri with its sha256 and size_bytes."
CUSTODY_ACTION_RESERVED = "A verified custody event is recorded by the verify action only."
LOGIN_INVALID = "Invalid username or password."
AGENCY_KIND_CONFLICT = "Agency {code} already exists with kind {kind}."

CASE_TRANSITIONS: dict[str, set[str]] = {
    CaseStatus.OPEN: {CaseStatus.ACTIVE, CaseStatus.CLOSED},
    CaseStatus.ACTIVE: {CaseStatus.PENDING_PROSECUTION, CaseStatus.CLOSED},
    CaseStatus.PENDING_PROSECUTION: {CaseStatus.ACTIVE, CaseStatus.CLOSED},
    CaseStatus.CLOSED: {CaseStatus.OPEN},
}
LEAD_TRANSITIONS: dict[str, set[str]] = {
    LeadStatus.NEW: {LeadStatus.TRIAGED, LeadStatus.CLOSED_NO_ACTION},
    LeadStatus.TRIAGED: {LeadStatus.ASSIGNED, LeadStatus.CLOSED_NO_ACTION},
    LeadStatus.ASSIGNED: {LeadStatus.INVESTIGATING, LeadStatus.TRIAGED, LeadStatus.CLOSED_NO_ACTION},
    LeadStatus.INVESTIGATING: {LeadStatus.REFERRED, LeadStatus.ASSIGNED, LeadStatus.CLOSED_NO_ACTION},
    LeadStatus.REFERRED: {LeadStatus.INVESTIGATING},
    LeadStatus.CLOSED_NO_ACTION: {LeadStatus.TRIAGED},
}
PRIORITY_WEIGHTS: dict[str, int] = {
    "minor_age_mentioned": 50,
    "payment_discussed": 20,
    "meeting_arranged": 20,
    "repeat_contact": 10,
}
SYSTEM_USERNAME = "_system"
CLOCK_SKEW = timedelta(minutes=5)
HASH_CHUNK = 1024 * 1024


def _require(condition: bool, message: str = NOT_ALLOWED) -> None:
    if not condition:
        raise PermissionDenied(message)


# ---------------------------------------------------------------- agencies and people


def system_user() -> AbstractBaseUser:
    """The inactive account that background jobs act as (it can never log in)."""
    user, _ = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"is_active": False, "password": make_password(None)}
    )
    return user


@transaction.atomic
def agency_ensure(*, code: str, name: str, kind: str, actor: AbstractBaseUser | None = None) -> tuple[Agency, bool]:
    """Create the agency (and its supervisors group), or update its name; idempotent."""
    code = code.strip().upper()
    if kind not in AgencyKind.values:
        raise ValidationError(
            {"kind": [f"Unknown agency kind {kind!r}; expected one of: {', '.join(AgencyKind.values)}."]}
        )
    existing = Agency.objects.select_for_update().filter(code=code).first()
    if existing is not None:
        if existing.kind != kind:
            raise Conflict(AGENCY_KIND_CONFLICT.format(code=code, kind=existing.kind))
        if existing.name != name:
            before = snapshot(existing, ["name"])
            existing.name = name
            existing.full_clean()
            existing.save(update_fields=["name"])
            audit_record(
                action=AuditAction.AGENCY_UPDATED,
                actor=actor,
                agency_id=existing.pk,
                target=existing,
                changes=diff(existing, ["name"], before),
            )
        return existing, False
    agency = Agency(code=code, name=name, kind=kind)
    agency.full_clean(exclude=["supervisors"])
    agency.supervisors, _ = Group.objects.get_or_create(name=f"{code} supervisors")
    agency.save()
    audit_record(
        action=AuditAction.AGENCY_CREATED,
        actor=actor,
        agency_id=agency.pk,
        target=agency,
        changes={"code": [None, code], "name": [None, name], "kind": [None, kind]},
    )
    return agency, True


def _set_role(user: AbstractBaseUser, agency: Agency, role: str) -> list[str]:
    """Put `user` in exactly the role group `role` (plus the agency's supervisors group for
    supervisors); returns the old role names."""
    role_groups = {g.name: g for g in Group.objects.filter(name__in=Role.values)}
    for name in Role.values:
        if name not in role_groups:
            role_groups[name], _ = Group.objects.get_or_create(name=name)
    old = sorted(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    user.groups.remove(*[g for n, g in role_groups.items() if n != role])
    user.groups.add(role_groups[role])
    if role == Role.SUPERVISOR:
        user.groups.add(agency.supervisors)
    else:
        user.groups.remove(agency.supervisors)
    return old


@transaction.atomic
def user_ensure(
    *,
    username: str,
    agency: Agency,
    role: str,
    password: str | None,
    actor: AbstractBaseUser | None = None,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    title: str = "",
    phone: str = "",
) -> tuple[AbstractBaseUser, bool]:
    """Create the user in `agency` with `role`, or bring an existing one to that agency, role
    and password; idempotent. Every change is audited."""
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role {role!r}; expected one of: {', '.join(Role.values)}."]})
    _require_agency_admin_over(actor, agency.pk)
    user = User.objects.select_for_update().filter(username=username).first()
    created = user is None
    if not created:
        current = Profile.objects.filter(user=user).values_list("agency_id", flat=True).first()
        if current is not None:
            _require_agency_admin_over(actor, current)
    if created:
        user = User(username=username, first_name=first_name, last_name=last_name, email=email, is_staff=True)
        user.full_clean(exclude=["password"])
        user.set_password(password) if password else user.set_unusable_password()
        user.save()
        Profile.objects.create(user=user, agency=agency, title=title, phone=phone)
        audit_record(
            action=AuditAction.USER_CREATED,
            actor=actor,
            agency_id=agency.pk,
            target=user,
            changes={"username": [None, username], "agency": [None, agency.code], "role": [None, role]},
        )
    else:
        profile = Profile.objects.filter(user=user).first()
        if profile is None:
            Profile.objects.create(user=user, agency=agency, title=title, phone=phone)
            audit_record(
                action=AuditAction.USER_UPDATED,
                actor=actor,
                agency_id=agency.pk,
                target=user,
                changes={"agency": [None, agency.code]},
            )
        elif profile.agency_id != agency.pk:
            old_code = profile.agency.code
            # Leaving an agency ends its supervisors' access to that agency's cases.
            user.groups.remove(profile.agency.supervisors)
            profile.agency = agency
            profile.save(update_fields=["agency"])
            audit_record(
                action=AuditAction.USER_UPDATED,
                actor=actor,
                agency_id=agency.pk,
                target=user,
                changes={"agency": [old_code, agency.code]},
            )
        if password and not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
            audit_record(action=AuditAction.USER_PASSWORD_CHANGED, actor=actor, agency_id=agency.pk, target=user)
    old_roles = _set_role(user, agency, role)
    if not created and old_roles != [role]:
        audit_record(
            action=AuditAction.USER_ROLE_CHANGED,
            actor=actor,
            agency_id=agency.pk,
            target=user,
            changes={"roles": [old_roles, [role]]},
        )
    return user, created


@transaction.atomic
def account_unlock(*, user: AbstractBaseUser, actor: AbstractBaseUser | None) -> None:
    profile = Profile.objects.select_for_update().get(user=user)
    _require_agency_admin_over(actor, profile.agency_id)
    before = snapshot(profile, ["failed_logins", "locked_until"])
    profile.failed_logins = 0
    profile.failed_window_started_at = None
    profile.locked_until = None
    profile.save(update_fields=["failed_logins", "failed_window_started_at", "locked_until"])
    audit_record(
        action=AuditAction.ACCOUNT_UNLOCKED,
        actor=actor,
        agency_id=profile.agency_id,
        target=user,
        changes=diff(profile, ["failed_logins", "locked_until"], before),
    )


def _require_agency_admin_over(actor: AbstractBaseUser | None, agency_id: int) -> None:
    """Superusers and command-line callers (actor None) may act on anyone; an agency admin only
    on people of their own agency."""
    if actor is None or actor.is_superuser:
        return
    _require(Role.AGENCY_ADMIN in selectors.user_roles(actor) and selectors.user_agency_id(actor) == agency_id)


@transaction.atomic
def user_set_active(*, actor: AbstractBaseUser | None, user: AbstractBaseUser, active: bool) -> None:
    """Deactivate (or reactivate) an account; its tokens stop working at once."""
    profile = Profile.objects.select_for_update().get(user=user)
    _require_agency_admin_over(actor, profile.agency_id)
    if user.is_active == active:
        return
    user.is_active = active
    user.save(update_fields=["is_active"])
    audit_record(
        action=AuditAction.USER_UPDATED,
        actor=actor,
        agency_id=profile.agency_id,
        target=user,
        changes={"is_active": [not active, active]},
    )


# ---------------------------------------------------------------- authentication


@dataclass(frozen=True)
class IssuedToken:
    key: str
    token: AuthToken


def auth_check(*, username: str, password: str, via: str) -> AbstractBaseUser:
    """Check credentials with lockout, for every way in (API token, admin session):
    LOGIN_FAILURE_LIMIT failures within LOGIN_FAILURE_WINDOW lock the account for
    LOGIN_LOCKOUT_COOLOFF (or until an agency admin unlocks it). Both outcomes are audited;
    a failure is committed before its error is raised. Superusers without an agency profile
    can log in (operators) but have no lockout counter."""
    now = timezone.now()
    outcome: Exception | None = None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        profile = Profile.objects.select_for_update().filter(user=user).first() if user else None
        agency_id = profile.agency_id if profile else None
        known = user is not None and user.is_active and (profile is not None or user.is_superuser)
        if profile is not None and profile.locked_until and profile.locked_until > now:
            audit_record(
                action=AuditAction.LOGIN_FAILED,
                actor=user,
                agency_id=agency_id,
                target=user,
                changes={"reason": "account_locked", "via": via},
            )
            outcome = Locked()
        elif not known:
            make_password(password)  # same cost as a real check: no user enumeration by timing
            audit_record(
                action=AuditAction.LOGIN_FAILED,
                actor=user if user and user.pk else None,
                actor_name=username[:150],
                agency_id=agency_id,
                changes={"reason": "unknown_or_inactive_user", "via": via},
            )
            outcome = AuthenticationFailed(LOGIN_INVALID, code="invalid_credentials")
        elif not user.check_password(password):
            changes: dict[str, Any] = {"reason": "bad_password", "via": via}
            if profile is not None:
                if (
                    profile.failed_window_started_at is None
                    or now - profile.failed_window_started_at > settings.LOGIN_FAILURE_WINDOW
                ):
                    profile.failed_window_started_at = now
                    profile.failed_logins = 0
                profile.failed_logins += 1
                changes["failed_logins"] = profile.failed_logins
                fields = ["failed_logins", "failed_window_started_at"]
                if profile.failed_logins >= settings.LOGIN_FAILURE_LIMIT:
                    profile.locked_until = now + settings.LOGIN_LOCKOUT_COOLOFF
                    fields.append("locked_until")
                profile.save(update_fields=fields)
            audit_record(action=AuditAction.LOGIN_FAILED, actor=user, agency_id=agency_id, target=user, changes=changes)
            if profile is not None and "locked_until" in fields:
                audit_record(
                    action=AuditAction.ACCOUNT_LOCKED,
                    actor=user,
                    agency_id=agency_id,
                    target=user,
                    changes={"locked_until": [None, profile.locked_until]},
                )
            outcome = AuthenticationFailed(LOGIN_INVALID, code="invalid_credentials")
        else:
            if profile is not None and (profile.failed_logins or profile.locked_until):
                profile.failed_logins = 0
                profile.failed_window_started_at = None
                profile.locked_until = None
                profile.save(update_fields=["failed_logins", "failed_window_started_at", "locked_until"])
            user.last_login = now
            user.save(update_fields=["last_login"])
            audit_record(
                action=AuditAction.LOGIN_SUCCEEDED,
                actor=user,
                agency_id=agency_id,
                target=user,
                changes={"via": via},
            )
    if outcome is not None:
        raise outcome
    return user


def auth_login(*, username: str, password: str) -> IssuedToken:
    """Check credentials (auth_check) and issue an API token that expires after AUTH_TOKEN_TTL."""
    user = auth_check(username=username, password=password, via="api")
    with transaction.atomic():
        key = secrets.token_urlsafe(32)
        token = AuthToken.objects.create(
            user=user, digest=token_digest(key), prefix=key[:8], expires_at=timezone.now() + settings.AUTH_TOKEN_TTL
        )
        audit_record(
            action=AuditAction.TOKEN_ISSUED,
            actor=user,
            agency_id=selectors.user_agency_id(user),
            target=token,
            changes={"expires_at": [None, token.expires_at]},
        )
    return IssuedToken(key=key, token=token)


@transaction.atomic
def token_revoke(*, token: AuthToken, actor: AbstractBaseUser | None) -> None:
    """Revoke a token: its owner, an agency admin over the owner, a superuser or the command
    line (actor None) may. Recorded under the owner's agency."""
    token = AuthToken.objects.select_for_update(of=("self",)).select_related("user", "user__profile").get(pk=token.pk)
    owner_agency_id = selectors.user_agency_id(token.user)
    if actor is not None and actor.pk != token.user_id:
        if owner_agency_id is None:
            _require(actor.is_superuser)
        else:
            _require_agency_admin_over(actor, owner_agency_id)
    if token.revoked_at is not None:
        return
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(
        action=AuditAction.TOKEN_REVOKED,
        actor=actor,
        agency_id=owner_agency_id,
        target=token,
        changes={"revoked_at": [None, token.revoked_at], "owner": token.user.get_username()},
    )


# ---------------------------------------------------------------- cases and teams


def _next_case_number(agency: Agency, year: int) -> str:
    """Lock the (agency, year) counter row and take the next value. The row is created with
    ON CONFLICT DO NOTHING first, so concurrent first cases of a year do not collide."""
    CaseNumberCounter.objects.bulk_create(
        [CaseNumberCounter(agency=agency, year=year, last_value=0)], ignore_conflicts=True
    )
    counter = CaseNumberCounter.objects.select_for_update().get(agency=agency, year=year)
    counter.last_value += 1
    counter.save(update_fields=["last_value"])
    return f"{agency.code}-{year}-{counter.last_value:05d}"


def _grant(case: Case, user: AbstractBaseUser, role: str) -> None:
    wanted = set(TEAM_ROLE_PERMS[role])
    for perm in CasePerm:
        if perm in wanted:
            assign_perm(perm.value, user, case)
        else:
            remove_perm(perm.value, user, case)


@transaction.atomic
def case_create(
    *,
    actor: AbstractBaseUser,
    title: str,
    kind: str = CaseKind.INVESTIGATION,
    priority: str = "normal",
    summary: str = "",
    parent: Case | None = None,
) -> Case:
    """Open a case in the actor's agency. The creator becomes its lead; the agency's
    supervisors group gets view, change and manage_team on it."""
    roles = selectors.user_roles(actor)
    _require(bool(roles & {Role.INVESTIGATOR, Role.SUPERVISOR}), CASE_CREATE_ROLE)
    agency = actor.profile.agency
    if parent is not None and (parent.kind != CaseKind.OPERATION or parent.agency_id != agency.pk):
        raise ValidationError({"parent": [CASE_PARENT_NOT_OPERATION]})
    case = Case(
        number=_next_case_number(agency, timezone.now().year),
        agency=agency,
        title=title,
        kind=kind,
        priority=priority,
        summary=summary,
        parent=parent,
        lead_investigator=actor,
        created_by=actor,
    )
    case.full_clean()
    case.save(force_insert=True)
    _grant(case, actor, TeamRole.LEAD)
    for perm in SUPERVISOR_GROUP_PERMS:
        assign_perm(perm.value, agency.supervisors, case)
    audit_record(
        action=AuditAction.CASE_CREATED,
        actor=actor,
        agency_id=agency.pk,
        target=case,
        case_id=case.pk,
        changes={
            "number": [None, case.number],
            "title": [None, title],
            "kind": [None, kind],
            "priority": [None, priority],
            "parent": [None, str(parent.pk) if parent else None],
            "team": [None, {actor.get_username(): TeamRole.LEAD}],
        },
    )
    return case


CASE_EDITABLE = ["title", "priority", "summary", "lead_investigator_id"]


@transaction.atomic
def case_update(*, actor: AbstractBaseUser, case: Case, data: dict[str, Any]) -> Case:
    """Change case fields (change_case) and/or its status (manage_team). A closed case only
    accepts a status change back to open."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    _require(selectors.has_case_perm(actor, case, CasePerm.CHANGE))
    new_status = data.pop("status", None)
    if new_status is not None and new_status != case.status:
        _require(selectors.has_case_perm(actor, case, CasePerm.MANAGE_TEAM))
    if case.status == CaseStatus.CLOSED and any(getattr(case, k) != v for k, v in data.items()):
        raise Conflict(CASE_CLOSED)
    before = snapshot(case, CASE_EDITABLE + ["status", "closed_at"])
    if "lead_investigator" in data:
        new_lead = data.pop("lead_investigator")
        if new_lead.pk != case.lead_investigator_id:
            member_perms = {
                p for p in case.user_permissions.filter(user=new_lead).values_list("permission__codename", flat=True)
            }
            if CasePerm.MANAGE_TEAM not in member_perms:
                raise ValidationError({"lead_investigator": [CASE_LEAD_INVESTIGATOR_NOT_LEAD]})
            case.lead_investigator = new_lead
    for field, value in data.items():
        setattr(case, field, value)
    if new_status is not None and new_status != case.status:
        if new_status not in CASE_TRANSITIONS[case.status]:
            raise Conflict(CASE_STATUS_TRANSITION.format(old=case.status, new=new_status))
        case.status = new_status
        case.closed_at = timezone.now() if new_status == CaseStatus.CLOSED else None
    changes = diff(case, CASE_EDITABLE + ["status", "closed_at"], before)
    if not changes:
        return case
    case.full_clean()
    case.save()
    status_change = {k: v for k, v in changes.items() if k in ("status", "closed_at")}
    field_change = {k: v for k, v in changes.items() if k not in ("status", "closed_at")}
    if field_change:
        audit_record(
            action=AuditAction.CASE_UPDATED,
            actor=actor,
            agency_id=case.agency_id,
            target=case,
            case_id=case.pk,
            changes=field_change,
        )
    if status_change:
        audit_record(
            action=AuditAction.CASE_STATUS_CHANGED,
            actor=actor,
            agency_id=case.agency_id,
            target=case,
            case_id=case.pk,
            changes=status_change,
        )
    return case


def _member_roles(case: Case) -> dict[int, str | None]:
    perms: dict[int, set[str]] = {}
    for user_id, codename in case.user_permissions.values_list("user_id", "permission__codename"):
        perms.setdefault(user_id, set()).add(codename)
    return {uid: role_for_perms(p) for uid, p in perms.items()}


def _check_lead_kept(case: Case, user: AbstractBaseUser, new_role: str | None) -> None:
    roles = _member_roles(case)
    if roles.get(user.pk) == TeamRole.LEAD and new_role != TeamRole.LEAD:
        if user.pk == case.lead_investigator_id:
            raise Conflict(TEAM_LEAD_INVESTIGATOR)
        if sum(1 for r in roles.values() if r == TeamRole.LEAD) <= 1:
            raise Conflict(TEAM_LAST_LEAD)


@transaction.atomic
def team_member_set(*, actor: AbstractBaseUser, case: Case, user: AbstractBaseUser, role: str) -> bool:
    """Give `user` exactly `role` on `case` (manage_team). Returns True if newly added."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    _require(selectors.has_case_perm(actor, case, CasePerm.MANAGE_TEAM))
    if case.status == CaseStatus.CLOSED:
        raise Conflict(CASE_CLOSED)
    if not user.is_active or not Profile.objects.filter(user=user).exists():
        raise ValidationError({"user": [TEAM_USER_INACTIVE]})
    if not selectors.user_roles(user) & set(selectors.CASEWORK_ROLES):
        raise ValidationError({"user": [TEAM_ROLE_NOT_CASEWORK]})
    old_role = _member_roles(case).get(user.pk)
    if old_role == role:
        return False
    _check_lead_kept(case, user, role)
    _grant(case, user, role)
    audit_record(
        action=AuditAction.TEAM_MEMBER_SET,
        actor=actor,
        agency_id=case.agency_id,
        target=case,
        case_id=case.pk,
        changes={"member": user.get_username(), "member_id": user.pk, "role": [old_role, role]},
    )
    return old_role is None


@transaction.atomic
def team_member_remove(*, actor: AbstractBaseUser, case: Case, user_id: int) -> None:
    """Remove a member (manage_team). The permission is checked before the member is looked
    up, so the answer reveals nothing about which user ids exist."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    _require(selectors.has_case_perm(actor, case, CasePerm.MANAGE_TEAM))
    old_role = _member_roles(case).get(user_id)
    if old_role is None:
        raise NotFound(TEAM_NOT_MEMBER)
    user = User.objects.get(pk=user_id)
    _check_lead_kept(case, user, None)
    case.user_permissions.filter(user=user).delete()
    audit_record(
        action=AuditAction.TEAM_MEMBER_REMOVED,
        actor=actor,
        agency_id=case.agency_id,
        target=case,
        case_id=case.pk,
        changes={"member": user.get_username(), "member_id": user.pk, "role": [old_role, None]},
    )


# ---------------------------------------------------------------- leads and identifiers


def lead_priority(lead: Lead) -> tuple[int, list[dict[str, Any]]]:
    """The computed score (0-100) and the factors that produced it."""
    factors = [{"factor": name, "weight": weight} for name, weight in PRIORITY_WEIGHTS.items() if getattr(lead, name)]
    return min(100, sum(f["weight"] for f in factors)), factors


def _apply_priority(lead: Lead, *, rescore: bool = True) -> None:
    """Set the effective priority. With `rescore`, the signal factors are recomputed and any
    factor this domain does not weigh itself (a bot's recency, say) is kept as it was."""
    if rescore:
        score, factors = lead_priority(lead)
        kept = [f for f in lead.priority_factors or [] if f.get("factor") not in PRIORITY_WEIGHTS]
        lead.priority_factors = factors + kept
        lead.priority_score = min(100, score + sum(int(f.get("weight", 0)) for f in kept))
    lead.priority = lead.priority_override if lead.priority_override is not None else lead.priority_score


def identifiers_normalize(raw: list[dict[str, str]]) -> list[tuple[str, str]]:
    """Normalize a list of `{kind, value}`; ValidationError lists each bad entry by index."""
    out: list[tuple[str, str]] = []
    errors: dict[str, Any] = {}
    for index, item in enumerate(raw):
        try:
            pair = (item["kind"], ident.normalize(item["kind"], item["value"]))
        except ValidationError as exc:
            errors[str(index)] = exc.messages
            continue
        if pair not in out:
            out.append(pair)
    if errors:
        raise ValidationError({"identifiers": [errors]})
    return out


def _identifiers_get_or_create(pairs: list[tuple[str, str]]) -> list[Identifier]:
    """The Identifier rows of normalized `pairs`, created if missing; found by blind index
    (the value itself is stored encrypted)."""
    Identifier.objects.bulk_create([Identifier.of(k, v) for k, v in pairs], ignore_conflicts=True)
    digests = {Identifier.index_of(k, v): (k, v) for k, v in pairs}
    found = {digests[i.value_index]: i for i in Identifier.objects.filter(value_index__in=list(digests))}
    return [found[p] for p in pairs]


@dataclass(frozen=True)
class DeconflictionContact:
    identifier_kind: str
    identifier_value: str
    agency_code: str
    agency_name: str
    contact_name: str
    contact_title: str
    contact_phone: str
    contact_email: str


def _deconflict(
    *, actor: AbstractBaseUser, identifiers: list[Identifier], requesting_case: Case | None
) -> list[DeconflictionContact]:
    """Record and answer hits for `identifiers` that sit on cases `actor` cannot see: the
    owning agency and lead investigator's contact only. Audited on both sides."""
    if not identifiers:
        return []
    links = selectors.leads_with_identifiers_outside_scope(user=actor, identifier_ids=[i.pk for i in identifiers])
    seen: set[tuple[int, uuid.UUID]] = set()
    hits: list[DeconflictionContact] = []
    requesting_agency_id = selectors.user_agency_id(actor)
    for link in links:
        case = link.lead.case
        if (link.identifier_id, case.pk) in seen:
            continue
        seen.add((link.identifier_id, case.pk))
        lead_inv = case.lead_investigator
        profile = getattr(lead_inv, "profile", None)
        hit = DeconflictionHit.objects.create(
            identifier=link.identifier,
            requested_by=actor,
            requesting_agency_id=requesting_agency_id,
            requesting_case=requesting_case,
            matched_case=case,
            matched_agency=case.agency,
        )
        identifier = link.identifier
        audit_record(
            action=AuditAction.DECONFLICTION_HIT,
            actor=actor,
            agency_id=requesting_agency_id,
            target=hit,
            case_id=requesting_case.pk if requesting_case else None,
            changes={"identifier": identifier.audit_label, "matched_agency": case.agency.code},
        )
        audit_record(
            action=AuditAction.DECONFLICTION_NOTIFIED,
            actor=actor,
            agency_id=case.agency_id,
            target=hit,
            case_id=case.pk,
            changes={
                "identifier": identifier.audit_label,
                "requesting_agency_id": requesting_agency_id,
                "requested_by": actor.get_username(),
            },
        )
        hits.append(
            DeconflictionContact(
                identifier_kind=identifier.kind,
                identifier_value=identifier.value,
                agency_code=case.agency.code,
                agency_name=case.agency.name,
                contact_name=lead_inv.get_full_name() or lead_inv.get_username(),
                contact_title=profile.title if profile else "",
                contact_phone=profile.phone if profile else "",
                contact_email=lead_inv.email,
            )
        )
    return hits


def _link_identifiers(
    *, actor: AbstractBaseUser, lead: Lead, pairs: list[tuple[str, str]]
) -> tuple[list[str], list[str], list[Identifier]]:
    """Make the lead's identifiers exactly `pairs`; returns (old, new: audit labels, never the
    values; the identifiers newly linked)."""
    wanted = _identifiers_get_or_create(pairs) if pairs else []
    current = {li.identifier_id: li for li in lead.lead_identifiers.select_related("identifier")}
    wanted_ids = {i.pk for i in wanted}
    added = [i for i in wanted if i.pk not in current]
    removed = [li for iid, li in current.items() if iid not in wanted_ids]
    LeadIdentifier.objects.bulk_create([LeadIdentifier(lead=lead, identifier=i, added_by=actor) for i in added])
    if removed:
        LeadIdentifier.objects.filter(pk__in=[li.pk for li in removed]).delete()
    old_values = sorted(li.identifier.audit_label for li in current.values())
    return old_values, sorted(i.audit_label for i in wanted), added


# Lead fields stored encrypted: their audit changes say only that they changed (the audit log
# is plaintext JSON, kept for ever), never the values.
LEAD_SEALED_FIELDS = frozenset({"display_name", "notes"})
CHANGED = "changed"


def _without_sealed_values(changes: dict[str, Any]) -> dict[str, Any]:
    return {name: CHANGED if name in LEAD_SEALED_FIELDS else change for name, change in changes.items()}


LEAD_FIELDS = [
    "display_name",
    "source",
    "status",
    "assignee_id",
    "minor_age_mentioned",
    "payment_discussed",
    "meeting_arranged",
    "repeat_contact",
    "priority_override",
    "priority",
    "first_seen_at",
    "last_seen_at",
    "notes",
]


def _check_assignee(case: Case, lead: Lead) -> None:
    if lead.first_seen_at and lead.last_seen_at and lead.last_seen_at < lead.first_seen_at:
        raise ValidationError({"last_seen_at": [LEAD_SEEN_ORDER]})
    if lead.status in (LeadStatus.ASSIGNED, LeadStatus.INVESTIGATING) and lead.assignee_id is None:
        raise ValidationError({"assignee": [LEAD_ASSIGNED_NEEDS_ASSIGNEE]})
    if lead.assignee_id is not None and not selectors.has_case_perm(lead.assignee, case, CasePerm.VIEW):
        raise ValidationError({"assignee": [LEAD_ASSIGNEE_NO_ACCESS]})


@transaction.atomic
def lead_create(
    *, actor: AbstractBaseUser, case: Case, identifiers: list[dict[str, str]] | None = None, **fields: Any
) -> tuple[Lead, list[DeconflictionContact]]:
    _require(selectors.has_case_perm(actor, case, CasePerm.CHANGE))
    if case.status == CaseStatus.CLOSED:
        raise Conflict(CASE_CLOSED)
    pairs = identifiers_normalize(identifiers or [])
    status = fields.pop("status", LeadStatus.NEW)
    lead = Lead(case=case, created_by=actor, status=status, **fields)
    now = timezone.now()
    lead.first_seen_at = lead.first_seen_at or now
    lead.last_seen_at = lead.last_seen_at or lead.first_seen_at
    _apply_priority(lead)
    _check_assignee(case, lead)
    lead.full_clean()
    lead.save(force_insert=True)
    _, added, added_objs = _link_identifiers(actor=actor, lead=lead, pairs=pairs)
    changes = {f: [None, v] for f, v in snapshot(lead, LEAD_FIELDS).items() if v not in (None, "", False)}
    changes = _without_sealed_values(changes)
    changes["identifiers"] = [[], added]
    audit_record(
        action=AuditAction.LEAD_CREATED,
        actor=actor,
        agency_id=case.agency_id,
        target=lead,
        case_id=case.pk,
        changes=changes,
    )
    hits = _deconflict(actor=actor, identifiers=added_objs, requesting_case=case)
    return lead, hits


@transaction.atomic
def lead_update(
    *, actor: AbstractBaseUser, lead: Lead, identifiers: list[dict[str, str]] | None = None, **fields: Any
) -> tuple[Lead, list[DeconflictionContact]]:
    lead = Lead.objects.select_for_update().select_related("case").get(pk=lead.pk)
    case = lead.case
    _require(selectors.has_case_perm(actor, case, CasePerm.CHANGE))
    if case.status == CaseStatus.CLOSED:
        raise Conflict(CASE_CLOSED)
    before = snapshot(lead, LEAD_FIELDS)
    new_status = fields.pop("status", None)
    for field, value in fields.items():
        setattr(lead, field, value)
    if new_status is not None and new_status != lead.status:
        if new_status not in LEAD_TRANSITIONS[lead.status]:
            raise Conflict(LEAD_STATUS_TRANSITION.format(old=lead.status, new=new_status))
        lead.status = new_status
    _apply_priority(lead, rescore=any(getattr(lead, name) != before[name] for name in PRIORITY_WEIGHTS))
    _check_assignee(case, lead)
    lead.full_clean()
    changes = diff(lead, LEAD_FIELDS, before)
    hits: list[DeconflictionContact] = []
    if identifiers is not None:
        old_values, new_values, added_objs = _link_identifiers(
            actor=actor, lead=lead, pairs=identifiers_normalize(identifiers)
        )
        if old_values != new_values:
            changes["identifiers"] = [old_values, new_values]
        hits_source = added_objs
    else:
        hits_source = []
    if not changes:
        return lead, []
    lead.save()
    action = AuditAction.LEAD_STATUS_CHANGED if set(changes) == {"status"} else AuditAction.LEAD_UPDATED
    audit_record(
        action=action,
        actor=actor,
        agency_id=case.agency_id,
        target=lead,
        case_id=case.pk,
        changes=_without_sealed_values(changes),
    )
    hits = _deconflict(actor=actor, identifiers=hits_source, requesting_case=case)
    return lead, hits


@transaction.atomic
def deconfliction_check(*, actor: AbstractBaseUser, identifiers: list[dict[str, str]]) -> list[DeconflictionContact]:
    """Check identifiers without recording them on a lead; hits are recorded and audited."""
    _require(bool(selectors.user_roles(actor) & {Role.INVESTIGATOR, Role.SUPERVISOR}))
    pairs = identifiers_normalize(identifiers)
    digests = [Identifier.index_of(kind, value) for kind, value in pairs]
    by_digest = {i.value_index: i for i in Identifier.objects.filter(value_index__in=digests)}
    existing = [by_digest[d] for d in digests if d in by_digest]
    audit_record(
        action=AuditAction.DECONFLICTION_CHECKED,
        actor=actor,
        changes={"identifiers": [ident.audit_label(k, v) for k, v in pairs]},
    )
    return _deconflict(actor=actor, identifiers=existing, requesting_case=None)


# ---------------------------------------------------------------- evidence and custody


def _check_sha256(value: str) -> str:
    value = (value or "").strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise ValidationError({"sha256": [EVIDENCE_SHA256_FORMAT]})
    return value


def _evidence_intake_checks(actor: AbstractBaseUser, case: Case, lead: Lead | None) -> None:
    _require(selectors.has_case_perm(actor, case, CasePerm.CHANGE))
    if case.status == CaseStatus.CLOSED:
        raise Conflict(CASE_CLOSED)
    if lead is not None and lead.case_id != case.pk:
        raise ValidationError({"lead": [EVIDENCE_LEAD_OTHER_CASE]})


def _evidence_save(actor: AbstractBaseUser, item: EvidenceItem, location: str) -> EvidenceItem:
    item.full_clean()
    item.save(force_insert=True)
    CustodyEvent.objects.create(
        evidence=item,
        action=CustodyAction.COLLECTED,
        actor=actor,
        to_party=actor.get_username(),
        location=location,
        occurred_at=item.collected_at,
        note="Intake",
        details={"sha256": item.sha256, "size_bytes": item.size_bytes},
    )
    audit_record(
        action=AuditAction.EVIDENCE_CREATED,
        actor=actor,
        agency_id=item.case.agency_id,
        target=item,
        case_id=item.case_id,
        changes={
            "kind": [None, item.kind],
            "sha256": [None, item.sha256],
            "size_bytes": [None, item.size_bytes],
            "external_uri": [None, item.external_uri or None],
            "lead": [None, str(item.lead_id) if item.lead_id else None],
            "original_filename": [None, item.original_filename or None],
        },
    )
    return item


def evidence_create(
    *,
    actor: AbstractBaseUser,
    case: Case,
    kind: str,
    upload: UploadedFile | None = None,
    external_uri: str = "",
    sha256: str = "",
    size_bytes: int | None = None,
    lead: Lead | None = None,
    description: str = "",
    media_type: str = "",
    collected_at: datetime | None = None,
    location: str = "",
) -> EvidenceItem:
    """Intake of one item: stored content (hashed by the upload handler while it streamed to a
    temporary file; a declared sha256 that differs is refused before anything is kept) or an
    external reference with its declared hash. Adds the `collected` custody event.

    Stored content: its media type is sniffed from its first bytes and must be in
    EVIDENCE_ALLOWED_TYPES (else UnsupportedMediaType, 415, and nothing is kept); the item
    records the sniffed type (a declared text/csv or the like refines text/plain). The
    bytes are stored under a random name; the uploader's file name is only recorded."""
    _evidence_intake_checks(actor, case, lead)
    if (upload is None) == (not external_uri):
        raise ValidationError({"non_field_errors": [EVIDENCE_CONTENT_OR_REFERENCE]})
    if collected_at is not None and collected_at > timezone.now() + CLOCK_SKEW:
        raise ValidationError({"collected_at": [EVIDENCE_COLLECTED_IN_FUTURE]})
    item = EvidenceItem(
        case=case,
        lead=lead,
        kind=kind,
        description=description,
        media_type=media_type,
        collected_at=collected_at or timezone.now(),
        collected_by=actor,
        created_by=actor,
    )
    if upload is None:
        if size_bytes is None:
            raise ValidationError({"size_bytes": ["This field is required for a reference."]})
        item.external_uri = external_uri
        item.sha256 = _check_sha256(sha256)
        item.size_bytes = size_bytes
        with transaction.atomic():
            return _evidence_save(actor, item, location)
    computed = getattr(upload, "sha256", None)
    if computed is None:
        computed = _hash_file(upload)
    if sha256 and _check_sha256(sha256) != computed:
        raise ValidationError({"sha256": [EVIDENCE_SHA256_MISMATCH.format(computed=computed)]})
    detected = _evidence_media_type(upload, declared=media_type or getattr(upload, "content_type", "") or "")
    item.sha256 = computed
    item.size_bytes = upload.size
    item.original_filename = uploads.original_filename(upload.name)
    item.media_type = detected
    storage = storages["evidence"]
    stored_name = storage.save(_evidence_storage_name(case), upload)
    item.content_name = stored_name
    try:
        with transaction.atomic():
            return _evidence_save(actor, item, location)
    except BaseException:
        storage.delete(stored_name)
        raise


def _evidence_media_type(upload: UploadedFile, *, declared: str) -> str:
    head = uploads.read_head(upload)
    detected = uploads.sniff_media_type(head, complete=upload.size is not None and upload.size <= len(head))
    if not uploads.media_type_allowed(detected):
        raise UnsupportedMediaType(detected, detail=EVIDENCE_TYPE_NOT_ALLOWED.format(detected=detected))
    declared = declared.split(";", 1)[0].strip().lower()
    if detected == "text/plain" and declared in uploads.PLAIN_TEXT_SUBTYPES and uploads.media_type_allowed(declared):
        return declared
    return detected


def _evidence_storage_name(case: Case) -> str:
    """`<agency code>/<128 random bits>`: nothing of the uploader's name reaches the storage."""
    return f"{case.agency.code}/{secrets.token_hex(16)}"


def evidence_download_name(*, item: EvidenceItem) -> str:
    """The file name a download of the item offers: its original name made safe
    (uploads.safe_filename), or `<id>.<extension of its media type>` when nothing is left."""
    extension = mimetypes.guess_extension(item.media_type or "") or ".bin"
    return uploads.safe_filename(item.original_filename, f"{item.pk}{extension}")


def _hash_file(fileobj: Any) -> str:
    digest = hashlib.sha256()
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    for chunk in iter(lambda: fileobj.read(HASH_CHUNK), b""):
        digest.update(chunk)
    if hasattr(fileobj, "seek"):
        fileobj.seek(0)
    return digest.hexdigest()


EVIDENCE_EDITABLE = ["description", "lead_id", "media_type"]


@transaction.atomic
def evidence_update(*, actor: AbstractBaseUser, item: EvidenceItem, data: dict[str, Any]) -> EvidenceItem:
    """Edit the description, lead or media type, or withdraw with a reason. The hash and
    content never change (also refused by a database trigger)."""
    item = EvidenceItem.objects.select_for_update().select_related("case").get(pk=item.pk)
    _require(selectors.has_case_perm(actor, item.case, CasePerm.CHANGE))
    if item.status == EvidenceStatus.WITHDRAWN:
        raise Conflict(EVIDENCE_WITHDRAWN)
    new_status = data.pop("status", None)
    reason = data.pop("withdrawn_reason", "")
    lead = data.get("lead")
    if lead is not None and lead.case_id != item.case_id:
        raise ValidationError({"lead": [EVIDENCE_LEAD_OTHER_CASE]})
    before = snapshot(item, EVIDENCE_EDITABLE + ["status", "withdrawn_reason"])
    for field, value in data.items():
        setattr(item, field, value)
    if new_status == EvidenceStatus.WITHDRAWN:
        if not (reason or "").strip():
            raise ValidationError({"withdrawn_reason": [EVIDENCE_WITHDRAW_REASON]})
        item.status = EvidenceStatus.WITHDRAWN
        item.withdrawn_reason = reason.strip()
        item.withdrawn_at = timezone.now()
        item.withdrawn_by = actor
    elif reason:
        raise ValidationError({"withdrawn_reason": ["Only given together with status=withdrawn."]})
    changes = diff(item, EVIDENCE_EDITABLE + ["status", "withdrawn_reason"], before)
    if not changes:
        return item
    item.full_clean()
    item.save()
    audit_record(
        action=AuditAction.EVIDENCE_WITHDRAWN if "status" in changes else AuditAction.EVIDENCE_UPDATED,
        actor=actor,
        agency_id=item.case.agency_id,
        target=item,
        case_id=item.case_id,
        changes=changes,
    )
    return item


@transaction.atomic
def custody_record(
    *,
    actor: AbstractBaseUser,
    item: EvidenceItem,
    action: str,
    occurred_at: datetime | None = None,
    from_party: str = "",
    to_party: str = "",
    location: str = "",
    note: str = "",
) -> CustodyEvent:
    _require(selectors.has_case_perm(actor, item.case, CasePerm.CHANGE))
    if action == CustodyAction.VERIFIED:
        raise ValidationError({"action": [CUSTODY_ACTION_RESERVED]})
    event = CustodyEvent(
        evidence=item,
        action=action,
        actor=actor,
        from_party=from_party,
        to_party=to_party,
        location=location,
        occurred_at=occurred_at or timezone.now(),
        note=note,
    )
    event.full_clean()
    event.save()
    audit_record(
        action=AuditAction.CUSTODY_RECORDED,
        actor=actor,
        agency_id=item.case.agency_id,
        target=event,
        case_id=item.case_id,
        changes={"evidence": str(item.pk), "action": action, "from": from_party, "to": to_party, "location": location},
    )
    return event


def evidence_content_open(*, item: EvidenceItem) -> Any:
    """An open binary file of the stored content; Conflict if nothing is stored, or if the
    stored bytes are gone (logged: that is an integrity incident)."""
    if not item.is_stored:
        raise Conflict(EVIDENCE_NOT_STORED)
    try:
        return storages["evidence"].open(item.content_name, "rb")
    except OSError as exc:
        logger.error("stored content of evidence %s cannot be read: %s", item.pk, exc.__class__.__name__)
        raise Conflict(EVIDENCE_CONTENT_MISSING, code="content_missing") from exc


def evidence_rehash(*, item: EvidenceItem) -> str:
    """SHA-256 of the stored bytes, read in chunks (memory stays flat)."""
    with storages["evidence"].open(item.content_name, "rb") as handle:
        return _hash_file(handle)


def evidence_verify(*, actor: AbstractBaseUser, item: EvidenceItem, check_perm: bool = True) -> CustodyEvent:
    """Re-hash stored content and append a `verified` custody event with the result."""
    if check_perm:
        _require(selectors.has_case_perm(actor, item.case, CasePerm.CHANGE))
    if not item.is_stored:
        raise Conflict(EVIDENCE_NOT_STORED)
    try:
        computed = evidence_rehash(item=item)
        error = ""
    except OSError as exc:
        computed, error = "", f"content unreadable: {exc.__class__.__name__}"
    match = computed == item.sha256
    with transaction.atomic():
        event = CustodyEvent.objects.create(
            evidence=item,
            action=CustodyAction.VERIFIED,
            actor=actor,
            occurred_at=timezone.now(),
            note="SHA-256 matches intake." if match else "SHA-256 MISMATCH with intake.",
            details={
                "expected": item.sha256,
                "computed": computed,
                "match": match,
                **({"error": error} if error else {}),
            },
        )
        audit_record(
            action=AuditAction.EVIDENCE_VERIFIED,
            actor=actor,
            agency_id=item.case.agency_id,
            target=item,
            case_id=item.case_id,
            changes={"match": match, "computed": computed},
        )
    return event


# ---------------------------------------------------------------- handoffs


HANDOFF_PROSECUTOR_INVALID = "The addressee must be an active prosecutor of a prosecutor's office."
HANDOFF_LEAD_OTHER_CASE = "Every lead of a handoff must belong to its case."
HANDOFF_EVIDENCE_OTHER_CASE = "Every evidence item of a handoff must belong to its case."
HANDOFF_EVIDENCE_WITHDRAWN = "Withdrawn evidence cannot be included in a handoff."
HANDOFF_INCLUDES_WITHDRAWN = "The handoff includes withdrawn evidence; remove it before sending."
HANDOFF_EMPTY = "A handoff needs at least one lead or evidence item before it is sent."
HANDOFF_NOT_DRAFT = "A handoff can only be changed while it is a draft."
HANDOFF_TRANSITION = "A handoff cannot go from {old} to {new}."
HANDOFF_SUBMIT_NOT_ALLOWED = "Only a lead of the case or a supervisor can submit a handoff for review."
HANDOFF_REVIEW_NOT_SUPERVISOR = "Only a supervisor of the case's agency can review a handoff."
HANDOFF_REVIEW_SECOND_PERSON = "A handoff must be reviewed by someone who neither drafted, edited nor submitted it."
HANDOFF_NOT_ADDRESSEE = "Only the prosecutor the handoff is addressed to can do this."
HANDOFF_NOTE_REQUIRED = "A note is required: say what must change."
HANDOFF_CHARGES_FORMAT = "Each charge is an object with a non-empty statute and a text."
HANDOFF_MAX_CHARGES = 100
HANDOFF_NUMBER_FORMAT = "H{:03d}"

HANDOFF_DECISIONS: dict[str, tuple[str, str]] = {
    # decision: (new status, audit action)
    HandoffStatus.ACCEPTED: (HandoffStatus.ACCEPTED, AuditAction.HANDOFF_ACCEPTED),
    HandoffStatus.DECLINED: (HandoffStatus.DECLINED, AuditAction.HANDOFF_DECLINED),
    HandoffStatus.RETURNED: (HandoffStatus.DRAFT, AuditAction.HANDOFF_RETURNED),
}
"""A returned handoff goes back to draft (its status is never `returned`): the prosecutor's note
stays in `decision_note` and `decided_at`, the return in the audit log."""


def _prosecutor_office(user: AbstractBaseUser) -> Agency:
    """The prosecutor's office of `user`, or a ValidationError if `user` cannot receive handoffs:
    active, holding the prosecutor role, in an agency of kind prosecutor."""
    profile = Profile.objects.select_related("agency").filter(user_id=user.pk).first()
    if (
        not user.is_active
        or profile is None
        or profile.agency.kind != AgencyKind.PROSECUTOR
        or not User.objects.filter(pk=user.pk, groups__name=Role.PROSECUTOR).exists()
    ):
        raise ValidationError({"prosecutor": [HANDOFF_PROSECUTOR_INVALID]})
    return profile.agency


def _unique(items: Any) -> list[Any]:
    seen: dict[Any, Any] = {}
    for item in items or ():
        seen.setdefault(item.pk, item)
    return list(seen.values())


def _check_items(case: Case, leads: list[Lead], evidence: list[EvidenceItem]) -> None:
    if any(lead.case_id != case.pk for lead in leads):
        raise ValidationError({"leads": [HANDOFF_LEAD_OTHER_CASE]})
    if any(item.case_id != case.pk for item in evidence):
        raise ValidationError({"evidence": [HANDOFF_EVIDENCE_OTHER_CASE]})
    if any(item.status == EvidenceStatus.WITHDRAWN for item in evidence):
        raise ValidationError({"evidence": [HANDOFF_EVIDENCE_WITHDRAWN]})


def _clean_charges(charges: Any) -> list[dict[str, str]]:
    """`[{statute, text}]` with surrounding blanks trimmed; anything else is refused."""
    if not isinstance(charges, list | tuple) or len(charges) > HANDOFF_MAX_CHARGES:
        raise ValidationError({"charges": [HANDOFF_CHARGES_FORMAT]})
    cleaned = []
    for charge in charges:
        if (
            not isinstance(charge, dict)
            or set(charge) - {"statute", "text"}
            or not isinstance(charge.get("statute"), str)
            or not charge["statute"].strip()
            or not isinstance(charge.get("text", ""), str)
        ):
            raise ValidationError({"charges": [HANDOFF_CHARGES_FORMAT]})
        cleaned.append({"statute": charge["statute"].strip(), "text": charge.get("text", "").strip()})
    return cleaned


def _item_ids(handoff: Handoff) -> tuple[list[str], list[str]]:
    """The included lead and evidence ids, as sorted strings (for audit changes)."""
    leads = sorted(str(i) for i in HandoffLead.objects.filter(handoff=handoff).values_list("lead_id", flat=True))
    evidence = sorted(
        str(i) for i in HandoffEvidence.objects.filter(handoff=handoff).values_list("evidence_id", flat=True)
    )
    return leads, evidence


def _set_items(handoff: Handoff, *, leads: list[Lead] | None, evidence: list[EvidenceItem] | None) -> None:
    """Make the included items exactly `leads` / `evidence` (None: leave that kind as it is)."""
    if leads is not None:
        wanted = {lead.pk for lead in leads}
        HandoffLead.objects.filter(handoff=handoff).exclude(lead_id__in=wanted).delete()
        present = set(HandoffLead.objects.filter(handoff=handoff).values_list("lead_id", flat=True))
        HandoffLead.objects.bulk_create(
            [HandoffLead(handoff=handoff, lead=lead) for lead in leads if lead.pk not in present]
        )
    if evidence is not None:
        wanted = {item.pk for item in evidence}
        HandoffEvidence.objects.filter(handoff=handoff).exclude(evidence_id__in=wanted).delete()
        present = set(HandoffEvidence.objects.filter(handoff=handoff).values_list("evidence_id", flat=True))
        HandoffEvidence.objects.bulk_create(
            [HandoffEvidence(handoff=handoff, evidence=item) for item in evidence if item.pk not in present]
        )


def _lock_handoff(handoff: Handoff) -> Handoff:
    return (
        Handoff.objects.select_for_update(of=("self",))
        .select_related("case", "prosecutor", "prosecutor_office")
        .get(pk=handoff.pk)
    )


def _check_transition(handoff: Handoff, allowed_from: set[str], new: str) -> None:
    if handoff.status not in allowed_from:
        raise Conflict(HANDOFF_TRANSITION.format(old=handoff.status, new=new))


def _check_sendable(handoff: Handoff) -> None:
    """What must hold for a handoff to go to review and out: the case is open, something is
    included, nothing included has been withdrawn since, and the addressee can still receive it."""
    if handoff.case.status == CaseStatus.CLOSED:
        raise Conflict(CASE_CLOSED)
    has_leads = HandoffLead.objects.filter(handoff=handoff).exists()
    if not has_leads and not HandoffEvidence.objects.filter(handoff=handoff).exists():
        raise Conflict(HANDOFF_EMPTY)
    if HandoffEvidence.objects.filter(handoff=handoff, evidence__status=EvidenceStatus.WITHDRAWN).exists():
        raise Conflict(HANDOFF_INCLUDES_WITHDRAWN)
    _prosecutor_office(handoff.prosecutor)


def _handoff_event(action: str, actor: AbstractBaseUser, handoff: Handoff, changes: dict[str, Any]) -> None:
    audit_record(
        action=action,
        actor=actor,
        agency_id=handoff.case.agency_id,
        target=handoff,
        case_id=handoff.case_id,
        changes={"number": handoff.number, **changes},
    )


def _edited_handoff(actor: AbstractBaseUser, handoff: Handoff) -> bool:
    """Whether `actor` ever changed the handoff's content (prosecutor, items, charges, narrative).
    Read from the append-only audit log, so no later edit by someone else can wash it out."""
    return AuditEvent.objects.filter(
        case_id=handoff.case_id,
        action=AuditAction.HANDOFF_UPDATED,
        target_type=Handoff._meta.label_lower,
        target_id=str(handoff.pk),
        actor_id=actor.pk,
    ).exists()


def _revoke_handoff_access(handoff: Handoff) -> list[str]:
    """Remove every prosecutor grant on `handoff`; returns the usernames that lost access."""
    grants = HandoffUserObjectPermission.objects.filter(content_object=handoff).select_related("user")
    names = sorted({grant.user.get_username() for grant in grants})
    grants.delete()
    return names


@transaction.atomic
def handoff_create(
    *,
    actor: AbstractBaseUser,
    case: Case,
    prosecutor: AbstractBaseUser,
    leads: list[Lead] | None = None,
    evidence: list[EvidenceItem] | None = None,
    charges: list[dict[str, str]] | None = None,
    narrative: str = "",
) -> Handoff:
    """Draft a handoff (change_case on the case). The case row is locked while the next
    `H<NNN>` number is taken, so concurrent drafts on one case never share a number."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    _require(selectors.has_case_perm(actor, case, CasePerm.CHANGE))
    if case.status == CaseStatus.CLOSED:
        raise Conflict(CASE_CLOSED)
    office = _prosecutor_office(prosecutor)
    leads, evidence = _unique(leads), _unique(evidence)
    _check_items(case, leads, evidence)
    charges = _clean_charges(charges or [])
    handoff = Handoff(
        case=case,
        number=HANDOFF_NUMBER_FORMAT.format(Handoff.objects.filter(case=case).count() + 1),
        prosecutor=prosecutor,
        prosecutor_office=office,
        charges=charges,
        narrative=narrative,
        created_by=actor,
    )
    handoff.full_clean()
    handoff.save(force_insert=True)
    _set_items(handoff, leads=leads, evidence=evidence)
    lead_ids, evidence_ids = _item_ids(handoff)
    _handoff_event(
        AuditAction.HANDOFF_CREATED,
        actor,
        handoff,
        {
            "status": [None, handoff.status],
            "prosecutor": [None, prosecutor.get_username()],
            "leads": [[], lead_ids],
            "evidence": [[], evidence_ids],
            "charges": [[], charges],
            "narrative": [None, narrative],
        },
    )
    return handoff


@transaction.atomic
def handoff_update(*, actor: AbstractBaseUser, handoff: Handoff, data: dict[str, Any]) -> Handoff:
    """Edit a draft (change_case): prosecutor, leads, evidence, charges, narrative. Re-addressing
    a handoff that was sent before takes the former addressee's access away at once."""
    handoff = _lock_handoff(handoff)
    case = handoff.case
    _require(selectors.has_case_perm(actor, case, CasePerm.CHANGE))
    if handoff.status != HandoffStatus.DRAFT:
        raise Conflict(HANDOFF_NOT_DRAFT)
    if case.status == CaseStatus.CLOSED:
        raise Conflict(CASE_CLOSED)
    data = dict(data)
    changes: dict[str, Any] = {}
    prosecutor = data.pop("prosecutor", None)
    if prosecutor is not None and prosecutor.pk != handoff.prosecutor_id:
        office = _prosecutor_office(prosecutor)
        changes["prosecutor"] = [handoff.prosecutor.get_username(), prosecutor.get_username()]
        revoked = _revoke_handoff_access(handoff)
        if revoked:
            changes["access_revoked"] = revoked
        handoff.prosecutor, handoff.prosecutor_office = prosecutor, office
    leads = _unique(data.pop("leads")) if "leads" in data else None
    evidence = _unique(data.pop("evidence")) if "evidence" in data else None
    _check_items(case, leads or [], evidence or [])
    if "charges" in data:
        data["charges"] = _clean_charges(data["charges"])
    before = snapshot(handoff, ["charges", "narrative"])
    for field, value in data.items():
        setattr(handoff, field, value)
    changes.update(diff(handoff, ["charges", "narrative"], before))
    old_leads, old_evidence = _item_ids(handoff)
    _set_items(handoff, leads=leads, evidence=evidence)
    new_leads, new_evidence = _item_ids(handoff)
    if new_leads != old_leads:
        changes["leads"] = [old_leads, new_leads]
    if new_evidence != old_evidence:
        changes["evidence"] = [old_evidence, new_evidence]
    if not changes:
        return handoff
    handoff.full_clean()
    handoff.save()
    _handoff_event(AuditAction.HANDOFF_UPDATED, actor, handoff, changes)
    return handoff


@transaction.atomic
def handoff_submit(*, actor: AbstractBaseUser, handoff: Handoff, note: str = "") -> Handoff:
    """draft -> pending_review, by a lead of the case or a supervisor (manage_team)."""
    handoff = _lock_handoff(handoff)
    _require(selectors.has_case_perm(actor, handoff.case, CasePerm.MANAGE_TEAM), HANDOFF_SUBMIT_NOT_ALLOWED)
    _check_transition(handoff, {HandoffStatus.DRAFT}, HandoffStatus.PENDING_REVIEW)
    _check_sendable(handoff)
    handoff.status = HandoffStatus.PENDING_REVIEW
    handoff.submitted_by = actor
    handoff.submitted_at = timezone.now()
    handoff.save()
    _handoff_event(
        AuditAction.HANDOFF_SUBMITTED,
        actor,
        handoff,
        {"status": [HandoffStatus.DRAFT, HandoffStatus.PENDING_REVIEW], "note": note.strip()},
    )
    return handoff


@transaction.atomic
def handoff_review(*, actor: AbstractBaseUser, handoff: Handoff, approve: bool, note: str = "") -> Handoff:
    """pending_review -> sent (approve) or back to draft (with a note saying why).

    Two people: the reviewer is a supervisor of the case's agency holding manage_team on the
    case, and is neither the handoff's drafter nor the person who submitted it, whatever the
    order of calls. Approval grants the addressed prosecutor `view_handoff`."""
    handoff = _lock_handoff(handoff)
    case = handoff.case
    _require(
        Role.SUPERVISOR in selectors.user_roles(actor)
        and selectors.user_agency_id(actor) == case.agency_id
        and selectors.has_case_perm(actor, case, CasePerm.MANAGE_TEAM),
        HANDOFF_REVIEW_NOT_SUPERVISOR,
    )
    _require(
        actor.pk not in (handoff.created_by_id, handoff.submitted_by_id) and not _edited_handoff(actor, handoff),
        HANDOFF_REVIEW_SECOND_PERSON,
    )
    new = HandoffStatus.SENT if approve else HandoffStatus.DRAFT
    _check_transition(handoff, {HandoffStatus.PENDING_REVIEW}, new)
    note = note.strip()
    now = timezone.now()
    handoff.reviewed_by, handoff.reviewed_at, handoff.review_note = actor, now, note
    changes: dict[str, Any] = {"status": [HandoffStatus.PENDING_REVIEW, new], "note": note}
    if approve:
        _check_sendable(handoff)
        handoff.status, handoff.sent_at, handoff.acknowledged_at = HandoffStatus.SENT, now, None
        assign_perm(HandoffPerm.VIEW.value, handoff.prosecutor, handoff)
        changes["prosecutor"] = handoff.prosecutor.get_username()
        changes["access_granted"] = handoff.prosecutor.get_username()
        action = AuditAction.HANDOFF_APPROVED
    else:
        if not note:
            raise ValidationError({"note": [HANDOFF_NOTE_REQUIRED]})
        handoff.status = HandoffStatus.DRAFT
        action = AuditAction.HANDOFF_REJECTED
    handoff.save()
    _handoff_event(action, actor, handoff, changes)
    return handoff


def _require_addressee(actor: AbstractBaseUser, handoff: Handoff) -> None:
    _require(
        actor.pk == handoff.prosecutor_id and selectors.handoff_ids_addressed_to(actor).filter(id=handoff.pk).exists(),
        HANDOFF_NOT_ADDRESSEE,
    )


@transaction.atomic
def handoff_acknowledge(*, actor: AbstractBaseUser, handoff: Handoff, note: str = "") -> Handoff:
    """sent -> acknowledged, by the addressed prosecutor."""
    handoff = _lock_handoff(handoff)
    _require_addressee(actor, handoff)
    _check_transition(handoff, {HandoffStatus.SENT}, HandoffStatus.ACKNOWLEDGED)
    handoff.status = HandoffStatus.ACKNOWLEDGED
    handoff.acknowledged_at = timezone.now()
    handoff.save()
    _handoff_event(
        AuditAction.HANDOFF_ACKNOWLEDGED,
        actor,
        handoff,
        {"status": [HandoffStatus.SENT, HandoffStatus.ACKNOWLEDGED], "note": note.strip()},
    )
    return handoff


@transaction.atomic
def handoff_decide(*, actor: AbstractBaseUser, handoff: Handoff, decision: str, note: str = "") -> Handoff:
    """The addressed prosecutor's decision, from acknowledged (or straight from sent): accepted,
    declined (with a note) or returned (with a note; the handoff goes back to draft, and the
    prosecutor keeps the record but sees no items until it is sent again)."""
    if decision not in HANDOFF_DECISIONS:
        raise ValidationError({"decision": [f"Expected one of: {', '.join(HANDOFF_DECISIONS)}."]})
    handoff = _lock_handoff(handoff)
    _require_addressee(actor, handoff)
    _check_transition(handoff, {HandoffStatus.SENT, HandoffStatus.ACKNOWLEDGED}, decision)
    note = note.strip()
    if decision != HandoffStatus.ACCEPTED and not note:
        raise ValidationError({"note": [HANDOFF_NOTE_REQUIRED]})
    new, action = HANDOFF_DECISIONS[decision]
    old = handoff.status
    handoff.status, handoff.decided_at, handoff.decision_note = new, timezone.now(), note
    handoff.save()
    _handoff_event(action, actor, handoff, {"status": [old, new], "decision": decision, "note": note})
    return handoff


# ---------------------------------------------------------------- export packets


PACKET_HANDOFF_NOT_SENT = "Packets are built only from a handoff that has been sent."
PACKET_NOT_ALLOWED = "Only the addressed prosecutor and the case's leads and supervisors can request packets."
PACKET_NOT_READY = "The packet is not ready yet; poll its status_url."
PACKET_FILE_MISSING = "The packet file cannot be read; request a new packet."
PACKET_BUILD_ERROR = "The packet could not be built; request a new packet or report it."
PACKET_GAVE_UP = "The build was interrupted too many times; request a new packet."
PACKET_MAX_ATTEMPTS = 3
PACKET_BUILD_TASK = "cases.tasks.build_export_packet"


@transaction.atomic
def packet_request(*, actor: AbstractBaseUser, handoff: Handoff) -> ExportPacket:
    """Queue one packet build for a handoff that stands sent: the addressed prosecutor or a lead
    or supervisor of the case may ask. The build task is written to the outbox in this
    transaction and handed to the broker once it commits."""
    handoff = Handoff.objects.select_related("case").get(pk=handoff.pk)
    is_addressee = (
        actor.pk == handoff.prosecutor_id and selectors.handoff_ids_addressed_to(actor).filter(id=handoff.pk).exists()
    )
    _require(is_addressee or selectors.has_case_perm(actor, handoff.case, CasePerm.MANAGE_TEAM), PACKET_NOT_ALLOWED)
    if handoff.status not in selectors.HANDOFF_SENT_STATUSES:
        raise Conflict(PACKET_HANDOFF_NOT_SENT)
    packet = ExportPacket.objects.create(handoff=handoff, requested_by=actor)
    audit_record(
        action=AuditAction.PACKET_REQUESTED,
        actor=actor,
        agency_id=handoff.case.agency_id,
        target=packet,
        case_id=handoff.case_id,
        changes={"handoff": str(handoff.pk), "number": handoff.number, "status": [None, packet.status]},
    )
    outbox_enqueue(task=PACKET_BUILD_TASK, args=[str(packet.pk)], dedup_key=f"packet_build:{packet.pk}")
    return packet


def _packet_event(action: str, packet: ExportPacket, changes: dict[str, Any]) -> None:
    audit_record(
        action=action,
        actor=system_user(),
        agency_id=packet.handoff.case.agency_id,
        target=packet,
        case_id=packet.handoff.case_id,
        changes={"handoff": str(packet.handoff_id), "number": packet.handoff.number, **changes},
    )


def _packet_fail(packet_id: uuid.UUID, error: str, reason: str) -> ExportPacket:
    with transaction.atomic():
        packet = ExportPacket.objects.select_for_update(of=("self",)).select_related("handoff__case").get(pk=packet_id)
        if packet.status == PacketStatus.READY:
            return packet
        old = packet.status
        packet.status, packet.error, packet.finished_at = PacketStatus.FAILED, error, timezone.now()
        packet.save(update_fields=["status", "error", "finished_at"])
        _packet_event(
            AuditAction.PACKET_FAILED,
            packet,
            {"status": [old, PacketStatus.FAILED], "error": error, "reason": reason, "attempt": packet.attempts},
        )
    return packet


def packet_build(*, packet_id: uuid.UUID | str) -> ExportPacket:
    """Build one requested packet (run by the Celery task, as the system account).

    Idempotent: a ready or failed packet is left as it is; a packet left `building` by a worker
    that died is rebuilt from the start, up to PACKET_MAX_ATTEMPTS starts. Progress and stage
    are saved as the builder reports them (those two fields only, each in its own autocommit,
    so GET /api/packets/{id}/ shows them at once). A native that fails its re-hash
    (PacketIntegrityError) or any other error marks the packet failed, never ready."""
    from audit.services import checkpoint_create
    from cases import packets

    with transaction.atomic():
        packet = ExportPacket.objects.select_for_update(of=("self",)).select_related("handoff__case").get(pk=packet_id)
        if packet.status in (PacketStatus.READY, PacketStatus.FAILED):
            return packet
        if packet.attempts >= PACKET_MAX_ATTEMPTS:
            gave_up = True
        else:
            gave_up = False
            old = packet.status
            packet.status, packet.attempts = PacketStatus.BUILDING, packet.attempts + 1
            packet.started_at, packet.finished_at = timezone.now(), None
            packet.progress, packet.stage, packet.error = 0, "starting", ""
            packet.save(update_fields=["status", "attempts", "started_at", "finished_at", "progress", "stage", "error"])
            _packet_event(
                AuditAction.PACKET_BUILD_STARTED,
                packet,
                {"status": [old, PacketStatus.BUILDING], "attempt": packet.attempts},
            )
    if gave_up:
        return _packet_fail(packet.pk, PACKET_GAVE_UP, "attempts_exhausted")
    if packet.checkpoint_size is None:
        # Pinned once: a rebuild after a worker died gives the same bytes (PACKET.md).
        packet.checkpoint_size = checkpoint_create(actor=None).checkpoint.tree_size
        ExportPacket.objects.filter(pk=packet.pk, checkpoint_size__isnull=True).update(
            checkpoint_size=packet.checkpoint_size
        )

    def on_progress(percent: int, stage: str) -> None:
        packet.progress = max(0, min(100, int(percent)))
        packet.stage = str(stage)[:64]
        packet.save(update_fields=["progress", "stage"])

    try:
        built = packets.build_packet(packet=packet, on_progress=on_progress, checkpoint_size=packet.checkpoint_size)
    except packets.PacketIntegrityError as exc:
        logger.error("packet %s failed an integrity check: %s", packet.pk, exc)
        return _packet_fail(packet.pk, str(exc) or PACKET_BUILD_ERROR, "integrity")
    except Exception as exc:
        logger.exception("packet %s could not be built", packet.pk)
        return _packet_fail(packet.pk, PACKET_BUILD_ERROR, exc.__class__.__name__)

    with transaction.atomic():
        packet = ExportPacket.objects.select_for_update(of=("self",)).select_related("handoff__case").get(pk=packet_id)
        if packet.status != PacketStatus.BUILDING:
            logger.warning("packet %s became %s while this build ran; keeping that", packet.pk, packet.status)
            return packet
        packet.status, packet.progress, packet.stage = PacketStatus.READY, 100, "ready"
        packet.file_name, packet.sha256, packet.size_bytes = built.file_name, built.sha256, built.size_bytes
        packet.manifest_sha256, packet.checkpoint_size = built.manifest_sha256, built.checkpoint_size
        packet.signature, packet.finished_at = built.signature, timezone.now()
        packet.save()
        _packet_event(
            AuditAction.PACKET_BUILT,
            packet,
            {
                "status": [PacketStatus.BUILDING, PacketStatus.READY],
                "sha256": packet.sha256,
                "size_bytes": packet.size_bytes,
                "manifest_sha256": packet.manifest_sha256,
                "checkpoint_size": packet.checkpoint_size,
                "file_name": packet.file_name,
                "attempt": packet.attempts,
            },
        )
    return packet


def packet_open(*, actor: AbstractBaseUser, packet: ExportPacket) -> Any:
    """An open binary file of a ready packet; the download is audited. Conflict while the packet
    is not ready, or if its file is gone (logged: an integrity incident)."""
    if packet.status != PacketStatus.READY:
        raise Conflict(PACKET_NOT_READY)
    try:
        handle = storages["packets"].open(packet.file_name, "rb")
    except OSError as exc:
        logger.error("packet %s file cannot be read: %s", packet.pk, exc.__class__.__name__)
        raise Conflict(PACKET_FILE_MISSING, code="content_missing") from exc
    audit_record(
        action=AuditAction.PACKET_DOWNLOADED,
        actor=actor,
        agency_id=packet.handoff.case.agency_id,
        target=packet,
        case_id=packet.handoff.case_id,
        changes={
            "handoff": str(packet.handoff_id),
            "number": packet.handoff.number,
            "sha256": packet.sha256,
            "size_bytes": packet.size_bytes,
        },
    )
    return handle


# ---------------------------------------------------------------- keys of the data at rest


def field_keys_rotate(*, reindex: bool = False, batch: int = 1000) -> dict[str, Any]:
    """Re-encrypt every encrypted column under the first key of FIELD_ENCRYPTION_KEYS (values
    already under it are left alone) and, with `reindex`, recompute the identifiers' blind
    indexes under the current BLIND_INDEX_KEY. One transaction per `batch` rows, so a large
    table never holds locks for long and an interrupted run resumes where it stopped; one audit
    event at the end with the counts per column. A value no key of the ring opens stops the run
    with crypto.DecryptionError (nothing of its batch is changed)."""
    resealed: dict[str, int] = {}
    for model, field in encrypted_columns():
        table = model._meta.db_table
        resealed[f"{table}.{field.column}"] = reseal_column(
            table,
            model._meta.pk.column,
            field.column,
            append_only=issubclass(model, AppendOnlyModel),
            batch=batch,
        )
    changes: dict[str, Any] = {"key": crypto.ring().current, "resealed": resealed}
    if reindex:
        changes["reindexed"] = {"cases_identifier.value_index": ident.identifiers_reindex(batch=batch)}
    audit_record(
        action=AuditAction.FIELD_KEYS_ROTATED, actor=None, actor_name="system:rotate_field_keys", changes=changes
    )
    return changes
