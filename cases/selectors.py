"""Scoped reads. Every API queryset starts here; children (leads, evidence, custody) are
scoped through their case with one subquery, never per-row permission checks.

A global (model-level) permission never widens scope: only guardian object permissions on
the case, held directly or through a group, put a case in a user's scope.

Prosecutors hold no permission on cases. A prosecutor holds `view_handoff` on each handoff a
supervisor approved for them; through those handoffs, while they stand sent (or later), they
see the leads and evidence the handoff currently includes, their custody, and the packets
built since it was last sent. The case itself stays out of their scope.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from cases import identifiers as ident
from cases.models import (
    AgencyKind,
    Case,
    CaseGroupObjectPermission,
    CaseUserObjectPermission,
    CustodyEvent,
    EvidenceItem,
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffLead,
    HandoffStatus,
    HandoffUserObjectPermission,
    Identifier,
    Lead,
    LeadIdentifier,
    Role,
)
from cases.permissions import CasePerm, HandoffPerm, role_for_perms

User = get_user_model()

HANDOFF_SENT_STATUSES: frozenset[str] = frozenset(
    {HandoffStatus.SENT, HandoffStatus.ACKNOWLEDGED, HandoffStatus.ACCEPTED, HandoffStatus.DECLINED}
)
"""A handoff in one of these has been approved and stands sent: its addressee sees its items
and may have packets built. A returned handoff is back in draft and shows no items until re-sent."""


def user_roles(user: AbstractBaseUser) -> frozenset[str]:
    """Role names (group names) of `user`, cached on the instance for the request."""
    if not user or not user.is_authenticated:
        return frozenset()
    cached = getattr(user, "_caseapi_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._caseapi_roles = cached
    return cached


def user_agency_id(user: AbstractBaseUser) -> int | None:
    profile = getattr(user, "profile", None) if user and user.is_authenticated else None
    return profile.agency_id if profile is not None else None


def case_ids_for(user: AbstractBaseUser, perm: CasePerm = CasePerm.VIEW) -> QuerySet:
    """A subquery of the ids of cases on which `user` holds `perm` as an object permission."""
    if not user or not user.is_authenticated or not user.is_active:
        return Case.objects.none().values("id")
    perm_filter = {"permission__codename": perm, "permission__content_type__app_label": "cases"}
    direct = CaseUserObjectPermission.objects.filter(user_id=user.pk, **perm_filter).values("content_object_id")
    via_group = CaseGroupObjectPermission.objects.filter(
        group__in=user.groups.all().values("id"), **perm_filter
    ).values("content_object_id")
    return Case.objects.filter(Q(id__in=direct) | Q(id__in=via_group)).values("id")


def case_perms(user: AbstractBaseUser, case: Case) -> frozenset[str]:
    """Codenames `user` holds on `case`, direct or through groups: one query, cached per case."""
    cache = getattr(user, "_caseapi_case_perms", None)
    if cache is None:
        cache = {}
        user._caseapi_case_perms = cache
    if case.pk not in cache:
        direct = CaseUserObjectPermission.objects.filter(user_id=user.pk, content_object_id=case.pk).values_list(
            "permission__codename", flat=True
        )
        via_group = CaseGroupObjectPermission.objects.filter(
            group__in=user.groups.all().values("id"), content_object_id=case.pk
        ).values_list("permission__codename", flat=True)
        cache[case.pk] = frozenset(direct.union(via_group))
    return cache[case.pk]


def has_case_perm(user: AbstractBaseUser, case: Case, perm: CasePerm) -> bool:
    return perm in case_perms(user, case)


def _get_or_404(qs: QuerySet, pk: Any) -> Any:
    """The object with `pk` in `qs`, or Http404: out of scope and nonexistent look the same."""
    try:
        return qs.get(pk=pk)
    except (qs.model.DoesNotExist, ValueError, TypeError, DjangoValidationError) as exc:
        raise Http404 from exc


def case_list(*, user: AbstractBaseUser) -> QuerySet[Case]:
    return Case.objects.filter(id__in=case_ids_for(user)).select_related(
        "agency", "lead_investigator", "lead_investigator__profile", "parent"
    )


def case_get(*, user: AbstractBaseUser, case_id: uuid.UUID | str) -> Case:
    return _get_or_404(case_list(user=user), case_id)


def case_team(*, case: Case) -> list[dict[str, Any]]:
    """Members holding object permissions directly on `case`, with their strongest role."""
    rows = (
        CaseUserObjectPermission.objects.filter(content_object_id=case.pk)
        .select_related("user", "user__profile__agency")
        .values_list("user_id", "permission__codename")
    )
    perms: dict[int, set[str]] = {}
    for user_id, codename in rows:
        perms.setdefault(user_id, set()).add(codename)
    users = User.objects.filter(pk__in=perms).select_related("profile__agency").order_by("username")
    members = []
    for user in users:
        role = role_for_perms(perms[user.pk])
        if role is None:
            continue
        members.append({"user": user, "role": role})
    return members


def handoff_ids_addressed_to(user: AbstractBaseUser) -> QuerySet:
    """A subquery of the ids of handoffs on which `user` holds `view_handoff` and which are still
    addressed to them (a handoff re-addressed in draft drops out even before its grant is gone)."""
    if not user or not user.is_authenticated or not user.is_active:
        return Handoff.objects.none().values("id")
    grants = HandoffUserObjectPermission.objects.filter(
        user_id=user.pk, permission__codename=HandoffPerm.VIEW, permission__content_type__app_label="cases"
    ).values("content_object_id")
    return Handoff.objects.filter(id__in=grants, prosecutor_id=user.pk).values("id")


def sent_handoff_ids_addressed_to(user: AbstractBaseUser) -> QuerySet:
    """As `handoff_ids_addressed_to`, limited to handoffs that stand sent (HANDOFF_SENT_STATUSES):
    the ones whose items and packets the prosecutor may read."""
    return Handoff.objects.filter(id__in=handoff_ids_addressed_to(user), status__in=HANDOFF_SENT_STATUSES).values("id")


def _handed_off(through: type[HandoffLead] | type[HandoffEvidence], column: str, user: AbstractBaseUser) -> Q:
    """Rows included in a handoff that stands sent to `user`: one nested subquery, no query of
    its own; it matches nothing for anyone who holds no handoff grant."""
    included = through.objects.filter(handoff_id__in=sent_handoff_ids_addressed_to(user)).values(column)
    return Q(id__in=included)


def lead_list(*, user: AbstractBaseUser) -> QuerySet[Lead]:
    """Leads of cases in scope, plus (for a prosecutor) the leads of handoffs sent to them."""
    return (
        Lead.objects.filter(Q(case_id__in=case_ids_for(user)) | _handed_off(HandoffLead, "lead_id", user))
        .select_related("case", "case__agency", "assignee")
        .prefetch_related("identifiers")
    )


def lead_get(*, user: AbstractBaseUser, lead_id: uuid.UUID | str) -> Lead:
    return _get_or_404(lead_list(user=user), lead_id)


def evidence_list(*, user: AbstractBaseUser) -> QuerySet[EvidenceItem]:
    """Evidence of cases in scope, plus (for a prosecutor) the items of handoffs sent to them;
    custody and content are read through an item of this list."""
    return EvidenceItem.objects.filter(
        Q(case_id__in=case_ids_for(user)) | _handed_off(HandoffEvidence, "evidence_id", user)
    ).select_related("case", "collected_by", "created_by", "withdrawn_by")


def evidence_get(*, user: AbstractBaseUser, evidence_id: uuid.UUID | str) -> EvidenceItem:
    return _get_or_404(evidence_list(user=user), evidence_id)


def custody_list(*, evidence: EvidenceItem) -> QuerySet[CustodyEvent]:
    return CustodyEvent.objects.filter(evidence=evidence).select_related("actor")


def handoff_list(*, user: AbstractBaseUser) -> QuerySet[Handoff]:
    """Handoffs of cases in scope, plus those addressed to `user` as a prosecutor (in any status
    since first sent). `in_case_scope` says whether the case itself is in scope: the serializer
    shows a prosecutor-only reader no internal review note, and no items unless the handoff
    stands sent. Item ids come in two prefetch queries, whatever the page size."""
    scope = case_ids_for(user)
    return (
        Handoff.objects.filter(Q(case_id__in=scope) | Q(id__in=handoff_ids_addressed_to(user)))
        .annotate(in_case_scope=Exists(scope.filter(id=OuterRef("case_id"))))
        .select_related(
            "case",
            "prosecutor",
            "prosecutor_office",
            "created_by",
            "submitted_by",
            "reviewed_by",
        )
        .prefetch_related(
            Prefetch("handoff_leads", queryset=HandoffLead.objects.order_by("id").only("id", "handoff_id", "lead_id")),
            Prefetch(
                "handoff_evidence",
                queryset=HandoffEvidence.objects.order_by("id").only("id", "handoff_id", "evidence_id"),
            ),
        )
    )


def handoff_get(*, user: AbstractBaseUser, handoff_id: uuid.UUID | str) -> Handoff:
    return _get_or_404(handoff_list(user=user), handoff_id)


def packet_list(*, user: AbstractBaseUser) -> QuerySet[ExportPacket]:
    """Packets for the case's leads and supervisors (manage_team on the case), and for the
    addressed prosecutor those of a handoff standing sent that were requested since it was
    last sent (a packet built before a return may hold items since removed)."""
    staff = Q(handoff__case_id__in=case_ids_for(user, CasePerm.MANAGE_TEAM))
    addressee = Q(handoff_id__in=sent_handoff_ids_addressed_to(user), created_at__gte=F("handoff__sent_at"))
    return ExportPacket.objects.filter(staff | addressee).select_related("handoff", "handoff__case", "requested_by")


def packet_get(*, user: AbstractBaseUser, packet_id: uuid.UUID | str) -> ExportPacket:
    return _get_or_404(packet_list(user=user), packet_id)


def prosecutor_directory() -> QuerySet:
    """Active prosecutors of prosecutor's offices: who a handoff can be addressed to."""
    return (
        User.objects.filter(is_active=True, groups__name=Role.PROSECUTOR, profile__agency__kind=AgencyKind.PROSECUTOR)
        .select_related("profile", "profile__agency")
        .prefetch_related("groups")
        .order_by("profile__agency__code", "username")
    )


def agency_people(*, user: AbstractBaseUser) -> QuerySet:
    """Active people of the caller's agency (for assigning and staffing)."""
    agency_id = user_agency_id(user)
    if agency_id is None:
        return User.objects.none()
    return (
        User.objects.filter(profile__agency_id=agency_id, is_active=True)
        .select_related("profile", "profile__agency")
        .prefetch_related("groups")
        .order_by("username")
    )


def identifier_matches(raw: str) -> QuerySet[Identifier]:
    """Identifiers a free-typed term could mean (any phone format, any email case, @handle)."""
    candidates = ident.search_candidates(raw)
    if not candidates:
        return Identifier.objects.none()
    query = Q()
    for kind, value in candidates:
        query |= Q(kind=kind, value=value)
    return Identifier.objects.filter(query)


def leads_with_identifiers_outside_scope(
    *, user: AbstractBaseUser, identifier_ids: list[int]
) -> QuerySet[LeadIdentifier]:
    """Links of `identifier_ids` to leads on cases `user` cannot view (deconfliction)."""
    return (
        LeadIdentifier.objects.filter(identifier_id__in=identifier_ids)
        .exclude(lead__case_id__in=case_ids_for(user))
        .select_related(
            "identifier",
            "lead__case__agency",
            "lead__case__lead_investigator__profile",
        )
        .order_by("identifier_id", "lead__case_id")
    )
