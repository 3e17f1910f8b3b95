"""Query budgets: a list page costs the same for 1 row as for 50, a detail the same for 1 case as for 30."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditAction
from cases import services
from cases.models import CustodyAction, Handoff, LeadStatus, Role, TeamRole
from tests.conftest import World, client_for
from tests.factories import AgencyFactory, CaseFactory, EvidenceFactory, LeadFactory, UserFactory

PAGE = 50


def _get(user: Any, path: str) -> tuple[int, dict[str, Any]]:
    """The number of queries one GET of `path` by `user` makes, and its JSON body."""
    client = client_for(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(queries.captured_queries), response.json()


@dataclass
class ListScenario:
    """A list endpoint as `user` sees it with one row, and how to add one more row."""

    user: Any
    path: str
    add_row: Callable[[int], Any]


def _cases(world: World) -> ListScenario:
    # world.lead already sees one case: world.case.
    return ListScenario(
        user=world.lead,
        path="/api/cases/",
        add_row=lambda i: CaseFactory(actor=world.lead, kind="operation" if i % 2 else "investigation"),
    )


def _lead(world: World, i: int) -> Any:
    return LeadFactory(
        case=world.case,
        status=LeadStatus.TRIAGED,
        assignee=world.teammate if i % 2 else world.lead,
        payment_discussed=bool(i % 3),
        identifiers=[
            {"kind": "phone", "value": f"+1202555{i:04d}"},
            {"kind": "email", "value": f"buyer{i}@example.org"},
        ],
    )


def _leads(world: World) -> ListScenario:
    _lead(world, PAGE)
    return ListScenario(user=world.lead, path="/api/leads/", add_row=lambda i: _lead(world, i))


def _evidence_item(world: World, i: int, lead: Any) -> Any:
    return EvidenceFactory(case=world.case, lead=lead, actor=world.teammate if i % 2 else world.lead)


def _evidence(world: World) -> ListScenario:
    lead = LeadFactory(case=world.case)
    _evidence_item(world, PAGE, lead)
    return ListScenario(user=world.lead, path="/api/evidence/", add_row=lambda i: _evidence_item(world, i, lead))


def _custody(world: World) -> ListScenario:
    item = EvidenceFactory(case=world.case)  # its intake adds the first event, "collected"
    return ListScenario(
        user=world.lead,
        path=f"/api/evidence/{item.pk}/custody/",
        add_row=lambda i: services.custody_record(
            actor=world.teammate if i % 2 else world.lead,
            item=item,
            action=CustodyAction.CHECKED_OUT if i % 2 else CustodyAction.CHECKED_IN,
            to_party=f"Examiner {i}",
        ),
    )


def _team(world: World) -> ListScenario:
    case = CaseFactory(actor=world.lead)  # its team: the lead alone
    roles = (TeamRole.VIEWER, TeamRole.INVESTIGATOR, TeamRole.LEAD)
    return ListScenario(
        user=world.lead,
        path=f"/api/cases/{case.pk}/team/",
        add_row=lambda i: services.team_member_set(
            actor=world.lead,
            case=case,
            user=UserFactory(agency=world.agency_b if i % 5 == 0 else world.agency_a),
            role=roles[i % 3],
        ),
    )


def _users(world: World) -> ListScenario:
    agency = AgencyFactory()
    first = UserFactory(agency=agency)
    return ListScenario(
        user=first,
        path="/api/users/",
        add_row=lambda i: UserFactory(agency=agency, role=Role.values[i % len(Role.values)]),
    )


def _audit_events(world: World) -> ListScenario:
    # Each list request is itself audited, so the rows counted are the agency's case openings.
    agency = AgencyFactory()
    auditor = UserFactory(agency=agency, role=Role.AUDITOR)
    openers = [UserFactory(agency=agency, role=Role.INVESTIGATOR), UserFactory(agency=agency, role=Role.SUPERVISOR)]
    CaseFactory(actor=openers[0])
    return ListScenario(
        user=auditor,
        path=f"/api/audit/events/?action={AuditAction.CASE_CREATED}",
        add_row=lambda i: CaseFactory(actor=openers[i % 2]),
    )


def _handoff(world: World, i: int, *, sent: bool) -> Handoff:
    """A handoff of world.case with a lead and an evidence item of its own, drafted by the lead
    or the teammate; sent to world.prosecutor when `sent`."""
    lead = LeadFactory(case=world.case)
    handoff = services.handoff_create(
        actor=world.teammate if i % 2 else world.lead,
        case=world.case,
        prosecutor=world.prosecutor,
        leads=[lead],
        evidence=[EvidenceFactory(case=world.case, lead=lead)],
        charges=[{"statute": f"796.07({i})", "text": "Soliciting"}],
    )
    if sent:
        services.handoff_submit(actor=world.lead, handoff=handoff)
        services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True)
    return handoff


def _handoffs(world: World) -> ListScenario:
    _handoff(world, PAGE, sent=False)
    return ListScenario(user=world.lead, path="/api/handoffs/", add_row=lambda i: _handoff(world, i, sent=bool(i % 2)))


def _prosecutor_handoffs(world: World) -> ListScenario:
    _handoff(world, PAGE, sent=True)
    _handoff(world, PAGE + 1, sent=False)  # never sent: not in the prosecutor's list
    return ListScenario(user=world.prosecutor, path="/api/handoffs/", add_row=lambda i: _handoff(world, i, sent=True))


def _prosecutor_leads(world: World) -> ListScenario:
    # Each sent handoff opens one lead (and one evidence item) to the prosecutor.
    LeadFactory(case=world.case)  # a lead of the case no handoff includes
    _handoff(world, PAGE, sent=True)
    return ListScenario(user=world.prosecutor, path="/api/leads/", add_row=lambda i: _handoff(world, i, sent=True))


def _prosecutor_evidence(world: World) -> ListScenario:
    EvidenceFactory(case=world.case)  # an item of the case no handoff includes
    _handoff(world, PAGE, sent=True)
    return ListScenario(user=world.prosecutor, path="/api/evidence/", add_row=lambda i: _handoff(world, i, sent=True))


def _packets(world: World) -> ListScenario:
    handoff = _handoff(world, PAGE, sent=True)
    services.packet_request(actor=world.lead, handoff=handoff)
    return ListScenario(
        user=world.prosecutor,
        path=f"/api/handoffs/{handoff.pk}/packets/",
        add_row=lambda i: services.packet_request(actor=world.prosecutor if i % 2 else world.lead, handoff=handoff),
    )


def _prosecutors(world: World) -> ListScenario:
    # world.prosecutor is the one prosecutor so far.
    return ListScenario(
        user=world.lead,
        path="/api/prosecutors/",
        add_row=lambda i: UserFactory(agency=world.agency_p, role=Role.PROSECUTOR),
    )


LIST_SCENARIOS: dict[str, Callable[[World], ListScenario]] = {
    "cases": _cases,
    "leads": _leads,
    "evidence": _evidence,
    "custody": _custody,
    "team": _team,
    "users": _users,
    "audit-events": _audit_events,
    "handoffs": _handoffs,
    "handoffs-as-prosecutor": _prosecutor_handoffs,
    "leads-as-prosecutor": _prosecutor_leads,
    "evidence-as-prosecutor": _prosecutor_evidence,
    "packets": _packets,
    "prosecutors": _prosecutors,
}


@pytest.mark.parametrize("endpoint", list(LIST_SCENARIOS))
def test_list_queries_do_not_grow_with_rows(world: World, endpoint: str) -> None:
    scenario = LIST_SCENARIOS[endpoint](world)
    one_row, page = _get(scenario.user, scenario.path)
    assert page["count"] == 1
    for i in range(PAGE - 1):
        scenario.add_row(i)
    fifty_rows, page = _get(scenario.user, scenario.path)
    assert page["count"] == PAGE
    assert len(page["results"]) == PAGE
    assert fifty_rows == one_row


def test_case_list_query_budget(world: World, django_assert_num_queries: Any) -> None:
    operation = CaseFactory(actor=world.lead, kind="operation")
    for i in range(PAGE - 2):
        CaseFactory(actor=world.lead, parent=operation if i % 2 else None)
    client = client_for(world.lead)
    # 1. the token, joined with its user and the user's profile
    # 2. COUNT(*) of the cases in scope (the scope is one subquery over the direct and group
    #    object permissions, not a query of its own)
    # 3. the page of cases, agency, lead investigator (and profile) and parent joined
    # 4. INSERT of the case.listed audit event
    with django_assert_num_queries(4):
        response = client.get("/api/cases/")
    assert response.status_code == 200
    assert response.json()["count"] == PAGE
    assert len(response.json()["results"]) == PAGE


def test_prosecutor_lead_list_costs_what_the_case_leads_list_costs(world: World) -> None:
    """The prosecutor's scope is one more subquery inside the same statements, not a query."""
    for i in range(3):
        _handoff(world, i, sent=True)
    prosecutor, body = _get(world.prosecutor, "/api/leads/")
    assert body["count"] == 3
    lead, body = _get(world.lead, "/api/leads/")
    assert body["count"] == 3
    assert prosecutor == lead


def test_handoff_list_query_budget(world: World, django_assert_num_queries: Any) -> None:
    for i in range(PAGE):
        _handoff(world, i, sent=bool(i % 2))
    client = client_for(world.lead)
    # 1. the token, joined with its user and the user's profile
    # 2. COUNT(*) of the handoffs in scope (case scope and handoff grants are subqueries)
    # 3. the page of handoffs: case, prosecutor, office, drafter, submitter, reviewer joined,
    #    with whether the case itself is in scope (an EXISTS)
    # 4. the included leads of the page (prefetch)
    # 5. the included evidence of the page (prefetch)
    # 6. INSERT of the handoff.listed audit event
    with django_assert_num_queries(6):
        response = client.get("/api/handoffs/")
    assert response.status_code == 200
    assert response.json()["count"] == PAGE
    assert all(len(row["leads"]) == 1 for row in response.json()["results"])


def _lead_with_ten_identifiers(world: World) -> Any:
    phones = [{"kind": "phone", "value": f"+1202555{i:04d}"} for i in range(5)]
    handles = [{"kind": "handle", "value": f"buyer_{i}"} for i in range(5)]
    return LeadFactory(case=world.case, assignee=world.teammate, identifiers=phones + handles)


DETAIL_TARGETS: dict[str, Callable[[World], tuple[str, Any]]] = {
    "handoff": lambda world: ("/api/handoffs/{}/", _handoff(world, 0, sent=True)),
    "case": lambda world: ("/api/cases/{}/", world.case),
    "lead": lambda world: ("/api/leads/{}/", _lead_with_ten_identifiers(world)),
    "evidence": lambda world: (
        "/api/evidence/{}/",
        EvidenceFactory(case=world.case, lead=LeadFactory(case=world.case)),
    ),
}


@pytest.mark.parametrize("kind", list(DETAIL_TARGETS))
def test_detail_queries_do_not_grow_with_visible_cases(world: World, kind: str) -> None:
    template, target = DETAIL_TARGETS[kind](world)
    path = template.format(target.pk)
    one_case, body = _get(world.lead, path)
    assert body["id"] == str(target.pk)
    if kind == "lead":
        assert len(body["identifiers"]) == 10
    for _ in range(29):
        CaseFactory(actor=world.lead)
    thirty_cases, _ = _get(world.lead, path)
    assert _get(world.lead, "/api/cases/")[1]["count"] == 30
    assert thirty_cases == one_case
