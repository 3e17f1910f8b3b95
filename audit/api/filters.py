"""Filters of the audit event list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from audit.models import AuditAction, AuditEvent
from caseapi.filters import FilterSet, IdFilter


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, turned into UTC. A time with an offset that takes it out of the
    calendar in UTC (`0001-01-01T00:00:00+14:00`) is invalid (400), not an OverflowError when the
    query is built; and the database gets a UTC time, never an offset it may refuse
    (PostgreSQL takes offsets up to 15:59, Python up to 23:59)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class AuditEventFilter(FilterSet):
    case = django_filters.UUIDFilter(field_name="case_id")
    actor = IdFilter(field_name="actor_id")
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    since = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list[str] = []
