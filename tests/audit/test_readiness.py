"""/readyz fails, and an error is logged, when audit sealing or checkpointing falls behind its
configured bound; it recovers once the sequencer catches up."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit import tasks
from audit.models import AuditAction, AuditEvent
from audit.sealing import seal_pending, sealing_lag
from audit.services import audit_record, checkpoint_create


@contextmanager
def clock_at(monkeypatch: pytest.MonkeyPatch, when: Any) -> Iterator[None]:
    """Django's clock reads `when` inside the block (auto_now_add and the sealer use it)."""
    with monkeypatch.context() as patch:
        patch.setattr(timezone, "now", lambda: when)
        yield


def old_event(world: Any, monkeypatch: pytest.MonkeyPatch, age: timedelta) -> AuditEvent:
    """An unsealed event recorded `age` ago, behind everything else (which is sealed now)."""
    seal_pending()
    with clock_at(monkeypatch, timezone.now() - age):
        return audit_record(action=AuditAction.CASE_VIEWED, actor=world.lead, target=world.case, case_id=world.case.pk)


def readyz(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/readyz")
    return response.status_code, response.json()


def test_ready_when_sealing_and_checkpoints_keep_up(world, client, caplog):
    with caplog.at_level(logging.ERROR):
        assert readyz(client) == (200, {"status": "ok"})
    checkpoint_create()
    assert readyz(client) == (200, {"status": "ok"})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_unsealed_event_older_than_the_bound_makes_readyz_fail_and_log(world, client, settings, monkeypatch, caplog):
    settings.AUDIT_MAX_SEAL_LAG_SECONDS = 30
    old_event(world, monkeypatch, timedelta(seconds=90))
    assert sealing_lag() >= timedelta(seconds=90)
    with caplog.at_level(logging.ERROR):
        status, body = readyz(client)
    assert status == 503
    assert body["status"] == "unavailable"
    [problem] = body["problems"]
    assert problem.startswith("audit sealing lags by ") and problem.endswith("(bound 30s)")
    assert 90 <= int(problem.split("by ")[1].split("s")[0]) < 120
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "audit sealing lags" in errors[0].getMessage()


def test_the_seal_lag_bound_is_configurable(world, client, settings, monkeypatch):
    old_event(world, monkeypatch, timedelta(seconds=90))
    settings.AUDIT_MAX_SEAL_LAG_SECONDS = 600
    assert readyz(client)[0] == 200
    settings.AUDIT_MAX_SEAL_LAG_SECONDS = 60
    assert readyz(client)[0] == 503


def test_readyz_recovers_once_the_old_event_is_sealed(world, client, settings, monkeypatch):
    settings.AUDIT_MAX_SEAL_LAG_SECONDS = 30
    old_event(world, monkeypatch, timedelta(minutes=5))
    assert readyz(client)[0] == 503
    seal_pending()
    assert sealing_lag() == timedelta(0)
    assert readyz(client) == (200, {"status": "ok"})


def test_sealed_events_left_out_of_a_checkpoint_too_long_make_readyz_fail(world, client, settings, monkeypatch, caplog):
    settings.AUDIT_MAX_CHECKPOINT_AGE_SECONDS = 120
    with clock_at(monkeypatch, timezone.now() - timedelta(minutes=10)):
        seal_pending()
    with caplog.at_level(logging.ERROR):
        status, body = readyz(client)
    assert status == 503
    [problem] = body["problems"]
    assert problem.startswith("audit checkpoint is ") and problem.endswith("behind (bound 120s)")
    assert any("audit checkpoint is" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    checkpoint_create()
    assert readyz(client) == (200, {"status": "ok"})


def test_an_old_checkpoint_is_fine_while_nothing_new_is_sealed(world, client, settings, monkeypatch):
    settings.AUDIT_MAX_CHECKPOINT_AGE_SECONDS = 120
    with clock_at(monkeypatch, timezone.now() - timedelta(hours=2)):
        checkpoint_create()
    assert readyz(client) == (200, {"status": "ok"})


def test_events_sealed_after_an_old_checkpoint_count_from_their_sealing(world, client, settings, monkeypatch):
    """A checkpoint two hours old does not fail readiness for an event sealed a moment ago,
    but does once that event has waited longer than the bound."""
    settings.AUDIT_MAX_CHECKPOINT_AGE_SECONDS = 120
    with clock_at(monkeypatch, timezone.now() - timedelta(hours=2)):
        checkpoint_create()
    audit_record(action=AuditAction.CASE_VIEWED, actor=world.lead, target=world.case, case_id=world.case.pk)
    seal_pending()
    assert readyz(client)[0] == 200
    with clock_at(monkeypatch, timezone.now() + timedelta(minutes=5)):
        status, body = readyz(client)
    assert status == 503
    assert [p.split(" is ")[0] for p in body["problems"]] == ["audit checkpoint"]


def test_both_falling_behind_reports_both(world, client, settings, monkeypatch):
    settings.AUDIT_MAX_SEAL_LAG_SECONDS = 30
    settings.AUDIT_MAX_CHECKPOINT_AGE_SECONDS = 60
    with clock_at(monkeypatch, timezone.now() - timedelta(minutes=10)):
        seal_pending()
    old_event(world, monkeypatch, timedelta(minutes=3))
    status, body = readyz(client)
    assert status == 503
    assert sorted(p.split(" ")[1] for p in body["problems"]) == ["checkpoint", "sealing"]


def test_healthz_stays_up_while_the_audit_lags(world, client, settings, monkeypatch):
    settings.AUDIT_MAX_SEAL_LAG_SECONDS = 30
    old_event(world, monkeypatch, timedelta(minutes=5))
    assert client.get("/healthz").status_code == 200
    assert readyz(client)[0] == 503


def test_a_quiet_log_after_an_auditors_checkpoint_stays_ready(world, client, settings, monkeypatch):
    """The auditor's checkpoint is itself an event; the scheduled checkpoint must cover it (or
    readiness must not wait for it), or a quiet system is reported not ready for good."""
    settings.AUDIT_MAX_CHECKPOINT_AGE_SECONDS = 120
    checkpoint_create()
    audit_record(action=AuditAction.CASE_VIEWED, actor=world.lead, target=world.case, case_id=world.case.pk)
    assert checkpoint_create(actor=world.auditor).created
    seal_pending()
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_CHECKPOINT_CREATED, seq__isnull=False).exists()
    with clock_at(monkeypatch, timezone.now() + timedelta(minutes=10)):
        tasks.audit_checkpoint.delay().get()
        status, body = readyz(client)
    assert (status, body) == (200, {"status": "ok"})
