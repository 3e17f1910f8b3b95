"""report.pdf: sections, the FRE 902(14) certification, Bates numbers on every page without
gaps into the natives' numbers, and extractable hashes."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from pypdf import PdfReader

from cases.models import EvidenceKind, ExportPacket, HandoffEvidence
from tests.factories import EvidenceFactory
from tests.packets.conftest import Built, Scenario, build

BATES = re.compile(r"MCSO-\d{6}")


def _pages(built: Built) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(built.read("report.pdf"))).pages]


def _stamp(text: str) -> str:
    """The Bates stamp is the last thing drawn on a page."""
    return BATES.findall(text)[-1]


def test_every_page_is_stamped_with_its_own_bates_number_without_gaps(built: Built) -> None:
    pages = _pages(built)
    assert [_stamp(text) for text in pages] == [f"MCSO-{n:06d}" for n in range(1, len(pages) + 1)]
    data = json.loads(built.read("case.json"))
    assert data["bates"]["report_last"] == f"MCSO-{len(pages):06d}"
    assert [item["bates"] for item in data["evidence"]] == [
        f"MCSO-{n:06d}" for n in range(len(pages) + 1, len(pages) + 1 + len(data["evidence"]))
    ]
    assert data["bates"]["last"] == data["evidence"][-1]["bates"]


def test_report_text_gives_every_evidence_hash_and_bates_number(built: Built, scenario: Scenario) -> None:
    text = "\n".join(_pages(built))
    for item in (scenario.chat, scenario.screenshot, scenario.reference):
        assert item.sha256 in text
    for item in json.loads(built.read("case.json"))["evidence"]:
        assert item["bates"] in text
    assert "Zo\u00eb \u00c5ngstr\u00f6m" in text
    assert "Not handed off" not in text


def test_report_has_every_section_and_a_902_14_certification(built: Built, scenario: Scenario) -> None:
    pages = _pages(built)
    text = "\n".join(pages)
    for heading in (
        "Prosecution Handoff Packet",
        "Case summary",
        "Narrative",
        "Charges considered",
        "Leads",
        "Evidence index",
        "Chain of custody",
    ):
        assert heading in text
    assert "18 U.S.C. \u00a7 1591" in text
    assert "The buyer arranged a meeting." in text
    assert "Sealed bag 7" in text
    certification = pages[-1]
    assert "Certification of authenticity of data copied from an electronic device" in certification
    assert "Federal Rules of Evidence 902(14)" in certification
    assert "28 U.S.C. \u00a7 1746" in certification
    assert "(name)" in certification and "my title is" in certification
    assert "Hash algorithm" in certification and "SHA-256" in certification
    stored = [item for item in json.loads(built.read("case.json"))["evidence"] if item["native_path"]]
    assert f"{stored[0]['bates']} to {stored[-1]['bates']}" in certification


def test_a_long_evidence_index_keeps_numbering_and_hashes_across_pages(scenario: Scenario, world: Any) -> None:
    for n in range(70):
        item = EvidenceFactory(case=world.case, kind=EvidenceKind.DOCUMENT, description=f"Subpoena return {n}")
        HandoffEvidence.objects.create(handoff=scenario.handoff, evidence=item)
    built = build(ExportPacket.objects.create(handoff=scenario.handoff, requested_by=world.prosecutor))
    pages = _pages(built)
    assert len(pages) > 8
    assert [_stamp(text) for text in pages] == [f"MCSO-{n:06d}" for n in range(1, len(pages) + 1)]
    text = "\n".join(pages)
    evidence = json.loads(built.read("case.json"))["evidence"]
    assert len(evidence) == 73
    for item in evidence:
        assert item["sha256"] in text
        assert item["bates"] in text
