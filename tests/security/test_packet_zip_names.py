"""Export packets: whatever an evidence item's original file name holds, every ZIP entry is a
plain relative path inside the packet's one folder, and extraction cannot leave it."""

from __future__ import annotations

import posixpath
import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audit import signing
from cases.models import EvidenceItem, ExportPacket, Handoff, HandoffEvidence, HandoffStatus
from cases.packets import build_packet
from cases.packets.builder import ENTRY_NAME_MAX_BYTES, UnsafeEntryName, entry_name
from cases.packets.verify_packet import path_problems, verify
from cases.uploads import safe_filename
from tests.factories import EvidenceFactory

FOLDER = "MCSO-2026-00001_H001"
HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\x.txt",
    "a/../../b",
    "\x00.pdf",
    "/etc/shadow",
    "C:\\Windows\\evil.dll",
    "C:evil.dll",
    "..",
    ".",
    "",
    "   ",
    "x" * 1000 + ".pdf",
    "\u00e9" * 300 + ".txt",
    "Zoe\u0308 \u8a3c\u62e0 \U0001f339.txt",  # not NFC; CJK; emoji
    "report\u202egpj.exe",
    "line\nbreak\r.txt",
    "NUL",
    "aux.txt",
    "trailing. ",
    "\u00fe\u00b6 load-file delimiters.txt",
]


def assert_plain_entry(name: str, folder: str) -> None:
    parts = name.split("/")
    assert parts[0] == folder, name
    assert all(part not in ("", ".", "..") for part in parts), name
    assert "\\" not in name and not name.startswith("/"), name
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in name), name
    assert posixpath.normpath(name) == name, name
    assert unicodedata.normalize("NFC", name) == name, name


@pytest.mark.parametrize("original", HOSTILE_NAMES)
def test_a_native_path_made_from_any_name_stays_in_its_folder(original):
    native = safe_filename(original, "native")
    name = entry_name(FOLDER, f"natives/0b5c1f7e-1111-4222-8333-944445555666/{native}")
    assert_plain_entry(name, FOLDER)
    assert len(name.split("/")) == 4
    assert len(native.encode()) <= 150


@pytest.mark.parametrize(
    "path",
    [
        "../evil.sh",
        "natives/x/../../../evil.sh",
        "natives//x.txt",
        "natives/./x.txt",
        "natives/x\\..\\..\\evil.sh",
        "natives/x/\x00.pdf",
        "natives/x/C:evil.dll",
        "natives/x/report\u202egpj.exe",
        "natives/x/Zoe\u0308.txt",
        "natives/x/",
        "natives/" + "x" * ENTRY_NAME_MAX_BYTES,
    ],
)
def test_the_builder_refuses_an_entry_name_that_could_escape(path):
    with pytest.raises(UnsafeEntryName):
        entry_name(FOLDER, path)


def test_the_builder_refuses_a_folder_of_more_than_one_component():
    with pytest.raises(UnsafeEntryName):
        entry_name("a/../b", "case.json")


@pytest.fixture
def hostile_packet(world: Any) -> tuple[ExportPacket, list[EvidenceItem]]:
    """A sent handoff whose stored evidence carries hostile original names, as an older version
    or a direct import could have stored them (the column is not part of the fixed intake)."""
    items = []
    for index, original in enumerate(name for name in HOSTILE_NAMES if "\x00" not in name):
        item = EvidenceFactory(
            case=world.case, upload=SimpleUploadedFile(f"n{index}.txt", f"native {index}\n".encode())
        )
        EvidenceItem.objects.filter(pk=item.pk).update(original_filename=original[:255])
        items.append(item)
    items.append(EvidenceFactory(case=world.case, upload=SimpleUploadedFile("\x00.pdf", b"%PDF-1.7\n%\xe2\xe3\n")))
    now = timezone.now()
    handoff = Handoff.objects.create(
        case=world.case,
        number="H001",
        prosecutor=world.prosecutor,
        prosecutor_office=world.agency_p,
        charges=[{"statute": "F.S. 796.07", "text": "Solicitation"}],
        narrative="Hostile names.",
        status=HandoffStatus.SENT,
        created_by=world.lead,
        submitted_by=world.lead,
        submitted_at=now,
        reviewed_by=world.supervisor,
        reviewed_at=now,
        sent_at=now,
    )
    for item in items:
        HandoffEvidence.objects.create(handoff=handoff, evidence=item)
    return ExportPacket.objects.create(handoff=handoff, requested_by=world.prosecutor), items


def test_a_packet_of_hostile_names_has_only_plain_entries_and_verifies(hostile_packet, tmp_path):
    packet, items = hostile_packet
    result = build_packet(packet=packet, on_progress=lambda percent, stage: None)
    path = Path(storages["packets"].path(result.file_name))
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        folder, problems = path_problems(infos)
        assert problems == []
        natives = [info.filename for info in infos if "/natives/" in info.filename]
        assert len(natives) == len(items)
        for info in infos:
            assert_plain_entry(info.filename, folder)
        assert f"{folder}/natives/{items[0].pk}/passwd" in natives
        assert f"{folder}/natives/{items[1].pk}/x.txt" in natives
        assert f"{folder}/natives/{items[2].pk}/b" in natives
        assert f"{folder}/natives/{items[-1].pk}/pdf" in natives  # NUL dropped at intake, then the dot
        target = (tmp_path / "out").resolve()
        zf.extractall(target)
    extracted = [p.resolve() for p in target.rglob("*") if p.is_file()]
    assert len(extracted) == len(infos)
    assert all(p.is_relative_to(target / folder) for p in extracted)
    assert verify(str(path), signing.verifier().text(), emit=lambda line: None)
