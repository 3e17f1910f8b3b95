"""Export packets built by a real Celery worker on a real Redis broker, end to end over the API,
including a worker process killed mid-build (PostgreSQL runs only: the worker must share the
test database, which SQLite keeps in this process's memory)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction

from audit.models import AuditAction, AuditEvent, ChainHead
from cases.models import ExportPacket
from tests.conftest import World, client_for, wait_for
from tests.factories import EvidenceFactory, LeadFactory

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parent.parent
VERIFIER = ROOT / "cases" / "packets" / "verify_packet.py"
CHAT = b"buyer: how much for an hour\nbot: 200\nbuyer: ok, where do we meet\n" * 200


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


def _sent_handoff(world: World) -> str:
    """A handoff drafted, submitted, reviewed and acknowledged over the API; returns its id."""
    lead = LeadFactory(case=world.case, display_name="Buyer A")
    item = EvidenceFactory(case=world.case, lead=lead, upload=SimpleUploadedFile("chat.txt", CHAT))
    body = {
        "case": str(world.case.pk),
        "prosecutor": world.prosecutor.pk,
        "leads": [str(lead.pk)],
        "evidence": [str(item.pk)],
        "charges": [{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
        "narrative": "The buyer answered the decoy ad and came to the meeting point.",
    }
    created = client_for(world.lead).post("/api/handoffs/", body, format="json")
    assert created.status_code == 201, created.content
    handoff = created.json()["id"]
    assert client_for(world.lead).post(f"/api/handoffs/{handoff}/submit/").status_code == 200
    review = {"approve": True, "note": "Approved for filing."}
    assert client_for(world.supervisor).post(f"/api/handoffs/{handoff}/review/", review).status_code == 200
    assert client_for(world.prosecutor).post(f"/api/handoffs/{handoff}/acknowledge/").status_code == 200
    return handoff


def _download_and_verify(client: Any, packet_id: str, status: dict[str, Any], tmp_path: Path) -> None:
    response = client.get(f"/api/packets/{packet_id}/download/")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == status["sha256"]
    assert response["ETag"] == f'"{status["sha256"]}"'
    zip_path = tmp_path / "packet.zip"
    zip_path.write_bytes(data)
    key = client.get("/api/audit/checkpoints/key/").content.decode().strip()
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(VERIFIER), str(zip_path), "--public-key", key],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_packet_is_built_by_a_real_worker_end_to_end_over_the_api(
    world: World, celery_worker: Any, tmp_path: Path
) -> None:
    handoff = _sent_handoff(world)
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
    _download_and_verify(prosecutor, packet_id, status, tmp_path)
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
    acknowledgement, requeue on worker loss) to a fresh child, which builds the same packet."""
    settings.AUDIT_SEAL_ON_COMMIT = False  # this process must not wait on the lock it holds
    handoff = _sent_handoff(world)
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold_chain_head() -> None:
        try:
            with transaction.atomic():
                ChainHead.objects.select_for_update().get(pk=ChainHead.SINGLETON)
                locked.set()
                release.wait(timeout=90)
        finally:
            connection.close()
            done.set()

    holder = threading.Thread(target=hold_chain_head)
    holder.start()
    try:
        assert locked.wait(timeout=20)
        prosecutor = client_for(world.prosecutor)
        started = time.monotonic()
        requested = prosecutor.post(f"/api/handoffs/{handoff}/packets/")
        assert requested.status_code == 202, requested.content
        assert requested.json()["status"] in ("queued", "building")
        assert time.monotonic() - started < 5, "202 comes back at once, not after the build"
        packet_id = requested.json()["id"]

        def status() -> dict[str, Any]:
            return prosecutor.get(f"/api/packets/{packet_id}/").json()

        wait_for(lambda: status()["status"] == "building" and status()["attempts"] == 1, 60, "the first attempt")
        children = _children(celery_worker.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        wait_for(lambda: status()["attempts"] == 2, 60, "the task to be redelivered to a new child")
        assert status()["status"] == "building"
    finally:
        release.set()
        done.wait(timeout=30)
        holder.join(timeout=30)
    final = wait_for(lambda: (s := status())["status"] in ("ready", "failed") and s, 120, "the rebuilt packet")
    assert final["status"] == "ready", (final, celery_worker.log_path.read_text()[-3000:])
    assert final["attempts"] == 2
    assert ExportPacket.objects.filter(handoff_id=handoff).count() == 1
    actions = list(AuditEvent.objects.filter(target_id=packet_id).order_by("id").values_list("action", flat=True))
    assert actions == [
        AuditAction.PACKET_REQUESTED,
        AuditAction.PACKET_BUILD_STARTED,
        AuditAction.PACKET_BUILD_STARTED,
        AuditAction.PACKET_BUILT,
    ]
    _download_and_verify(client_for(world.lead), packet_id, final, tmp_path)
