"""The transactional outbox: a task is recorded in the transaction of its change, runs (or is
handed to the broker) only once that commits, at most once per dedup key, and waits in the
outbox, without failing anyone, while the broker is down."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from caseapi.celery import app as celery_app
from cases.models import Role
from outbox import services
from outbox.models import OutboxMessage, OutboxStatus
from tests.conftest import _configure_celery
from tests.factories import AgencyFactory, UserFactory

RECORD = "tests.outbox.record"
ran: list[tuple[Any, ...]] = []


@celery_app.task(name=RECORD, shared=False)
def record(*args: Any) -> None:
    ran.append(args)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    ran.clear()
    services._open_fast_path()
    yield
    services._open_fast_path()


@pytest.fixture
def broker_down() -> Iterator[str]:
    """This process sends tasks to a broker address where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/10"
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    celery_app.loader.import_default_modules()  # see tests.faults.conftest.send_tasks_to
    _configure_celery(broker_url=url, task_always_eager=False)
    try:
        yield url
    finally:
        _configure_celery(**previous)


@pytest.fixture
def broker_up(redis_broker: str) -> Iterator[str]:
    """This process sends tasks to a real, empty Redis (no worker consumes them)."""
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    celery_app.loader.import_default_modules()
    _configure_celery(broker_url=redis_broker, task_always_eager=False)
    try:
        yield redis_broker
    finally:
        _configure_celery(**previous)


def enqueue(*args: Any, dedup_key: str = "") -> OutboxMessage:
    return services.outbox_enqueue(task=RECORD, args=args, dedup_key=dedup_key)


@pytest.mark.django_db
def test_a_rolled_back_change_leaves_no_task(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        enqueue("case-1")
        raise RuntimeError("the change failed")
    assert not OutboxMessage.objects.exists()
    assert ran == []


@pytest.mark.django_db
def test_without_a_broker_the_task_runs_in_process_once_the_change_commits(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message = enqueue("case-1", 7)
        assert ran == []  # not before the commit
    assert OutboxMessage.objects.get().status == OutboxStatus.PENDING
    for callback in callbacks:
        callback()
    assert ran == [("case-1", 7)]
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (OutboxStatus.SENT, 1, "")
    assert message.sent_at is not None


@pytest.mark.django_db
def test_the_same_dedup_key_enqueues_the_work_once(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = enqueue("packet-1", dedup_key="packet_build:1")
    with django_capture_on_commit_callbacks(execute=True):
        second = enqueue("packet-1", dedup_key="packet_build:1")
        other = enqueue("packet-2", dedup_key="packet_build:2")
    assert second.pk == first.pk != other.pk
    assert ran == [("packet-1",), ("packet-2",)]
    assert services.outbox_relay().sent == 0


@pytest.mark.django_db
def test_a_broker_that_is_down_fails_nobody_and_the_task_waits_in_the_outbox(
    broker_down: str, django_capture_on_commit_callbacks: Any
) -> None:
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        first = enqueue("case-1")
    with django_capture_on_commit_callbacks(execute=True):
        second = enqueue("case-2")
    assert time.monotonic() - started < 2, "a broker that is down is noticed at once"

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts) == (OutboxStatus.PENDING, 1)
    assert "Connection refused" in first.last_error
    assert (second.status, second.attempts) == (OutboxStatus.PENDING, 0)  # the fast path waits a moment
    result = services.outbox_relay()
    assert (result.sent, result.broker_down) == (0, True)
    with pytest.raises(CommandError, match="sent 0, failed 0, pending 2"):
        call_command("outbox_relay", "--once")
    assert ran == []


@pytest.mark.django_db
def test_the_relay_hands_pending_rows_to_the_broker_once_and_marks_them_sent(
    broker_up: str, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        message = enqueue("case-1")  # the after-commit attempt never ran (a crash, an outage)
    queue = redis.Redis.from_url(broker_up)
    assert queue.llen("celery") == 0

    assert services.outbox_relay().sent == 1
    assert services.outbox_relay().sent == 0
    call_command("outbox_relay", "--once")

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.SENT, 1)
    assert queue.llen("celery") == 1
    assert str(message.task_id) in queue.lindex("celery", 0).decode()
    assert ran == []  # handed over, not run here


@pytest.mark.django_db
def test_an_unknown_task_is_recorded_on_its_row_and_does_not_hold_up_the_others(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        broken = services.outbox_enqueue(task="tests.outbox.no_such_task", args=["x"])
        fine = enqueue("case-1")
    result = services.outbox_relay()
    assert (result.sent, result.failed, result.broker_down) == (1, 1, False)
    broken.refresh_from_db()
    fine.refresh_from_db()
    assert broken.status == OutboxStatus.PENDING and "NotRegistered" in broken.last_error
    assert fine.status == OutboxStatus.SENT
    assert ran == [("case-1",)]


@pytest.mark.django_db
def test_purge_deletes_only_rows_sent_long_ago(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        old = enqueue("old", dedup_key="k:old")
        recent = enqueue("recent")
    with django_capture_on_commit_callbacks(execute=False):
        waiting = enqueue("waiting")
    OutboxMessage.objects.filter(pk=old.pk).update(sent_at=timezone.now() - timedelta(days=8))
    OutboxMessage.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=30))

    assert services.outbox_purge() == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}


@pytest.mark.django_db
def test_the_outbox_admin_is_for_superusers_and_read_only(client: Any, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = enqueue("case-1")
    agency = AgencyFactory(code="MCSO")
    agency_admin = UserFactory(username="ada_admin", agency=agency, role=Role.AGENCY_ADMIN)
    agency_admin.is_staff = True
    agency_admin.save()
    superuser = UserFactory(username="root_admin", agency=agency)
    superuser.is_staff = superuser.is_superuser = True
    superuser.save()
    changelist = "/admin/outbox/outboxmessage/"

    client.force_login(agency_admin)
    assert client.get(changelist).status_code == 403

    client.force_login(superuser)
    listed = client.get(changelist)
    assert listed.status_code == 200
    assert RECORD in listed.content.decode()
    detail = client.get(f"{changelist}{message.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.get(f"{changelist}add/").status_code == 403
    assert client.post(f"{changelist}{message.pk}/delete/", {"post": "yes"}).status_code == 403
    assert OutboxMessage.objects.filter(pk=message.pk).exists()
