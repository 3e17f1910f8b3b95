"""Query filters for the list endpoints; every filter narrows an already-scoped queryset."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from caseapi.filters import FilterSet, IdFilter, IntegerFilter
from cases import selectors
from cases.models import (
    CaseKind,
    CasePriority,
    CaseStatus,
    EvidenceKind,
    EvidenceStatus,
    HandoffEvidence,
    HandoffLead,
    HandoffStatus,
    IdentifierKind,
    LeadSource,
    LeadStatus,
)


class CaseFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=CaseStatus.choices)
    kind = django_filters.ChoiceFilter(choices=CaseKind.choices)
    priority = django_filters.ChoiceFilter(choices=CasePriority.choices)
    q = django_filters.CharFilter(method="search", max_length=200, help_text="Matches number or title.")

    def search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return qs
        return qs.filter(Q(number__iexact=value) | Q(title__icontains=value))


class LeadFilter(FilterSet):
    case = django_filters.UUIDFilter(field_name="case_id")
    status = django_filters.ChoiceFilter(choices=LeadStatus.choices)
    source = django_filters.ChoiceFilter(choices=LeadSource.choices)
    assignee = IdFilter(field_name="assignee_id")
    min_priority = IntegerFilter(field_name="priority", lookup_expr="gte", min_value=0, max_value=100)
    identifier = django_filters.CharFilter(
        method="by_identifier",
        max_length=254,
        help_text=(
            "Leads carrying this identifier, typed in any form a person types it, matched on its "
            "normalized value. Without `identifier_kind` the kind is guessed: a valid phone number "
            "in any format (`(202) 555-0143`, `202.555.0143`, `+1 202 555 0143`; national numbers "
            "are read in the server's default region) is a phone; otherwise a value with an @ "
            "that is a valid email address (`Foo@Example.COM `) is an email, in any case; "
            "otherwise it is a handle or a payment handle (`@Night_Owl`, `$night_owl`: the "
            "leading @ or $ and the case are ignored). A value that is none of these matches no lead."
        ),
    )
    identifier_kind = django_filters.ChoiceFilter(
        choices=IdentifierKind.choices,
        method="by_identifier_kind",
        help_text="With `identifier`: match it as this kind only, instead of guessing. Ignored without it.",
    )

    handoff = django_filters.UUIDFilter(method="by_handoff", help_text="Leads included in this handoff.")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        """A search over a user's whole lead list (selectors.lead_list, as the lead list view
        gives it) starts instead from the leads carrying the identifier, scoped lead by lead
        (selectors.lead_search): the same rows, without comparing each found lead with every
        grant of the user's. The other filters then narrow it as they narrow the list. Over any
        other queryset the search is a filter like the others (by_identifier)."""
        term = self.form.cleaned_data.get("identifier")
        user = getattr(self.request, "user", None)
        self.searched = bool(term) and user is not None and selectors.is_lead_list_of(self.queryset, user)
        if self.searched:
            kind = self.form.cleaned_data.get("identifier_kind") or None
            queryset = selectors.lead_search(user=user, term=term, kind=kind)
        return super().filter_queryset(queryset)

    def by_identifier(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if getattr(self, "searched", False):
            return qs  # the search was the starting point (filter_queryset)
        kind = self.form.cleaned_data.get("identifier_kind") or None
        return qs.filter(id__in=selectors.identifier_lead_ids(value, kind))

    def by_identifier_kind(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs  # read by by_identifier

    @extend_schema_field(OpenApiTypes.UUID)
    def by_handoff(self, qs: QuerySet, name: str, value: Any) -> QuerySet:
        return qs.filter(id__in=HandoffLead.objects.filter(handoff_id=value).values("lead_id"))


class EvidenceFilter(FilterSet):
    case = django_filters.UUIDFilter(field_name="case_id")
    lead = django_filters.UUIDFilter(field_name="lead_id")
    kind = django_filters.ChoiceFilter(choices=EvidenceKind.choices)
    status = django_filters.ChoiceFilter(choices=EvidenceStatus.choices)
    sha256 = django_filters.CharFilter(field_name="sha256", lookup_expr="exact", max_length=64)
    handoff = django_filters.UUIDFilter(method="by_handoff", help_text="Evidence included in this handoff.")

    @extend_schema_field(OpenApiTypes.UUID)
    def by_handoff(self, qs: QuerySet, name: str, value: Any) -> QuerySet:
        return qs.filter(id__in=HandoffEvidence.objects.filter(handoff_id=value).values("evidence_id"))


class HandoffFilter(FilterSet):
    case = django_filters.UUIDFilter(field_name="case_id")
    status = django_filters.ChoiceFilter(choices=HandoffStatus.choices)
    prosecutor = IdFilter(field_name="prosecutor_id")
