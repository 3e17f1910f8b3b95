"""Building export packets: the files PACKET.md lists, deterministic bytes, streaming, the
audit excerpt, and what a changed native does to a build."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile

from audit import merkle, note, signing
from audit.chain import canonical_entry
from audit.models import AuditAction, AuditEvent, Checkpoint
from audit.services import audit_record
from cases import services
from cases.models import (
    CustodyAction,
    CustodyEvent,
    EvidenceKind,
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffStatus,
    PacketStatus,
)
from cases.packets import PacketIntegrityError, build_packet
from cases.packets.builder import CHUNK, INTEGRITY_CONTEXT, INTEGRITY_NOTE, _Packet
from cases.packets.content import DAT_FIELDS, safe_filename
from cases.packets.excerpt import EVENT_FIELDS
from cases.packets.verify_packet import verify
from tests.factories import EvidenceFactory
from tests.packets.conftest import CHAT, SCREENSHOT, Built, Scenario, build


def _files(built: Built) -> list[str]:
    return [name.split("/", 1)[1] for name in built.names()]


def _evidence_rows(built: Built) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(built.read("evidence.csv").decode("utf-8-sig"), newline="")))


def test_packet_holds_exactly_the_files_packet_md_lists_in_one_folder(built: Built, scenario: Scenario) -> None:
    chat_name = f"natives/{scenario.chat.pk}/chat log.txt"
    shot_name = f"natives/{scenario.screenshot.pk}/ad __ capture.png"
    assert built.folder == f"{scenario.world.case.number}_H001"
    assert _files(built) == [
        chat_name,
        shot_name,
        "report.pdf",
        "case.json",
        "leads.csv",
        "evidence.csv",
        "custody.csv",
        "loadfile.dat",
        "audit/events.jsonl",
        "audit/proofs.json",
        "audit/checkpoint.txt",
        "VERIFY.txt",
        "verify_packet.py",
        "manifest.json",
        "manifest.sig",
    ]
    assert built.read("verify_packet.py") == (Path(__file__).parents[2] / "cases/packets/verify_packet.py").read_bytes()
    assert f"prosecution handoff {built.folder} from Metro County Sheriff" in built.read("VERIFY.txt").decode()


def test_build_result_describes_the_file_in_the_packets_storage(built: Built, packet: ExportPacket) -> None:
    body = built.path.read_bytes()
    assert built.result.file_name == f"{packet.pk}.zip"
    assert storages["packets"].exists(built.result.file_name)
    assert built.result.sha256 == hashlib.sha256(body).hexdigest()
    assert built.result.size_bytes == len(body)
    assert built.result.manifest_sha256 == hashlib.sha256(built.read("manifest.json")).hexdigest()
    assert built.result.checkpoint_size == Checkpoint.objects.latest().tree_size
    assert built.result.signature == built.read("manifest.sig").decode()
    text = note.open_note(built.result.signature, signing.verifier())
    assert text == f"caseapi packet manifest\n{built.folder}\n{built.result.manifest_sha256}\n"
    assert sorted(p.name for p in built.path.parent.iterdir()) == [built.path.name]


def test_build_leaves_the_packet_row_to_the_caller(built: Built, packet: ExportPacket) -> None:
    packet.refresh_from_db()
    assert (packet.status, packet.progress, packet.stage, packet.sha256) == (PacketStatus.QUEUED, 0, "", "")


STAGES = ["collecting", "natives", "report", "audit", "manifest", "finishing"]


def _stages(progress: list[tuple[int, str]]) -> list[str]:
    stages: list[str] = []
    for _, stage in progress:
        if not stages or stages[-1] != stage:
            stages.append(stage)
    return stages


def test_progress_goes_through_each_stage_in_order_up_to_100(
    packet: ExportPacket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cases.packets.builder.PROGRESS_INTERVAL", 0)
    built = build(packet)
    assert _stages(built.progress) == STAGES
    percents = [percent for percent, _ in built.progress]
    assert percents == sorted(percents)
    assert built.progress[0] == (0, "collecting")
    assert built.progress[-1] == (100, "finishing")


def test_progress_is_reported_a_few_times_a_second_at_most(built: Built) -> None:
    """The callback usually saves the packet row: a fast build reports its start and its end,
    and stages in between only as time passes."""
    assert built.progress[0] == (0, "collecting")
    assert built.progress[-1] == (100, "finishing")
    assert [STAGES.index(stage) for stage in _stages(built.progress)] == sorted(
        STAGES.index(stage) for stage in _stages(built.progress)
    )
    assert len(built.progress) < 10


def test_building_twice_at_the_same_checkpoint_gives_the_same_bytes(built: Built, scenario: Scenario) -> None:
    again = ExportPacket.objects.create(handoff=scenario.handoff, requested_by=scenario.world.prosecutor)
    second = build(again)
    assert second.result.file_name != built.result.file_name
    assert second.result.checkpoint_size == built.result.checkpoint_size
    assert second.result.sha256 == built.result.sha256
    assert second.path.read_bytes() == built.path.read_bytes()


def test_a_new_case_event_moves_the_next_packet_to_a_newer_checkpoint(built: Built, scenario: Scenario) -> None:
    services.custody_record(
        actor=scenario.world.lead, item=scenario.chat, action=CustodyAction.CHECKED_OUT, to_party="Lab"
    )
    later = build(ExportPacket.objects.create(handoff=scenario.handoff, requested_by=scenario.world.prosecutor))
    assert later.result.checkpoint_size > built.result.checkpoint_size
    assert later.result.sha256 != built.result.sha256
    old_lines = built.read("audit/events.jsonl").splitlines()
    new_lines = later.read("audit/events.jsonl").splitlines()
    assert new_lines[: len(old_lines)] == old_lines
    assert [json.loads(line)["canonical"]["action"] for line in new_lines[len(old_lines) :]] == [
        AuditAction.CUSTODY_RECORDED
    ]


def test_a_build_pinned_to_an_earlier_checkpoint_gives_that_packets_bytes(built: Built, scenario: Scenario) -> None:
    """Events that change nothing in the packet (here: someone viewed the case) still move the
    latest checkpoint; a rebuild pinned to the first build's checkpoint is byte-identical."""
    world = scenario.world
    audit_record(action=AuditAction.CASE_VIEWED, actor=world.supervisor, target=world.case, case_id=world.case.pk)
    pinned = build_packet(
        packet=ExportPacket.objects.create(handoff=scenario.handoff, requested_by=world.prosecutor),
        on_progress=lambda percent, stage: None,
        checkpoint_size=built.result.checkpoint_size,
    )
    latest = build(ExportPacket.objects.create(handoff=scenario.handoff, requested_by=world.prosecutor))
    assert pinned.checkpoint_size == built.result.checkpoint_size < latest.result.checkpoint_size
    assert pinned.sha256 == built.result.sha256 != latest.result.sha256


def test_zip_entries_are_stored_with_a_fixed_time_and_mode(built: Built) -> None:
    with zipfile.ZipFile(built.path) as zf:
        infos = zf.infolist()
    assert {(i.date_time, i.compress_type, i.external_attr >> 16, i.create_system) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), zipfile.ZIP_STORED, 0o100644, 3)
    }


def test_natives_are_byte_for_byte_and_references_are_listed_not_copied(built: Built, scenario: Scenario) -> None:
    assert built.read(f"natives/{scenario.chat.pk}/chat log.txt") == CHAT
    assert built.read(f"natives/{scenario.screenshot.pk}/ad __ capture.png") == SCREENSHOT
    assert not [name for name in built.names() if str(scenario.reference.pk) in name]
    listed = {item["id"]: item for item in json.loads(built.read("case.json"))["evidence"]}
    reference = listed[str(scenario.reference.pk)]
    assert (reference["native_path"], reference["external_uri"], reference["sha256"]) == (
        None,
        scenario.reference.external_uri,
        scenario.reference.sha256,
    )
    rows = {row["evidence_id"]: row for row in _evidence_rows(built)}
    assert rows[str(scenario.reference.pk)]["native_path"] == ""
    assert rows[str(scenario.reference.pk)]["external_uri"] == scenario.reference.external_uri


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("chat log.txt", "chat log.txt"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\lena\\dump.bin", "dump.bin"),
        ("CON.txt", "_CON.txt"),
        ("a<b>:c|d?.txt", "a_b__c_d_.txt"),
        ("...", "native"),
        ("", "native"),
        ("x" * 300 + ".jpeg", "x" * 145 + ".jpeg"),
    ],
)
def test_native_file_names_are_safe_on_every_platform(original: str, expected: str) -> None:
    assert safe_filename(original, "native") == expected


def test_only_the_handed_off_leads_and_evidence_are_in_the_packet(built: Built, scenario: Scenario) -> None:
    data = json.loads(built.read("case.json"))
    assert [lead["id"] for lead in data["leads"]] == [str(scenario.lead_a.pk), str(scenario.lead_b.pk)]
    assert {item["id"] for item in data["evidence"]} == {
        str(scenario.chat.pk),
        str(scenario.screenshot.pk),
        str(scenario.reference.pk),
    }
    everything = b"".join(built.read(name) for name in ("leads.csv", "evidence.csv", "custody.csv", "loadfile.dat"))
    assert str(scenario.excluded_lead.pk).encode() not in everything
    assert str(scenario.excluded_item.pk).encode() not in everything
    assert b"Not handed off" not in everything


def test_case_json_carries_the_handoff_as_sorted_data(built: Built, scenario: Scenario) -> None:
    raw = built.read("case.json")
    data = json.loads(raw)
    lines = [line.removesuffix(",") for line in raw.decode().splitlines()]
    assert [line.split('"')[1] for line in lines if line.startswith('  "')] == sorted(data)
    for item in data["evidence"]:
        assert f"    {json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(', ', ': '))}" in lines
    assert data["format"] == "caseapi-packet/1"
    assert data["case"]["number"] == scenario.world.case.number
    assert data["case"]["summary"] == "Decoy ads answered by 40 buyers."
    assert data["handoff"]["charges"] == scenario.handoff.charges
    assert data["handoff"]["narrative"] == scenario.handoff.narrative
    assert data["handoff"]["prosecutor"]["username"] == "pat_pros"
    chat_custody = [e["action"] for e in data["custody"] if e["evidence_id"] == str(scenario.chat.pk)]
    assert chat_custody == ["collected", "transferred"]
    assert data["audit"]["tree_size"] == built.result.checkpoint_size
    assert data["bates"]["report_first"] == "MCSO-000001"


def test_csvs_open_in_a_spreadsheet_and_defuse_formulas(built: Built, scenario: Scenario) -> None:
    for name in ("leads.csv", "evidence.csv", "custody.csv"):
        raw = built.read(name)
        assert raw.startswith(b"\xef\xbb\xbf"), name
        assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b""), name
    leads = list(csv.DictReader(io.StringIO(built.read("leads.csv").decode("utf-8-sig"), newline="")))
    assert leads[0]["display_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert leads[0]["identifiers"] == "email:b@example.org; phone:+12025550143"
    assert leads[0]["minor_age_mentioned"] == "true"
    assert leads[1]["display_name"] == "Zoë Ångström"
    assert leads[1]["notes"] == "'-2 days before the meet"
    custody = list(csv.DictReader(io.StringIO(built.read("custody.csv").decode("utf-8-sig"), newline="")))
    assert [(row["evidence_id"], row["action"]) for row in custody] == [
        (str(scenario.chat.pk), "collected"),
        (str(scenario.chat.pk), "transferred"),
        (str(scenario.screenshot.pk), "collected"),
        (str(scenario.reference.pk), "collected"),
    ]


def _loadfile(built: Built) -> tuple[list[str], list[list[str]]]:
    raw = built.read("loadfile.dat")
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.endswith(b"\r\n")
    lines = raw.decode("utf-8")[1:].split("\r\n")[:-1]
    rows = []
    for line in lines:
        cells = line.split("\u00b6")
        assert all(c.startswith("\u00fe") and c.endswith("\u00fe") for c in cells), line
        rows.append([c[1:-1] for c in cells])
    return rows[0], rows[1:]


def test_loadfile_follows_the_concordance_conventions(built: Built, scenario: Scenario) -> None:
    header, rows = _loadfile(built)
    assert header == list(DAT_FIELDS)
    data = json.loads(built.read("case.json"))
    pages = int(data["bates"]["report_last"].split("-")[1])
    by_id = [dict(zip(header, row, strict=True)) for row in rows]
    assert [row["DOCID"] for row in by_id] == [
        str(scenario.chat.pk),
        str(scenario.screenshot.pk),
        str(scenario.reference.pk),
    ]
    assert [row["BEGBATES"] for row in by_id] == [f"MCSO-{pages + n:06d}" for n in (1, 2, 3)]
    assert all(row["BEGBATES"] == row["ENDBATES"] for row in by_id)
    assert [row["SHA256"] for row in by_id] == [
        scenario.chat.sha256,
        scenario.screenshot.sha256,
        scenario.reference.sha256,
    ]
    assert by_id[0]["NATIVEPATH"] == f"natives/{scenario.chat.pk}/chat log.txt"
    assert by_id[0]["FILENAME"] == "chat log.txt"
    assert by_id[0]["DATECOLLECTED"] == scenario.chat.collected_at.date().isoformat()
    assert by_id[0]["CUSTODIAN"].endswith("(lena_lead)")
    assert by_id[2]["NATIVEPATH"] == ""
    assert all(f"{built.folder}/{row['NATIVEPATH']}" in built.names() for row in by_id[:2])


def test_events_jsonl_holds_every_case_event_up_to_the_checkpoint(built: Built, scenario: Scenario) -> None:
    size = built.result.checkpoint_size
    expected = list(
        AuditEvent.objects.filter(case_id=scenario.world.case.pk, seq__lte=size)
        .order_by("seq")
        .values(*EVENT_FIELDS, "prev_hash", "entry_hash")
    )
    lines = built.read("audit/events.jsonl").split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    assert len(lines) == len(expected) > 5
    for line, row in zip(lines, expected, strict=True):
        canonical = canonical_entry(row)
        assert line == (
            b'{"canonical":'
            + canonical
            + f',"entry_hash":"{row["entry_hash"]}","prev_hash":"{row["prev_hash"]}","seq":{row["seq"]}}}'.encode()
        )
        assert hashlib.sha256(bytes.fromhex(row["prev_hash"]) + canonical).hexdigest() == row["entry_hash"]
        assert json.loads(line)["canonical"]["case_id"] == str(scenario.world.case.pk)
    assert str(scenario.world.other_case.pk).encode() not in built.read("audit/events.jsonl")


def test_each_event_has_an_inclusion_proof_to_the_packets_signed_checkpoint(built: Built) -> None:
    checkpoint = Checkpoint.objects.get(tree_size=built.result.checkpoint_size)
    assert built.read("audit/checkpoint.txt").decode() == checkpoint.signed_note
    body = note.parse_checkpoint(note.open_note(checkpoint.signed_note, signing.verifier()))
    proofs = json.loads(built.read("audit/proofs.json"))
    assert proofs["checkpoint"] == {
        "origin": body.origin,
        "root_hash": base64.b64encode(body.root_hash).decode(),
        "tree_size": body.tree_size,
    }
    events = [json.loads(line) for line in built.read("audit/events.jsonl").splitlines()]
    assert [p["seq"] for p in proofs["proofs"]] == [e["seq"] for e in events]
    for proof, event in zip(proofs["proofs"], events, strict=True):
        leaf = merkle.leaf_hash(bytes.fromhex(event["entry_hash"]))
        assert proof["leaf_hash"] == base64.b64encode(leaf).decode()
        hashes = [base64.b64decode(h) for h in proof["proof"]]
        assert merkle.verify_inclusion(leaf, event["seq"] - 1, body.tree_size, hashes, body.root_hash)


def test_manifest_lists_every_other_file_with_its_size_and_hash(built: Built) -> None:
    manifest = json.loads(built.read("manifest.json"))
    paths = [entry["path"] for entry in manifest["files"]]
    assert paths == sorted(set(_files(built)) - {"manifest.json", "manifest.sig"})
    for entry in manifest["files"]:
        body = built.read(entry["path"])
        assert (entry["size"], entry["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    assert (manifest["folder"], manifest["hash_algorithm"]) == (built.folder, "SHA-256")


def _corrupt(item: Any, data: bytes) -> None:
    path = Path(storages["evidence"].path(item.content_name))
    path.chmod(0o644)
    path.write_bytes(data)


def _packet_files() -> list[str]:
    root = Path(storages["packets"].location)
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_changed_native_fails_the_build_records_custody_and_leaves_no_file(
    packet: ExportPacket, scenario: Scenario
) -> None:
    _corrupt(scenario.screenshot, SCREENSHOT[:-1] + b"\x00")
    computed = hashlib.sha256(SCREENSHOT[:-1] + b"\x00").hexdigest()
    with pytest.raises(PacketIntegrityError) as caught:
        build_packet(packet=packet, on_progress=lambda percent, stage: None)
    error = caught.value
    assert (error.evidence_id, error.expected, error.computed) == (
        str(scenario.screenshot.pk),
        scenario.screenshot.sha256,
        computed,
    )
    event = CustodyEvent.objects.filter(evidence=scenario.screenshot).latest("created_at")
    assert (event.action, event.actor.username, event.note) == (CustodyAction.VERIFIED, "_system", INTEGRITY_NOTE)
    assert event.details == {
        "expected": scenario.screenshot.sha256,
        "computed": computed,
        "match": False,
        "context": INTEGRITY_CONTEXT,
        "packet": str(packet.pk),
    }
    audit = AuditEvent.objects.latest("id")
    assert (audit.action, audit.actor_name, audit.target_id, audit.case_id) == (
        AuditAction.EVIDENCE_VERIFIED,
        "_system",
        str(scenario.screenshot.pk),
        scenario.world.case.pk,
    )
    assert audit.changes == {"computed": computed, "match": False, "context": "packet build", "packet": str(packet.pk)}
    assert _packet_files() == []


def test_a_missing_native_fails_the_build_the_same_way(packet: ExportPacket, scenario: Scenario) -> None:
    Path(storages["evidence"].path(scenario.chat.content_name)).unlink()
    with pytest.raises(PacketIntegrityError) as caught:
        build_packet(packet=packet, on_progress=lambda percent, stage: None)
    assert (caught.value.evidence_id, caught.value.computed) == (str(scenario.chat.pk), "")
    event = CustodyEvent.objects.filter(evidence=scenario.chat).latest("created_at")
    assert event.details["match"] is False
    assert event.details["error"] == "content missing"
    assert _packet_files() == []


def test_natives_stream_through_in_chunks_whatever_their_size(
    packet: ExportPacket, scenario: Scenario, public_key: str
) -> None:
    big = b"RIFF\xff\xff\xff\xffWAVE" + bytes(range(256)) * (4 * 48 * 1024)  # 48 MiB, a WAV recording
    item = EvidenceFactory(
        case=scenario.world.case,
        kind=EvidenceKind.RECORDING,
        upload=SimpleUploadedFile("call.wav", big, content_type="audio/wav"),
    )
    HandoffEvidence.objects.create(handoff=scenario.handoff, evidence=item)
    del big
    tracemalloc.start()
    try:
        result = build_packet(packet=packet, on_progress=lambda percent, stage: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size_bytes > 48 * 1024 * 1024
    assert peak < 16 * 1024 * 1024  # a copy buffer, the packet-hash buffer, the report
    assert verify(storages["packets"].path(result.file_name), public_key, emit=lambda line: None)


def test_a_storage_without_local_paths_gets_the_finished_packet(
    settings: Any, packet: ExportPacket, public_key: str, tmp_path: Path
) -> None:
    settings.STORAGES = {**settings.STORAGES, "packets": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    result = build_packet(packet=packet, on_progress=lambda percent, stage: None)
    assert result.file_name == f"{packet.pk}.zip"
    copy = tmp_path / "downloaded.zip"
    with storages["packets"].open(result.file_name, "rb") as handle:
        copy.write_bytes(handle.read())
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == result.sha256
    assert verify(str(copy), public_key, emit=lambda line: None)


def test_the_packet_hash_covers_exactly_the_bytes_written(tmp_path: Path) -> None:
    """The whole-file SHA-256 is computed while the ZIP is still being written; it must equal a
    hash of the finished file, however the entries' sizes fall against the read chunks."""
    sizes = [0, 1, 17, 4095, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] + [n * 37 for n in range(300)]
    path = tmp_path / "many.zip"
    with _Packet(path, "F") as packet:
        for n, size in enumerate(sizes):
            body = bytes([n % 251]) * size
            assert packet.write(f"entry-{n}", [body[: size // 2], body[size // 2 :]], size) == (
                hashlib.sha256(body).hexdigest()
            )
    assert (packet.sha256, packet.size) == (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert len(zf.namelist()) == len(sizes)


def test_a_dead_workers_temporary_file_is_removed_by_the_next_attempt(packet: ExportPacket) -> None:
    root = Path(storages["packets"].location)
    root.mkdir(parents=True, exist_ok=True)
    stale = root / f".{packet.pk}.zip.0123456789ab.part"
    stale.write_bytes(b"half a packet")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = root / f".{packet.pk}.zip.ba9876543210.part"
    fresh.write_bytes(b"another worker, still writing")
    result = build_packet(packet=packet, on_progress=lambda percent, stage: None)
    assert _packet_files() == sorted([fresh.name, result.file_name])


def test_a_handoff_of_references_only_still_builds_and_verifies(world: Any, public_key: str) -> None:
    item = EvidenceFactory(case=world.case, kind=EvidenceKind.SUBPOENA_RETURN)
    handoff = Handoff.objects.create(
        case=world.case,
        number="H002",
        prosecutor=world.prosecutor,
        prosecutor_office=world.agency_p,
        created_by=world.lead,
        status=HandoffStatus.SENT,
    )
    HandoffEvidence.objects.create(handoff=handoff, evidence=item)
    built = build(ExportPacket.objects.create(handoff=handoff, requested_by=world.prosecutor))
    assert not [name for name in built.names() if "/natives/" in name]
    assert verify(str(built.path), public_key, emit=lambda line: None)


def test_proofs_do_not_depend_on_how_they_are_batched(
    built: Built, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cases.packets.excerpt.PROOF_BATCH", 3)
    monkeypatch.setattr("cases.packets.excerpt.IN_CHUNK", 2)
    monkeypatch.setattr("cases.packets.excerpt.CHUNK", 4)
    again = build(ExportPacket.objects.create(handoff=scenario.handoff, requested_by=scenario.world.prosecutor))
    assert again.read("audit/events.jsonl") == built.read("audit/events.jsonl")
    assert again.read("audit/proofs.json") == built.read("audit/proofs.json")
    assert again.result.sha256 == built.result.sha256
