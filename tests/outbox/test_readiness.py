"""/readyz with a broker: a broker that is down leaves the servers ready but degraded (the
outbox keeps the work), while work that waits past the bound with the broker up (no relay
running) makes them unready."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from caseapi import health
from outbox.models import OutboxMessage


@pytest.fixture
def with_broker(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    settings.OUTBOX_MAX_BACKLOG_SECONDS = 60
    monkeypatch.setattr(health, "_check_audit", lambda: [])
    return settings


def waiting(age: timedelta) -> OutboxMessage:
    message = OutboxMessage.objects.create(task="cases.tasks.build_export_packet", args=["x"])
    OutboxMessage.objects.filter(pk=message.pk).update(created_at=timezone.now() - age)
    return message


def test_a_broker_that_is_down_leaves_the_server_ready_but_degraded(db, client, with_broker, monkeypatch, caplog):
    monkeypatch.setattr(health, "_check_broker", lambda: "broker: ConnectionRefusedError")
    waiting(timedelta(hours=2))
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "warnings": ["broker: ConnectionRefusedError (1 tasks kept in the outbox until it returns)"],
    }
    assert "ready, degraded" in caplog.text


def test_work_waiting_past_the_bound_with_the_broker_up_is_unready(db, client, with_broker, monkeypatch, caplog):
    monkeypatch.setattr(health, "_check_broker", lambda: None)
    waiting(timedelta(seconds=30))
    assert client.get("/readyz").json() == {"status": "ok"}
    waiting(timedelta(seconds=90))
    response = client.get("/readyz")
    assert response.status_code == 503
    [problem] = response.json()["problems"]
    assert problem.startswith("outbox: 2 tasks waiting, the oldest for 9")
    assert "(bound 60s): is `manage.py outbox_relay` running?" in problem
    assert "not ready" in caplog.text
