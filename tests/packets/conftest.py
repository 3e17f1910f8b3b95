"""Fixtures for export packets: a sent handoff with leads, stored and referenced evidence and
custody, its packet row, one finished build, and a way to rewrite a built ZIP."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audit import signing
from cases import services
from cases.models import (
    CustodyAction,
    EvidenceKind,
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffLead,
    HandoffStatus,
)
from cases.packets import PacketBuild, build_packet
from tests.factories import EvidenceFactory, LeadFactory

CHAT = b"buyer: how much\nbot: 200\nbuyer: she is 15 right?\n"
SCREENSHOT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64


@dataclass
class Scenario:
    """`handoff` includes lead_a and lead_b, a stored chat log, a stored screenshot and a
    reference into an external vault; `excluded_lead` and `excluded_item` are in the case only."""

    world: Any
    handoff: Handoff
    lead_a: Any
    lead_b: Any
    excluded_lead: Any
    chat: Any
    screenshot: Any
    reference: Any
    excluded_item: Any


@pytest.fixture
def scenario(world: Any) -> Scenario:
    case = world.case
    services.case_update(actor=world.lead, case=case, data={"summary": "Decoy ads answered by 40 buyers."})
    lead_a = LeadFactory(
        case=case,
        display_name='=HYPERLINK("http://evil.example","click")',
        minor_age_mentioned=True,
        identifiers=[{"kind": "phone", "value": "(202) 555-0143"}, {"kind": "email", "value": "B@Example.org"}],
    )
    lead_b = LeadFactory(case=case, display_name="Zoë Ångström", notes="-2 days before the meet")
    excluded_lead = LeadFactory(case=case, display_name="Not handed off")
    now = timezone.now()
    chat = EvidenceFactory(
        case=case,
        lead=lead_a,
        kind=EvidenceKind.CHAT_TRANSCRIPT,
        upload=SimpleUploadedFile("chat log.txt", CHAT, content_type="text/plain"),
        collected_at=now - timedelta(days=3),
        description="Transcript of the decoy chat",
    )
    screenshot = EvidenceFactory(
        case=case,
        kind=EvidenceKind.SCREENSHOT,
        upload=SimpleUploadedFile("ad þ¶ capture.png", SCREENSHOT, content_type="image/png"),
        collected_at=now - timedelta(days=2),
    )
    reference = EvidenceFactory(
        case=case, kind=EvidenceKind.DEVICE_EXTRACTION, collected_at=now - timedelta(days=1), size_bytes=987654
    )
    excluded_item = EvidenceFactory(case=case, collected_at=now - timedelta(hours=1))
    services.custody_record(
        actor=world.lead,
        item=chat,
        action=CustodyAction.TRANSFERRED,
        from_party="lena_lead",
        to_party="Evidence room",
        location="MCSO HQ",
        note="Sealed bag 7",
    )
    handoff = Handoff.objects.create(
        case=case,
        number="H001",
        prosecutor=world.prosecutor,
        prosecutor_office=world.agency_p,
        charges=[
            {"statute": "18 U.S.C. \u00a7 1591", "text": "Sex trafficking of children"},
            {"statute": "F.S. 796.07", "text": "Solicitation"},
        ],
        narrative="On three nights the decoy ad was answered.\nThe buyer arranged a meeting.",
        status=HandoffStatus.SENT,
        created_by=world.lead,
        submitted_by=world.lead,
        submitted_at=now,
        reviewed_by=world.supervisor,
        reviewed_at=now,
        sent_at=now,
    )
    for lead in (lead_a, lead_b):
        HandoffLead.objects.create(handoff=handoff, lead=lead)
    for item in (chat, screenshot, reference):
        HandoffEvidence.objects.create(handoff=handoff, evidence=item)
    return Scenario(world, handoff, lead_a, lead_b, excluded_lead, chat, screenshot, reference, excluded_item)


@pytest.fixture
def packet(scenario: Scenario) -> ExportPacket:
    return ExportPacket.objects.create(handoff=scenario.handoff, requested_by=scenario.world.prosecutor)


@dataclass
class Built:
    result: PacketBuild
    path: Path
    progress: list[tuple[int, str]] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return self.names()[0].split("/", 1)[0]

    def names(self) -> list[str]:
        with zipfile.ZipFile(self.path) as zf:
            return zf.namelist()

    def read(self, inner: str) -> bytes:
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(f"{self.folder}/{inner}")


def build(packet: ExportPacket) -> Built:
    progress: list[tuple[int, str]] = []
    result = build_packet(packet=packet, on_progress=lambda percent, stage: progress.append((percent, stage)))
    return Built(result=result, path=Path(storages["packets"].path(result.file_name)), progress=progress)


@pytest.fixture
def built(packet: ExportPacket) -> Built:
    return build(packet)


@pytest.fixture
def public_key() -> str:
    return signing.verifier().text()


def rewrite(
    source: Path,
    target: Path,
    change: Callable[[list[tuple[zipfile.ZipInfo, bytes]]], list[tuple[zipfile.ZipInfo, bytes]]],
) -> Path:
    """Copy the ZIP at `source` to `target`, passing its (info, bytes) entries through `change`."""
    with zipfile.ZipFile(source) as zf:
        entries = [(info, zf.read(info)) for info in zf.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info, data in change(entries):
            out.writestr(info, data)
    target.write_bytes(buffer.getvalue())
    return target
