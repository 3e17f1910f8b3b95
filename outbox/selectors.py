"""Reads of the outbox, for operators and readiness checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Min
from django.utils import timezone

from outbox.models import OutboxMessage, OutboxStatus


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age: timedelta | None


def outbox_backlog() -> Backlog:
    """How many rows wait for the broker and for how long the oldest has (one query)."""
    row = OutboxMessage.objects.filter(status=OutboxStatus.PENDING).aggregate(n=Count("id"), oldest=Min("created_at"))
    oldest = row["oldest"]
    return Backlog(pending=row["n"], oldest_age=None if oldest is None else timezone.now() - oldest)
