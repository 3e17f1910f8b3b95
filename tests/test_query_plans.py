"""Query plans at regional scale (PostgreSQL), and search by identifier (any database).

At scale: the queries the real views run for an investigator on a few cases, a supervisor of
one agency of six, an auditor and a prosecutor read leads, evidence, identifiers,
conversations, messages and audit events through indexes, never a sequential scan; a search
by identifier, in any form a person types it, looks identifiers up through the unique index
of their blind index (values are encrypted). The region is made in bulk SQL (INSERT ... SELECT generate_series),
committed (the test is transactional: its tables are emptied afterwards), VACUUMed and
ANALYZEd, so the planner chooses as on a live deployment; the queries are captured from real
requests (CaptureQueriesContext) and EXPLAINed one by one.

Search: what each typed form means (identifier_search_terms) and which leads it finds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cases import selectors
from cases.models import Case, EvidenceItem, Lead, LeadIdentifier, TeamRole
from cases.services import handoff_create, handoff_review, handoff_submit, team_member_set
from intercept.models import Conversation
from tests.conftest import World, client_for
from tests.factories import AgencyFactory, EvidenceFactory, LeadFactory, UserFactory

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
postgres_plans = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="query plans are PostgreSQL's: SQLite's planner is not what a deployment at scale runs",
)

# Tables that grow with the region: a sequential scan of any of them in a request's query is
# a request whose cost grows with everybody's data, not with the caller's.
BIG_TABLES = frozenset(
    {
        "cases_lead",
        "cases_evidenceitem",
        "cases_identifier",
        "cases_leadidentifier",
        "intercept_conversation",
        "intercept_message",
        "audit_auditevent",
    }
)
IDENTIFIER_INDEX = "identifier_value_index_uniq"
BULK_TABLES = (
    "cases_case",
    "cases_caseuserobjectpermission",
    "cases_casegroupobjectpermission",
    "cases_lead",
    "cases_identifier",
    "cases_leadidentifier",
    "cases_evidenceitem",
    "intercept_ingestsource",
    "intercept_conversation",
    "intercept_message",
    "audit_auditevent",
)

# The region: six law-enforcement agencies (the world's two and four more), each with its
# share of the cases, leads, identifiers, evidence, intercepted conversations and audit log.
AGENCIES = 6
CASES = 360
LEADS = 50_000
EVIDENCE = 20_000
CONVERSATIONS = 10_000
MESSAGES_PER_CONVERSATION = 10
AUDIT_EVENTS = 50_000
# world.lead leads world.case and is on the team of these bulk cases of agency A (two of
# them operations, which the bulk conversations belong to).
MEMBER_CASES = (12, 24, 6, 18)

# What a person types for the probe lead's identifiers, and what they mean.
PHONE = "+12025550143"
TYPED_PHONES = ("(202) 555-0143", "202.555.0143", "+1 202 555 0143", "202-555-0143", "2025550143")
EMAIL = "foo@example.com"
TYPED_EMAILS = ("Foo@Example.COM ", " FOO@EXAMPLE.COM", "foo@example.com")
HANDLE = "night_owl"
TYPED_HANDLES = ("@Night_Owl", "night_owl", "NIGHT_OWL ")


# ---------------------------------------------------------------- the region, in bulk


def _each_statement(cursor: Any, sql: str, params: Any = None) -> None:
    """Run the `;`-separated statements of `sql` one by one: with parameters bound by the server
    (the settings' default), one execute() takes a single statement."""
    for statement in re.split(r";\s*\n", sql):
        if statement.strip():
            cursor.execute(statement, params)


def _bulk_load(*, agencies: list[int], owners: list[int], supervisor_groups: list[int]) -> None:
    """Cases 1..CASES named BULK-<n>, case n in agency `agencies[n % AGENCIES]`, led by that
    agency's owner, with the owner's and the agency supervisors' object permissions; lead g is
    on case 1 + g % CASES and carries identifier g; evidence g is about lead g; conversation k
    is lead 4k+3's (always on an operation: case numbers divisible by 4), with its messages;
    audit event g is about case 1 + g % CASES (one in five about no case). One transaction:
    the temporary tables that map numbers to ids live until it commits."""
    with transaction.atomic(), connection.cursor() as cursor:
        _each_statement(
            cursor,
            "SELECT id, codename FROM auth_permission WHERE codename IN ('view_case', 'change_case', 'manage_team')",
        )
        perms = [row[0] for row in cursor.fetchall()]
        assert len(perms) == 3
        _each_statement(
            cursor,
            """
            CREATE TEMP TABLE bulk_case ON COMMIT DROP AS
            SELECT n, gen_random_uuid() AS id,
                   (%(agencies)s::bigint[])[1 + n %% %(a)s] AS agency_id,
                   (%(owners)s::int[])[1 + n %% %(a)s] AS owner_id,
                   (%(groups)s::int[])[1 + n %% %(a)s] AS group_id,
                   now() - make_interval(days => n * 3) AS created_at
            FROM generate_series(1, %(cases)s) AS n
            """,
            {"agencies": agencies, "owners": owners, "groups": supervisor_groups, "a": AGENCIES, "cases": CASES},
        )
        _each_statement(
            cursor,
            """
            INSERT INTO cases_case (id, number, title, kind, status, priority, summary, created_at, updated_at,
                                    closed_at, agency_id, created_by_id, lead_investigator_id, parent_id)
            SELECT id, 'BULK-' || n, 'Bulk case ' || n,
                   CASE WHEN n %% 4 = 0 THEN 'operation' ELSE 'investigation' END,
                   CASE WHEN n %% 10 = 9 THEN 'closed' ELSE 'open' END,
                   'normal', '', created_at, created_at, NULL, agency_id, owner_id, owner_id, NULL
            FROM bulk_case
            """,
            {},
        )
        _each_statement(
            cursor,
            """
            INSERT INTO cases_caseuserobjectpermission (content_object_id, user_id, permission_id)
            SELECT c.id, c.owner_id, p FROM bulk_case c CROSS JOIN unnest(%(perms)s::int[]) AS p
            """,
            {"perms": perms},
        )
        _each_statement(
            cursor,
            """
            INSERT INTO cases_casegroupobjectpermission (content_object_id, group_id, permission_id)
            SELECT c.id, c.group_id, p FROM bulk_case c CROSS JOIN unnest(%(perms)s::int[]) AS p
            """,
            {"perms": perms},
        )
        _each_statement(
            cursor,
            """
            CREATE TEMP TABLE bulk_lead ON COMMIT DROP AS
            SELECT g, gen_random_uuid() AS id, c.id AS case_id, c.owner_id, c.agency_id,
                   c.created_at + make_interval(mins => g %% 5000) AS created_at
            FROM generate_series(1, %(leads)s) AS g JOIN bulk_case c ON c.n = 1 + g %% %(cases)s;
            INSERT INTO cases_lead (id, display_name, source, status, minor_age_mentioned, payment_discussed,
                                    meeting_arranged, repeat_contact, priority_score, priority_factors,
                                    priority_override, priority, first_seen_at, last_seen_at, notes, created_at,
                                    updated_at, assignee_id, case_id, created_by_id)
            SELECT id, 'Buyer ' || g, 'intercept_bot',
                   (ARRAY['new', 'triaged', 'assigned', 'investigating', 'referred', 'closed_no_action'])[1 + g / %(cases)s %% 6],
                   g %% 7 = 0, g %% 3 = 0, g %% 5 = 0, g %% 2 = 0, g %% 101, '[]'::jsonb, NULL, g %% 101,
                   created_at, created_at, '', created_at, created_at,
                   CASE WHEN g %% 2 = 0 THEN owner_id END, case_id, owner_id
            FROM bulk_lead;
            """,
            {"leads": LEADS, "cases": CASES},
        )
        # Identifier values in plaintext (read back as they are) and md5 stand-ins for their blind
        # indexes: the plans depend on the index, not on the bytes in it.
        _each_statement(
            cursor,
            """
            CREATE TEMP TABLE bulk_identifier ON COMMIT DROP AS
            SELECT g, CASE g %% 10 WHEN 0 THEN 'payment_handle' WHEN 1 THEN 'handle' WHEN 2 THEN 'handle'
                           WHEN 3 THEN 'email' WHEN 4 THEN 'email' WHEN 5 THEN 'email' ELSE 'phone' END AS kind
            FROM generate_series(1, %(leads)s) AS g;
            INSERT INTO cases_identifier (kind, value, value_index, created_at)
            SELECT kind, CASE kind WHEN 'phone' THEN '+1' || (3000000000 + g)::text
                                   WHEN 'email' THEN 'buyer' || g || '@example.net'
                                   ELSE 'buyer_' || g END,
                   md5('bulk' || g) || md5('index' || g), now()
            FROM bulk_identifier;
            INSERT INTO cases_leadidentifier (lead_id, identifier_id, added_by_id, added_at)
            SELECT l.id, i.id, l.owner_id, l.created_at
            FROM bulk_lead l JOIN cases_identifier i ON i.value_index = md5('bulk' || l.g) || md5('index' || l.g);
            """,
            {"leads": LEADS},
        )
        _each_statement(
            cursor,
            """
            INSERT INTO cases_evidenceitem (id, kind, description, content_name, original_filename, external_uri,
                                            sha256, size_bytes, media_type, collected_at, status,
                                            withdrawn_reason, withdrawn_at, created_at, updated_at, case_id,
                                            collected_by_id, created_by_id, withdrawn_by_id, lead_id)
            SELECT gen_random_uuid(), 'chat_transcript', 'Transcript ' || g, '', '',
                   'evidence://bulk/' || g, md5(g::text) || md5(g::text), 1000 + g, 'text/plain',
                   created_at, 'active', '', NULL, created_at, created_at, case_id, owner_id, owner_id, NULL, id
            FROM bulk_lead WHERE g <= %(evidence)s
            """,
            {"evidence": EVIDENCE},
        )
        _each_statement(
            cursor,
            """
            INSERT INTO intercept_ingestsource (id, name, is_active, secret_encrypted, previous_secret_encrypted,
                                                previous_valid_until, rotated_at, created_at, updated_at,
                                                agency_id, case_id, created_by_id)
            SELECT gen_random_uuid(), 'bulk-bot-' || n, true, 'x', '', NULL, NULL, created_at, created_at,
                   agency_id, id, NULL
            FROM bulk_case WHERE n %% 4 = 0;
            CREATE TEMP TABLE bulk_conversation ON COMMIT DROP AS
            SELECT gen_random_uuid() AS id, l.id AS lead_id, l.case_id, s.id AS source_id, l.g, l.created_at
            FROM bulk_lead l JOIN intercept_ingestsource s ON s.case_id = l.case_id
            WHERE l.g %% 4 = 3 AND l.g < 4 * %(conversations)s;
            INSERT INTO intercept_conversation (id, external_id, platform, bot, ad_site, ad_external_id, buyer,
                                                minor_age_mentioned, payment_discussed, meeting_requested,
                                                deterrence_sent_at, closed, closed_at, message_count,
                                                first_message_at, last_message_at, snapshot_messages, created_at,
                                                updated_at, case_id, lead_id, source_id)
            SELECT id, 'conv-' || g, 'sms', 'decoy', '', '', '{}'::jsonb, false, false, false, NULL, false, NULL,
                   %(per)s, created_at, created_at, 0, created_at, created_at, case_id, lead_id, source_id
            FROM bulk_conversation;
            INSERT INTO intercept_message (seq, external_id, direction, sent_at, body, created_at, conversation_id)
            SELECT m, 'm' || m, CASE WHEN m %% 2 = 1 THEN 'inbound' ELSE 'outbound' END,
                   c.created_at + make_interval(mins => m), 'message ' || m || ' of conversation ' || c.g,
                   c.created_at, c.id
            FROM bulk_conversation c CROSS JOIN generate_series(1, %(per)s) AS m;
            """,
            {"conversations": CONVERSATIONS, "per": MESSAGES_PER_CONVERSATION},
        )
        # Sealed, as nearly all of a real log is: the insert guard (only the sequencer seals)
        # does not fire in replica mode, which this transaction leaves again at once (SET LOCAL).
        cursor.execute("SET LOCAL session_replication_role = replica")
        _each_statement(
            cursor,
            """
            INSERT INTO audit_auditevent (created_at, actor_name, action, target_type, target_id, case_id, changes,
                                          request_id, ip, user_agent, actor_id, agency_id, entry_hash, prev_hash,
                                          sealed_at, seq)
            SELECT c.created_at + make_interval(mins => g %% 9000), 'bulk',
                   (ARRAY['lead.viewed', 'lead.updated', 'evidence.viewed', 'case.viewed', 'lead.listed'])[1 + g / %(cases)s %% 5],
                   'lead', g::text, CASE WHEN g %% 5 = 0 THEN NULL ELSE c.id END, '{}'::jsonb, '', NULL, '',
                   c.owner_id, c.agency_id, md5(g::text) || md5(g::text), md5((g - 1)::text) || md5((g - 1)::text),
                   now(), 1000000 + g
            FROM generate_series(1, %(events)s) AS g JOIN bulk_case c ON c.n = 1 + g %% %(cases)s
            """,
            {"events": AUDIT_EVENTS, "cases": CASES},
        )
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


@dataclass
class Region:
    world: World
    member_case: Case  # a bulk case of agency A with world.lead on its team
    operation: Case  # a bulk operation of agency A with world.lead on its team
    lead: Lead  # on member_case, with a phone, an email and a handle
    evidence: EvidenceItem
    conversation: Conversation


def _make_region(world: World) -> Region:
    others = [AgencyFactory() for _ in range(AGENCIES - 2)]
    agencies = [world.agency_a, world.agency_b, *others]
    owners = [world.teammate, world.outsider, *(UserFactory(agency=agency) for agency in others)]
    _bulk_load(
        agencies=[agency.pk for agency in agencies],
        owners=[owner.pk for owner in owners],
        supervisor_groups=[agency.supervisors_id for agency in agencies],
    )
    member = {n: Case.objects.get(number=f"BULK-{n}") for n in MEMBER_CASES}
    for case in member.values():
        team_member_set(actor=world.teammate, case=case, user=world.lead, role=TeamRole.LEAD)
    member_case = member[MEMBER_CASES[0]]
    lead = LeadFactory(
        case=member_case,
        actor=world.lead,
        identifiers=[
            {"kind": "phone", "value": PHONE},
            {"kind": "email", "value": EMAIL},
            {"kind": "handle", "value": HANDLE},
        ],
    )
    evidence = EvidenceFactory(case=member_case, lead=lead, actor=world.lead)
    handoff = handoff_create(
        actor=world.lead,
        case=member_case,
        prosecutor=world.prosecutor,
        leads=[lead],
        evidence=[evidence],
        charges=[{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
    )
    handoff_submit(actor=world.lead, handoff=handoff)
    handoff_review(actor=world.supervisor, handoff=handoff, approve=True)
    with connection.cursor() as cursor:
        # As autovacuum keeps a live deployment: statistics, and the visibility map that lets a
        # count read an index alone. VACUUM runs outside a transaction: this test commits.
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(BULK_TABLES)}")
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        others = sorted({row[0] for row in cursor.fetchall()} - set(BULK_TABLES))
        cursor.execute(f"ANALYZE {', '.join(others)}")
    operation = member[MEMBER_CASES[1]]
    return Region(
        world=world,
        member_case=member_case,
        operation=operation,
        lead=lead,
        evidence=evidence,
        conversation=Conversation.objects.filter(case=operation).order_by("created_at", "id").first(),
    )


# ---------------------------------------------------------------- plans


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _plan(sql: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]
    document = json.loads(raw) if isinstance(raw, str) else raw
    return document[0]["Plan"]


def _index_names(plan: dict[str, Any]) -> set[str]:
    return {node["Index Name"] for node in _nodes(plan) if "Index Name" in node}


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    return sorted({node["Relation Name"] for node in _nodes(plan) if node["Node Type"] == "Seq Scan"} & BIG_TABLES)


@dataclass
class Captured:
    """One SELECT a request ran, named for the failure message."""

    name: str
    sql: str

    def plan(self) -> dict[str, Any]:
        return _plan(self.sql)


def _get(user: Any, path: str) -> tuple[dict[str, Any], list[Captured]]:
    """The body of one real GET of `path` by `user`, and the SELECTs it ran exactly as they were
    sent (parameters bound)."""
    client = client_for(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200, f"GET {path} as {user.username}: {response.status_code} {response.content!r}"
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    captured = [
        Captured(name=f"GET {path} as {user.username}, query {i} of {len(selects)}: {sql[:160]}...", sql=sql)
        for i, sql in enumerate(selects, 1)
    ]
    return response.json(), captured


def _requests(region: Region) -> list[tuple[Any, str]]:
    """The main reads: an investigator on five cases, a supervisor of one agency of six (the
    lists agency-wide and per case), an auditor (their agency's log, one case's events), a
    prosecutor with one handoff."""
    world = region.world
    case, op = region.member_case.pk, region.operation.pk
    investigator = [
        "/api/cases/",
        "/api/leads/",
        f"/api/leads/?case={case}",
        f"/api/leads/?case={case}&status=triaged",
        f"/api/leads/{region.lead.pk}/",
        "/api/evidence/",
        f"/api/evidence/?case={case}",
        f"/api/evidence/?lead={region.lead.pk}",
        f"/api/evidence/{region.evidence.pk}/",
        f"/api/evidence/{region.evidence.pk}/custody/",
        "/api/audit/events/",
        f"/api/audit/events/?case={case}",
        "/api/conversations/",
        f"/api/conversations/?case={op}",
        f"/api/conversations/{region.conversation.pk}/",
        "/api/handoffs/",
    ]
    supervisor = [
        "/api/cases/",
        "/api/leads/",
        f"/api/leads/?case={case}",
        f"/api/leads/{region.lead.pk}/",
        "/api/evidence/",
        f"/api/evidence/?case={case}",
        f"/api/evidence/{region.evidence.pk}/",
        "/api/audit/events/",
        f"/api/audit/events/?case={case}",
        "/api/conversations/",
        f"/api/conversations/?case={op}",
        f"/api/conversations/{region.conversation.pk}/",
    ]
    auditor = ["/api/audit/events/", f"/api/audit/events/?case={case}"]
    prosecutor = [  # through the one handoff sent to them: the probe lead and its evidence
        "/api/leads/",
        f"/api/leads/{region.lead.pk}/",
        "/api/evidence/",
        f"/api/evidence/{region.evidence.pk}/",
        "/api/handoffs/",
    ]
    return (
        [(world.lead, path) for path in investigator]
        + [(world.supervisor, path) for path in supervisor]
        + [(world.auditor, path) for path in auditor]
        + [(world.prosecutor, path) for path in prosecutor]
    )


TYPED = [(PHONE, typed) for typed in TYPED_PHONES] + [(EMAIL, typed) for typed in TYPED_EMAILS]
TYPED += [(HANDLE, typed) for typed in TYPED_HANDLES]


@postgres_plans
@pytest.mark.postgres_only
def test_main_queries_read_big_tables_through_indexes_at_scale(transactional_db: None, world: World) -> None:
    region = _make_region(world)
    failures = []
    for user, path in _requests(region):
        for query in _get(user, path)[1]:
            scanned = _seq_scans(query.plan())
            if scanned:
                failures.append(f"Seq Scan on {', '.join(scanned)}: {query.name}")
    for meant, typed in TYPED:
        for user in (world.lead, world.supervisor):
            body, captured = _get(user, f"/api/leads/?{urlencode({'identifier': typed})}")
            if [row["id"] for row in body["results"]] != [str(region.lead.pk)]:
                failures.append(f"{typed!r} (meaning {meant}) as {user.username}: found {body['count']} leads")
            for query in captured:
                scanned = _seq_scans(query.plan())
                if scanned:
                    failures.append(f"Seq Scan on {', '.join(scanned)}: {query.name}")
            lookups = [query for query in captured if re.search(r'value_index"? IN \(', query.sql)]
            if not lookups or any(IDENTIFIER_INDEX not in _index_names(q.plan()) for q in lookups):
                failures.append(f"{typed!r} as {user.username}: identifiers not looked up through {IDENTIFIER_INDEX}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------- identifier search (any database)


@dataclass
class Searchable:
    buyer: Lead  # phone PHONE, email EMAIL, handle HANDLE
    payer: Lead  # payment handle "cash_owl"
    lookalike: Lead  # the handle "202.555.0143", which reads like PHONE typed with dots


@pytest.fixture
def searchable(world: World) -> Searchable:
    def lead(case: Case, *identifiers: tuple[str, str]) -> Lead:
        return LeadFactory(case=case, identifiers=[{"kind": kind, "value": value} for kind, value in identifiers])

    searchable = Searchable(
        buyer=lead(world.case, ("phone", PHONE), ("email", EMAIL), ("handle", HANDLE)),
        payer=lead(world.case, ("payment_handle", "cash_owl")),
        lookalike=lead(world.case, ("handle", "202.555.0143")),
    )
    lead(world.other_case, ("phone", PHONE), ("email", EMAIL))  # out of world.lead's scope
    return searchable


def _found(world: World, **params: str) -> set[str]:
    response = client_for(world.lead).get(f"/api/leads/?{urlencode(params)}")
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize("typed", TYPED_PHONES + TYPED_EMAILS + TYPED_HANDLES)
def test_identifier_search_finds_the_lead_in_any_typed_form(world: World, searchable: Searchable, typed: str) -> None:
    assert _found(world, identifier=typed) == {str(searchable.buyer.pk)}


@pytest.mark.parametrize("typed", ["$Cash_Owl", "@cash_owl", "CASH_OWL"])
def test_a_handle_typed_with_at_or_dollar_also_finds_payment_handles(
    world: World, searchable: Searchable, typed: str
) -> None:
    assert _found(world, identifier=typed) == {str(searchable.payer.pk)}


def test_a_valid_phone_number_is_searched_as_a_phone_only(world: World, searchable: Searchable) -> None:
    """ "202.555.0143" is also a well-formed handle, and one lead has it; typed without a kind it
    is the phone number it plausibly is."""
    assert _found(world, identifier="202.555.0143") == {str(searchable.buyer.pk)}
    assert _found(world, identifier="202.555.0143", identifier_kind="handle") == {str(searchable.lookalike.pk)}


def test_identifier_kind_matches_the_value_as_that_kind_only(world: World, searchable: Searchable) -> None:
    assert _found(world, identifier="Foo@Example.COM", identifier_kind="email") == {str(searchable.buyer.pk)}
    assert _found(world, identifier="@Night_Owl", identifier_kind="handle") == {str(searchable.buyer.pk)}
    assert _found(world, identifier="@Night_Owl", identifier_kind="payment_handle") == set()
    assert _found(world, identifier="@Night_Owl", identifier_kind="phone") == set()


@pytest.mark.parametrize("typed", ["(555) 010-1234", "foo@", "not an identifier!"])
def test_a_term_that_is_no_identifier_finds_nothing(world: World, searchable: Searchable, typed: str) -> None:
    """(555) 010-1234 is no number in service (there is no area code 555), so no phone is stored
    as it; with parentheses and a space it is no handle either."""
    assert _found(world, identifier=typed) == set()


@pytest.mark.parametrize(
    ("typed", "finds"),
    [*((typed, True) for typed in TYPED_PHONES), ("$Cash_Owl", True), ("202.555.0143", True), ("foo@", False)],
)
def test_identifier_lead_ids_sql_finds_the_leads_the_orm_finds(
    world: World, searchable: Searchable, typed: str, finds: bool
) -> None:
    """The search's subquery is SQL text; it finds the very leads the same subquery composed
    through the ORM finds (links of the identifiers the term means), for every kind of term."""
    through_orm = LeadIdentifier.objects.filter(identifier__in=selectors.identifier_matches(typed)).values("lead_id")
    found = set(Lead.objects.filter(id__in=selectors.identifier_lead_ids(typed)).values_list("id", flat=True))
    assert found == set(Lead.objects.filter(id__in=through_orm).values_list("id", flat=True))
    assert bool(found) == finds


@pytest.mark.parametrize(
    ("typed", "terms"),
    [
        ("(202) 555-0143", [("phone", PHONE)]),
        ("+1 202 555 0143", [("phone", PHONE)]),
        ("Foo@Example.COM ", [("email", EMAIL)]),
        ("foo\uff20example.com", [("email", EMAIL)]),  # a full-width @
        ("@Night_Owl", [("handle", HANDLE), ("payment_handle", HANDLE)]),
        ("$night_owl", [("handle", HANDLE), ("payment_handle", HANDLE)]),
        # Not a valid number, so not a phone; it is a well-formed handle.
        ("555.010.1234", [("handle", "555.010.1234"), ("payment_handle", "555.010.1234")]),
        ("(555) 010-1234", []),
        ("foo@bar", []),
    ],
)
def test_identifier_search_terms_are_the_plausible_kinds(typed: str, terms: list[tuple[str, str]]) -> None:
    assert selectors.identifier_search_terms(typed) == terms
