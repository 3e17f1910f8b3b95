"""Scoped reads. Every API queryset starts here; children (leads, evidence, custody) are
scoped through their case with one subquery, never per-row permission checks.

A global (model-level) permission never widens scope: only guardian object permissions on
the case, held directly or through a group, put a case in a user's scope.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.http import Http404

from cases import identifiers as ident
from cases.models import (
    Case,
    CaseGroupObjectPermission,
    CaseUserObjectPermission,
    CustodyEvent,
    EvidenceItem,
    Identifier,
    Lead,
    LeadIdentifier,
)
from cases.permissions import CasePerm, role_for_perms

User = get_user_model()


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


def lead_list(*, user: AbstractBaseUser) -> QuerySet[Lead]:
    return (
        Lead.objects.filter(case_id__in=case_ids_for(user))
        .select_related("case", "case__agency", "assignee")
        .prefetch_related("identifiers")
    )


def lead_get(*, user: AbstractBaseUser, lead_id: uuid.UUID | str) -> Lead:
    return _get_or_404(lead_list(user=user), lead_id)


def evidence_list(*, user: AbstractBaseUser) -> QuerySet[EvidenceItem]:
    return EvidenceItem.objects.filter(case_id__in=case_ids_for(user)).select_related(
        "case", "collected_by", "created_by", "withdrawn_by"
    )


def evidence_get(*, user: AbstractBaseUser, evidence_id: uuid.UUID | str) -> EvidenceItem:
    return _get_or_404(evidence_list(user=user), evidence_id)


def custody_list(*, evidence: EvidenceItem) -> QuerySet[CustodyEvent]:
    return CustodyEvent.objects.filter(evidence=evidence).select_related("actor")


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
