"""Export packets over the API: 202 at once, status and progress as the build goes, the
download with its hash, who may ask, and the build task's state handling (idempotent, survives
a worker dying mid-build, never ready after a failed integrity check)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditAction, AuditEvent
from cases import services
from cases.models import CustodyAction, CustodyEvent, ExportPacket, Handoff, PacketStatus, Role
from cases.packets import PacketBuild, PacketIntegrityError
from cases.tasks import build_export_packet
from outbox.models import OutboxMessage
from tests.conftest import World, client_for
from tests.factories import EvidenceFactory, LeadFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent.parent
VERIFIER = ROOT / "cases" / "packets" / "verify_packet.py"
CHAT = b"buyer: how much for an hour\nbot: 200\nbuyer: ok where\n"


@pytest.fixture
def handoff(world: World) -> Handoff:
    """A handoff of world.case sent to world.prosecutor: one lead, one stored evidence item."""
    lead = LeadFactory(case=world.case, display_name="Buyer A")
    item = EvidenceFactory(case=world.case, lead=lead, upload=SimpleUploadedFile("chat.txt", CHAT))
    handoff = services.handoff_create(
        actor=world.lead,
        case=world.case,
        prosecutor=world.prosecutor,
        leads=[lead],
        evidence=[item],
        charges=[{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
        narrative="The buyer answered the decoy ad.",
    )
    services.handoff_submit(actor=world.lead, handoff=handoff)
    return services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True, note="OK")


Builder = Callable[..., PacketBuild]


def fake_builder(
    payload: bytes = b"PK\x05\x06" + b"\x00" * 18, during: Callable[[ExportPacket], None] | None = None
) -> Builder:
    """Stands in for the real builder where a test is about the task's state handling: reports
    progress, runs `during` mid-build, stores `payload` as the packet file."""
    calls: list[str] = []

    def build(
        *, packet: ExportPacket, on_progress: Callable[[int, str], None], checkpoint_size: int | None = None
    ) -> PacketBuild:
        calls.append(str(packet.pk))
        on_progress(40, "natives")
        if during is not None:
            during(packet)
        name = storages["packets"].save(f"{packet.pk}.zip", ContentFile(payload))
        return PacketBuild(
            file_name=name,
            sha256=hashlib.sha256(payload).hexdigest(),
            size_bytes=len(payload),
            manifest_sha256="ab" * 32,
            checkpoint_size=42,
            signature="caseapi packet manifest\n",
        )

    build.calls = calls  # type: ignore[attr-defined]
    return build


def use_builder(monkeypatch: Any, builder: Builder) -> Builder:
    monkeypatch.setattr("cases.packets.build_packet", builder)
    return builder


def packets_url(handoff: Handoff) -> str:
    return f"/api/handoffs/{handoff.pk}/packets/"


def request_packet(client: Any, handoff: Handoff, capture: Any, *, build: bool) -> Any:
    with capture(execute=build) as callbacks:
        response = client.post(packets_url(handoff))
    assert response.status_code == 202, response.content
    queued = OutboxMessage.objects.filter(dedup_key=f"packet_build:{response.json()['id']}")
    assert queued.count() == 1, "one build is enqueued per request, in its transaction"
    assert len(callbacks) >= 1, "and handed over after commit"
    return response


def drain(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def actions_of(packet_id: Any) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="cases.exportpacket", target_id=str(packet_id))
        .order_by("id")
        .values_list("action", flat=True)
    )


# ---------------------------------------------------------------- requesting


def test_a_packet_request_answers_202_at_once_and_queues_one_build(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    builder = use_builder(monkeypatch, fake_builder())
    response = request_packet(client_for(world.prosecutor), handoff, django_capture_on_commit_callbacks, build=False)
    body = response.json()
    assert set(body) == {"id", "status", "status_url"}
    assert body["status"] == "queued"
    assert body["status_url"] == f"http://testserver/api/packets/{body['id']}/"
    assert response["Location"] == body["status_url"]
    packet = ExportPacket.objects.get(pk=body["id"])
    assert (packet.status, packet.handoff_id, packet.requested_by_id) == ("queued", handoff.pk, world.prosecutor.pk)
    assert builder.calls == []  # type: ignore[attr-defined]
    requested = AuditEvent.objects.get(action=AuditAction.PACKET_REQUESTED)
    assert (requested.actor_id, requested.target_id, requested.case_id) == (
        world.prosecutor.pk,
        str(packet.pk),
        world.case.pk,
    )
    assert requested.changes == {"handoff": str(handoff.pk), "number": "H001", "status": [None, "queued"]}


def test_the_prosecutor_and_the_cases_leads_and_supervisors_may_ask(world, handoff, django_capture_on_commit_callbacks):
    for user in (world.prosecutor, world.lead, world.supervisor):
        request_packet(client_for(user), handoff, django_capture_on_commit_callbacks, build=False)
    for user in (world.teammate, world.viewer):
        response = client_for(user).post(packets_url(handoff))
        assert response.status_code == 403
        assert response.json()["detail"] == services.PACKET_NOT_ALLOWED
    colleague = UserFactory(username="pia_pros", agency=world.agency_p, role=Role.PROSECUTOR)
    for user in (colleague, world.investigator, world.outsider):
        assert client_for(user).post(packets_url(handoff)).status_code == 404
    assert ExportPacket.objects.count() == 3


def test_no_packet_from_a_handoff_that_has_not_been_sent(world, handoff):
    drafted = services.handoff_create(actor=world.lead, case=world.case, prosecutor=world.prosecutor)
    response = client_for(world.lead).post(packets_url(drafted))
    assert response.status_code == 409
    assert response.json()["detail"] == services.PACKET_HANDOFF_NOT_SENT
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="More please.")
    assert client_for(world.prosecutor).post(packets_url(handoff)).status_code == 409
    assert not ExportPacket.objects.exists()


def test_packet_requests_are_throttled_per_user(world, handoff, django_capture_on_commit_callbacks):
    client = client_for(world.prosecutor)
    with django_capture_on_commit_callbacks(execute=False):
        answers = [client.post(packets_url(handoff)).status_code for _ in range(11)]
    assert answers == [202] * 10 + [429]
    assert ExportPacket.objects.count() == 10
    assert client_for(world.lead).post(packets_url(handoff)).status_code == 202


# ---------------------------------------------------------------- status and download


def test_status_shows_progress_and_stage_while_building_and_download_waits(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    client = client_for(world.prosecutor)
    seen: dict[str, Any] = {}

    def look(packet: ExportPacket) -> None:
        seen["status"] = client.get(f"/api/packets/{packet.pk}/").json()
        seen["download"] = client.get(f"/api/packets/{packet.pk}/download/")

    payload = b"PK fake packet bytes"
    use_builder(monkeypatch, fake_builder(payload, during=look))
    body = request_packet(client, handoff, django_capture_on_commit_callbacks, build=True).json()
    assert (seen["status"]["status"], seen["status"]["progress"], seen["status"]["stage"]) == (
        "building",
        40,
        "natives",
    )
    assert seen["status"]["download_url"] is None
    assert seen["download"].status_code == 409
    assert seen["download"].json()["detail"] == services.PACKET_NOT_READY
    status = client.get(body["status_url"]).json()
    digest = hashlib.sha256(payload).hexdigest()
    assert status["status"] == "ready"
    assert (status["progress"], status["stage"]) == (100, "ready")
    assert (status["sha256"], status["size_bytes"]) == (digest, len(payload))
    assert (status["manifest_sha256"], status["checkpoint_size"]) == ("ab" * 32, 42)
    assert status["error"] == ""
    assert status["download_url"] == f"http://testserver/api/packets/{body['id']}/download/"


def test_a_ready_packet_downloads_with_its_hash_as_etag_and_digest(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    payload = b"PK the packet's bytes"
    use_builder(monkeypatch, fake_builder(payload))
    client = client_for(world.prosecutor)
    body = request_packet(client, handoff, django_capture_on_commit_callbacks, build=True).json()
    response = client.get(f"/api/packets/{body['id']}/download/")
    assert response.status_code == 200
    assert drain(response) == payload
    digest = hashlib.sha256(payload).digest()
    assert response["ETag"] == f'"{digest.hex()}"'
    assert response["Digest"] == "sha-256=" + base64.b64encode(digest).decode()
    assert response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "no-store"
    downloaded = AuditEvent.objects.get(action=AuditAction.PACKET_DOWNLOADED)
    assert (downloaded.actor_id, downloaded.target_id, downloaded.case_id) == (
        world.prosecutor.pk,
        body["id"],
        world.case.pk,
    )
    assert downloaded.changes == {
        "handoff": str(handoff.pk),
        "number": "H001",
        "sha256": digest.hex(),
        "size_bytes": len(payload),
    }
    client.get(f"/api/packets/{body['id']}/download/")
    assert AuditEvent.objects.filter(action=AuditAction.PACKET_DOWNLOADED).count() == 2


def test_packet_status_and_download_are_scoped_like_the_request(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    use_builder(monkeypatch, fake_builder())
    body = request_packet(client_for(world.lead), handoff, django_capture_on_commit_callbacks, build=True).json()
    for user in (world.lead, world.supervisor, world.prosecutor):
        assert client_for(user).get(f"/api/packets/{body['id']}/").status_code == 200
    colleague = UserFactory(username="pia_pros", agency=world.agency_p, role=Role.PROSECUTOR)
    for user in (world.teammate, world.viewer, world.investigator, world.outsider, colleague):
        client = client_for(user)
        assert client.get(f"/api/packets/{body['id']}/").status_code == 404
        assert client.get(f"/api/packets/{body['id']}/download/").status_code == 404
    listed = client_for(world.prosecutor).get(packets_url(handoff)).json()["results"]
    assert [row["id"] for row in listed] == [body["id"]]
    assert client_for(world.teammate).get(packets_url(handoff)).json()["results"] == []


def test_packets_built_before_a_return_are_hidden_from_the_prosecutor_once_resent(
    world, handoff, django_capture_on_commit_callbacks
):
    prosecutor = client_for(world.prosecutor)
    old = request_packet(prosecutor, handoff, django_capture_on_commit_callbacks, build=False).json()["id"]
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Drop the chat.")
    assert prosecutor.get(f"/api/packets/{old}/").status_code == 404
    services.handoff_submit(actor=world.lead, handoff=handoff)
    services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True)
    assert prosecutor.get(f"/api/packets/{old}/").status_code == 404
    new = request_packet(prosecutor, handoff, django_capture_on_commit_callbacks, build=False).json()["id"]
    assert [row["id"] for row in prosecutor.get(packets_url(handoff)).json()["results"]] == [new]
    assert {row["id"] for row in client_for(world.lead).get(packets_url(handoff)).json()["results"]} == {old, new}


# ---------------------------------------------------------------- the build task


def test_the_task_acknowledges_late_and_is_requeued_when_its_worker_dies():
    assert build_export_packet.acks_late is True
    assert build_export_packet.reject_on_worker_lost is True


def _queued(world: World, handoff: Handoff, capture: Any) -> ExportPacket:
    with capture(execute=False):
        packet = services.packet_request(actor=world.lead, handoff=handoff)
    return packet


def test_a_built_packet_records_its_hashes_in_the_audit_log(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    use_builder(monkeypatch, fake_builder(b"PK bytes"))
    packet = _queued(world, handoff, django_capture_on_commit_callbacks)
    result = build_export_packet.delay(str(packet.pk)).get()
    packet.refresh_from_db()
    assert result == {"packet": str(packet.pk), "status": "ready", "sha256": packet.sha256, "attempts": 1}
    assert packet.started_at is not None and packet.finished_at is not None
    assert actions_of(packet.pk) == [
        AuditAction.PACKET_REQUESTED,
        AuditAction.PACKET_BUILD_STARTED,
        AuditAction.PACKET_BUILT,
    ]
    built = AuditEvent.objects.get(action=AuditAction.PACKET_BUILT)
    assert built.actor.username == services.SYSTEM_USERNAME
    assert built.case_id == world.case.pk
    assert built.changes == {
        "handoff": str(handoff.pk),
        "number": "H001",
        "status": ["building", "ready"],
        "sha256": hashlib.sha256(b"PK bytes").hexdigest(),
        "size_bytes": 8,
        "manifest_sha256": "ab" * 32,
        "checkpoint_size": 42,
        "file_name": packet.file_name,
        "attempt": 1,
    }


def test_running_the_task_again_on_a_ready_packet_does_nothing(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    builder = use_builder(monkeypatch, fake_builder())
    packet = _queued(world, handoff, django_capture_on_commit_callbacks)
    build_export_packet.delay(str(packet.pk))
    first = ExportPacket.objects.get(pk=packet.pk)
    build_export_packet.delay(str(packet.pk))
    again = ExportPacket.objects.get(pk=packet.pk)
    assert builder.calls == [str(packet.pk)]  # type: ignore[attr-defined]
    assert (again.status, again.sha256, again.attempts, again.finished_at) == (
        "ready",
        first.sha256,
        1,
        first.finished_at,
    )
    assert actions_of(packet.pk).count(AuditAction.PACKET_BUILT) == 1


def test_a_packet_left_half_built_by_a_dead_worker_is_rebuilt(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    packet = _queued(world, handoff, django_capture_on_commit_callbacks)

    def worker_dies(*, packet: ExportPacket, on_progress: Callable[[int, str], None], **_: Any) -> PacketBuild:
        on_progress(55, "natives")
        raise SystemExit("worker lost")  # not an Exception: it escapes like a killed process

    use_builder(monkeypatch, worker_dies)
    with pytest.raises(SystemExit):
        services.packet_build(packet_id=packet.pk)
    half = ExportPacket.objects.get(pk=packet.pk)
    assert (half.status, half.progress, half.stage, half.attempts) == ("building", 55, "natives", 1)
    builder = use_builder(monkeypatch, fake_builder(b"PK rebuilt"))
    build_export_packet.delay(str(packet.pk))
    rebuilt = ExportPacket.objects.get(pk=packet.pk)
    assert builder.calls == [str(packet.pk)]  # type: ignore[attr-defined]
    assert (rebuilt.status, rebuilt.attempts) == ("ready", 2)
    assert rebuilt.sha256 == hashlib.sha256(b"PK rebuilt").hexdigest()


def test_a_packet_that_keeps_killing_its_worker_is_given_up(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    packet = _queued(world, handoff, django_capture_on_commit_callbacks)

    def worker_dies(*, packet: ExportPacket, on_progress: Callable[[int, str], None], **_: Any) -> PacketBuild:
        raise SystemExit("worker lost")

    use_builder(monkeypatch, worker_dies)
    for _ in range(services.PACKET_MAX_ATTEMPTS):
        with pytest.raises(SystemExit):
            services.packet_build(packet_id=packet.pk)
    builder = use_builder(monkeypatch, fake_builder())
    build_export_packet.delay(str(packet.pk))
    packet.refresh_from_db()
    assert builder.calls == []  # type: ignore[attr-defined]
    assert (packet.status, packet.error) == ("failed", services.PACKET_GAVE_UP)
    failed = AuditEvent.objects.get(action=AuditAction.PACKET_FAILED)
    assert failed.changes["reason"] == "attempts_exhausted"


def test_an_integrity_failure_fails_the_packet_and_it_never_becomes_ready(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    item = handoff.evidence.get()

    def mismatch(*, packet: ExportPacket, on_progress: Callable[[int, str], None], **_: Any) -> PacketBuild:
        on_progress(30, "natives")
        raise PacketIntegrityError(evidence_id=str(item.pk), expected=item.sha256, computed="00" * 32)

    use_builder(monkeypatch, mismatch)
    client = client_for(world.prosecutor)
    body = request_packet(client, handoff, django_capture_on_commit_callbacks, build=True).json()
    status = client.get(body["status_url"]).json()
    assert status["status"] == "failed"
    assert str(item.pk) in status["error"] and "00" * 32 in status["error"]
    assert status["sha256"] == "" and status["download_url"] is None
    assert client.get(f"/api/packets/{body['id']}/download/").status_code == 409
    failed = AuditEvent.objects.get(action=AuditAction.PACKET_FAILED)
    assert failed.changes["reason"] == "integrity"
    assert failed.changes["status"] == ["building", "failed"]
    build_export_packet.delay(body["id"])
    assert ExportPacket.objects.get(pk=body["id"]).status == "failed"


def test_an_unexpected_error_fails_the_packet_with_a_plain_message(
    world, handoff, django_capture_on_commit_callbacks, monkeypatch
):
    def broken(*, packet: ExportPacket, on_progress: Callable[[int, str], None], **_: Any) -> PacketBuild:
        raise RuntimeError("connection to the evidence vault reset by peer 10.0.0.7")

    use_builder(monkeypatch, broken)
    packet = _queued(world, handoff, django_capture_on_commit_callbacks)
    build_export_packet.delay(str(packet.pk))
    packet.refresh_from_db()
    assert (packet.status, packet.error) == ("failed", services.PACKET_BUILD_ERROR)
    assert AuditEvent.objects.get(action=AuditAction.PACKET_FAILED).changes["reason"] == "RuntimeError"


# ---------------------------------------------------------------- the real builder, in process


def verify(zip_path: Path, key: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603
        [sys.executable, str(VERIFIER), str(zip_path), "--public-key", key],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_real_packet_is_built_downloaded_and_verifies(world, handoff, django_capture_on_commit_callbacks, tmp_path):
    client = client_for(world.prosecutor)
    body = request_packet(client, handoff, django_capture_on_commit_callbacks, build=True).json()
    status = client.get(body["status_url"]).json()
    assert status["status"] == "ready", status
    response = client.get(f"/api/packets/{body['id']}/download/")
    assert response.status_code == 200
    data = drain(response)
    assert hashlib.sha256(data).hexdigest() == status["sha256"]
    assert response["ETag"] == f'"{status["sha256"]}"'
    zip_path = tmp_path / "packet.zip"
    zip_path.write_bytes(data)
    folder = f"{world.case.number}_H001"
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        item = handoff.evidence.get()
        assert f"{folder}/manifest.json" in names
        assert any(name.startswith(f"{folder}/natives/{item.pk}/") for name in names)
        native = next(n for n in names if n.startswith(f"{folder}/natives/{item.pk}/"))
        assert archive.read(native) == CHAT
    key = client.get("/api/audit/checkpoints/key/").content.decode().strip()
    result = verify(zip_path, key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout


def test_a_native_changed_since_intake_fails_the_real_build_and_records_custody(
    world, handoff, django_capture_on_commit_callbacks, settings
):
    item = handoff.evidence.get()
    stored = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"]) / item.content_name
    stored.chmod(0o600)
    stored.write_bytes(CHAT.replace(b"200", b"300"))
    client = client_for(world.prosecutor)
    body = request_packet(client, handoff, django_capture_on_commit_callbacks, build=True).json()
    packet = ExportPacket.objects.get(pk=body["id"])
    assert packet.status == PacketStatus.FAILED
    assert packet.sha256 == "" and packet.file_name == ""
    assert item.sha256 in packet.error
    assert client.get(f"/api/packets/{packet.pk}/download/").status_code == 409
    mismatch = CustodyEvent.objects.filter(evidence=item, action=CustodyAction.VERIFIED).get()
    assert mismatch.details["match"] is False
    assert not storages["packets"].exists(f"{packet.pk}.zip")
