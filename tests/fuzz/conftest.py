"""Fixtures of the schema fuzz tests: a seeded world of two agencies (A, whose objects the
fuzzer aims at, and its mirror B, whose users replay A's successful requests), the Django WSGI
application with a signing shim for ingest sources, and the OpenAPI schema served at
/api/schema/, loaded per role with hooks that steer generated ids onto A's real objects."""

from __future__ import annotations

import io
import itertools
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import strategies as st

from audit import services as audit_services
from audit.models import AuditEvent
from audit.sealing import seal_pending
from cases import services
from cases.models import AgencyKind, AuthToken, CaseKind, CustodyAction, Role, TeamRole
from cases.tokens import token_digest
from intercept import services as intercept_services
from intercept import signing
from intercept.models import Conversation
from tests.conftest import World
from tests.factories import AgencyFactory, CaseFactory, EvidenceFactory, LeadFactory, UserFactory
from tests.fuzz.checks import INGEST_ITEM_SCHEMAS, is_uuid
from tests.intercept.conftest import ad, conversation

SCHEMA_PATH = "/api/schema/"
DEFAULT_MAX_EXAMPLES = 10
SEED = 20260307
ROLES = ("investigator", "supervisor", "prosecutor", "auditor", "agency_admin", "ingest_source", "anonymous")
# The value a request carries in X-Signature to ask the shim to sign it; any other value
# (none, or one the fuzzer generated) reaches the server untouched.
SIGN_ME = "fuzz-sign-this-request"


def coverage_roles() -> frozenset[str]:
    """FUZZ_COVERAGE_ROLES (comma-separated, or `all`; default `investigator`): the roles whose
    run includes Schemathesis' coverage phase, a deterministic sweep of boundary values,
    schema violations and undeclared methods that costs about twenty times the fuzzing phase.
    Its inputs do not depend on the caller, so CI runs it once, as the role that reaches the
    most code; the examples and fuzzing phases run for every role."""
    value = os.environ.get("FUZZ_COVERAGE_ROLES", "investigator").strip()
    if value == "all":
        return frozenset(ROLES)
    roles = frozenset(r.strip() for r in value.split(",") if r.strip())
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"FUZZ_COVERAGE_ROLES names unknown roles: {sorted(unknown)}")
    return roles


def max_examples() -> int:
    """FUZZ_MAX_EXAMPLES (default 10): examples per operation and generation phase."""
    value = int(os.environ.get("FUZZ_MAX_EXAMPLES", DEFAULT_MAX_EXAMPLES))
    if value < 1:
        raise ValueError("FUZZ_MAX_EXAMPLES must be at least 1")
    return value


# ---------------------------------------------------------------- the seeded world


@dataclass
class Side:
    """One agency's personas (one per role) and the objects they reach."""

    users: dict[str, Any]
    source: intercept_services.IssuedSecret
    case: Any
    operation: Any
    leads: list[Any]
    evidence: list[Any]
    handoffs: list[Any]
    packets: list[Any]
    conversations: list[Any]


@dataclass
class FuzzWorld:
    a: Side
    b: Side
    team_user_ids: list[int]
    seqs: list[int]
    # A's object ids: the seeded ones, grown with every id A's successful answers show.
    known_a_ids: set[str] = field(default_factory=set)


def _seed_side(
    *,
    lead: Any,
    supervisor: Any,
    auditor: Any,
    admin: Any,
    prosecutor: Any,
    case: Any,
    tag: str,
) -> Side:
    """An operation with an ingest source, conversations and ads, two leads, a stored and an
    external evidence item with custody, a handoff sent to `prosecutor` with a built packet,
    and a draft handoff."""
    operation = CaseFactory(actor=lead, title=f"{tag} intercepts", kind=CaseKind.OPERATION)
    source = intercept_services.ingest_source_create(actor=None, name=f"{tag.lower()}-bot", case=operation)
    intercept_services.conversations_ingest(
        source=source.source, items=[conversation(f"{tag}-c1"), conversation(f"{tag}-c2", phone="(305) 555-0177")]
    )
    intercept_services.ads_ingest(source=source.source, items=[ad(f"{tag}-a1")])
    leads = [
        LeadFactory(case=case, display_name=f"{tag} buyer one", identifiers=[{"kind": "phone", "value": "3055550101"}]),
        LeadFactory(case=case, display_name=f"{tag} buyer two"),
    ]
    stored = EvidenceFactory(
        case=case, lead=leads[0], upload=SimpleUploadedFile(f"{tag}-chat.txt", b"buyer: how much\nbot: 200\n")
    )
    external = EvidenceFactory(case=case, lead=leads[1])
    services.custody_record(actor=lead, item=external, action=CustodyAction.RECEIVED, note="Into the vault.")
    sent = services.handoff_create(
        actor=lead,
        case=case,
        prosecutor=prosecutor,
        leads=leads,
        evidence=[stored, external],
        charges=[{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
        narrative="The buyer answered the decoy ad.",
    )
    services.handoff_submit(actor=lead, handoff=sent)
    sent = services.handoff_review(actor=supervisor, handoff=sent, approve=True, note="Ready.")
    draft = services.handoff_create(actor=lead, case=case, prosecutor=prosecutor, leads=leads[:1], narrative="Draft.")
    packet = services.packet_request(actor=lead, handoff=sent)
    packet = services.packet_build(packet_id=packet.pk)
    return Side(
        users={
            "investigator": lead,
            "supervisor": supervisor,
            "prosecutor": prosecutor,
            "auditor": auditor,
            "agency_admin": admin,
        },
        source=source,
        case=case,
        operation=operation,
        leads=leads,
        evidence=[stored, external],
        handoffs=[sent, draft],
        packets=[packet],
        conversations=list(Conversation.objects.filter(case=operation).order_by("created_at")),
    )


@pytest.fixture
def fuzz_world(world: World) -> FuzzWorld:
    """Agency A (world.lead leads world.case) and its mirror B (world.outsider leads
    world.other_case), each with an operation, ingest source, leads, evidence, a sent handoff to
    a prosecutor of its own office, a built packet; the audit log sealed and checkpointed."""
    office_b = AgencyFactory(code="SAO2", name="Second State Attorney", kind=AgencyKind.PROSECUTOR)
    a = _seed_side(
        lead=world.lead,
        supervisor=world.supervisor,
        auditor=world.auditor,
        admin=world.admin,
        prosecutor=world.prosecutor,
        case=world.case,
        tag="MCSO",
    )
    b = _seed_side(
        lead=world.outsider,
        supervisor=world.outsider_supervisor,
        auditor=UserFactory(username="bea_audit", agency=world.agency_b, role=Role.AUDITOR),
        admin=UserFactory(username="ben_admin", agency=world.agency_b, role=Role.AGENCY_ADMIN),
        prosecutor=UserFactory(username="pia_pros2", agency=office_b, role=Role.PROSECUTOR),
        case=world.other_case,
        tag="RCPD",
    )
    services.team_member_set(actor=world.lead, case=a.operation, user=world.teammate, role=TeamRole.INVESTIGATOR)
    seal_pending()
    audit_services.checkpoint_create(actor=None)
    seqs = list(
        AuditEvent.objects.filter(agency_id=world.agency_a.pk, seq__isnull=False)
        .order_by("seq")
        .values_list("seq", flat=True)[:20]
    )
    a_ids = {
        str(obj.pk)
        for obj in [
            a.case,
            a.operation,
            *a.leads,
            *a.evidence,
            *a.handoffs,
            *a.packets,
            *a.conversations,
        ]
    }
    return FuzzWorld(a=a, b=b, team_user_ids=[world.teammate.pk, world.viewer.pk], seqs=seqs, known_a_ids=a_ids)


# ---------------------------------------------------------------- callers


def mint_token(user: Any) -> str:
    """A fresh API token for `user` (a fresh one per request: the fuzzer calls logout too)."""
    key = secrets.token_urlsafe(32)
    AuthToken.objects.create(
        user=user, digest=token_digest(key), prefix=key[:8], expires_at=timezone.now() + django_settings.AUTH_TOKEN_TTL
    )
    return key


def auth_headers(role: str, side: Side) -> dict[str, str]:
    """The credentials a request of `role` on `side` carries."""
    if role == "anonymous":
        return {}
    if role == "ingest_source":
        return {"X-Source-Id": str(side.source.source.pk), "X-Signature": SIGN_ME}
    return {"Authorization": f"Token {mint_token(side.users[role])}"}


# ---------------------------------------------------------------- the application


class SigningShim:
    """WSGI middleware standing in for a bot's HTTP client: a request whose X-Signature is
    SIGN_ME gets X-Timestamp and the real HMAC of the exact body bytes the server will read,
    under the secret of the source named in X-Source-Id. Timestamps step back one second per
    signed request (within the accepted skew), so equal bodies never repeat a signature."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.secrets: dict[str, str] = {}
        self._counter = itertools.count()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("HTTP_X_SIGNATURE") == SIGN_ME:
            source_id = environ.get("HTTP_X_SOURCE_ID", "")
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            stamp = int(time.time()) - next(self._counter) % 240
            secret = self.secrets.get(source_id, "")
            headers = signing.signed_headers(source_id, secret, body, stamp)
            environ["HTTP_X_TIMESTAMP"] = headers["X-Timestamp"]
            environ["HTTP_X_SIGNATURE"] = headers["X-Signature"]
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def wsgi_app() -> SigningShim:
    return SigningShim(get_wsgi_application())


@pytest.fixture
def in_process_requests() -> Iterator[None]:
    """Django closes the database connection at the end of each request it serves; inside a
    test transaction that would drop the test's data. Django's own test client disconnects the
    same receiver for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# ---------------------------------------------------------------- the schema, per role


# Operations whose schema-valid input names other objects by id (a case, a lead, a user):
# with an id that does not exist (or is out of scope) the answer is a 400 naming the field,
# which no schema can rule out. Only for these does positive_data_acceptance also accept 400.
REFERENCING_OPERATIONS = (
    "POST /api/leads/",
    "PATCH /api/leads/{id}/",
    "POST /api/evidence/",
    "PATCH /api/evidence/{id}/",
    "POST /api/handoffs/",
    "PATCH /api/handoffs/{id}/",
    "POST /api/cases/",
    "PATCH /api/cases/{id}/",
    "POST /api/cases/{id}/team/",
    # and those whose parameters are checked against each other, which no schema can express
    "GET /api/analytics/summary/",  # since <= until
    "GET /api/audit/consistency/",  # from <= to
    "GET /api/audit/events/{seq}/proof/",  # seq <= tree_size <= the sealed log's size
    # and those whose values are checked by the kind named beside them (a phone number, an
    # email address), which no schema can express either
    "POST /api/deconfliction/check/",
)
POSITIVE_DATA_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
NEGATIVE_DATA_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]


def schemathesis_config(role: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "phases": {"coverage": {"enabled": role in coverage_roles()}},
            # Hypothesis' health checks time data generation: on a loaded CI machine they would
            # fail a run that found nothing.
            "suppress-health-check": ["all"],
            "generation": {"max-examples": max_examples(), "deterministic": True, "database": "none"},
            # Every built-in check, with their default expectations...
            "checks": {"enabled": True},
            # ...but for references to objects that do not exist (see REFERENCING_OPERATIONS).
            "operations": [
                *(
                    {
                        "include-name": name,
                        "checks": {"positive_data_acceptance": {"expected-statuses": [*POSITIVE_DATA_STATUSES, "400"]}},
                    }
                    for name in REFERENCING_OPERATIONS
                ),
                # ...and for ingest, judged item by item: a schema-violating item is rejected in
                # a 200 answer, not the whole batch (tests/fuzz/checks.py asserts it is).
                *(
                    {
                        "include-name": name,
                        "checks": {"negative_data_rejection": {"expected-statuses": [*NEGATIVE_DATA_STATUSES, "200"]}},
                    }
                    for name in INGEST_ITEM_SCHEMAS
                ),
            ],
        }
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _steer(values: dict[str, Any], pools: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Three times in four, replace each well-typed value of a named field with one of A's real
    ids (same type: a uuid string for a uuid, an int for an int, a list for a list); a value the
    generator made invalid on purpose is left alone, so negative cases stay negative."""
    if not isinstance(values, dict):
        return st.just(values)
    targets = {}
    for name, pool in pools.items():
        if name not in values or not pool:
            continue
        current = values[name]
        sample = pool[0]
        if isinstance(sample, list):
            if isinstance(current, list) and all(is_uuid(v) for v in current):
                targets[name] = st.sampled_from(pool)
        elif is_uuid(sample) and is_uuid(current) or _is_int(sample) and _is_int(current):
            targets[name] = st.sampled_from(pool)
    if not targets:
        return st.just(values)

    def apply(flags_and_draws: tuple[int, dict[str, Any]]) -> dict[str, Any]:
        keep, drawn = flags_and_draws
        return values if keep == 0 else {**values, **drawn}

    return st.tuples(st.integers(0, 3), st.fixed_dictionaries(targets)).map(apply)


def id_pools(fw: FuzzWorld, world: World) -> dict[str, dict[str, list[Any]]]:
    """Real ids of agency A, by path prefix (path parameters) and by field name (body and
    query fields)."""
    a = fw.a
    case_ids = [str(a.case.pk), str(a.operation.pk)]
    lead_ids = [str(x.pk) for x in a.leads]
    evidence_ids = [str(x.pk) for x in a.evidence]
    by_path = {
        "/api/cases/{id}/team/{user_id}/": {"id": case_ids, "user_id": fw.team_user_ids},
        "/api/cases/": {"id": case_ids},
        "/api/leads/": {"id": lead_ids},
        "/api/evidence/": {"id": evidence_ids},
        "/api/handoffs/": {"id": [str(x.pk) for x in a.handoffs]},
        "/api/packets/": {"id": [str(x.pk) for x in a.packets]},
        "/api/conversations/": {"id": [str(x.pk) for x in a.conversations]},
        "/api/audit/events/": {"seq": fw.seqs},
    }
    fields = {
        "case": case_ids,
        "parent": [str(a.operation.pk)],
        "lead": lead_ids,
        "leads": [lead_ids, lead_ids[:1]],
        "evidence": [evidence_ids, evidence_ids[:1]],
        "prosecutor": [world.prosecutor.pk],
        "user": fw.team_user_ids + [world.investigator.pk],
        "assignee": [world.lead.pk, world.teammate.pk],
        "lead_investigator": [world.lead.pk, world.teammate.pk],
        "handoff": [str(x.pk) for x in a.handoffs],
    }
    return {"path": by_path, "fields": fields}


def _path_pool(pools: dict[str, dict[str, list[Any]]], path: str) -> dict[str, list[Any]]:
    for prefix, pool in pools["path"].items():
        if path == prefix or (path.startswith(prefix) and "{user_id}" not in path):
            return pool
    return {}


def install_steering_hooks(schema: Any, pools: dict[str, dict[str, list[Any]]]) -> None:
    """Generated path ids, body fields and query filters are mostly A's real ids, so operations
    reach 2xx and not only 404 (the coverage phase still sends its own boundary values)."""

    @schema.hook("before_generate_path_parameters")
    def _paths(ctx: Any, strategy: Any) -> Any:
        pool = _path_pool(pools, ctx.operation.path)
        return strategy.flatmap(lambda values: _steer(values, pool)) if pool else strategy

    @schema.hook("before_generate_body")
    def _body(ctx: Any, strategy: Any) -> Any:
        return strategy.flatmap(lambda values: _steer(values, pools["fields"]))

    @schema.hook("before_generate_query")
    def _query(ctx: Any, strategy: Any) -> Any:
        return strategy.flatmap(lambda values: _steer(values, pools["fields"]))


@pytest.fixture(params=ROLES)
def role(request: pytest.FixtureRequest) -> str:
    return request.param


# Ingest throttles count requests per minute, so whether a request of a run is refused with
# 429 would depend on the machine's speed; the run stays repeatable with rates it cannot reach
# (tests/owasp/test_api4_resource_consumption.py checks the throttles themselves).
UNREACHABLE_RATES = {"ingest": "1000000/min", "ingest_address": "1000000/min"}


@pytest.fixture
def fuzz_schema(
    role: str,
    fuzz_world: FuzzWorld,
    world: World,
    wsgi_app: SigningShim,
    in_process_requests: None,
    settings: Any,
) -> Any:
    """The schema served at /api/schema/, loaded through the application itself, with the
    steering hooks for this test's world."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **UNREACHABLE_RATES},
    }
    wsgi_app.secrets = {
        str(fuzz_world.a.source.source.pk): fuzz_world.a.source.secret,
        str(fuzz_world.b.source.source.pk): fuzz_world.b.source.secret,
    }
    schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, wsgi_app, config=schemathesis_config(role))
    install_steering_hooks(schema, id_pools(fuzz_world, world))
    return schema


@pytest.fixture(autouse=True)
def _lazy_schema_node_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Schemathesis' lazy pytest schema renames the running test item through `_nodeid`, an
    attribute pytest 9.2 no longer has; during these tests the item gets one (the renaming is
    cosmetic: failures name their operation anyway)."""

    def get(node: Any) -> str:
        return node.__dict__.get("_fuzz_nodeid", node.nodeid)

    def set_(node: Any, value: str) -> None:
        node.__dict__["_fuzz_nodeid"] = value

    monkeypatch.setattr(pytest.Function, "_nodeid", property(get, set_), raising=False)
