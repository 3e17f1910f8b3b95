"""A whole worker (main process and pool) killed with SIGKILL in the middle of a packet build:
after a new worker starts, exactly one packet is ready and it verifies. (The pool child alone
killed: tests/test_packet_worker.py.) PostgreSQL only: the workers share the test database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditAction
from cases.models import ExportPacket, PacketStatus
from cases.tasks import build_export_packet, packet_build_in_progress, packets_resume_orphaned
from outbox.models import OutboxMessage, OutboxStatus
from tests.conftest import World, client_for, wait_for
from tests.faults.conftest import PrivateRedis, StartWorker
from tests.faults.helpers import chain_head_held, download_and_verify, packet_actions, sent_handoff, wait_for_packet

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


def test_a_worker_killed_whole_mid_build_leaves_one_verified_packet_once_a_new_worker_runs(
    world: World, private_redis: PrivateRedis, start_worker: StartWorker, tmp_path: Path, settings: Any
) -> None:
    settings.AUDIT_SEAL_ON_COMMIT = False  # this process must not wait on the chain head it holds
    handoff = sent_handoff(world)
    prosecutor = client_for(world.prosecutor)
    first = start_worker(private_redis.url)

    def status() -> dict[str, Any]:
        return prosecutor.get(f"/api/packets/{packet_id}/").json()

    with chain_head_held():
        requested = prosecutor.post(f"/api/handoffs/{handoff}/packets/")
        assert requested.status_code == 202, requested.content
        packet_id = requested.json()["id"]
        wait_for(lambda: status()["status"] == "building", 60, "the first worker to start building")
        assert packet_build_in_progress(packet_id)
        first.kill_all()
    # Released, the dead build's database session finds its client gone and ends, and its
    # build lock goes with it.
    wait_for(lambda: not packet_build_in_progress(packet_id), 30, "the dead build's session to end")
    assert (status()["status"], status()["attempts"]) == ("building", 1)

    second = start_worker(private_redis.url)
    assert packets_resume_orphaned(grace_seconds=0) == 1  # what the beat task does every minute
    final = wait_for_packet(prosecutor, packet_id)

    assert final["status"] == "ready", (final, second.log()[-3000:])
    assert final["attempts"] == 2
    assert ExportPacket.objects.filter(handoff_id=handoff).count() == 1
    assert packet_actions(packet_id) == [
        AuditAction.PACKET_REQUESTED,
        AuditAction.PACKET_BUILD_STARTED,
        AuditAction.PACKET_BUILD_STARTED,
        AuditAction.PACKET_BUILT,
    ]
    assert set(OutboxMessage.objects.values_list("dedup_key", "status")) == {
        (f"packet_build:{packet_id}", OutboxStatus.SENT),
        (f"packet_build:{packet_id}:resume:1", OutboxStatus.SENT),
    }
    download_and_verify(client_for(world.lead), packet_id, final, tmp_path)

    # The dead worker's delivery comes back from the broker one day (visibility timeout): the
    # rerun finds the packet ready and changes nothing.
    before = packet_actions(packet_id)
    late = build_export_packet.delay(packet_id)
    wait_for(lambda: f"[{late.id}] succeeded" in second.log(), 60, "the late delivery to run")
    assert packets_resume_orphaned(grace_seconds=0) == 0
    again = prosecutor.get(f"/api/packets/{packet_id}/").json()
    assert (again["status"], again["attempts"], again["sha256"]) == (PacketStatus.READY, 2, final["sha256"])
    assert packet_actions(packet_id) == before
