"""Filters of the audit event list."""

from __future__ import annotations

import django_filters

from audit.models import AuditAction, AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    case = django_filters.UUIDFilter(field_name="case_id")
    actor = django_filters.NumberFilter(field_name="actor_id", min_value=1, max_value=2**63 - 1)
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
