"""Helpers of the worker and fault tests: a handoff sent over the API, a packet downloaded and
checked with the standalone verifier, and the audit chain head held so a build waits at its
first checkpoint (a controlled "middle of the build")."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction

from audit.models import AuditEvent, ChainHead
from tests.conftest import ROOT, World, client_for, wait_for
from tests.factories import EvidenceFactory, LeadFactory

VERIFIER = ROOT / "cases" / "packets" / "verify_packet.py"
CHAT = b"buyer: how much for an hour\nbot: 200\nbuyer: ok, where do we meet\n" * 200


def sent_handoff(world: World, buyer: str = "Buyer A") -> str:
    """A handoff drafted, submitted, reviewed and acknowledged over the API; returns its id."""
    lead = LeadFactory(case=world.case, display_name=buyer)
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


def download_and_verify(client: Any, packet_id: str, status: dict[str, Any], tmp_path: Path) -> None:
    """The download matches the recorded SHA-256 and verify_packet.py accepts the ZIP."""
    response = client.get(f"/api/packets/{packet_id}/download/")
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == status["sha256"]
    assert response["ETag"] == f'"{status["sha256"]}"'
    zip_path = tmp_path / f"packet-{packet_id}.zip"
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


def packet_actions(packet_id: str) -> list[str]:
    return list(AuditEvent.objects.filter(target_id=packet_id).order_by("id").values_list("action", flat=True))


@contextmanager
def chain_head_held() -> Iterator[None]:
    """Another connection holds the audit chain head row lock until the block ends: a packet
    build stops at its first checkpoint. (Set AUDIT_SEAL_ON_COMMIT off in this process first,
    or its own writes would wait on the lock too.)"""
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                ChainHead.objects.select_for_update().get(pk=ChainHead.SINGLETON)
                locked.set()
                release.wait(timeout=90)
        finally:
            connection.close()
            done.set()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=20)
        yield
    finally:
        release.set()
        done.wait(timeout=30)
        holder.join(timeout=30)


def wait_for_packet(client: Any, packet_id: str, timeout: float = 120) -> dict[str, Any]:
    """Polls the status endpoint until the packet is ready or failed; returns the last status."""
    return wait_for(
        lambda: (s := client.get(f"/api/packets/{packet_id}/").json())["status"] in ("ready", "failed") and s,
        timeout,
        f"packet {packet_id} to finish",
    )
