"""Prosecutor handoffs: the reviewed workflow, two-person review, the prosecutor's narrow scope,
validation, and the audit trail of every transition."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from audit.models import AuditAction, AuditEvent
from cases import services
from cases.models import (
    AgencyKind,
    EvidenceStatus,
    Handoff,
    HandoffStatus,
    HandoffUserObjectPermission,
    Role,
    TeamRole,
)
from tests.conftest import World, client_for
from tests.factories import AgencyFactory, CaseFactory, EvidenceFactory, LeadFactory, UserFactory

CHARGES = [{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting another to commit prostitution"}]
NARRATIVE = "The buyer answered the decoy ad, agreed on a price and arrived at the meeting point."


@dataclass
class Items:
    lead_a: Any
    lead_b: Any
    evidence_a: Any
    evidence_b: Any
    hidden_lead: Any
    hidden_evidence: Any


@pytest.fixture
def items(world: World) -> Items:
    """Two leads with one evidence item each (the first stored), and a lead and item of the same
    case that no handoff includes."""
    lead_a = LeadFactory(case=world.case, display_name="Buyer A")
    lead_b = LeadFactory(case=world.case, display_name="Buyer B")
    chat = SimpleUploadedFile("chat-a.txt", b"buyer: how much\nbot: 200\n", content_type="text/plain")
    return Items(
        lead_a=lead_a,
        lead_b=lead_b,
        evidence_a=EvidenceFactory(case=world.case, lead=lead_a, upload=chat),
        evidence_b=EvidenceFactory(case=world.case, lead=lead_b),
        hidden_lead=LeadFactory(case=world.case, display_name="Buyer kept back"),
        hidden_evidence=EvidenceFactory(case=world.case, description="Not for the prosecutor"),
    )


def draft(world: World, items: Items, *, actor: Any = None, prosecutor: Any = None) -> Handoff:
    return services.handoff_create(
        actor=actor or world.lead,
        case=world.case,
        prosecutor=prosecutor or world.prosecutor,
        leads=[items.lead_a, items.lead_b],
        evidence=[items.evidence_a, items.evidence_b],
        charges=CHARGES,
        narrative=NARRATIVE,
    )


def send(world: World, handoff: Handoff, *, submitter: Any = None, reviewer: Any = None) -> Handoff:
    services.handoff_submit(actor=submitter or world.lead, handoff=handoff)
    return services.handoff_review(actor=reviewer or world.supervisor, handoff=handoff, approve=True, note="Ready.")


def sent_handoff(world: World, items: Items) -> Handoff:
    return send(world, draft(world, items))


def url(handoff: Handoff, action: str = "") -> str:
    return f"/api/handoffs/{handoff.pk}/" + (f"{action}/" if action else "")


def events_of(handoff: Handoff) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_type="cases.handoff", target_id=str(handoff.pk)).order_by("id"))


def second_supervisor(world: World) -> Any:
    return UserFactory(username="sue_super2", agency=world.agency_a, role=Role.SUPERVISOR)


# ---------------------------------------------------------------- drafting


def test_lead_drafts_a_handoff_numbered_per_case(world, items):
    client = client_for(world.lead)
    body = {
        "case": str(world.case.pk),
        "prosecutor": world.prosecutor.pk,
        "leads": [str(items.lead_a.pk)],
        "evidence": [str(items.evidence_a.pk), str(items.evidence_b.pk)],
        "charges": CHARGES,
        "narrative": NARRATIVE,
    }
    first = client.post("/api/handoffs/", body)
    assert first.status_code == 201, first.content
    data = first.json()
    assert data["number"] == "H001"
    assert data["status"] == "draft"
    assert data["case"] == {"id": str(world.case.pk), "number": world.case.number, "title": world.case.title}
    assert data["prosecutor"]["username"] == "pat_pros"
    assert data["prosecutor_office"]["code"] == "SAO"
    assert data["leads"] == [str(items.lead_a.pk)]
    assert sorted(data["evidence"]) == sorted([str(items.evidence_a.pk), str(items.evidence_b.pk)])
    assert data["charges"] == CHARGES
    assert data["created_by"]["username"] == "lena_lead"
    second = client.post("/api/handoffs/", {**body, "leads": [], "evidence": [str(items.evidence_b.pk)]})
    assert second.status_code == 201, second.content
    assert second.json()["number"] == "H002"
    other = services.handoff_create(
        actor=world.outsider, case=world.other_case, prosecutor=world.prosecutor, narrative="River"
    )
    assert other.number == "H001"


def test_a_teammate_may_draft_but_a_viewer_may_not(world, items):
    body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk, "leads": [str(items.lead_a.pk)]}
    assert client_for(world.teammate).post("/api/handoffs/", body).status_code == 201
    refused = client_for(world.viewer).post("/api/handoffs/", body)
    assert refused.status_code == 403
    assert Handoff.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_drafts_on_one_case_get_distinct_numbers():
    agency = AgencyFactory(code="RACE", name="Race County")
    office = AgencyFactory(code="RSAO", name="Race State Attorney", kind=AgencyKind.PROSECUTOR)
    prosecutor = UserFactory(agency=office, role=Role.PROSECUTOR)
    lead = UserFactory(agency=agency, role=Role.INVESTIGATOR)
    case = CaseFactory(actor=lead)
    drafters = [UserFactory(agency=agency, role=Role.INVESTIGATOR) for _ in range(6)]
    for drafter in drafters:
        services.team_member_set(actor=lead, case=case, user=drafter, role=TeamRole.INVESTIGATOR)
    barrier = threading.Barrier(len(drafters))
    numbers: list[str] = []
    errors: list[BaseException] = []

    def draft_one(user: Any) -> None:
        try:
            barrier.wait(timeout=20)
            numbers.append(services.handoff_create(actor=user, case=case, prosecutor=prosecutor).number)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=draft_one, args=(user,)) for user in drafters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(numbers) == [f"H{n:03d}" for n in range(1, len(drafters) + 1)]


# ---------------------------------------------------------------- validation


def test_leads_of_another_case_are_refused(world, items):
    second_case = CaseFactory(actor=world.lead, title="Second op")
    foreign = LeadFactory(case=second_case)
    body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk, "leads": [str(foreign.pk)]}
    response = client_for(world.lead).post("/api/handoffs/", body)
    assert response.status_code == 400
    assert response.json() == {"leads": [services.HANDOFF_LEAD_OTHER_CASE]}
    foreign_item = EvidenceFactory(case=second_case)
    body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk, "evidence": [str(foreign_item.pk)]}
    response = client_for(world.lead).post("/api/handoffs/", body)
    assert response.status_code == 400
    assert response.json() == {"evidence": [services.HANDOFF_EVIDENCE_OTHER_CASE]}
    assert not Handoff.objects.exists()


def test_an_item_out_of_scope_reads_as_one_that_does_not_exist(world, items):
    hidden = LeadFactory(case=world.other_case)
    missing = "00000000-0000-4000-8000-000000000000"
    client = client_for(world.lead)
    for lead_id in (hidden.pk, missing):
        body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk, "leads": [str(lead_id)]}
        response = client.post("/api/handoffs/", body)
        assert response.status_code == 400
        assert response.json() == {"leads": [f'Invalid pk "{lead_id}" - object does not exist.']}


def test_withdrawn_evidence_cannot_be_included(world, items):
    services.evidence_update(
        actor=world.lead, item=items.evidence_b, data={"status": EvidenceStatus.WITHDRAWN, "withdrawn_reason": "Dup"}
    )
    body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk, "evidence": [str(items.evidence_b.pk)]}
    response = client_for(world.lead).post("/api/handoffs/", body)
    assert response.status_code == 400
    assert response.json() == {"evidence": [services.HANDOFF_EVIDENCE_WITHDRAWN]}


def test_evidence_withdrawn_after_drafting_blocks_submission(world, items):
    handoff = draft(world, items)
    services.evidence_update(
        actor=world.lead, item=items.evidence_b, data={"status": EvidenceStatus.WITHDRAWN, "withdrawn_reason": "Dup"}
    )
    response = client_for(world.lead).post(url(handoff, "submit"))
    assert response.status_code == 409
    assert response.json()["detail"] == services.HANDOFF_INCLUDES_WITHDRAWN
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.DRAFT


@pytest.mark.parametrize("addressee", ["investigator", "prosecutor_in_a_police_agency", "inactive_prosecutor"])
def test_the_addressee_must_be_an_active_prosecutor_of_a_prosecutors_office(world, items, addressee):
    if addressee == "investigator":
        user = world.investigator
    elif addressee == "prosecutor_in_a_police_agency":
        user = UserFactory(agency=world.agency_a, role=Role.PROSECUTOR)
    else:
        user = UserFactory(agency=world.agency_p, role=Role.PROSECUTOR)
        services.user_set_active(actor=None, user=user, active=False)
    body = {"case": str(world.case.pk), "prosecutor": user.pk, "leads": [str(items.lead_a.pk)]}
    response = client_for(world.lead).post("/api/handoffs/", body)
    assert response.status_code == 400
    assert response.json() == {"prosecutor": [services.HANDOFF_PROSECUTOR_INVALID]}


def test_charges_need_a_statute_and_server_fields_are_refused(world, items):
    client = client_for(world.lead)
    base = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk}
    no_statute = client.post("/api/handoffs/", {**base, "charges": [{"text": "Soliciting"}]})
    assert no_statute.status_code == 400
    assert no_statute.json() == {"charges": {"0": {"statute": ["This field is required."]}}}
    chosen = client.post("/api/handoffs/", {**base, "status": "sent", "number": "H999"})
    assert chosen.status_code == 400
    assert set(chosen.json()) == {"status", "number"}
    assert not Handoff.objects.exists()


def test_an_empty_handoff_cannot_be_submitted(world):
    handoff = services.handoff_create(actor=world.lead, case=world.case, prosecutor=world.prosecutor)
    response = client_for(world.lead).post(url(handoff, "submit"))
    assert response.status_code == 409
    assert response.json()["detail"] == services.HANDOFF_EMPTY


def test_nothing_is_drafted_or_sent_from_a_closed_case(world, items):
    handoff = draft(world, items)
    services.case_update(actor=world.lead, case=world.case, data={"status": "closed"})
    client = client_for(world.lead)
    assert client.post(url(handoff, "submit")).status_code == 409
    body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk}
    assert client.post("/api/handoffs/", body).status_code == 409


# ---------------------------------------------------------------- the workflow


def test_a_handoff_goes_from_draft_to_accepted(world, items):
    handoff = draft(world, items)
    lead, supervisor, prosecutor = client_for(world.lead), client_for(world.supervisor), client_for(world.prosecutor)
    patched = lead.patch(url(handoff), {"narrative": "Revised narrative.", "leads": [str(items.lead_a.pk)]})
    assert patched.status_code == 200, patched.content
    assert patched.json()["leads"] == [str(items.lead_a.pk)]
    submitted = lead.post(url(handoff, "submit"), {"note": "Please review."})
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "pending_review"
    assert submitted.json()["submitted_by"]["username"] == "lena_lead"
    reviewed = supervisor.post(url(handoff, "review"), {"approve": True, "note": "Good to go."})
    assert reviewed.status_code == 200, reviewed.content
    assert reviewed.json()["status"] == "sent"
    assert reviewed.json()["sent_at"] is not None
    assert HandoffUserObjectPermission.objects.filter(content_object=handoff, user=world.prosecutor).exists()
    acknowledged = prosecutor.post(url(handoff, "acknowledge"))
    assert acknowledged.status_code == 200
    assert acknowledged.json()["status"] == "acknowledged"
    accepted = prosecutor.post(url(handoff, "decision"), {"decision": "accepted", "note": "Filing charges."})
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["decision_note"] == "Filing charges."
    assert accepted.json()["decided_at"] is not None


def test_a_prosecutor_may_decide_straight_from_sent_and_a_decline_needs_a_note(world, items):
    handoff = sent_handoff(world, items)
    prosecutor = client_for(world.prosecutor)
    no_note = prosecutor.post(url(handoff, "decision"), {"decision": "declined"})
    assert no_note.status_code == 400
    assert no_note.json() == {"note": [services.HANDOFF_NOTE_REQUIRED]}
    declined = prosecutor.post(url(handoff, "decision"), {"decision": "declined", "note": "No corroboration."})
    assert declined.status_code == 200
    assert declined.json()["status"] == "declined"


def test_a_rejected_review_goes_back_to_draft_with_the_reviewers_note(world, items):
    handoff = draft(world, items)
    services.handoff_submit(actor=world.lead, handoff=handoff)
    supervisor = client_for(world.supervisor)
    no_note = supervisor.post(url(handoff, "review"), {"approve": False})
    assert no_note.status_code == 400
    assert no_note.json() == {"note": [services.HANDOFF_NOTE_REQUIRED]}
    rejected = supervisor.post(url(handoff, "review"), {"approve": False, "note": "Add the payment screenshot."})
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "draft"
    assert rejected.json()["review_note"] == "Add the payment screenshot."
    assert not HandoffUserObjectPermission.objects.filter(content_object=handoff).exists()


def test_a_returned_handoff_goes_back_to_draft_with_the_prosecutors_note(world, items):
    handoff = sent_handoff(world, items)
    services.handoff_acknowledge(actor=world.prosecutor, handoff=handoff)
    response = client_for(world.prosecutor).post(
        url(handoff, "decision"), {"decision": "returned", "note": "Need the subpoena return for the phone."}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "draft"
    assert response.json()["decision_note"] == "Need the subpoena return for the phone."
    as_lead = client_for(world.lead).get(url(handoff)).json()
    assert as_lead["status"] == "draft"
    assert as_lead["decision_note"] == "Need the subpoena return for the phone."
    assert client_for(world.lead).patch(url(handoff), {"narrative": "With the subpoena."}).status_code == 200
    resent = send(world, handoff)
    assert resent.status == HandoffStatus.SENT


STATES = ["draft", "pending_review", "sent", "acknowledged", "accepted", "declined"]
ACTIONS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    # action: (persona, method, path suffix, body)
    "patch": ("lead", "PATCH", "", {"narrative": "Edited."}),
    "submit": ("lead", "POST", "submit", {}),
    "approve": ("supervisor", "POST", "review", {"approve": True, "note": "OK"}),
    "reject": ("supervisor", "POST", "review", {"approve": False, "note": "Not yet"}),
    "acknowledge": ("prosecutor", "POST", "acknowledge", {}),
    "accept": ("prosecutor", "POST", "decision", {"decision": "accepted", "note": "OK"}),
    "decline": ("prosecutor", "POST", "decision", {"decision": "declined", "note": "No"}),
    "return": ("prosecutor", "POST", "decision", {"decision": "returned", "note": "More"}),
}
VALID: dict[str, dict[str, str]] = {
    "draft": {"patch": "draft", "submit": "pending_review"},
    "pending_review": {"approve": "sent", "reject": "draft"},
    "sent": {"acknowledge": "acknowledged", "accept": "accepted", "decline": "declined", "return": "draft"},
    "acknowledged": {"accept": "accepted", "decline": "declined", "return": "draft"},
    "accepted": {},
    "declined": {},
}


def handoff_in(world: World, items: Items, state: str) -> Handoff:
    """A handoff in `state` that has been sent once and returned, so the prosecutor holds a grant
    in every state and each refused step answers 409 (not 404) to whoever may take it."""
    handoff = sent_handoff(world, items)
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Round two.")
    steps = {
        "draft": [],
        "pending_review": ["submit"],
        "sent": ["submit", "approve"],
        "acknowledged": ["submit", "approve", "acknowledge"],
        "accepted": ["submit", "approve", "accept"],
        "declined": ["submit", "approve", "decline"],
    }[state]
    for step in steps:
        persona, method, suffix, body = ACTIONS[step]
        response = getattr(client_for(getattr(world, persona)), method.lower())(url(handoff, suffix), body)
        assert response.status_code == 200, (step, response.content)
    handoff.refresh_from_db()
    assert handoff.status == state
    return handoff


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_step_from_every_state_is_taken_or_refused_with_409(world, items, state, action):
    handoff = handoff_in(world, items, state)
    persona, method, suffix, body = ACTIONS[action]
    response = getattr(client_for(getattr(world, persona)), method.lower())(url(handoff, suffix), body)
    handoff.refresh_from_db()
    if action in VALID[state]:
        assert response.status_code == 200, response.content
        assert handoff.status == VALID[state][action]
    else:
        assert response.status_code == 409, response.content
        assert handoff.status == state


# ---------------------------------------------------------------- who may take each step


def test_a_teammate_without_manage_team_cannot_submit(world, items):
    handoff = draft(world, items, actor=world.teammate)
    response = client_for(world.teammate).post(url(handoff, "submit"))
    assert response.status_code == 403
    assert response.json()["detail"] == services.HANDOFF_SUBMIT_NOT_ALLOWED


def test_only_a_supervisor_of_the_cases_agency_reviews(world, items):
    handoff = draft(world, items, actor=world.teammate)
    services.handoff_submit(actor=world.supervisor, handoff=handoff)
    # The case lead holds manage_team but is no supervisor.
    as_lead = client_for(world.lead).post(url(handoff, "review"), {"approve": True})
    assert as_lead.status_code == 403
    assert as_lead.json()["detail"] == services.HANDOFF_REVIEW_NOT_SUPERVISOR
    # A supervisor of another agency invited to lead the case is not the case agency's supervisor.
    services.team_member_set(actor=world.lead, case=world.case, user=world.outsider_supervisor, role=TeamRole.LEAD)
    as_outside = client_for(world.outsider_supervisor).post(url(handoff, "review"), {"approve": True})
    assert as_outside.status_code == 403
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.PENDING_REVIEW


def test_the_drafter_cannot_review_even_when_someone_else_submitted(world, items):
    handoff = draft(world, items, actor=world.supervisor)
    services.handoff_submit(actor=world.lead, handoff=handoff)
    supervisor = client_for(world.supervisor)
    for body in ({"approve": True, "note": "Mine"}, {"approve": False, "note": "Mine"}):
        response = supervisor.post(url(handoff, "review"), body)
        assert response.status_code == 403
        assert response.json()["detail"] == services.HANDOFF_REVIEW_SECOND_PERSON
    approved = client_for(second_supervisor(world)).post(url(handoff, "review"), {"approve": True})
    assert approved.status_code == 200
    assert approved.json()["status"] == "sent"


def test_the_submitter_cannot_review(world, items):
    handoff = draft(world, items)
    services.handoff_submit(actor=world.supervisor, handoff=handoff)
    response = client_for(world.supervisor).post(url(handoff, "review"), {"approve": True})
    assert response.status_code == 403
    assert response.json()["detail"] == services.HANDOFF_REVIEW_SECOND_PERSON
    approved = client_for(second_supervisor(world)).post(url(handoff, "review"), {"approve": True})
    assert approved.status_code == 200


def test_one_supervisor_alone_cannot_send_a_handoff_in_any_order_of_calls(world, items):
    """The supervisor drafts, edits, submits and re-submits; at no point can they review it."""
    supervisor = client_for(world.supervisor)
    body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk, "leads": [str(items.lead_a.pk)]}
    handoff = Handoff.objects.get(pk=supervisor.post("/api/handoffs/", body).json()["id"])
    attempts = [
        ("review", {"approve": True}),
        ("submit", {}),
        ("review", {"approve": True}),
        ("review", {"approve": False, "note": "Let me redo it"}),
    ]
    answers = [supervisor.post(url(handoff, step), data).status_code for step, data in attempts]
    assert answers == [403, 200, 403, 403]
    # The lead takes the submission over? It is pending review already: only another supervisor moves it.
    assert client_for(world.lead).post(url(handoff, "submit")).status_code == 409
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.PENDING_REVIEW
    assert handoff.reviewed_by is None
    assert not HandoffUserObjectPermission.objects.filter(content_object=handoff).exists()
    assert client_for(world.prosecutor).get(url(handoff)).status_code == 404


def test_a_drafting_supervisor_stays_barred_after_a_return_and_a_resubmission_by_the_lead(world, items):
    handoff = draft(world, items, actor=world.supervisor)
    other = second_supervisor(world)
    send(world, handoff, submitter=world.lead, reviewer=other)
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Add the ad.")
    services.handoff_submit(actor=world.lead, handoff=handoff)
    response = client_for(world.supervisor).post(url(handoff, "review"), {"approve": True})
    assert response.status_code == 403


def test_only_the_addressed_prosecutor_acknowledges_and_decides(world, items):
    handoff = sent_handoff(world, items)
    for user in (world.lead, world.supervisor):
        client = client_for(user)
        assert client.post(url(handoff, "acknowledge")).status_code == 403
        assert client.post(url(handoff, "decision"), {"decision": "accepted"}).status_code == 403
    colleague = UserFactory(username="pia_pros", agency=world.agency_p, role=Role.PROSECUTOR)
    assert client_for(colleague).post(url(handoff, "acknowledge")).status_code == 404
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.SENT


# ---------------------------------------------------------------- the prosecutor's scope


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_a_prosecutor_sees_only_handoffs_sent_to_them(world, items):
    sent = sent_handoff(world, items)
    pending = draft(world, items)
    services.handoff_submit(actor=world.lead, handoff=pending)
    never = draft(world, items)
    client = client_for(world.prosecutor)
    assert _ids(client.get("/api/handoffs/")) == {str(sent.pk)}
    assert client.get(url(sent)).status_code == 200
    assert client.get(url(pending)).status_code == 404
    assert client.get(url(never)).status_code == 404


def test_a_prosecutor_sees_the_included_items_and_nothing_else_of_the_case(world, items):
    handoff = sent_handoff(world, items)
    client = client_for(world.prosecutor)
    assert _ids(client.get("/api/leads/")) == {str(items.lead_a.pk), str(items.lead_b.pk)}
    assert _ids(client.get("/api/evidence/")) == {str(items.evidence_a.pk), str(items.evidence_b.pk)}
    assert client.get(f"/api/leads/{items.lead_a.pk}/").status_code == 200
    assert client.get(f"/api/evidence/{items.evidence_a.pk}/").status_code == 200
    content = client.get(f"/api/evidence/{items.evidence_a.pk}/content/")
    assert content.status_code == 200
    assert b"".join(content.streaming_content) == b"buyer: how much\nbot: 200\n"
    custody = client.get(f"/api/evidence/{items.evidence_a.pk}/custody/")
    assert custody.status_code == 200
    assert [row["action"] for row in custody.json()["results"]] == ["collected"]
    assert client.get(f"/api/leads/{items.hidden_lead.pk}/").status_code == 404
    assert client.get(f"/api/evidence/{items.hidden_evidence.pk}/").status_code == 404
    assert client.get(f"/api/evidence/{items.hidden_evidence.pk}/custody/").status_code == 404
    assert client.get(f"/api/cases/{world.case.pk}/").status_code == 404
    assert client.get(f"/api/cases/{world.case.pk}/team/").status_code == 404
    assert _ids(client.get("/api/cases/")) == set()
    assert _ids(client.get(f"/api/leads/?handoff={handoff.pk}")) == {str(items.lead_a.pk), str(items.lead_b.pk)}


def test_a_prosecutor_reads_but_never_changes_included_items(world, items):
    sent_handoff(world, items)
    client = client_for(world.prosecutor)
    assert client.patch(f"/api/leads/{items.lead_a.pk}/", {"notes": "x"}).status_code == 403
    assert client.patch(f"/api/evidence/{items.evidence_a.pk}/", {"description": "x"}).status_code == 403
    custody = {"action": "transferred", "to_party": "Prosecutor"}
    assert client.post(f"/api/evidence/{items.evidence_a.pk}/custody/", custody).status_code == 403
    assert client.post(f"/api/evidence/{items.evidence_a.pk}/verify/").status_code == 403


def test_another_prosecutor_sees_nothing(world, items):
    handoff = sent_handoff(world, items)
    colleague = client_for(UserFactory(username="pia_pros", agency=world.agency_p, role=Role.PROSECUTOR))
    assert colleague.get(url(handoff)).status_code == 404
    assert _ids(colleague.get("/api/handoffs/")) == set()
    assert _ids(colleague.get("/api/leads/")) == set()
    assert _ids(colleague.get("/api/evidence/")) == set()
    assert colleague.get(f"/api/leads/{items.lead_a.pk}/").status_code == 404
    assert colleague.get(f"/api/evidence/{items.evidence_a.pk}/content/").status_code == 404


def test_a_returned_handoff_shows_the_prosecutor_its_record_but_no_items_until_sent_again(world, items):
    handoff = sent_handoff(world, items)
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Incomplete.")
    client = client_for(world.prosecutor)
    record = client.get(url(handoff)).json()
    assert record["status"] == "draft"
    assert record["leads"] == [] and record["evidence"] == []
    assert client.get(f"/api/leads/{items.lead_a.pk}/").status_code == 404
    assert _ids(client.get("/api/evidence/")) == set()
    # An item added while it is back in draft is not seen before a supervisor approves it.
    services.handoff_update(
        actor=world.lead, handoff=handoff, data={"leads": [items.lead_a, items.lead_b, items.hidden_lead]}
    )
    assert client.get(f"/api/leads/{items.hidden_lead.pk}/").status_code == 404
    send(world, handoff)
    assert client.get(f"/api/leads/{items.hidden_lead.pk}/").status_code == 200


def test_removing_an_item_from_a_returned_handoff_removes_the_prosecutors_access(world, items):
    handoff = sent_handoff(world, items)
    client = client_for(world.prosecutor)
    assert client.get(f"/api/leads/{items.lead_b.pk}/").status_code == 200
    assert client.get(f"/api/evidence/{items.evidence_a.pk}/content/").status_code == 200
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Drop buyer B.")
    lead = client_for(world.lead)
    patched = lead.patch(url(handoff), {"leads": [str(items.lead_a.pk)], "evidence": [str(items.evidence_b.pk)]})
    assert patched.status_code == 200, patched.content
    send(world, handoff)
    assert client.get(f"/api/leads/{items.lead_b.pk}/").status_code == 404
    assert client.get(f"/api/evidence/{items.evidence_a.pk}/").status_code == 404
    assert client.get(f"/api/evidence/{items.evidence_a.pk}/content/").status_code == 404
    assert client.get(f"/api/leads/{items.lead_a.pk}/").status_code == 200
    assert _ids(client.get("/api/evidence/")) == {str(items.evidence_b.pk)}
    assert client.get(url(handoff)).json()["leads"] == [str(items.lead_a.pk)]


def test_readdressing_a_returned_handoff_takes_the_first_prosecutors_access_away(world, items):
    handoff = sent_handoff(world, items)
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Not my docket.")
    colleague = UserFactory(username="pia_pros", agency=world.agency_p, role=Role.PROSECUTOR)
    response = client_for(world.lead).patch(url(handoff), {"prosecutor": colleague.pk})
    assert response.status_code == 200, response.content
    assert response.json()["prosecutor"]["username"] == "pia_pros"
    assert client_for(world.prosecutor).get(url(handoff)).status_code == 404
    assert not HandoffUserObjectPermission.objects.filter(content_object=handoff).exists()
    updated = events_of(handoff)[-1]
    assert updated.action == AuditAction.HANDOFF_UPDATED
    assert updated.changes["prosecutor"] == ["pat_pros", "pia_pros"]
    assert updated.changes["access_revoked"] == ["pat_pros"]
    send(world, handoff)
    assert client_for(colleague).get(f"/api/leads/{items.lead_a.pk}/").status_code == 200
    assert client_for(world.prosecutor).get(f"/api/leads/{items.lead_a.pk}/").status_code == 404


def test_the_prosecutor_does_not_see_the_internal_review_note(world, items):
    handoff = draft(world, items)
    services.handoff_submit(actor=world.lead, handoff=handoff)
    services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True, note="Weak on intent; send anyway")
    assert client_for(world.prosecutor).get(url(handoff)).json()["review_note"] == ""
    assert client_for(world.lead).get(url(handoff)).json()["review_note"] == "Weak on intent; send anyway"


def test_case_team_and_supervisors_see_the_cases_handoffs_outsiders_do_not(world, items):
    handoff = draft(world, items)
    for user in (world.lead, world.teammate, world.viewer, world.supervisor):
        assert client_for(user).get(url(handoff)).status_code == 200, user
    for user in (world.investigator, world.auditor, world.admin, world.outsider, world.outsider_supervisor):
        assert client_for(user).get(url(handoff)).status_code == 404, user
        assert _ids(client_for(user).get("/api/handoffs/")) == set()


def test_handoffs_filter_by_status_and_case(world, items):
    sent = sent_handoff(world, items)
    drafted = draft(world, items)
    client = client_for(world.lead)
    assert _ids(client.get("/api/handoffs/?status=sent")) == {str(sent.pk)}
    assert _ids(client.get("/api/handoffs/?status=draft")) == {str(drafted.pk)}
    assert _ids(client.get(f"/api/handoffs/?case={world.case.pk}")) == {str(sent.pk), str(drafted.pk)}


def test_investigators_look_up_prosecutors_to_address(world):
    response = client_for(world.lead).get("/api/prosecutors/")
    assert response.status_code == 200
    assert [row["username"] for row in response.json()["results"]] == ["pat_pros"]
    assert client_for(world.auditor).get("/api/prosecutors/").status_code == 403


# ---------------------------------------------------------------- audit


def test_every_transition_is_audited_with_its_note(world, items):
    handoff = draft(world, items)
    services.handoff_update(actor=world.lead, handoff=handoff, data={"leads": [items.lead_a]})
    services.handoff_submit(actor=world.lead, handoff=handoff, note="First pass")
    services.handoff_review(actor=world.supervisor, handoff=handoff, approve=False, note="Add the ad capture")
    services.handoff_submit(actor=world.lead, handoff=handoff, note="Ad added")
    services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True, note="Approved")
    services.handoff_acknowledge(actor=world.prosecutor, handoff=handoff, note="Received")
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Need a phone return")
    services.handoff_submit(actor=world.lead, handoff=handoff)
    services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True)
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="accepted", note="Filing")
    recorded = [(e.action, e.actor.username, e.changes) for e in events_of(handoff)]
    lead_ids = sorted([str(items.lead_a.pk), str(items.lead_b.pk)])
    evidence_ids = sorted([str(items.evidence_a.pk), str(items.evidence_b.pk)])
    assert recorded == [
        (
            AuditAction.HANDOFF_CREATED,
            "lena_lead",
            {
                "number": "H001",
                "status": [None, "draft"],
                "prosecutor": [None, "pat_pros"],
                "leads": [[], lead_ids],
                "evidence": [[], evidence_ids],
                "charges": [[], CHARGES],
                "narrative": [None, NARRATIVE],
            },
        ),
        (AuditAction.HANDOFF_UPDATED, "lena_lead", {"number": "H001", "leads": [lead_ids, [str(items.lead_a.pk)]]}),
        (
            AuditAction.HANDOFF_SUBMITTED,
            "lena_lead",
            {"number": "H001", "status": ["draft", "pending_review"], "note": "First pass"},
        ),
        (
            AuditAction.HANDOFF_REJECTED,
            "sam_super",
            {"number": "H001", "status": ["pending_review", "draft"], "note": "Add the ad capture"},
        ),
        (
            AuditAction.HANDOFF_SUBMITTED,
            "lena_lead",
            {"number": "H001", "status": ["draft", "pending_review"], "note": "Ad added"},
        ),
        (
            AuditAction.HANDOFF_APPROVED,
            "sam_super",
            {
                "number": "H001",
                "status": ["pending_review", "sent"],
                "note": "Approved",
                "prosecutor": "pat_pros",
                "access_granted": "pat_pros",
            },
        ),
        (
            AuditAction.HANDOFF_ACKNOWLEDGED,
            "pat_pros",
            {"number": "H001", "status": ["sent", "acknowledged"], "note": "Received"},
        ),
        (
            AuditAction.HANDOFF_RETURNED,
            "pat_pros",
            {
                "number": "H001",
                "status": ["acknowledged", "draft"],
                "decision": "returned",
                "note": "Need a phone return",
            },
        ),
        (
            AuditAction.HANDOFF_SUBMITTED,
            "lena_lead",
            {"number": "H001", "status": ["draft", "pending_review"], "note": ""},
        ),
        (
            AuditAction.HANDOFF_APPROVED,
            "sam_super",
            {
                "number": "H001",
                "status": ["pending_review", "sent"],
                "note": "",
                "prosecutor": "pat_pros",
                "access_granted": "pat_pros",
            },
        ),
        (
            AuditAction.HANDOFF_ACCEPTED,
            "pat_pros",
            {"number": "H001", "status": ["sent", "accepted"], "decision": "accepted", "note": "Filing"},
        ),
    ]
    assert {e.case_id for e in events_of(handoff)} == {world.case.pk}
    assert {e.agency_id for e in events_of(handoff)} == {world.agency_a.pk}


def test_a_declined_handoff_is_audited_with_the_prosecutors_reason(world, items):
    handoff = sent_handoff(world, items)
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="declined", note="Insufficient")
    declined = events_of(handoff)[-1]
    assert (declined.action, declined.changes) == (
        AuditAction.HANDOFF_DECLINED,
        {"number": "H001", "status": ["sent", "declined"], "decision": "declined", "note": "Insufficient"},
    )


def test_reading_handoffs_is_audited(world, items):
    handoff = draft(world, items)
    client = client_for(world.lead)
    client.get(url(handoff))
    client.get("/api/handoffs/?status=draft")
    viewed = AuditEvent.objects.filter(action=AuditAction.HANDOFF_VIEWED).get()
    assert (viewed.actor_id, viewed.target_id, viewed.case_id) == (world.lead.pk, str(handoff.pk), world.case.pk)
    listed = AuditEvent.objects.filter(action=AuditAction.HANDOFF_LISTED).get()
    assert listed.changes == {"query": {"status": ["draft"]}}


def test_a_refused_transition_leaves_no_event(world, items):
    handoff = draft(world, items, actor=world.supervisor)
    services.handoff_submit(actor=world.supervisor, handoff=handoff)
    before = len(events_of(handoff))
    assert client_for(world.supervisor).post(url(handoff, "review"), {"approve": True}).status_code == 403
    assert client_for(world.lead).post(url(handoff, "submit")).status_code == 409
    assert len(events_of(handoff)) == before


# ---------------------------------------------------------------- admin


def admin_page(client: Any, user: Any, model: str, *args: Any) -> Any:
    client.force_login(user)
    view = "change" if args else "changelist"
    return client.get(reverse(f"admin:cases_{model}_{view}", args=args))


def test_the_handoff_admin_page_shows_the_prosecutor_only_what_the_api_does(client, world, items):
    handoff = sent_handoff(world, items)
    page = admin_page(client, world.prosecutor, "handoff", handoff.pk)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Buyer A" in body and "Buyer B" in body
    assert "Ready." not in body  # the internal review note
    assert "Ready." in admin_page(client, world.supervisor, "handoff", handoff.pk).content.decode()
    services.handoff_decide(actor=world.prosecutor, handoff=handoff, decision="returned", note="Redo.")
    body = admin_page(client, world.prosecutor, "handoff", handoff.pk).content.decode()
    assert "Buyer A" not in body and "Redo." in body
    viewed = AuditEvent.objects.filter(action=AuditAction.HANDOFF_VIEWED, actor=world.prosecutor)
    assert viewed.count() == 2
    assert {e.changes["via"] for e in viewed} == {"admin"}


def test_the_handoff_admin_is_read_only_and_scoped(client, world, items):
    handoff = draft(world, items)
    assert admin_page(client, world.lead, "handoff", handoff.pk).status_code == 200
    assert handoff.number in admin_page(client, world.lead, "handoff").content.decode()
    assert admin_page(client, world.prosecutor, "handoff", handoff.pk).status_code == 302  # not in scope
    assert handoff.number not in admin_page(client, world.outsider, "handoff").content.decode()
    client.force_login(world.lead)
    change = reverse("admin:cases_handoff_change", args=[handoff.pk])
    assert client.post(change, {"narrative": "Changed in the admin"}).status_code == 403
    handoff.refresh_from_db()
    assert handoff.narrative == NARRATIVE


def test_a_lead_page_in_the_admin_lists_only_the_evidence_the_prosecutor_may_see(client, world, items):
    extra = EvidenceFactory(case=world.case, lead=items.lead_a, description="Second chat, not handed off")
    sent_handoff(world, items)
    body = admin_page(client, world.prosecutor, "lead", items.lead_a.pk).content.decode()
    assert str(items.evidence_a.pk) in body
    assert str(extra.pk) not in body
    assert str(extra.pk) in admin_page(client, world.lead, "lead", items.lead_a.pk).content.decode()
