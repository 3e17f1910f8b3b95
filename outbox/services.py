"""Writes of the outbox: enqueue a task in the caller's transaction, publish it after commit,
relay what is still pending, purge what was sent long ago.

Delivery is at least once: a row is marked sent only after the broker accepted the task, so a
crash between the two publishes it again. Tasks are idempotent (STYLE.md), which makes the
effect exactly once. A broker that is down never fails the caller: the row stays pending and
the relay (`manage.py outbox_relay`, or the beat task while the broker is up) sends it later.

Without a broker (`task_always_eager`, the single-machine default) a row is claimed and its
task run in-process right after commit, as `transaction.on_commit(task.delay)` would.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from outbox.models import OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)

DEFAULT_RETENTION = timedelta(days=7)
DEFAULT_FAST_PATH_BACKOFF = 5.0
ERROR_LIMIT = 2000
CONNECT_TIMEOUT = 2.0
SOCKET_TIMEOUT = 2.0

# Monotonic time until which the after-commit fast path does not try the broker again, after
# it found the broker down (per process): requests stay fast during an outage.
_fast_path_closed_until = 0.0


class BrokerUnavailable(Exception):
    """The broker refused or could not be reached; the row stays pending."""


class Outcome(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"  # already sent, or another process is publishing it right now
    FAILED = "failed"  # not a broker outage (e.g. an unknown task name): recorded on the row


@dataclass(frozen=True)
class RelayResult:
    sent: int
    failed: int
    broker_down: bool


def _app() -> Any:
    from caseapi.celery import app

    return app


def _task(name: str) -> Any:
    """The registered task called `name`. Outside a worker, tasks modules are imported only when
    something imports them, so a miss loads every app's tasks module (Celery's autodiscovery)
    once before giving up with NotRegistered."""
    app = _app()
    if name not in app.tasks:
        app.loader.import_default_modules()
    return app.tasks[name]


def _eager() -> bool:
    return bool(_app().conf.task_always_eager)


@transaction.atomic
def outbox_enqueue(
    *, task: str, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None, dedup_key: str = ""
) -> OutboxMessage:
    """Record `task(*args, **kwargs)` in the caller's transaction and try to publish it once that
    commits. Arguments must be JSON (ids, not objects). With a `dedup_key` that is already
    recorded, the existing row is returned and nothing new is enqueued."""
    if dedup_key:
        existing = OutboxMessage.objects.filter(dedup_key=dedup_key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            message = OutboxMessage.objects.create(
                task=task, args=list(args), kwargs=dict(kwargs or {}), dedup_key=dedup_key
            )
    except IntegrityError:
        if not dedup_key:
            raise
        # A concurrent transaction recorded the same key first and has committed by now.
        return OutboxMessage.objects.get(dedup_key=dedup_key)
    transaction.on_commit(partial(_publish_after_commit, message.pk), robust=True)
    return message


def _publish_after_commit(message_id: int) -> None:
    """The fast path: most rows are sent here, a moment after their transaction commits."""
    if not _eager() and time.monotonic() < _fast_path_closed_until:
        return
    try:
        outbox_publish(message_id=message_id)
    except BrokerUnavailable as exc:
        logger.warning("outbox: broker unavailable, message %s stays pending for the relay: %s", message_id, exc)


def _close_fast_path() -> None:
    global _fast_path_closed_until
    backoff = float(getattr(settings, "OUTBOX_FAST_PATH_BACKOFF", DEFAULT_FAST_PATH_BACKOFF))
    _fast_path_closed_until = time.monotonic() + backoff


def _open_fast_path() -> None:
    global _fast_path_closed_until
    _fast_path_closed_until = 0.0


def _error_text(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:ERROR_LIMIT]


@contextmanager
def _broker_connection() -> Iterator[Any]:
    """A connection to the broker, tried once and at once: a broker that is down is reported in
    milliseconds (BrokerUnavailable), not after the several seconds of Celery's own retries;
    one that hangs, within the socket timeouts."""
    from kombu.exceptions import OperationalError

    # Bounded socket waits on this connection only: a hung broker (accepting connections but
    # not answering) costs a request at most these seconds, not the OS TCP timeouts.
    timeouts = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": SOCKET_TIMEOUT}
    conn = _app().connection_for_write(transport_options=timeouts)
    try:
        try:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=CONNECT_TIMEOUT)
        except (OperationalError, *conn.connection_errors, OSError) as exc:
            _close_fast_path()
            raise BrokerUnavailable(_error_text(exc)) from exc
        yield conn
    finally:
        conn.release()


def outbox_publish(*, message_id: int) -> Outcome:
    """Hand one pending row to the broker and mark it sent. Raises BrokerUnavailable (after
    counting the attempt on the row) when the broker cannot take it; any other publishing error
    is recorded on the row, which stays pending (FAILED). The row is locked while it is
    published, so two processes never publish it at once."""
    if _eager():
        return _run_eagerly(message_id)
    try:
        with _broker_connection() as conn:
            return _publish(message_id, conn)
    except BrokerUnavailable as exc:
        OutboxMessage.objects.filter(pk=message_id, status=OutboxStatus.PENDING).update(
            attempts=F("attempts") + 1, last_error=str(exc)
        )
        raise


def _claim(message_id: int) -> OutboxMessage | None:
    """Lock the message if it is still pending and no one else holds it (inside the caller's
    transaction), counting the attempt; None when there is nothing to do."""
    message = (
        OutboxMessage.objects.select_for_update(skip_locked=True)
        .filter(pk=message_id, status=OutboxStatus.PENDING)
        .first()
    )
    if message is not None:
        message.attempts += 1
    return message


def _publish(message_id: int, conn: Any) -> Outcome:
    from kombu.exceptions import OperationalError

    broker_errors = (OperationalError, *conn.connection_errors, *conn.channel_errors, OSError)
    with transaction.atomic():
        message = _claim(message_id)
        if message is None:
            return Outcome.SKIPPED
        try:
            task = _task(message.task)
        except Exception as exc:
            return _failed(message, exc)
        try:
            task.apply_async(
                args=message.args, kwargs=message.kwargs, task_id=str(message.task_id), connection=conn, retry=False
            )
        except broker_errors as exc:
            error: BaseException | None = exc
            message.last_error = _error_text(exc)
            message.save(update_fields=["attempts", "last_error"])
        except Exception as exc:
            return _failed(message, exc)
        else:
            error = None
            message.status, message.sent_at = OutboxStatus.SENT, timezone.now()
            message.save(update_fields=["status", "sent_at", "attempts"])
    if error is not None:
        _close_fast_path()
        raise BrokerUnavailable(_error_text(error)) from error
    _open_fast_path()
    return Outcome.SENT


def _failed(message: OutboxMessage, exc: BaseException) -> Outcome:
    logger.error("outbox: message %s (%s) cannot be published: %s", message.pk, message.task, _error_text(exc))
    message.last_error = _error_text(exc)
    message.save(update_fields=["attempts", "last_error"])
    return Outcome.FAILED


def _run_eagerly(message_id: int) -> Outcome:
    """No broker: claim the row (its own short transaction), then run the task here, outside
    any transaction, so the task's own transactions commit as they would in a worker."""
    with transaction.atomic():
        message = _claim(message_id)
        if message is None:
            return Outcome.SKIPPED
        try:
            task = _task(message.task)
        except Exception as exc:
            return _failed(message, exc)
        message.status, message.sent_at = OutboxStatus.SENT, timezone.now()
        message.save(update_fields=["status", "sent_at", "attempts"])
    try:
        task.apply_async(args=message.args, kwargs=message.kwargs, task_id=str(message.task_id))
    except Exception as exc:
        logger.exception("outbox: in-process task %s of message %s failed", message.task, message.pk)
        OutboxMessage.objects.filter(pk=message.pk).update(last_error=_error_text(exc))
    return Outcome.SENT


def outbox_relay(*, limit: int = 500) -> RelayResult:
    """Publish pending rows, oldest first, each in its own short transaction, over one broker
    connection. Stops at the first sign that the broker is down (the rest wait for the next
    pass). Safe to run in several processes at once: a row being published elsewhere is
    skipped, never sent twice by two relays."""
    sent = failed = 0
    pending = list(
        OutboxMessage.objects.filter(status=OutboxStatus.PENDING).order_by("id").values_list("pk", flat=True)[:limit]
    )
    if not pending:
        return RelayResult(sent=0, failed=0, broker_down=False)
    try:
        with contextlib.ExitStack() as stack:
            conn = None if _eager() else stack.enter_context(_broker_connection())
            for message_id in pending:
                outcome = _run_eagerly(message_id) if conn is None else _publish(message_id, conn)
                sent += outcome == Outcome.SENT
                failed += outcome == Outcome.FAILED
    except BrokerUnavailable as exc:
        waiting = len(pending) - sent - failed
        logger.warning("outbox: broker unavailable; %d message(s) wait for the next pass: %s", waiting, exc)
        return RelayResult(sent=sent, failed=failed, broker_down=True)
    return RelayResult(sent=sent, failed=failed, broker_down=False)


def outbox_purge(*, older_than: timedelta | None = None) -> int:
    """Delete rows sent more than `older_than` ago (default OUTBOX_RETENTION); pending rows are
    never purged. A purged row's dedup key may be enqueued again."""
    if older_than is None:
        older_than = getattr(settings, "OUTBOX_RETENTION", DEFAULT_RETENTION)
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxMessage.objects.filter(status=OutboxStatus.SENT, sent_at__lt=cutoff).delete()
    return deleted
