"""What a packet says about its handoff: the data read once from the database, and the text
files made from it (case.json, the CSVs, loadfile.dat), all byte-for-byte deterministic."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from audit.models import Checkpoint
from cases.models import CustodyEvent, EvidenceItem, Handoff, HandoffEvidence, HandoffLead, Lead
from cases.uploads import safe_filename

PACKET_FORMAT = "caseapi-packet/1"
BOM = "\ufeff"
DAT_QUOTE = "\u00fe"
DAT_DELIMITER = "\u00b6"
DAT_NEWLINE = "\u00ae"
DAT_FIELDS = ("BEGBATES", "ENDBATES", "DOCID", "CUSTODIAN", "DATECOLLECTED", "SHA256", "FILENAME", "NATIVEPATH")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
User = get_user_model()


def iso(value: dt.datetime | None) -> str | None:
    """UTC, to the second, with a Z: 2026-11-28T15:42:49Z."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def person(user: AbstractBaseUser | None) -> dict[str, str] | None:
    if user is None:
        return None
    full = f"{user.first_name} {user.last_name}".strip()
    return {"name": full or user.get_username(), "username": user.get_username()}


def person_label(value: dict[str, str] | None) -> str:
    if not value:
        return ""
    if value["name"] == value["username"]:
        return value["name"]
    return f"{value['name']} ({value['username']})"


@dataclass
class PacketData:
    """Everything the packet shows, as JSON-ready values in a fixed order: leads by creation;
    evidence copied into the packet first, then references, each by collection time (the index
    order, which is also the Bates order, so the natives' numbers are consecutive); custody by
    item, then time. `evidence[i]["bates"]` is filled in once the report's length is known."""

    folder: str
    agency_code: str
    agency_name: str
    case: dict[str, Any]
    handoff: dict[str, Any]
    leads: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    custody: dict[str, list[dict[str, Any]]]
    checkpoint: dict[str, Any]
    content_names: dict[str, str] = field(default_factory=dict)
    report_pages: int = 0

    def bates(self, number: int) -> str:
        return f"{self.agency_code}-{number:06d}"

    def assign_bates(self, report_pages: int) -> None:
        """Report pages take 1..P; each evidence item then takes one number, in index order."""
        self.report_pages = report_pages
        for index, item in enumerate(self.evidence):
            item["bates"] = self.bates(report_pages + 1 + index)

    @property
    def last_bates(self) -> str:
        return self.bates(self.report_pages + len(self.evidence))

    @property
    def stored(self) -> list[dict[str, Any]]:
        return [item for item in self.evidence if item["native_path"]]


def collect(*, handoff: Handoff, checkpoint: Checkpoint, checkpoint_origin: str, root_b64: str) -> PacketData:
    """Read the handoff's case, leads (with identifiers), evidence, custody and the people
    they name: six queries, plain rows for the evidence and custody (a handoff may hold
    thousands)."""
    handoff = Handoff.objects.select_related(
        "case__agency",
        "case__lead_investigator",
        "case__parent",
        "prosecutor",
        "prosecutor_office",
        "created_by",
        "submitted_by",
        "reviewed_by",
    ).get(pk=handoff.pk)
    case = handoff.case
    leads = (
        Lead.objects.filter(pk__in=HandoffLead.objects.filter(handoff=handoff).values("lead_id"))
        .select_related("assignee")
        .prefetch_related("identifiers")
        .order_by("created_at", "id")
    )
    evidence = list(
        EvidenceItem.objects.filter(pk__in=HandoffEvidence.objects.filter(handoff=handoff).values("evidence_id"))
        .order_by("collected_at", "created_at", "id")
        .values(*EVIDENCE_COLUMNS)
    )
    custody = list(
        CustodyEvent.objects.filter(
            evidence_id__in=HandoffEvidence.objects.filter(handoff=handoff).values("evidence_id")
        )
        .order_by("evidence_id", "occurred_at", "created_at", "id")
        .values(*CUSTODY_COLUMNS)
    )
    user_ids = {row["collected_by_id"] for row in evidence} | {row["actor_id"] for row in custody}
    people = {
        user.pk: person(user)
        for user in User.objects.filter(pk__in=user_ids - {None}).only("username", "first_name", "last_name")
    }
    data = PacketData(
        folder=f"{case.number}_{handoff.number}",
        agency_code=case.agency.code,
        agency_name=case.agency.name,
        case={
            "id": str(case.pk),
            "number": case.number,
            "title": case.title,
            "kind": case.kind,
            "status": case.status,
            "priority": case.priority,
            "agency": {"code": case.agency.code, "name": case.agency.name},
            "lead_investigator": person(case.lead_investigator),
            "parent_number": case.parent.number if case.parent else None,
            "summary": case.summary,
            "created_at": iso(case.created_at),
            "closed_at": iso(case.closed_at),
        },
        handoff={
            "number": handoff.number,
            "status": handoff.status,
            "prosecutor": person(handoff.prosecutor),
            "prosecutor_office": {"code": handoff.prosecutor_office.code, "name": handoff.prosecutor_office.name},
            "charges": [
                {"statute": str(c.get("statute", "")), "text": str(c.get("text", ""))}
                for c in handoff.charges or []
                if isinstance(c, dict)
            ],
            "narrative": handoff.narrative,
            "created_by": person(handoff.created_by),
            "submitted_by": person(handoff.submitted_by),
            "submitted_at": iso(handoff.submitted_at),
            "reviewed_by": person(handoff.reviewed_by),
            "reviewed_at": iso(handoff.reviewed_at),
            "review_note": handoff.review_note,
            "sent_at": iso(handoff.sent_at),
        },
        leads=[_lead(lead) for lead in leads],
        evidence=[],
        custody={},
        checkpoint={"origin": checkpoint_origin, "tree_size": checkpoint.tree_size, "root_hash": root_b64},
    )
    for row in evidence:
        data.evidence.append(_evidence(row, people))
        if row["content_name"]:
            data.content_names[str(row["id"])] = row["content_name"]
    data.evidence.sort(key=lambda entry: entry["native_path"] is None)
    for row in custody:
        data.custody.setdefault(str(row["evidence_id"]), []).append(_custody(row, people))
    return data


def _lead(lead: Lead) -> dict[str, Any]:
    identifiers = sorted((i.kind, i.value) for i in lead.identifiers.all())
    return {
        "id": str(lead.pk),
        "display_name": lead.display_name,
        "source": lead.source,
        "status": lead.status,
        "priority": lead.priority,
        "priority_score": lead.priority_score,
        "priority_override": lead.priority_override,
        "signals": {
            "minor_age_mentioned": lead.minor_age_mentioned,
            "payment_discussed": lead.payment_discussed,
            "meeting_arranged": lead.meeting_arranged,
            "repeat_contact": lead.repeat_contact,
        },
        "assignee": person(lead.assignee),
        "first_seen_at": iso(lead.first_seen_at),
        "last_seen_at": iso(lead.last_seen_at),
        "identifiers": [{"kind": kind, "value": value} for kind, value in identifiers],
        "notes": lead.notes,
    }


EVIDENCE_COLUMNS = (
    "id",
    "kind",
    "description",
    "status",
    "withdrawn_reason",
    "withdrawn_at",
    "lead_id",
    "content_name",
    "original_filename",
    "media_type",
    "size_bytes",
    "sha256",
    "external_uri",
    "collected_at",
    "collected_by_id",
)
CUSTODY_COLUMNS = (
    "id",
    "evidence_id",
    "occurred_at",
    "action",
    "actor_id",
    "from_party",
    "to_party",
    "location",
    "note",
    "details",
)


def _evidence(row: dict[str, Any], people: dict[int, dict[str, str] | None]) -> dict[str, Any]:
    native_path = None
    if row["content_name"]:
        native_path = f"natives/{row['id']}/{safe_filename(row['original_filename'], 'native')}"
    return {
        "id": str(row["id"]),
        "bates": None,
        "kind": row["kind"],
        "description": row["description"],
        "status": row["status"],
        "withdrawn_reason": row["withdrawn_reason"],
        "withdrawn_at": iso(row["withdrawn_at"]),
        "lead_id": str(row["lead_id"]) if row["lead_id"] else None,
        "original_filename": row["original_filename"],
        "media_type": row["media_type"],
        "size_bytes": row["size_bytes"],
        "sha256": row["sha256"],
        "native_path": native_path,
        "external_uri": row["external_uri"] or None,
        "collected_at": iso(row["collected_at"]),
        "collected_by": people.get(row["collected_by_id"]),
    }


def _custody(row: dict[str, Any], people: dict[int, dict[str, str] | None]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "evidence_id": str(row["evidence_id"]),
        "occurred_at": iso(row["occurred_at"]),
        "action": row["action"],
        "actor": people.get(row["actor_id"]),
        "from_party": row["from_party"],
        "to_party": row["to_party"],
        "location": row["location"],
        "note": row["note"],
        "details": row["details"] or {},
    }


# ---------------------------------------------------------------- files


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def dumps(value: dict[str, Any]) -> bytes:
    """Deterministic JSON a person can read and grep: an object with sorted keys, one member
    per line, and each element of a list member on a line of its own (so one evidence item,
    lead or file per line); UTF-8, final newline. (Written by the C encoder: an indented dump
    of a thousand-item handoff takes the pure-Python one.)"""
    members = []
    for key, member in sorted(value.items()):
        if isinstance(member, list) and member:
            body = "[\n" + ",\n".join(f"    {_compact(item)}" for item in member) + "\n  ]"
        else:
            body = _compact(member)
        members.append(f"  {_compact(key)}: {body}")
    return ("{\n" + ",\n".join(members) + "\n}\n").encode()


def case_json(data: PacketData, *, audit_events: int) -> bytes:
    custody = [event for item in data.evidence for event in data.custody.get(item["id"], [])]
    return dumps(
        {
            "format": PACKET_FORMAT,
            "folder": data.folder,
            "case": data.case,
            "handoff": data.handoff,
            "leads": data.leads,
            "evidence": data.evidence,
            "custody": custody,
            "audit": {**data.checkpoint, "events": audit_events},
            "bates": {
                "prefix": data.agency_code,
                "report_first": data.bates(1),
                "report_last": data.bates(data.report_pages),
                "last": data.last_bates,
            },
        }
    )


def guard(value: Any) -> Any:
    """A spreadsheet would run a cell starting with = + - @ (or a tab or carriage return) as a
    formula: such text cells get a leading apostrophe (OWASP's CSV injection advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else value


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        writer.writerow([guard(cell) for cell in row])
    return buffer.getvalue().encode()


def leads_csv(data: PacketData) -> bytes:
    header = [
        "lead_id",
        "display_name",
        "source",
        "status",
        "priority",
        "priority_score",
        "priority_override",
        "minor_age_mentioned",
        "payment_discussed",
        "meeting_arranged",
        "repeat_contact",
        "first_seen_at",
        "last_seen_at",
        "assignee",
        "identifiers",
        "notes",
    ]
    rows = [
        [
            lead["id"],
            lead["display_name"],
            lead["source"],
            lead["status"],
            lead["priority"],
            lead["priority_score"],
            lead["priority_override"],
            lead["signals"]["minor_age_mentioned"],
            lead["signals"]["payment_discussed"],
            lead["signals"]["meeting_arranged"],
            lead["signals"]["repeat_contact"],
            lead["first_seen_at"],
            lead["last_seen_at"],
            person_label(lead["assignee"]),
            "; ".join(f"{i['kind']}:{i['value']}" for i in lead["identifiers"]),
            lead["notes"],
        ]
        for lead in data.leads
    ]
    return _csv(header, rows)


def evidence_csv(data: PacketData) -> bytes:
    header = [
        "bates",
        "evidence_id",
        "kind",
        "status",
        "description",
        "lead_id",
        "original_filename",
        "media_type",
        "size_bytes",
        "sha256",
        "native_path",
        "external_uri",
        "collected_at",
        "collected_by",
        "withdrawn_reason",
    ]
    rows = [
        [
            item["bates"],
            item["id"],
            item["kind"],
            item["status"],
            item["description"],
            item["lead_id"],
            item["original_filename"],
            item["media_type"],
            item["size_bytes"],
            item["sha256"],
            item["native_path"],
            item["external_uri"],
            item["collected_at"],
            person_label(item["collected_by"]),
            item["withdrawn_reason"],
        ]
        for item in data.evidence
    ]
    return _csv(header, rows)


def custody_csv(data: PacketData) -> bytes:
    header = [
        "evidence_id",
        "bates",
        "event_id",
        "occurred_at",
        "action",
        "actor",
        "from_party",
        "to_party",
        "location",
        "note",
        "details",
    ]
    rows = []
    for item in data.evidence:
        for event in data.custody.get(item["id"], []):
            rows.append(
                [
                    item["id"],
                    item["bates"],
                    event["id"],
                    event["occurred_at"],
                    event["action"],
                    person_label(event["actor"]),
                    event["from_party"],
                    event["to_party"],
                    event["location"],
                    event["note"],
                    json.dumps(event["details"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                    if event["details"]
                    else "",
                ]
            )
    return _csv(header, rows)


def _dat_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", DAT_NEWLINE)
    return DAT_QUOTE + text.replace(DAT_QUOTE, "_").replace(DAT_DELIMITER, "_") + DAT_QUOTE


def loadfile_dat(data: PacketData) -> bytes:
    """Concordance DAT: UTF-8 with a byte order mark, every field in þ, fields split by ¶, a
    header row, CRLF line ends, one row per evidence item (a reference has no NATIVEPATH).
    Line breaks inside a value become ®, Concordance's newline stand-in."""
    lines = [DAT_DELIMITER.join(_dat_cell(name) for name in DAT_FIELDS)]
    for item in data.evidence:
        native = item["native_path"]
        filename = native.rsplit("/", 1)[-1] if native else item["original_filename"]
        collected = item["collected_at"][:10] if item["collected_at"] else ""
        row = [
            item["bates"],
            item["bates"],
            item["id"],
            person_label(item["collected_by"]),
            collected,
            item["sha256"],
            filename,
            native or "",
        ]
        lines.append(DAT_DELIMITER.join(_dat_cell(cell) for cell in row))
    return (BOM + "\r\n".join(lines) + "\r\n").encode()
