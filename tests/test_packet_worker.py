"""Export packets built by a real Celery worker on a real Redis broker, end to end over the API,
including the worker's pool process killed mid-build (PostgreSQL runs only: the worker must
share the test database, which SQLite keeps in this process's memory). The whole worker killed:
tests/faults/test_worker_killed.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditAction, AuditEvent
from caseapi.celery import app as celery_app
from cases.models import ExportPacket, PacketStatus
from tests.conftest import World, client_for, wait_for
from tests.faults.helpers import chain_head_held, download_and_verify, packet_actions, sent_handoff, wait_for_packet

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _tasks_registered() -> None:
    """Every tasks module imported before the celery_worker fixture reconfigures the app (which
    takes it off Celery's active apps, so a shared task imported later would not register)."""
    celery_app.loader.import_default_modules()


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (the prefork pool's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def test_a_packet_is_built_by_a_real_worker_end_to_end_over_the_api(
    world: World, celery_worker: Any, tmp_path: Path
) -> None:
    handoff = sent_handoff(world)
    prosecutor = client_for(world.prosecutor)
    requested = prosecutor.post(f"/api/handoffs/{handoff}/packets/")
    assert requested.status_code == 202, requested.content
    packet_id = requested.json()["id"]
    seen: list[tuple[str, int, str]] = []

    def ready() -> dict[str, Any] | None:
        status = prosecutor.get(f"/api/packets/{packet_id}/").json()
        seen.append((status["status"], status["progress"], status["stage"]))
        return status if status["status"] in ("ready", "failed") else None

    status = wait_for(ready, 120, "the worker to build the packet")
    assert status["status"] == "ready", (status, celery_worker.log_path.read_text()[-3000:])
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert status["attempts"] == 1
    download_and_verify(prosecutor, packet_id, status, tmp_path)
    built = AuditEvent.objects.get(action=AuditAction.PACKET_BUILT, target_id=packet_id)
    assert built.actor.username == "_system"
    assert built.changes["sha256"] == status["sha256"]
    assert built.changes["checkpoint_size"] == status["checkpoint_size"]
    decided = prosecutor.post(f"/api/handoffs/{handoff}/decision/", {"decision": "accepted", "note": "Filing."})
    assert decided.status_code == 200
    assert decided.json()["status"] == "accepted"


def test_a_worker_killed_mid_build_is_replaced_and_the_packet_rebuilt_once(
    world: World, celery_worker: Any, tmp_path: Path, settings: Any
) -> None:
    """The build is held at its first audit checkpoint by a lock this test takes on the chain
    head; the pool's child process is killed there; the broker redelivers the task (late
    acknowledgement, requeue on worker loss) to a fresh child. That child waits while the dead
    build's database session still holds the packet's build lock (it is stuck behind the same
    chain head), then builds the same packet once, alone."""
    settings.AUDIT_SEAL_ON_COMMIT = False  # this process must not wait on the lock it holds
    handoff = sent_handoff(world)
    prosecutor = client_for(world.prosecutor)

    def status() -> dict[str, Any]:
        return prosecutor.get(f"/api/packets/{packet_id}/").json()

    with chain_head_held():
        started = time.monotonic()
        requested = prosecutor.post(f"/api/handoffs/{handoff}/packets/")
        assert requested.status_code == 202, requested.content
        assert requested.json()["status"] in ("queued", "building")
        assert time.monotonic() - started < 5, "202 comes back at once, not after the build"
        packet_id = requested.json()["id"]
        wait_for(lambda: status()["status"] == "building" and status()["attempts"] == 1, 60, "the first attempt")
        children = _children(celery_worker.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        wait_for(
            lambda: (
                f"packet {packet_id} is being built by another worker; waiting" in celery_worker.log_path.read_text()
            ),
            60,
            "the task to be redelivered to a new child, which waits for the dead build's lock",
        )
        assert [pid for pid in _children(celery_worker.pid) if pid != children[0]]
        assert (status()["status"], status()["attempts"]) == ("building", 1)
    final = wait_for_packet(prosecutor, packet_id)
    assert final["status"] == "ready", (final, celery_worker.log_path.read_text()[-3000:])
    assert final["attempts"] == 2
    assert ExportPacket.objects.filter(handoff_id=handoff).count() == 1
    assert ExportPacket.objects.filter(status=PacketStatus.READY).count() == 1
    assert packet_actions(packet_id) == [
        AuditAction.PACKET_REQUESTED,
        AuditAction.PACKET_BUILD_STARTED,
        AuditAction.PACKET_BUILD_STARTED,
        AuditAction.PACKET_BUILT,
    ]
    download_and_verify(client_for(world.lead), packet_id, final, tmp_path)
