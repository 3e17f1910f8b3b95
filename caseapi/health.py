"""Liveness and readiness probes (no authentication; they reveal no data)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"database: {exc.__class__.__name__}"
    return None


def _check_broker() -> str | None:
    if not settings.CELERY_BROKER_URL:
        return None
    from caseapi.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"broker: {exc.__class__.__name__}"
    return None


def _check_audit() -> list[str]:
    """Sealing and checkpointing must keep up within their configured bounds."""
    from audit.models import AuditAction, AuditEvent, Checkpoint
    from audit.sealing import sealing_lag

    problems = []
    if not settings.AUDIT_RECORDING:
        problems.append("audit recording is OFF (AUDIT_RECORDING=0 is for benchmarks only)")
    try:
        lag = sealing_lag().total_seconds()
        if lag > settings.AUDIT_MAX_SEAL_LAG_SECONDS:
            problems.append(f"audit sealing lags by {lag:.0f}s (bound {settings.AUDIT_MAX_SEAL_LAG_SECONDS}s)")
        latest = Checkpoint.objects.order_by("-tree_size").values_list("tree_size", "created_at").first()
        covered = latest[0] if latest else 0
        uncovered = (
            AuditEvent.objects.filter(seq__gt=covered)
            .exclude(action=AuditAction.AUDIT_CHECKPOINT_CREATED)  # covered by the next real checkpoint
            .order_by("seq")
            .values_list("sealed_at", flat=True)
            .first()
        )
        if uncovered is not None:
            age = (timezone.now() - uncovered).total_seconds()
            if age > settings.AUDIT_MAX_CHECKPOINT_AGE_SECONDS:
                problems.append(
                    f"audit checkpoint is {age:.0f}s behind (bound {settings.AUDIT_MAX_CHECKPOINT_AGE_SECONDS}s)"
                )
    except Exception as exc:  # noqa: BLE001 - a failing check means not ready
        problems.append(f"audit: {exc.__class__.__name__}")
    return problems


def _check_outbox(broker_problem: str | None) -> tuple[list[str], list[str]]:
    """(problems, warnings). A broker that is down is a warning, not unreadiness: the outbox
    keeps the work and every server can still answer; pulling them all from the load balancer
    would undo that. With the broker up, work waiting longer than the bound means the relay
    is not running: that is unreadiness."""
    if not settings.CELERY_BROKER_URL:
        return [], []
    from outbox.selectors import outbox_backlog

    backlog = outbox_backlog()
    if broker_problem is not None:
        return [], [f"{broker_problem} ({backlog.pending} tasks kept in the outbox until it returns)"]
    age = backlog.oldest_age.total_seconds() if backlog.oldest_age is not None else 0
    if age > settings.OUTBOX_MAX_BACKLOG_SECONDS:
        return [
            f"outbox: {backlog.pending} tasks waiting, the oldest for {age:.0f}s "
            f"(bound {settings.OUTBOX_MAX_BACKLOG_SECONDS}s): is `manage.py outbox_relay` running?"
        ], []
    return [], []


def readyz(request: HttpRequest) -> JsonResponse:
    problems = [p for p in (_check_database(),) if p]
    warnings: list[str] = []
    if not problems:
        outbox_problems, warnings = _check_outbox(_check_broker())
        problems += outbox_problems
        problems += _check_audit()
    if problems:
        logger.error("not ready: %s", "; ".join(problems))
        return JsonResponse({"status": "unavailable", "problems": problems}, status=503)
    if warnings:
        logger.warning("ready, degraded: %s", "; ".join(warnings))
        return JsonResponse({"status": "degraded", "warnings": warnings})
    return JsonResponse({"status": "ok"})
