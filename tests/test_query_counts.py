"""Query budgets. Every GET route of the API has a budget (a new route without one fails):
its query count stays within it and is the same whatever the caller's reach (an investigator
on 1 case or on 30 through team memberships, a supervisor over an agency of 1 case or 30, a
prosecutor with 1 handoff or 30, an auditor of an agency of 1 case or 30); and every list costs
the same for 1 row as for 50, and for page_size=1 as for page_size=50."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.mixins import ListModelMixin

from audit.models import AuditAction, AuditEvent, Checkpoint
from audit.sealing import seal_pending
from audit.services import checkpoint_create
from cases import services
from cases.models import (
    Case,
    CustodyAction,
    EvidenceItem,
    ExportPacket,
    Handoff,
    Lead,
    LeadStatus,
    Role,
    TeamRole,
)
from intercept import services as intercept_services
from intercept.models import Conversation
from tests.conftest import World, client_for
from tests.factories import AgencyFactory, CaseFactory, EvidenceFactory, LeadFactory, UserFactory
from tests.intercept.conftest import ad, conversation, make_operation

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


def _bot(world: World) -> Any:
    """An ingest source bound to a new operation of world.lead's team."""
    return intercept_services.ingest_source_create(actor=None, name="count-bot", case=make_operation(world)).source


def _conversations(world: World) -> ListScenario:
    source = _bot(world)

    def add(i: int) -> Any:
        item = conversation(f"c{i}", phone=None, messages=1 + i % 3, buyer={"handle": f"buyer_{i}"})
        return intercept_services.conversations_ingest(source=source, items=[item])

    add(PAGE)
    return ListScenario(user=world.teammate, path="/api/conversations/", add_row=add)


def _ads(world: World) -> ListScenario:
    source = _bot(world)

    def add(i: int) -> Any:
        phones = ["305.555.0142", "(786) 555-0123"][: 1 + i % 2]
        return intercept_services.ads_ingest(source=source, items=[ad(f"a{i}", phones=phones)])

    add(PAGE)
    return ListScenario(user=world.teammate, path="/api/ads/", add_row=add)


# name -> (the list route it exercises, the scenario)
LIST_SCENARIOS: dict[str, tuple[str, Callable[[World], ListScenario]]] = {
    "cases": ("case-list", _cases),
    "leads": ("lead-list", _leads),
    "evidence": ("evidence-list", _evidence),
    "custody": ("evidence-custody", _custody),
    "team": ("case-team", _team),
    "users": ("user-list", _users),
    "audit-events": ("audit-event-list", _audit_events),
    "handoffs": ("handoff-list", _handoffs),
    "handoffs-as-prosecutor": ("handoff-list", _prosecutor_handoffs),
    "leads-as-prosecutor": ("lead-list", _prosecutor_leads),
    "evidence-as-prosecutor": ("evidence-list", _prosecutor_evidence),
    "packets": ("handoff-packets", _packets),
    "prosecutors": ("prosecutor-list", _prosecutors),
    "conversations": ("conversation-list", _conversations),
    "ads": ("ad-list", _ads),
}


def _paged(path: str, page_size: int) -> str:
    return f"{path}{'&' if '?' in path else '?'}page_size={page_size}"


@pytest.mark.parametrize("endpoint", list(LIST_SCENARIOS))
def test_list_queries_do_not_grow_with_rows_or_page_size(world: World, endpoint: str) -> None:
    scenario = LIST_SCENARIOS[endpoint][1](world)
    one_row, page = _get(scenario.user, scenario.path)
    assert page["count"] == 1
    for i in range(PAGE - 1):
        scenario.add_row(i)
    page_of_one, page = _get(scenario.user, _paged(scenario.path, 1))
    assert page["count"] == PAGE
    assert len(page["results"]) == 1
    page_of_fifty, page = _get(scenario.user, _paged(scenario.path, PAGE))
    assert len(page["results"]) == PAGE
    assert one_row == page_of_one == page_of_fifty, (
        f"{scenario.path}: 1 row {one_row} queries, page_size=1 {page_of_one}, page_size={PAGE} {page_of_fifty}"
    )


# ---------------------------------------------------------------- the URL conf


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


DOCUMENTATION_ROUTES = {"schema", "docs"}


def get_routes() -> dict[str, type]:
    """Route name -> view class, for every GET route under /api/ but the documentation."""
    found = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        view = getattr(pattern.callback, "view_class", None)
        if route.startswith("api/") and pattern.name not in DOCUMENTATION_ROUTES and hasattr(view, "get"):
            found[pattern.name] = view
    return found


def test_every_list_route_has_a_rows_and_page_size_scenario() -> None:
    lists = {name for name, view in get_routes().items() if issubclass(view, ListModelMixin)}
    covered = {route for route, _ in LIST_SCENARIOS.values()}
    assert sorted(lists - covered) == [], "list routes without a scenario in LIST_SCENARIOS"
    assert sorted(covered - lists) == [], "scenarios naming a route that is not a list"


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


# ---------------------------------------------------------------- every GET route, as reach grows

REACH = 30  # cases in the callers' reach after growing (1 before)
INVESTIGATOR, SUPERVISOR, PROSECUTOR, AUDITOR = "investigator", "supervisor", "prosecutor", "auditor"
CASE_STAFF = (INVESTIGATOR, SUPERVISOR)
HANDOFF_READERS = (INVESTIGATOR, SUPERVISOR, PROSECUTOR)
EVERYONE = (INVESTIGATOR, SUPERVISOR, PROSECUTOR, AUDITOR)


@dataclass
class Opened:
    """One case of agency NORTH and what was made on it."""

    case: Case
    lead: Lead
    evidence: EvidenceItem
    handoff: Handoff
    conversation: Conversation


@dataclass
class Reach:
    """Agency NORTH and what its people can reach. `owner` opens NORTH's cases: operations,
    each with a bot, an ad, a conversation answering it from the ad's number, a lead with three
    identifiers, a stored evidence item and a handoff of both sent to world.prosecutor.
    `investigator` is on their teams (lead of the first, then viewer, investigator, lead in
    turn); `supervisor` and `auditor` are NORTH's. Detail routes read the first case's objects
    (and its packet) before and after the others exist."""

    world: World
    owner: Any
    people: dict[str, Any]
    cases: int = 0

    def open_case(self) -> Opened:
        self.cases += 1
        i = self.cases
        case = CaseFactory(actor=self.owner, kind="operation", title=f"North intercepts {i}")
        role = TeamRole.LEAD if i == 1 else (TeamRole.VIEWER, TeamRole.INVESTIGATOR, TeamRole.LEAD)[i % 3]
        services.team_member_set(actor=self.owner, case=case, user=self.people[INVESTIGATOR], role=role)
        source = intercept_services.ingest_source_create(actor=None, name=f"north-bot-{i}", case=case).source
        phone = f"(305) 555-01{i:02d}"
        intercept_services.ads_ingest(source=source, items=[ad(f"north-ad-{i}", phones=[phone])])
        answered = {"site": "nightlist.example", "external_id": f"north-ad-{i}"}
        intercept_services.conversations_ingest(
            source=source, items=[conversation(f"north-c{i}", phone=phone, ad=answered)]
        )
        lead = LeadFactory(
            case=case,
            identifiers=[
                {"kind": "phone", "value": f"+1202555{i:04d}"},
                {"kind": "email", "value": f"north{i}@example.org"},
                {"kind": "handle", "value": f"north_{i}"},
            ],
        )
        upload = SimpleUploadedFile(f"chat-{i}.txt", f"buyer {i}: how much\n".encode(), content_type="text/plain")
        evidence = EvidenceFactory(case=case, lead=lead, upload=upload)
        handoff = services.handoff_create(
            actor=self.owner,
            case=case,
            prosecutor=self.people[PROSECUTOR],
            leads=[lead],
            evidence=[evidence],
            charges=[{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
        )
        services.handoff_submit(actor=self.owner, handoff=handoff)
        services.handoff_review(actor=self.people[SUPERVISOR], handoff=handoff, approve=True)
        return Opened(case, lead, evidence, handoff, Conversation.objects.get(case=case))

    def seal(self) -> None:
        """Seal the log and checkpoint it, as the sequencer and the checkpoint beat do."""
        seal_pending()
        checkpoint_create()


@dataclass
class Probe:
    """What the detail routes read: the first case's objects and a packet built from its handoff."""

    reach: Reach
    first: Opened
    packet: ExportPacket

    def first_seq(self) -> int:
        events = AuditEvent.objects.filter(case_id=self.first.case.pk, seq__isnull=False).order_by("seq")
        return events.values_list("seq", flat=True)[0]


def _probe(world: World) -> Probe:
    north = AgencyFactory(code="NORTH", name="North County Sheriff")
    people = {
        INVESTIGATOR: UserFactory(username="ned_north", agency=north, role=Role.INVESTIGATOR),
        SUPERVISOR: UserFactory(username="sue_north", agency=north, role=Role.SUPERVISOR),
        AUDITOR: UserFactory(username="abe_north", agency=north, role=Role.AUDITOR),
        PROSECUTOR: world.prosecutor,
    }
    reach = Reach(world=world, owner=UserFactory(username="olly_north", agency=north), people=people)
    first = reach.open_case()
    packet = services.packet_build(packet_id=services.packet_request(actor=reach.owner, handoff=first.handoff).pk)
    assert packet.status == "ready", packet.error
    reach.seal()
    return Probe(reach=reach, first=first, packet=packet)


@dataclass(frozen=True)
class Budget:
    """At most `queries` queries for GET `path` by each of `personas` (whoever can read it)."""

    queries: int
    path: Callable[[Probe], str]
    personas: tuple[str, ...]


def _latest_size() -> int:
    return Checkpoint.objects.latest().tree_size


# Every budget starts with the token (joined with its user and profile) and, where the read is
# audited, ends with the INSERT of its audit event; "list" is COUNT(*) then the page, the scope
# a subquery inside both (never a query of its own); "roles" is the caller's group names.
# fmt: off
BUDGETS: dict[str, Budget] = {
    # token, agency, roles
    "me": Budget(3, lambda r: "/api/me/", EVERYONE),
    # token, list, roles of the page (prefetch), audit
    "user-list": Budget(5, lambda r: "/api/users/", EVERYONE),
    # token, roles, list, roles of the page (prefetch), audit
    "prosecutor-list": Budget(6, lambda r: "/api/prosecutors/", CASE_STAFF),
    # token, list (agency, lead investigator, parent joined), audit
    "case-list": Budget(4, lambda r: "/api/cases/", CASE_STAFF),
    # token, case, audit
    "case-detail": Budget(3, lambda r: f"/api/cases/{r.first.case.pk}/", CASE_STAFF),
    # token, case, grants of the case, their users (profile and agency joined), audit
    "case-team": Budget(5, lambda r: f"/api/cases/{r.first.case.pk}/team/", CASE_STAFF),
    # token, list (case, agency, assignee joined), identifiers of the page (prefetch), audit
    "lead-list": Budget(5, lambda r: "/api/leads/", HANDOFF_READERS),
    # token, lead, its identifiers, audit
    "lead-detail": Budget(4, lambda r: f"/api/leads/{r.first.lead.pk}/", HANDOFF_READERS),
    # token, list (case and the three people joined), audit
    "evidence-list": Budget(4, lambda r: "/api/evidence/", HANDOFF_READERS),
    # token, item, audit
    "evidence-detail": Budget(3, lambda r: f"/api/evidence/{r.first.evidence.pk}/", HANDOFF_READERS),
    # token, item, audit (the bytes are streamed from storage)
    "evidence-content": Budget(3, lambda r: f"/api/evidence/{r.first.evidence.pk}/content/", HANDOFF_READERS),
    # token, item, list of its custody events (actor joined), audit
    "evidence-custody": Budget(5, lambda r: f"/api/evidence/{r.first.evidence.pk}/custody/", HANDOFF_READERS),
    # token, list (case, people, office joined), lead ids, evidence ids (prefetches), audit
    "handoff-list": Budget(6, lambda r: "/api/handoffs/", HANDOFF_READERS),
    # token, handoff, lead ids, evidence ids, audit
    "handoff-detail": Budget(5, lambda r: f"/api/handoffs/{r.first.handoff.pk}/", HANDOFF_READERS),
    # token, handoff (without its items), list of its packets
    "handoff-packets": Budget(4, lambda r: f"/api/handoffs/{r.first.handoff.pk}/packets/", HANDOFF_READERS),
    # token, packet
    "packet-detail": Budget(2, lambda r: f"/api/packets/{r.packet.pk}/", HANDOFF_READERS),
    # token, packet, audit
    "packet-download": Budget(3, lambda r: f"/api/packets/{r.packet.pk}/download/", HANDOFF_READERS),
    # token, roles, [an auditor's managed case ids], list, audit
    "audit-event-list": Budget(6, lambda r: "/api/audit/events/", (INVESTIGATOR, SUPERVISOR, AUDITOR)),
    # token, roles, [an auditor's managed case ids], event, chain size, latest checkpoint size, its
    # note, the proof's stored subtree hashes, leaf hashes and the rest of the path, audit
    "audit-event-proof": Budget(
        11, lambda r: f"/api/audit/events/{r.first_seq()}/proof/", (INVESTIGATOR, SUPERVISOR, AUDITOR)
    ),
    # token, checkpoint
    "audit-checkpoint-latest": Budget(2, lambda r: "/api/audit/checkpoints/latest/", EVERYONE),
    # token (the key is in memory)
    "audit-checkpoint-key": Budget(1, lambda r: "/api/audit/checkpoints/key/", EVERYONE),
    # token, chain size, and the two roots and the path from stored hashes (four reads)
    "audit-consistency": Budget(6, lambda r: f"/api/audit/consistency/?from=1&to={_latest_size()}", EVERYONE),
    # token, list (source, case, lead joined), audit
    "conversation-list": Budget(4, lambda r: "/api/conversations/", CASE_STAFF),
    # token, conversation, messages, snapshots, audit, the answered ad and its phones, the ads
    # sharing the buyer's numbers and their phones
    "conversation-detail": Budget(9, lambda r: f"/api/conversations/{r.first.conversation.pk}/", CASE_STAFF),
    # token, list (case, source joined), phones of the page (prefetch), audit
    "ad-list": Budget(5, lambda r: "/api/ads/", CASE_STAFF),
    # token, operation, then one aggregate per figure (buyers, deterrence, leads, handoffs, ads
    # per week, conversations per week), audit
    "analytics-summary": Budget(9, lambda r: f"/api/analytics/summary/?case={r.first.case.pk}", CASE_STAFF),
}
# fmt: on

# The lists whose rows come from the callers' cases (or handoffs): each must really grow.
REACHED_LISTS = {
    "case-list",
    "lead-list",
    "evidence-list",
    "handoff-list",
    "audit-event-list",
    "conversation-list",
    "ad-list",
}


def test_every_get_route_has_a_budget() -> None:
    routes = set(get_routes())
    assert sorted(routes - set(BUDGETS)) == [], "GET routes without a query budget"
    assert sorted(set(BUDGETS) - routes) == [], "budgets of routes that do not exist"


@dataclass
class Reading:
    queries: int
    rows: int | None  # a list's count


def _read(user: Any, path: str) -> Reading:
    client = client_for(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200, f"GET {path} as {user.username}: {response.status_code} {response.content!r}"
    body = response.json() if response.get("Content-Type", "").startswith("application/json") else None
    rows = body.get("count") if isinstance(body, dict) else None
    return Reading(queries=len(queries.captured_queries), rows=rows)


def _read_all(probe: Probe) -> dict[tuple[str, str], Reading]:
    return {
        (name, persona): _read(probe.reach.people[persona], budget.path(probe))
        for name, budget in BUDGETS.items()
        for persona in budget.personas
    }


def test_every_get_route_costs_the_same_for_a_reach_of_1_case_or_30(world: World) -> None:
    probe = _probe(world)
    one = _read_all(probe)
    while probe.reach.cases < REACH:
        probe.reach.open_case()
    probe.reach.seal()
    thirty = _read_all(probe)
    problems = []
    for (name, persona), before in one.items():
        after = thirty[(name, persona)]
        budget = BUDGETS[name].queries
        if before.queries != after.queries:
            problems.append(f"{name} as {persona}: {before.queries} queries on 1 case, {after.queries} on {REACH}")
        if max(before.queries, after.queries) > budget:
            problems.append(f"{name} as {persona}: {max(before.queries, after.queries)} queries, budget {budget}")
        if name in REACHED_LISTS and not (after.rows or 0) > (before.rows or 0):
            problems.append(f"{name} as {persona}: {before.rows} rows on 1 case, {after.rows} on {REACH}: no growth")
    assert not problems, "\n".join(problems)
