"""Query filters of the intercept list endpoints; each narrows an already-scoped queryset."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from caseapi.filters import FilterSet, StrictBooleanFilter
from intercept import selectors


class ConversationFilter(FilterSet):
    case = django_filters.UUIDFilter(field_name="case_id")
    lead = django_filters.UUIDFilter(field_name="lead_id")
    platform = django_filters.CharFilter(field_name="platform", max_length=50)
    closed = StrictBooleanFilter(field_name="closed")
    minor_age_mentioned = StrictBooleanFilter(field_name="minor_age_mentioned")
    phone = django_filters.CharFilter(
        method="by_phone", max_length=64, help_text="Conversations of buyers with this number, in any format."
    )

    def by_phone(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return selectors.conversations_with_phone(qs, value)


class AdFilter(FilterSet):
    case = django_filters.UUIDFilter(field_name="case_id")
    site = django_filters.CharFilter(field_name="site", max_length=100)
    phone = django_filters.CharFilter(
        method="by_phone", max_length=64, help_text="Ads listing this number, in any format."
    )

    def by_phone(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return selectors.ads_with_phone(qs, value)
