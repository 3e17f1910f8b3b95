"""Audit on write: every service write records exactly one event with its changes, in the same
transaction (a rollback leaves none, a failed audit insert undoes the change); reads of case
content are recorded; events carry the request id, IP and user agent."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from rest_framework.exceptions import PermissionDenied

from audit.models import AuditAction, AuditEvent
from caseapi.exceptions import Conflict
from cases import services
from cases.identifiers import audit_label
from cases.models import Case, CaseStatus, CustodyEvent, EvidenceItem, Lead, LeadStatus, TeamRole
from tests.factories import EvidenceFactory, LeadFactory

CONTENT = b"transcript: meet at the motel at nine\n" * 20
PHONE = "+12025550143"


class Boom(Exception):
    """Raised after a service call to force the surrounding transaction to roll back."""


@contextmanager
def new_events() -> Iterator[list[AuditEvent]]:
    """Collects the events recorded inside the block, in order."""
    marker = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    events: list[AuditEvent] = []
    yield events
    events.extend(AuditEvent.objects.filter(id__gt=marker).order_by("id"))


def only_event(events: list[AuditEvent], action: str) -> AuditEvent:
    assert [e.action for e in events] == [action]
    return events[0]


def assert_target(event: AuditEvent, actor: Any, target: Any, case: Any) -> None:
    assert event.actor_id == actor.pk
    assert event.actor_name == actor.username
    assert event.target_type == target._meta.label_lower
    assert event.target_id == str(target.pk)
    assert event.case_id == case.pk
    assert event.agency_id == case.agency_id


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- one event per write


def test_case_create_records_one_event(world):
    with new_events() as events:
        case = services.case_create(actor=world.lead, title="Op Dawn", kind="operation")
    event = only_event(events, AuditAction.CASE_CREATED)
    assert_target(event, world.lead, case, case)
    assert event.changes == {
        "number": [None, case.number],
        "title": [None, "Op Dawn"],
        "kind": [None, "operation"],
        "priority": [None, "normal"],
        "parent": [None, None],
        "team": [None, {"lena_lead": "lead"}],
    }


def test_case_update_records_exact_field_changes(world):
    with new_events() as events:
        services.case_update(actor=world.teammate, case=world.case, data={"title": "Op Dawn", "priority": "urgent"})
    event = only_event(events, AuditAction.CASE_UPDATED)
    assert_target(event, world.teammate, world.case, world.case)
    assert event.changes == {"title": ["Operation Nightfall", "Op Dawn"], "priority": ["normal", "urgent"]}


def test_case_status_change_records_a_status_event(world):
    with new_events() as events:
        services.case_update(actor=world.lead, case=world.case, data={"status": CaseStatus.ACTIVE})
    event = only_event(events, AuditAction.CASE_STATUS_CHANGED)
    assert event.changes == {"status": ["open", "active"]}
    with new_events() as events:
        case = services.case_update(actor=world.lead, case=world.case, data={"status": CaseStatus.CLOSED})
    event = only_event(events, AuditAction.CASE_STATUS_CHANGED)
    assert event.changes == {"status": ["active", "closed"], "closed_at": [None, case.closed_at.isoformat()]}


def test_case_update_without_a_change_records_nothing(world):
    with new_events() as events:
        services.case_update(actor=world.lead, case=world.case, data={"title": "Operation Nightfall"})
    assert events == []


def test_team_member_set_and_remove_record_one_event_each(world):
    with new_events() as events:
        services.team_member_set(actor=world.lead, case=world.case, user=world.investigator, role=TeamRole.VIEWER)
    event = only_event(events, AuditAction.TEAM_MEMBER_SET)
    assert_target(event, world.lead, world.case, world.case)
    assert event.changes == {"member": "ivy_noteam", "member_id": world.investigator.pk, "role": [None, "viewer"]}
    with new_events() as events:
        services.team_member_set(actor=world.lead, case=world.case, user=world.investigator, role=TeamRole.INVESTIGATOR)
    assert only_event(events, AuditAction.TEAM_MEMBER_SET).changes["role"] == ["viewer", "investigator"]
    with new_events() as events:
        services.team_member_remove(actor=world.supervisor, case=world.case, user_id=world.investigator.pk)
    event = only_event(events, AuditAction.TEAM_MEMBER_REMOVED)
    assert_target(event, world.supervisor, world.case, world.case)
    assert event.changes == {"member": "ivy_noteam", "member_id": world.investigator.pk, "role": ["investigator", None]}


def test_lead_create_records_one_event_with_its_fields(world):
    seen = datetime(2024, 5, 1, 21, 30, tzinfo=UTC)
    with new_events() as events:
        lead, _ = services.lead_create(
            actor=world.teammate,
            case=world.case,
            display_name="Buyer 7",
            payment_discussed=True,
            first_seen_at=seen,
            identifiers=[{"kind": "phone", "value": "(202) 555-0143"}],
        )
    event = only_event(events, AuditAction.LEAD_CREATED)
    assert_target(event, world.teammate, lead, world.case)
    assert event.changes == {
        "display_name": "changed",
        "source": [None, "investigator"],
        "status": [None, "new"],
        "payment_discussed": [None, True],
        "priority": [None, 20],
        "first_seen_at": [None, seen.isoformat()],
        "last_seen_at": [None, seen.isoformat()],
        "identifiers": [[], [audit_label("phone", PHONE)]],
    }


def test_lead_update_records_exact_field_changes(world):
    lead = LeadFactory(case=world.case, display_name="Buyer 7")
    with new_events() as events:
        services.lead_update(actor=world.teammate, lead=lead, display_name="Buyer Seven", payment_discussed=True)
    event = only_event(events, AuditAction.LEAD_UPDATED)
    assert_target(event, world.teammate, lead, world.case)
    assert event.changes == {
        "display_name": "changed",
        "payment_discussed": [False, True],
        "priority": [0, 20],
    }


def test_lead_status_change_records_a_status_event(world):
    lead = LeadFactory(case=world.case)
    with new_events() as events:
        services.lead_update(actor=world.lead, lead=lead, status=LeadStatus.TRIAGED)
    assert only_event(events, AuditAction.LEAD_STATUS_CHANGED).changes == {"status": ["new", "triaged"]}


def test_lead_identifier_change_is_recorded_as_old_and_new(world):
    lead = LeadFactory(case=world.case, identifiers=[{"kind": "phone", "value": PHONE}])
    with new_events() as events:
        services.lead_update(
            actor=world.lead,
            lead=lead,
            identifiers=[{"kind": "email", "value": "Buyer@Example.org"}, {"kind": "phone", "value": PHONE}],
        )
    event = only_event(events, AuditAction.LEAD_UPDATED)
    recorded = event.changes["identifiers"]
    assert isinstance(recorded, list), f"identifiers change is not [old, new]: {recorded!r}"
    old, new = recorded
    phone, email = audit_label("phone", PHONE), audit_label("email", "buyer@example.org")
    assert (sorted(old), sorted(new)) == ([phone], sorted([email, phone]))


def test_lead_update_without_a_change_records_nothing(world):
    lead = LeadFactory(case=world.case, display_name="Same", identifiers=[{"kind": "phone", "value": PHONE}])
    with new_events() as events:
        services.lead_update(
            actor=world.lead, lead=lead, display_name="Same", identifiers=[{"kind": "phone", "value": "202-555-0143"}]
        )
    assert events == []


def test_evidence_create_records_one_event(world):
    with new_events() as events:
        item = EvidenceFactory(case=world.case, actor=world.teammate, upload=SimpleUploadedFile("c.txt", CONTENT))
    event = only_event(events, AuditAction.EVIDENCE_CREATED)
    assert_target(event, world.teammate, item, world.case)
    assert event.changes == {
        "kind": [None, "document"],
        "sha256": [None, sha(CONTENT)],
        "size_bytes": [None, len(CONTENT)],
        "external_uri": [None, None],
        "lead": [None, None],
        "original_filename": [None, "c.txt"],
    }


def test_evidence_update_and_withdrawal_record_one_event_each(world):
    item = EvidenceFactory(case=world.case)
    with new_events() as events:
        services.evidence_update(actor=world.teammate, item=item, data={"description": "Return from carrier"})
    event = only_event(events, AuditAction.EVIDENCE_UPDATED)
    assert_target(event, world.teammate, item, world.case)
    assert event.changes == {"description": ["", "Return from carrier"]}
    with new_events() as events:
        services.evidence_update(
            actor=world.lead, item=item, data={"status": "withdrawn", "withdrawn_reason": "Court order"}
        )
    event = only_event(events, AuditAction.EVIDENCE_WITHDRAWN)
    assert event.changes == {"status": ["active", "withdrawn"], "withdrawn_reason": ["", "Court order"]}


def test_custody_record_records_one_event(world):
    item = EvidenceFactory(case=world.case)
    with new_events() as events:
        custody = services.custody_record(
            actor=world.teammate, item=item, action="transferred", from_party="A", to_party="B", location="Lab"
        )
    event = only_event(events, AuditAction.CUSTODY_RECORDED)
    assert_target(event, world.teammate, custody, world.case)
    assert event.changes == {
        "evidence": str(item.pk),
        "action": "transferred",
        "from": "A",
        "to": "B",
        "location": "Lab",
    }


def test_evidence_verify_records_one_event(world):
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("c.txt", CONTENT))
    with new_events() as events:
        services.evidence_verify(actor=world.teammate, item=item)
    event = only_event(events, AuditAction.EVIDENCE_VERIFIED)
    assert_target(event, world.teammate, item, world.case)
    assert event.changes == {"match": True, "computed": sha(CONTENT)}


# ---------------------------------------------------------------- same transaction


def test_rolled_back_case_update_leaves_no_event(world):
    with new_events() as events, pytest.raises(Boom), transaction.atomic():
        services.case_update(actor=world.lead, case=world.case, data={"title": "Never happened"})
        raise Boom
    assert events == []
    assert Case.objects.get(pk=world.case.pk).title == "Operation Nightfall"


def test_rolled_back_lead_create_leaves_no_event(world):
    with new_events() as events, pytest.raises(Boom), transaction.atomic():
        services.lead_create(actor=world.lead, case=world.case, identifiers=[{"kind": "phone", "value": PHONE}])
        raise Boom
    assert events == []
    assert not Lead.objects.exists()


def test_rolled_back_team_change_leaves_no_event(world, as_user):
    with new_events() as events, pytest.raises(Boom), transaction.atomic():
        services.team_member_set(actor=world.lead, case=world.case, user=world.investigator, role=TeamRole.LEAD)
        raise Boom
    assert events == []
    assert as_user(world.investigator).get(f"/api/cases/{world.case.pk}/").status_code == 404


def test_rolled_back_evidence_and_custody_leave_no_event(world):
    item = EvidenceFactory(case=world.case)
    with new_events() as events, pytest.raises(Boom), transaction.atomic():
        services.evidence_create(
            actor=world.lead, case=world.case, kind="other", external_uri="vault://x", sha256="b" * 64, size_bytes=1
        )
        services.custody_record(actor=world.lead, item=item, action="sealed")
        raise Boom
    assert events == []
    assert EvidenceItem.objects.count() == 1
    assert CustodyEvent.objects.filter(evidence=item).count() == 1


REFUSED_WRITES: dict[str, Any] = {
    "invalid-case-transition": lambda w, _: services.case_update(
        actor=w.lead, case=w.case, data={"status": "pending_prosecution"}
    ),
    "viewer-edits-case": lambda w, _: services.case_update(actor=w.viewer, case=w.case, data={"title": "x"}),
    "remove-last-lead": lambda w, _: services.team_member_remove(actor=w.lead, case=w.case, user_id=w.lead.pk),
    "bad-phone": lambda w, _: services.lead_create(
        actor=w.lead, case=w.case, identifiers=[{"kind": "phone", "value": "nope"}]
    ),
    "assigned-without-assignee": lambda w, _: services.lead_create(actor=w.lead, case=w.case, status="assigned"),
    "hash-mismatch": lambda w, _: services.evidence_create(
        actor=w.lead, case=w.case, kind="other", upload=SimpleUploadedFile("c", CONTENT), sha256="c" * 64
    ),
    "custody-verified": lambda w, item: services.custody_record(actor=w.lead, item=item, action="verified"),
    "withdraw-without-reason": lambda w, item: services.evidence_update(
        actor=w.lead, item=item, data={"status": "withdrawn"}
    ),
}


def test_a_refused_write_leaves_no_event(world):
    item = EvidenceFactory(case=world.case)
    for name, write in REFUSED_WRITES.items():
        with new_events() as events, pytest.raises((ValidationError, Conflict, PermissionDenied)):
            write(world, item)
        assert events == [], name


def test_failed_audit_insert_undoes_the_change(world, monkeypatch, settings):
    def refuse(**kwargs: Any) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services, "audit_record", refuse)
    with pytest.raises(RuntimeError):
        services.case_update(actor=world.lead, case=world.case, data={"title": "Unaudited"})
    assert Case.objects.get(pk=world.case.pk).title == "Operation Nightfall"
    with pytest.raises(RuntimeError):
        services.lead_create(actor=world.lead, case=world.case, display_name="Unaudited")
    assert not Lead.objects.exists()
    with pytest.raises(RuntimeError):
        services.evidence_create(
            actor=world.lead, case=world.case, kind="other", upload=SimpleUploadedFile("c.txt", CONTENT)
        )
    assert not EvidenceItem.objects.exists()
    assert not CustodyEvent.objects.exists()
    root = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"])
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_a_failed_http_write_leaves_no_event(world, as_user):
    client = as_user(world.lead)
    with new_events() as events:
        assert client.patch(f"/api/cases/{world.case.pk}/", {"title": "x", "number": "y"}).status_code == 400
        assert client.patch(f"/api/cases/{world.case.pk}/", {"status": "pending_prosecution"}).status_code == 409
    assert events == []


# ---------------------------------------------------------------- reads


def test_reads_of_case_content_are_recorded(world, as_user):
    lead = LeadFactory(case=world.case)
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("c.txt", CONTENT))
    client = as_user(world.viewer)
    reads = [
        (f"/api/cases/{world.case.pk}/", AuditAction.CASE_VIEWED, world.case),
        (f"/api/leads/{lead.pk}/", AuditAction.LEAD_VIEWED, lead),
        (f"/api/evidence/{item.pk}/", AuditAction.EVIDENCE_VIEWED, item),
        (f"/api/evidence/{item.pk}/content/", AuditAction.EVIDENCE_DOWNLOADED, item),
    ]
    for url, action, target in reads:
        with new_events() as events:
            r = client.get(url)
            assert r.status_code == 200
            if r.streaming:
                b"".join(r.streaming_content)
        assert_target(only_event(events, action), world.viewer, target, world.case)


def test_list_reads_are_recorded_with_their_query(world, as_user):
    with new_events() as events:
        assert as_user(world.lead).get("/api/leads/", {"status": "new"}).status_code == 200
    event = only_event(events, AuditAction.LEAD_LISTED)
    assert event.actor_id == world.lead.pk
    assert event.changes == {"query": {"status": ["new"]}}


def test_a_read_outside_scope_records_no_view(world, as_user):
    with new_events() as events:
        assert as_user(world.outsider).get(f"/api/cases/{world.case.pk}/").status_code == 404
    assert events == []


# ---------------------------------------------------------------- request context


def test_events_carry_request_id_ip_and_user_agent(world, as_user):
    client = as_user(world.lead)
    with new_events() as events:
        r = client.patch(
            f"/api/cases/{world.case.pk}/",
            {"title": "Op Dawn"},
            HTTP_X_REQUEST_ID="req-42.abc_DEF",
            HTTP_USER_AGENT="caseapi-tests/1.0",
            REMOTE_ADDR="203.0.113.7",
        )
    assert r.status_code == 200
    assert r["X-Request-ID"] == "req-42.abc_DEF"
    event = only_event(events, AuditAction.CASE_UPDATED)
    assert (event.request_id, event.ip, event.user_agent) == ("req-42.abc_DEF", "203.0.113.7", "caseapi-tests/1.0")


def test_all_events_of_one_request_share_its_request_id(world, as_user):
    LeadFactory(case=world.case, identifiers=[{"kind": "phone", "value": PHONE}])
    with new_events() as events:
        r = as_user(world.outsider).post(
            "/api/leads/",
            {"case": str(world.other_case.pk), "identifiers": [{"kind": "phone", "value": PHONE}]},
            HTTP_X_REQUEST_ID="deconflict-1",
        )
    assert r.status_code == 201
    assert [e.action for e in events] == [
        AuditAction.LEAD_CREATED,
        AuditAction.DECONFLICTION_HIT,
        AuditAction.DECONFLICTION_NOTIFIED,
    ]
    assert {e.request_id for e in events} == {"deconflict-1"}


def test_login_events_carry_the_request_context(world, api):
    with new_events() as events:
        api.post(
            "/api/auth/token/",
            {"username": "lena_lead", "password": "wrong"},
            HTTP_X_REQUEST_ID="login-1",
            REMOTE_ADDR="198.51.100.4",
        )
    event = only_event(events, AuditAction.LOGIN_FAILED)
    assert (event.request_id, event.ip) == ("login-1", "198.51.100.4")


def test_unusable_request_id_is_replaced_and_echoed(world, as_user):
    client = as_user(world.lead)
    for supplied in ("has spaces", "x" * 65, "semi;colon", "<script>", ""):
        with new_events() as events:
            r = client.get(f"/api/cases/{world.case.pk}/", HTTP_X_REQUEST_ID=supplied)
        event = only_event(events, AuditAction.CASE_VIEWED)
        assert r["X-Request-ID"] == event.request_id
        assert event.request_id != supplied
        assert len(event.request_id) == 32


def test_long_user_agent_is_truncated(world, as_user):
    with new_events() as events:
        as_user(world.lead).get(f"/api/cases/{world.case.pk}/", HTTP_USER_AGENT="A" * 2000)
    assert only_event(events, AuditAction.CASE_VIEWED).user_agent == "A" * 512


def test_record_many_inserts_each_event_in_order_with_the_request_context(world):
    from audit import context, sealing
    from audit.services import audit_record_many
    from audit.verify import verify_log

    lead = LeadFactory(case=world.case)
    token = context.bind(context.RequestContext(request_id="batch-42", ip="10.0.0.9", user_agent="bot/2"))
    try:
        with new_events() as events, transaction.atomic():
            recorded = audit_record_many(
                {
                    "action": AuditAction.LEAD_UPDATED,
                    "actor": None,
                    "actor_name": "source:bot",
                    "agency_id": world.agency_a.pk,
                    "target": lead,
                    "case_id": world.case.pk,
                    "changes": {"priority": [n, n + 1]},
                }
                for n in range(3)
            )
    finally:
        context.reset(token)
    assert [e.pk for e in recorded] == [e.pk for e in events]
    assert [e.changes for e in events] == [{"priority": [n, n + 1]} for n in range(3)]
    assert {(e.request_id, e.ip, e.user_agent, e.target_id, e.actor_name) for e in events} == {
        ("batch-42", "10.0.0.9", "bot/2", str(lead.pk), "source:bot")
    }
    sealing.seal_pending()
    assert verify_log().ok


def test_record_many_rolls_back_with_the_change_and_records_nothing_when_off(world, settings):
    from audit.services import audit_record_many

    entry = {"action": AuditAction.LEAD_UPDATED, "actor": world.lead, "target": world.case}
    with new_events() as events:
        with pytest.raises(Boom), transaction.atomic():
            audit_record_many([entry, entry])
            raise Boom
        settings.AUDIT_RECORDING = False
        assert audit_record_many([entry]) == []
    assert events == []
