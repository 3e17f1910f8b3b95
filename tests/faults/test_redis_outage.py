"""Redis stopped while users request packets and bots push intercepts: the API keeps answering,
the packet builds wait in the outbox, and once Redis is back (empty: it kept nothing on disk)
the relay hands them over and a real worker builds each exactly once (PostgreSQL only: the
worker shares the test database). Redis hung rather than stopped costs a request at most the
outbox's publish timeouts (any database)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from audit.models import AuditAction
from cases.models import CaseKind, ExportPacket, PacketStatus
from intercept import services as intercept_services
from intercept import signing
from intercept.models import Conversation, Message
from outbox import services as outbox_services
from outbox.models import OutboxMessage, OutboxStatus
from outbox.services import outbox_relay
from tests.conftest import World, client_for
from tests.factories import CaseFactory
from tests.faults.conftest import PrivateRedis, StartWorker, tasks_sent_to
from tests.faults.helpers import download_and_verify, packet_actions, sent_handoff, wait_for_packet

QUICK = 2.0  # seconds: an answer during the outage is as quick as any other


def _conversation_batch(external_id: str) -> bytes:
    messages = [
        {
            "external_id": f"{external_id}-m{n}",
            "direction": "inbound" if n % 2 else "outbound",
            "sent_at": f"2026-03-02T21:0{n}:00Z",
            "body": f"message {n}",
        }
        for n in range(1, 4)
    ]
    item = {
        "external_id": external_id,
        "platform": "sms",
        "bot": "decoy-bot-1",
        "buyer": {"phone": "(305) 555-0142"},
        "messages": messages,
    }
    return json.dumps({"items": [item]}).encode()


def _push(issued: intercept_services.IssuedSecret, body: bytes, timestamp: int) -> Any:
    headers = signing.signed_headers(str(issued.source.pk), issued.secret, body, timestamp)
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return APIClient().post("/api/ingest/conversations/", data=body, content_type="application/json", **meta)


@pytest.mark.postgres_only
@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_packets_requested_while_redis_is_down_are_built_exactly_once_when_it_returns(
    world: World, private_redis: PrivateRedis, start_worker: StartWorker, tmp_path: Path
) -> None:
    handoffs = [sent_handoff(world, buyer=f"Buyer {n}") for n in range(2)]
    operation = CaseFactory(actor=world.lead, title="Operation Nightfall intercepts", kind=CaseKind.OPERATION)
    issued = intercept_services.ingest_source_create(actor=None, name="nightfall-bot", case=operation)
    prosecutor = client_for(world.prosecutor)
    worker = start_worker(private_redis.url)

    private_redis.stop()

    packet_ids = []
    for handoff in handoffs:
        started = time.monotonic()
        requested = prosecutor.post(f"/api/handoffs/{handoff}/packets/")
        assert requested.status_code == 202, requested.content
        assert time.monotonic() - started < QUICK
        packet_ids.append(requested.json()["id"])
    for packet_id in packet_ids:
        polled = prosecutor.get(f"/api/packets/{packet_id}/")
        assert (polled.status_code, polled.json()["status"]) == (200, PacketStatus.QUEUED)
    now = int(time.time())
    started = time.monotonic()
    pushed = _push(issued, _conversation_batch("c1"), now)
    assert pushed.status_code == 200, pushed.content
    assert time.monotonic() - started < QUICK
    assert [r["status"] for r in pushed.json()["results"]] == ["created"]

    pending = OutboxMessage.objects.filter(status=OutboxStatus.PENDING)
    assert sorted(pending.values_list("args", flat=True)) == sorted([[p] for p in packet_ids])
    assert OutboxMessage.objects.get(args=[packet_ids[0]]).last_error  # the fast path tried, and said why not
    assert outbox_relay().broker_down
    with pytest.raises(CommandError, match="sent 0, failed 0, pending 2"):
        call_command("outbox_relay", "--once")

    private_redis.start()
    call_command("outbox_relay", "--once")  # before the worker has even reconnected
    assert not OutboxMessage.objects.filter(status=OutboxStatus.PENDING).exists()

    for packet_id in packet_ids:
        final = wait_for_packet(prosecutor, packet_id)
        assert final["status"] == "ready", (final, worker.log()[-3000:])
        assert final["attempts"] == 1
        assert packet_actions(packet_id) == [
            AuditAction.PACKET_REQUESTED,
            AuditAction.PACKET_BUILD_STARTED,
            AuditAction.PACKET_BUILT,
        ]
        download_and_verify(prosecutor, packet_id, final, tmp_path)
    assert ExportPacket.objects.count() == 2
    assert OutboxMessage.objects.filter(status=OutboxStatus.SENT).count() == 2
    assert outbox_relay().sent == 0  # nothing is handed over twice

    # The bot resends its batch after the outage (it never knew whether it landed): no duplicates.
    again = _push(issued, _conversation_batch("c1"), now - 1)
    assert again.status_code == 200, again.content
    assert [r["status"] for r in again.json()["results"]] == ["unchanged"]
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 3


@pytest.mark.django_db
def test_a_hung_redis_delays_a_packet_request_by_the_publish_timeout_at_most(
    world: World, private_redis: PrivateRedis, django_capture_on_commit_callbacks: Any
) -> None:
    handoff = sent_handoff(world)
    prosecutor = client_for(world.prosecutor)
    with tasks_sent_to(private_redis.url):
        os.kill(private_redis.process.pid, signal.SIGSTOP)  # connections are accepted, never answered
        try:
            started = time.monotonic()
            with django_capture_on_commit_callbacks(execute=True):
                requested = prosecutor.post(f"/api/handoffs/{handoff}/packets/")
            elapsed = time.monotonic() - started
        finally:
            os.kill(private_redis.process.pid, signal.SIGCONT)
        assert requested.status_code == 202, requested.content
        assert elapsed < outbox_services.CONNECT_TIMEOUT + outbox_services.SOCKET_TIMEOUT + 1
        message = OutboxMessage.objects.get()
        assert message.status == OutboxStatus.PENDING
        assert "Timeout" in message.last_error

        assert outbox_relay().sent == 1
        queue = redis.Redis.from_url(private_redis.url)
        assert queue.llen("celery") == 1
        assert str(message.task_id) in queue.lindex("celery", 0).decode()
