"""Background jobs of the outbox, for Celery beat. They need the broker, so they are a safety
net only: `manage.py outbox_relay` is what keeps publishing while the broker is down."""

from __future__ import annotations

from celery import shared_task

from outbox import services


@shared_task(acks_late=True, ignore_result=True)
def outbox_relay() -> int:
    """Publish what the after-commit fast path left pending; returns how many were sent."""
    return services.outbox_relay().sent


@shared_task(acks_late=True, ignore_result=True)
def outbox_purge() -> int:
    """Delete rows sent longer ago than OUTBOX_RETENTION."""
    return services.outbox_purge()
