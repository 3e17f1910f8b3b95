"""Leads: identifier normalization and its errors, the status workflow, assignees, priority,
filters, and deconfliction that tells who to call and nothing else."""

from __future__ import annotations

import json
import threading
from typing import Any

import phonenumbers
import pytest
from django.db import connection

from audit.models import AuditAction, AuditEvent
from cases import identifiers, services
from cases.identifiers import audit_label
from cases.models import DeconflictionHit, Identifier, Lead, LeadSource, LeadStatus, Role
from tests.factories import AgencyFactory, CaseFactory, LeadFactory, UserFactory

PHONE = "+12025550143"
PHONE_FORMS = ["(202) 555-0143", "202-555-0143", "+1 202 555 0143", "2025550143", "202.555.0143", "+1-202-555-0143"]


def lead_url(lead: Any) -> str:
    return f"/api/leads/{lead.pk}/" if not isinstance(lead, dict) else f"/api/leads/{lead['id']}/"


def create_lead(client: Any, case: Any, **body: Any) -> Any:
    return client.post("/api/leads/", {"case": str(case.pk), **body})


def phone_parse_reason(value: str) -> str:
    try:
        phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException as exc:
        return str(exc)
    raise AssertionError(f"{value!r} parsed")


# ---------------------------------------------------------------- identifiers


def test_phones_typed_in_any_format_become_one_e164_identifier(world, as_user):
    client = as_user(world.lead)
    for index, form in enumerate(PHONE_FORMS):
        r = create_lead(
            client, world.case, display_name=f"Buyer {index}", identifiers=[{"kind": "phone", "value": form}]
        )
        assert r.status_code == 201, (form, r.content)
        assert r.json()["identifiers"] == [{"kind": "phone", "value": PHONE}]
    assert list(Identifier.objects.values_list("kind", "value")) == [("phone", PHONE)]


def test_email_is_case_folded_and_handle_loses_its_at(world, as_user):
    r = create_lead(
        as_user(world.lead),
        world.case,
        identifiers=[
            {"kind": "email", "value": "  Buyer.One@Example.COM "},
            {"kind": "handle", "value": "@Night_Owl77"},
            {"kind": "payment_handle", "value": "$CashBuyer"},
        ],
    )
    assert r.status_code == 201, r.content
    assert sorted((i["kind"], i["value"]) for i in r.json()["identifiers"]) == [
        ("email", "buyer.one@example.com"),
        ("handle", "night_owl77"),
        ("payment_handle", "cashbuyer"),
    ]


def test_fullwidth_characters_normalize_to_their_plain_form(world, as_user):
    """Evaders paste handles and numbers in fullwidth forms; they must still match (NFKC)."""
    client = as_user(world.lead)
    r = create_lead(
        client,
        world.case,
        identifiers=[
            {"kind": "phone", "value": "２０２-５５５-０１４３"},
            {"kind": "handle", "value": "@Ｎｉｇｈｔ_Ｏｗｌ"},
        ],
    )
    assert r.status_code == 201, r.content
    assert sorted((i["kind"], i["value"]) for i in r.json()["identifiers"]) == [
        ("handle", "night_owl"),
        ("phone", PHONE),
    ]


def test_the_same_identifier_twice_is_recorded_once(world, as_user):
    r = create_lead(
        as_user(world.lead),
        world.case,
        identifiers=[{"kind": "phone", "value": PHONE_FORMS[0]}, {"kind": "phone", "value": PHONE_FORMS[1]}],
    )
    assert r.status_code == 201
    assert r.json()["identifiers"] == [{"kind": "phone", "value": PHONE}]


def test_unparseable_phone_is_400_saying_why(world, as_user):
    value = "call me maybe"
    r = create_lead(as_user(world.lead), world.case, identifiers=[{"kind": "phone", "value": value}])
    assert r.status_code == 400
    expected = identifiers.PHONE_UNPARSEABLE.format(value=value, reason=phone_parse_reason(value))
    assert r.json() == {"identifiers": [expected]}
    assert not Lead.objects.filter(case=world.case).exists()


def test_invalid_phone_is_400_saying_why(world, as_user):
    value = "+1 123 456 7890"
    r = create_lead(as_user(world.lead), world.case, identifiers=[{"kind": "phone", "value": value}])
    assert r.status_code == 400
    assert r.json() == {"identifiers": [identifiers.PHONE_INVALID.format(value=value)]}
    assert not Lead.objects.filter(case=world.case).exists()
    assert not Identifier.objects.exists()


def test_one_bad_identifier_keeps_the_whole_lead_out(world, as_user):
    r = create_lead(
        as_user(world.lead),
        world.case,
        display_name="Partial",
        identifiers=[{"kind": "phone", "value": PHONE}, {"kind": "email", "value": "not-an-email"}],
    )
    assert r.status_code == 400
    assert r.json() == {"identifiers": [identifiers.EMAIL_INVALID.format(value="not-an-email")]}
    assert not Lead.objects.exists()
    assert not Identifier.objects.exists()


MALFORMED_IDENTIFIERS = [
    [{"kind": "fax", "value": "123"}],
    [{"kind": "phone"}],
    [{"kind": "phone", "value": ""}],
    [{"kind": "phone", "value": "   "}],
    [{"kind": "handle", "value": "has spaces in it"}],
    [{"kind": "email", "value": "x" * 300 + "@example.com"}],
    "+12025550143",
    [[PHONE]],
    [{"kind": "phone", "value": PHONE}] * 101,
]
MALFORMED_LEAD_INPUT = [
    {"case": "not-a-uuid"},
    {"case": "00000000-0000-0000-0000-000000000001"},
    {"source": "psychic"},
    {"status": "done"},
    {"priority": 99},
    {"priority_score": 99},
    {"priority_factors": []},
    {"priority_override": 101},
    {"priority_override": -1},
    {"signals": {"minor_age_mentioned": "perhaps"}},
    {"signals": {"is_vip": True}},
    {"signals": "all of them"},
    {"first_seen_at": "yesterday"},
    {"assignee": "abc"},
    {"assignee": 999999},
    {"display_name": "x" * 201},
]


def test_malformed_identifiers_are_400(world, as_user):
    client = as_user(world.lead)
    for idents in MALFORMED_IDENTIFIERS:
        r = create_lead(client, world.case, identifiers=idents)
        assert r.status_code == 400, idents
        assert "identifiers" in r.json()
    assert not Lead.objects.exists()
    assert not Identifier.objects.exists()


def test_malformed_lead_input_is_400(world, as_user):
    client = as_user(world.lead)
    for body in MALFORMED_LEAD_INPUT:
        r = client.post("/api/leads/", {"case": str(world.case.pk), **body})
        assert r.status_code == 400, body
    assert not Lead.objects.exists()


def test_lead_on_a_case_outside_scope_is_refused(world, as_user):
    r = create_lead(as_user(world.lead), world.other_case, display_name="Not mine")
    assert r.status_code == 400
    assert "case" in r.json()
    assert not Lead.objects.filter(case=world.other_case).exists()


def test_viewer_cannot_create_or_edit_leads(world, as_user):
    lead = LeadFactory(case=world.case)
    assert create_lead(as_user(world.viewer), world.case).status_code == 403
    assert as_user(world.viewer).patch(lead_url(lead), {"notes": "x"}).status_code == 403
    assert as_user(world.outsider).patch(lead_url(lead), {"notes": "x"}).status_code == 404


def test_case_of_a_lead_cannot_be_changed(world, as_user):
    lead = LeadFactory(case=world.case)
    other = CaseFactory(actor=world.lead)
    r = as_user(world.lead).patch(lead_url(lead), {"case": str(other.pk)})
    assert r.status_code == 400
    assert Lead.objects.get(pk=lead.pk).case_id == world.case.pk


# ---------------------------------------------------------------- workflow and assignee


def test_status_workflow_valid_steps(world, as_user):
    client = as_user(world.lead)
    lead = LeadFactory(case=world.case)
    steps = [
        {"status": "triaged"},
        {"status": "assigned", "assignee": world.teammate.pk},
        {"status": "investigating"},
        {"status": "referred"},
        {"status": "investigating"},
        {"status": "closed_no_action"},
        {"status": "triaged"},
    ]
    for body in steps:
        r = client.patch(lead_url(lead), body)
        assert r.status_code == 200, (body, r.content)
        assert r.json()["status"] == body["status"]


INVALID_LEAD_TRANSITIONS = [
    ((), "investigating"),
    ((), "referred"),
    (("triaged",), "new"),
    (("closed_no_action",), "referred"),
]


def test_invalid_lead_status_transition_is_409(world, as_user):
    client = as_user(world.lead)
    for path, target in INVALID_LEAD_TRANSITIONS:
        lead = LeadFactory(case=world.case, assignee=world.teammate)
        for status in path:
            assert client.patch(lead_url(lead), {"status": status}).status_code == 200
        old = Lead.objects.get(pk=lead.pk).status
        r = client.patch(lead_url(lead), {"status": target})
        assert r.status_code == 409, (path, target)
        assert r.json() == {"detail": services.LEAD_STATUS_TRANSITION.format(old=old, new=target), "code": "conflict"}
        assert Lead.objects.get(pk=lead.pk).status == old


def test_assigned_needs_an_assignee(world, as_user):
    client = as_user(world.lead)
    lead = LeadFactory(case=world.case, status=LeadStatus.TRIAGED)
    r = client.patch(lead_url(lead), {"status": "assigned"})
    assert r.status_code == 400
    assert r.json() == {"assignee": [services.LEAD_ASSIGNED_NEEDS_ASSIGNEE]}
    assert Lead.objects.get(pk=lead.pk).status == LeadStatus.TRIAGED
    r = client.patch(lead_url(lead), {"status": "assigned", "assignee": world.teammate.pk})
    assert r.status_code == 200
    r = client.patch(lead_url(lead), {"assignee": None})
    assert r.status_code == 400
    assert r.json() == {"assignee": [services.LEAD_ASSIGNED_NEEDS_ASSIGNEE]}


def test_assignee_who_cannot_see_the_case_is_400(world, as_user):
    lead = LeadFactory(case=world.case)
    for user in (world.investigator, world.outsider):
        r = as_user(world.lead).patch(lead_url(lead), {"assignee": user.pk})
        assert r.status_code == 400
        assert r.json() == {"assignee": [services.LEAD_ASSIGNEE_NO_ACCESS]}
    assert Lead.objects.get(pk=lead.pk).assignee_id is None
    r = create_lead(as_user(world.lead), world.case, assignee=world.investigator.pk)
    assert r.status_code == 400
    assert Lead.objects.count() == 1


def test_viewer_on_the_team_can_be_assigned(world, as_user):
    lead = LeadFactory(case=world.case)
    r = as_user(world.lead).patch(lead_url(lead), {"assignee": world.viewer.pk})
    assert r.status_code == 200
    assert r.json()["assignee"]["username"] == "vic_viewer"


# ---------------------------------------------------------------- priority


def test_priority_comes_from_signals_and_lists_its_factors(world, as_user):
    r = create_lead(
        as_user(world.lead),
        world.case,
        signals={"minor_age_mentioned": True, "meeting_arranged": True},
    )
    assert r.status_code == 201
    body = r.json()
    assert body["priority"] == 70
    assert body["priority_score"] == 70
    assert body["priority_factors"] == [
        {"factor": "minor_age_mentioned", "weight": 50},
        {"factor": "meeting_arranged", "weight": 20},
    ]
    assert body["signals"] == {
        "minor_age_mentioned": True,
        "payment_discussed": False,
        "meeting_arranged": True,
        "repeat_contact": False,
    }


def test_all_signals_sum_to_100(world, as_user):
    signals = dict.fromkeys(services.PRIORITY_WEIGHTS, True)
    r = create_lead(as_user(world.lead), world.case, signals=signals)
    assert r.json()["priority"] == 100


def test_override_sets_priority_and_clearing_it_restores_the_score(world, as_user):
    client = as_user(world.lead)
    lead = create_lead(client, world.case, signals={"payment_discussed": True}).json()
    r = client.patch(lead_url(lead), {"priority_override": 95})
    assert (r.json()["priority"], r.json()["priority_score"], r.json()["priority_override"]) == (95, 20, 95)
    r = client.patch(lead_url(lead), {"signals": {"repeat_contact": True}})
    assert (r.json()["priority"], r.json()["priority_score"]) == (95, 30)
    r = client.patch(lead_url(lead), {"priority_override": None})
    assert (r.json()["priority"], r.json()["priority_score"]) == (30, 30)


def test_signals_patch_keeps_the_other_signals(world, as_user):
    client = as_user(world.lead)
    lead = create_lead(client, world.case, signals={"payment_discussed": True}).json()
    r = client.patch(lead_url(lead), {"signals": {"meeting_arranged": True}})
    assert r.json()["signals"]["payment_discussed"] is True
    assert r.json()["priority"] == 40


# ---------------------------------------------------------------- filters


def test_lead_list_filters(world, as_user):
    client = as_user(world.lead)
    hot = LeadFactory(
        case=world.case,
        source=LeadSource.INTERCEPT_BOT,
        minor_age_mentioned=True,
        identifiers=[{"kind": "phone", "value": PHONE}],
    )
    tip = LeadFactory(case=world.case, source=LeadSource.TIP, identifiers=[{"kind": "email", "value": "a@b.org"}])
    services.lead_update(actor=world.lead, lead=tip, status=LeadStatus.TRIAGED)
    services.lead_update(actor=world.lead, lead=tip, status=LeadStatus.ASSIGNED, assignee=world.teammate)
    second_case = CaseFactory(actor=world.lead)
    elsewhere = LeadFactory(case=second_case, identifiers=[{"kind": "handle", "value": "night_owl"}])
    LeadFactory(case=world.other_case, identifiers=[{"kind": "phone", "value": PHONE}])

    def ids(**params: Any) -> set[str]:
        r = client.get("/api/leads/", params)
        assert r.status_code == 200, (params, r.content)
        return {lead["id"] for lead in r.json()["results"]}

    assert ids() == {str(hot.pk), str(tip.pk), str(elsewhere.pk)}
    assert ids(case=second_case.pk) == {str(elsewhere.pk)}
    assert ids(status="assigned") == {str(tip.pk)}
    assert ids(source="intercept_bot") == {str(hot.pk)}
    assert ids(assignee=world.teammate.pk) == {str(tip.pk)}
    assert ids(min_priority=50) == {str(hot.pk)}
    assert ids(identifier="(202) 555-0143") == {str(hot.pk)}
    assert ids(identifier="+1 202 555 0143") == {str(hot.pk)}
    assert ids(identifier="A@B.ORG") == {str(tip.pk)}
    assert ids(identifier="@Night_Owl") == {str(elsewhere.pk)}
    assert ids(identifier="nothing-like-this") == set()
    assert ids(status="assigned", source="intercept_bot") == set()


def test_bad_lead_filter_value_is_400(world, as_user):
    client = as_user(world.lead)
    for query in ("case=not-a-uuid", "status=done", "source=psychic", "assignee=abc", "min_priority=high"):
        assert client.get(f"/api/leads/?{query}").status_code == 400, query


def test_out_of_range_assignee_filter_is_400_not_500(world, as_user):
    r = as_user(world.lead).get("/api/leads/", {"assignee": "99999999999999999999999"})
    assert r.status_code == 400
    assert "assignee" in r.json()


# ---------------------------------------------------------------- deconfliction


def seed_phone_on_world_case(world: Any) -> Lead:
    return LeadFactory(
        case=world.case, display_name="Marcus Hidden-Name", identifiers=[{"kind": "phone", "value": PHONE}]
    )


def expected_contact(world: Any) -> dict[str, Any]:
    return {
        "identifier": {"kind": "phone", "value": PHONE},
        "agency": {"code": "MCSO", "name": "Metro County Sheriff"},
        "contact": {
            "name": world.lead.get_full_name(),
            "title": "Detective",
            "phone": "+15555550100",
            "email": "lena_lead@example.org",
        },
    }


def assert_nothing_of_the_hidden_case_leaks(world: Any, hidden: Lead, text: str) -> None:
    for secret in (world.case.number, str(world.case.pk), world.case.title, hidden.display_name, str(hidden.pk)):
        assert secret not in text


def test_deconfliction_names_only_agency_and_lead_investigator_contact(world, as_user):
    hidden = seed_phone_on_world_case(world)
    r = create_lead(
        as_user(world.outsider),
        world.other_case,
        display_name="River buyer",
        identifiers=[{"kind": "phone", "value": "(202) 555-0143"}],
    )
    assert r.status_code == 201, r.content
    hits = r.json()["deconfliction"]
    assert hits == [expected_contact(world)]
    assert set(hits[0]) == {"identifier", "agency", "contact"}
    assert set(hits[0]["agency"]) == {"code", "name"}
    assert set(hits[0]["contact"]) == {"name", "title", "phone", "email"}
    assert_nothing_of_the_hidden_case_leaks(world, hidden, r.content.decode())


def test_deconfliction_records_the_hit_and_audits_both_sides(world, as_user):
    seed_phone_on_world_case(world)
    r = create_lead(as_user(world.outsider), world.other_case, identifiers=[{"kind": "phone", "value": PHONE}])
    hit = DeconflictionHit.objects.get()
    assert (hit.requested_by_id, hit.requesting_agency_id, hit.requesting_case_id) == (
        world.outsider.pk,
        world.agency_b.pk,
        world.other_case.pk,
    )
    assert (hit.matched_case_id, hit.matched_agency_id) == (world.case.pk, world.agency_a.pk)
    assert hit.identifier.value == PHONE
    seen = AuditEvent.objects.get(action=AuditAction.DECONFLICTION_HIT)
    assert (seen.actor_id, seen.agency_id, seen.case_id) == (world.outsider.pk, world.agency_b.pk, world.other_case.pk)
    assert seen.changes == {"identifier": audit_label("phone", PHONE), "matched_agency": "MCSO"}
    notified = AuditEvent.objects.get(action=AuditAction.DECONFLICTION_NOTIFIED)
    assert (notified.agency_id, notified.case_id) == (world.agency_a.pk, world.case.pk)
    assert notified.changes["requested_by"] == "otto_out"
    assert r.status_code == 201


def test_deconfliction_check_answers_the_same_without_creating_a_lead(world, as_user):
    hidden = seed_phone_on_world_case(world)
    leads = Lead.objects.count()
    r = as_user(world.outsider).post(
        "/api/deconfliction/check/", {"identifiers": [{"kind": "phone", "value": "202.555.0143"}]}
    )
    assert r.status_code == 200, r.content
    assert r.json() == {"hits": [expected_contact(world)]}
    assert_nothing_of_the_hidden_case_leaks(world, hidden, r.content.decode())
    assert Lead.objects.count() == leads
    hit = DeconflictionHit.objects.get()
    assert hit.requesting_case_id is None
    assert AuditEvent.objects.filter(action=AuditAction.DECONFLICTION_CHECKED, actor=world.outsider).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.DECONFLICTION_NOTIFIED, case_id=world.case.pk).count() == 1


def test_deconfliction_check_of_an_unknown_identifier_creates_nothing(world, as_user):
    r = as_user(world.outsider).post(
        "/api/deconfliction/check/", {"identifiers": [{"kind": "email", "value": "x@y.org"}]}
    )
    assert r.json() == {"hits": []}
    assert not Identifier.objects.exists()
    assert not DeconflictionHit.objects.exists()


def test_malformed_deconfliction_check_is_400(world, as_user):
    client = as_user(world.outsider)
    bodies = [
        {},
        {"identifiers": []},
        {"identifiers": [{"kind": "phone", "value": "garbage"}]},
        {"identifiers": "x"},
        {"identifiers": [{"kind": "phone", "value": PHONE}] * 101},
        {"identifiers": [{"kind": "phone", "value": PHONE}], "case": str(world.case.pk)},
    ]
    for body in bodies:
        assert client.post("/api/deconfliction/check/", body).status_code == 400, body
    assert not DeconflictionHit.objects.exists()


def test_roles_without_case_work_cannot_run_deconfliction_checks(world, as_user):
    seed_phone_on_world_case(world)
    for user in (world.auditor, world.prosecutor, world.admin):
        r = as_user(user).post("/api/deconfliction/check/", {"identifiers": [{"kind": "phone", "value": PHONE}]})
        assert r.status_code == 403
    assert not DeconflictionHit.objects.exists()


def test_a_hit_on_a_case_the_caller_can_see_is_not_reported(world, as_user):
    seed_phone_on_world_case(world)
    r = create_lead(as_user(world.teammate), world.case, identifiers=[{"kind": "phone", "value": PHONE}])
    assert r.json()["deconfliction"] == []
    r = as_user(world.supervisor).post(
        "/api/deconfliction/check/", {"identifiers": [{"kind": "phone", "value": PHONE}]}
    )
    assert r.json() == {"hits": []}
    assert not DeconflictionHit.objects.exists()


def test_adding_an_identifier_by_patch_also_deconflicts(world, as_user):
    seed_phone_on_world_case(world)
    client = as_user(world.outsider)
    lead = create_lead(client, world.other_case, display_name="River buyer").json()
    assert lead["deconfliction"] == []
    r = client.patch(lead_url(lead), {"identifiers": [{"kind": "phone", "value": "+1 (202) 555-0143"}]})
    assert r.status_code == 200
    assert r.json()["deconfliction"] == [expected_contact(world)]
    r = client.patch(lead_url(lead), {"identifiers": [{"kind": "phone", "value": PHONE}], "notes": "again"})
    assert r.json()["deconfliction"] == []
    assert DeconflictionHit.objects.count() == 1


def test_no_hit_once_the_outsider_is_on_the_team(world, as_user):
    seed_phone_on_world_case(world)
    services.team_member_set(actor=world.lead, case=world.case, user=world.outsider, role="viewer")
    r = create_lead(as_user(world.outsider), world.other_case, identifiers=[{"kind": "phone", "value": PHONE}])
    assert r.json()["deconfliction"] == []


def test_deconfliction_hits_do_not_show_up_in_the_outsiders_lists(world, as_user):
    hidden = seed_phone_on_world_case(world)
    client = as_user(world.outsider)
    create_lead(client, world.other_case, identifiers=[{"kind": "phone", "value": PHONE}])
    listing = client.get(f"/api/leads/?identifier={PHONE}")
    assert listing.status_code == 200
    assert str(hidden.pk) not in json.dumps(listing.json())
    assert client.get(lead_url(hidden)).status_code == 404


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_leads_with_one_new_identifier_share_one_row():
    agency = AgencyFactory(code="RACEL", name="Race Leads")
    users = [UserFactory(agency=agency, role=Role.INVESTIGATOR) for _ in range(6)]
    cases = [CaseFactory(actor=user) for user in users]
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def record(user: Any, case: Any) -> None:
        try:
            barrier.wait(timeout=20)
            services.lead_create(actor=user, case=case, identifiers=[{"kind": "phone", "value": "+1 202 555 0199"}])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=pair) for pair in zip(users, cases, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    identifier = Identifier.objects.get(value_index=Identifier.index_of("phone", "+12025550199"))
    assert identifier.lead_links.count() == len(users)
