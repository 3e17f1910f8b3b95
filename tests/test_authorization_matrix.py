"""Authorization matrix: every API route and method of the URL conf, for every persona, in and out of scope."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent, Checkpoint
from audit.sealing import seal_pending
from audit.services import checkpoint_create
from cases import services
from cases.models import (
    AuthToken,
    Case,
    CaseUserObjectPermission,
    CustodyEvent,
    EvidenceItem,
    ExportPacket,
    Handoff,
    HandoffEvidence,
    HandoffLead,
    HandoffUserObjectPermission,
    Lead,
    Role,
    TeamRole,
)
from cases.services import team_member_set
from tests.conftest import World, client_for
from tests.factories import TEST_PASSWORD, EvidenceFactory, LeadFactory, UserFactory
from tests.intercept.test_authorization import TABLE as INTERCEPT_TABLE

PERSONAS = (
    "anonymous",
    "lead",
    "teammate",
    "viewer",
    "investigator",
    "supervisor",
    "auditor",
    "admin",
    "prosecutor",
    "outsider",
    "outsider_supervisor",
)

# Scopes: NONE for routes that touch no case; OWN probes world.case (and its lead, evidence,
# team), OTHER probes world.other_case (agency B's), which must not exist for agency A.
NONE = "none"
OWN = "case"
OTHER = "other_case"

# List cells: the status is 200 and the probed object is (SEE) or is not (MISS) in the page.
SEE = "200, lists it"
MISS = "200, does not list it"

DOCUMENTATION_ROUTES = {"schema", "docs"}

# A reference to a case or lead the caller cannot see, sent in a request body (POST
# /api/leads/, /api/evidence/, /api/handoffs/), is a 400 field error that reads exactly as for
# an id that does not exist; the route itself exists for everyone, so it is not a 404.
#
# Each scope's lead and stored evidence item are included in a handoff sent to a prosecutor:
# world.prosecutor for OWN (so the prosecutor reads them, and nothing else of the case), another
# prosecutor of the same office for OTHER (so world.prosecutor sees none of it).
#
# fmt: off
MATRIX: dict[tuple[str, str], dict[str, tuple[int | str, ...]]] = {
    #                               anon  lead  team  view  inv   sup   aud   adm   pros  out   osup
    ("auth-token", "POST"): {
        NONE:                      (400,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200),
    },
    ("auth-logout", "POST"): {
        NONE:                      (401,  204,  204,  204,  204,  204,  204,  204,  204,  204,  204),
    },
    ("me", "GET"): {
        NONE:                      (401,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200),
    },
    ("prosecutor-list", "GET"): {
        NONE:                      (401,  200,  200,  200,  200,  200,  403,  403,  403,  200,  200),
    },
    ("user-list", "GET"): {
        OWN:                       (401,  SEE,  SEE,  SEE,  SEE,  SEE,  SEE,  SEE,  MISS, MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    ("case-list", "GET"): {
        OWN:                       (401,  SEE,  SEE,  SEE,  MISS, SEE,  MISS, MISS, MISS, MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    ("case-list", "POST"): {
        NONE:                      (401,  201,  201,  201,  201,  201,  403,  403,  403,  201,  201),
    },
    ("case-detail", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("case-detail", "PATCH"): {
        OWN:                       (401,  200,  200,  403,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("case-team", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("case-team", "POST"): {
        OWN:                       (401,  201,  403,  403,  404,  201,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  201,  201),
    },
    ("case-team-member", "DELETE"): {
        OWN:                       (401,  204,  403,  403,  404,  204,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  204,  204),
    },
    ("lead-list", "GET"): {
        OWN:                       (401,  SEE,  SEE,  SEE,  MISS, SEE,  MISS, MISS, SEE,  MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    ("lead-list", "POST"): {
        OWN:                       (401,  201,  201,  403,  400,  201,  400,  400,  400,  400,  400),
        OTHER:                     (401,  400,  400,  400,  400,  400,  400,  400,  400,  201,  201),
    },
    ("lead-detail", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("lead-detail", "PATCH"): {
        OWN:                       (401,  200,  200,  403,  404,  200,  404,  404,  403,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("deconfliction-check", "POST"): {
        NONE:                      (401,  200,  200,  200,  200,  200,  403,  403,  403,  200,  200),
    },
    ("evidence-list", "GET"): {
        OWN:                       (401,  SEE,  SEE,  SEE,  MISS, SEE,  MISS, MISS, SEE,  MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    ("evidence-list", "POST"): {
        OWN:                       (401,  201,  201,  403,  400,  201,  400,  400,  400,  400,  400),
        OTHER:                     (401,  400,  400,  400,  400,  400,  400,  400,  400,  201,  201),
    },
    ("evidence-detail", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("evidence-detail", "PATCH"): {
        OWN:                       (401,  200,  200,  403,  404,  200,  404,  404,  403,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("evidence-content", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("evidence-custody", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("evidence-custody", "POST"): {
        OWN:                       (401,  201,  201,  403,  404,  201,  404,  404,  403,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  201,  201),
    },
    ("evidence-verify", "POST"): {
        OWN:                       (401,  200,  200,  403,  404,  200,  404,  404,  403,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    # Handoffs: the case's team sees them, change_case drafts and edits (drafts only), manage_team
    # submits, a supervisor of the case's agency who neither drafted nor submitted reviews, the
    # addressed prosecutor sees them once sent, acknowledges and decides. PATCH and submit probe
    # a draft, review a handoff pending review, the rest a sent one.
    ("handoff-list", "GET"): {
        OWN:                       (401,  SEE,  SEE,  SEE,  MISS, SEE,  MISS, MISS, SEE,  MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    ("handoff-list", "POST"): {
        OWN:                       (401,  201,  201,  403,  400,  201,  400,  400,  400,  400,  400),
        OTHER:                     (401,  400,  400,  400,  400,  400,  400,  400,  400,  201,  201),
    },
    ("handoff-detail", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("handoff-detail", "PATCH"): {
        OWN:                       (401,  200,  200,  403,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("handoff-submit", "POST"): {
        OWN:                       (401,  200,  403,  403,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("handoff-review", "POST"): {
        OWN:                       (401,  403,  403,  403,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  403,  200),
    },
    ("handoff-acknowledge", "POST"): {
        OWN:                       (401,  403,  403,  403,  404,  403,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  403,  403),
    },
    ("handoff-decision", "POST"): {
        OWN:                       (401,  403,  403,  403,  404,  403,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  403,  403),
    },
    # Packets: the case's leads and supervisors (manage_team) and the addressed prosecutor; a
    # teammate who sees the handoff lists none of its packets and may not ask for one.
    ("handoff-packets", "GET"): {
        OWN:                       (401,  SEE,  MISS, MISS, 404,  SEE,  404,  404,  SEE,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  SEE,  SEE),
    },
    ("handoff-packets", "POST"): {
        OWN:                       (401,  202,  403,  403,  404,  202,  404,  404,  202,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  202,  202),
    },
    ("packet-detail", "GET"): {
        OWN:                       (401,  200,  404,  404,  404,  200,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("packet-download", "GET"): {
        OWN:                       (401,  200,  404,  404,  404,  200,  404,  404,  200,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    # Auditors read their agency's events; a case's leads and its agency's supervisors (who
    # hold manage_team through their group) read that case's events; nobody else.
    ("audit-event-list", "GET"): {
        OWN:                       (401,  SEE,  MISS, MISS, MISS, SEE,  SEE,  MISS, MISS, MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    # An inclusion proof is for an event the caller may read (same scope as the list).
    ("audit-event-proof", "GET"): {
        OWN:                       (401,  200,  404,  404,  404,  200,  200,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    # Checkpoints, the verifier key and consistency proofs are hashes only: any signed-in user.
    ("audit-checkpoint-latest", "GET"): {
        NONE:                      (401,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200),
    },
    ("audit-checkpoint-key", "GET"): {
        NONE:                      (401,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200),
    },
    ("audit-consistency", "GET"): {
        NONE:                      (401,  200,  200,  200,  200,  200,  200,  200,  200,  200,  200),
    },
    # Auditors make checkpoints on demand (200: nothing new since the fixture's checkpoint)
    # and run verification; nobody else does.
    ("audit-checkpoint-create", "POST"): {
        NONE:                      (401,  403,  403,  403,  403,  403,  200,  403,  403,  403,  403),
    },
    ("audit-verify", "POST"): {
        NONE:                      (401,  403,  403,  403,  403,  403,  200,  403,  403,  403,  403),
    },
}

# PATCH {"status": ...} on /api/cases/{id}/ needs manage_team: a teammate edits fields only.
CASE_STATUS_CHANGE =               (401,  200,  403,  403,  404,  200,  404,  404,  404,  404,  404)
# fmt: on


# ---------------------------------------------------------------- the URL conf


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry


def _view_methods(pattern: URLPattern) -> list[str]:
    view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    assert view_class is not None, f"{pattern.name}: not a class-based view, so its methods cannot be read"
    return [
        method.upper()
        for method in view_class.http_method_names
        if method not in ("options", "head") and hasattr(view_class, method)
    ]


def api_routes() -> dict[tuple[str, str], str]:
    """(route name, METHOD) -> route, for every route under /api/ but the documentation."""
    found: dict[tuple[str, str], str] = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/") or pattern.name in DOCUMENTATION_ROUTES:
            continue
        assert pattern.name, f"/{route} has no name, so the matrix cannot refer to it"
        for method in _view_methods(pattern):
            found[(pattern.name, method)] = route
    return found


def test_every_api_route_and_method_is_in_the_matrix() -> None:
    """Every route is here, or in the intercept routes' own table (tests/intercept/
    test_authorization.py, same personas and the same in/out-of-scope cells, with operation
    cases and ingest sources as its objects)."""
    covered = set(MATRIX) | set(INTERCEPT_TABLE)
    missing = sorted(
        f"{method} /{route} ({name})" for (name, method), route in api_routes().items() if (name, method) not in covered
    )
    assert not missing, "routes missing from the authorization matrix: " + ", ".join(missing)


def test_every_matrix_entry_names_an_existing_route_and_method() -> None:
    routes = api_routes()
    stale = sorted(f"{method} {name}" for name, method in MATRIX if (name, method) not in routes)
    assert not stale, "matrix entries with no route in the URL conf: " + ", ".join(stale)


def test_matrix_rows_have_a_cell_for_every_persona() -> None:
    for key, scopes in MATRIX.items():
        assert scopes and set(scopes) <= {NONE, OWN, OTHER}, key
        for scope, row in scopes.items():
            assert len(row) == len(PERSONAS), f"{key} {scope}: {len(row)} cells for {len(PERSONAS)} personas"


# ---------------------------------------------------------------- objects and requests


@dataclass
class Scope:
    """What a request of one scope points at. The team member to remove, the newcomer to add,
    the handoffs in each state and the ready packet are made on first use: only the routes
    that probe them need them. Handoffs include the scope's lead and evidence item, are drafted
    and submitted by `drafter`, reviewed by `reviewer` and addressed to `addressee`."""

    case: Case
    lead: Lead
    evidence: EvidenceItem
    person: Any  # someone of the case's agency, to look for in /api/users/
    make_member: Callable[[], Any]
    make_newcomer: Callable[[], Any]
    drafter: Any
    reviewer: Any
    addressee: Any

    @cached_property
    def member(self) -> Any:
        return self.make_member()

    @cached_property
    def newcomer(self) -> Any:
        return self.make_newcomer()

    def _draft(self) -> Handoff:
        return services.handoff_create(
            actor=self.drafter,
            case=self.case,
            prosecutor=self.addressee,
            leads=[self.lead],
            evidence=[self.evidence],
            charges=[{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
            narrative="The buyer answered the decoy ad.",
        )

    @cached_property
    def draft_handoff(self) -> Handoff:
        return self._draft()

    @cached_property
    def pending_handoff(self) -> Handoff:
        return services.handoff_submit(actor=self.drafter, handoff=self._draft())

    @cached_property
    def sent_handoff(self) -> Handoff:
        pending = services.handoff_submit(actor=self.drafter, handoff=self._draft())
        return services.handoff_review(actor=self.reviewer, handoff=pending, approve=True, note="Approved.")

    @cached_property
    def packet(self) -> ExportPacket:
        """A ready packet of the sent handoff, built by the real builder in this process."""
        packet = services.packet_request(actor=self.drafter, handoff=self.sent_handoff)
        packet = services.packet_build(packet_id=packet.pk)
        assert packet.status == "ready", packet.error
        return packet


@dataclass
class Objects:
    world: World
    scopes: dict[str, Scope]


def _stored_evidence(case: Case) -> EvidenceItem:
    content = SimpleUploadedFile("chat.txt", b"buyer: how much\nbot: 200\n", content_type="text/plain")
    return EvidenceFactory(case=case, upload=content)


@pytest.fixture
def objects(world: World) -> Objects:
    """The world, plus a lead and a stored evidence item on each of its two cases; the audit
    log sealed and covered by a checkpoint."""

    def other_member() -> Any:
        member = UserFactory(username="bea_other", agency=world.agency_b, role=Role.INVESTIGATOR)
        team_member_set(actor=world.outsider, case=world.other_case, user=member, role=TeamRole.VIEWER)
        return member

    def other_newcomer() -> Any:
        return UserFactory(username="ben_other", agency=world.agency_b, role=Role.INVESTIGATOR)

    scopes = {
        OWN: Scope(
            case=world.case,
            lead=LeadFactory(case=world.case, display_name="Buyer on Nightfall"),
            evidence=_stored_evidence(world.case),
            person=world.lead,
            make_member=lambda: world.viewer,
            make_newcomer=lambda: world.investigator,
            drafter=world.lead,
            reviewer=world.supervisor,
            addressee=world.prosecutor,
        ),
        OTHER: Scope(
            case=world.other_case,
            lead=LeadFactory(case=world.other_case, display_name="Buyer on River sting"),
            evidence=_stored_evidence(world.other_case),
            person=world.outsider,
            make_member=other_member,
            make_newcomer=other_newcomer,
            drafter=world.outsider,
            reviewer=world.outsider_supervisor,
            addressee=UserFactory(username="pia_other", agency=world.agency_p, role=Role.PROSECUTOR),
        ),
    }
    seal_pending()
    checkpoint_create()
    return Objects(world=world, scopes=scopes)


# What the `pk` of each routed object names (and `user_id`: the member to remove); keyed by
# route name, or by (route name, METHOD) where methods probe different objects.
TARGETS: dict[str | tuple[str, str], Callable[[Scope], dict[str, Any]]] = {
    "case-detail": lambda s: {"pk": s.case.pk},
    "case-team": lambda s: {"pk": s.case.pk},
    "case-team-member": lambda s: {"pk": s.case.pk, "user_id": s.member.pk},
    "lead-detail": lambda s: {"pk": s.lead.pk},
    "evidence-detail": lambda s: {"pk": s.evidence.pk},
    "evidence-content": lambda s: {"pk": s.evidence.pk},
    "evidence-custody": lambda s: {"pk": s.evidence.pk},
    "evidence-verify": lambda s: {"pk": s.evidence.pk},
    "audit-event-proof": lambda s: {"seq": _first_seq_of(s.case)},
    ("handoff-detail", "GET"): lambda s: {"pk": s.sent_handoff.pk},
    ("handoff-detail", "PATCH"): lambda s: {"pk": s.draft_handoff.pk},
    "handoff-submit": lambda s: {"pk": s.draft_handoff.pk},
    "handoff-review": lambda s: {"pk": s.pending_handoff.pk},
    "handoff-acknowledge": lambda s: {"pk": s.sent_handoff.pk},
    "handoff-decision": lambda s: {"pk": s.sent_handoff.pk},
    "handoff-packets": lambda s: {"pk": s.sent_handoff.pk},
    "packet-detail": lambda s: {"pk": s.packet.pk},
    "packet-download": lambda s: {"pk": s.packet.pk},
}


def _target(name: str, method: str, scope: Scope) -> dict[str, Any] | None:
    make = TARGETS.get((name, method)) or TARGETS.get(name)
    return make(scope) if make is not None else None


# Query strings of routes that need one.
QUERIES: dict[str, Callable[[], str]] = {
    "audit-consistency": lambda: f"?from=1&to={Checkpoint.objects.latest().tree_size}",
}


def _first_seq_of(case: Case) -> int:
    return (
        AuditEvent.objects.filter(case_id=case.pk, seq__isnull=False).order_by("seq").values_list("seq", flat=True)[0]
    )


Body = Callable[[Scope, Any], dict[str, Any] | None]

BODIES: dict[tuple[str, str], Body] = {
    ("auth-token", "POST"): lambda s, user: (
        {} if user is None else {"username": user.username, "password": TEST_PASSWORD}
    ),
    ("case-list", "POST"): lambda s, user: {"title": "Operation Daybreak", "kind": "operation"},
    ("case-detail", "PATCH"): lambda s, user: {"summary": "Buyers answer the decoy ad within minutes."},
    ("case-team", "POST"): lambda s, user: {"user": s.newcomer.pk, "role": TeamRole.VIEWER},
    ("lead-list", "POST"): lambda s, user: {
        "case": str(s.case.pk),
        "display_name": "Buyer 2",
        "identifiers": [{"kind": "email", "value": "buyer2@example.org"}],
    },
    ("lead-detail", "PATCH"): lambda s, user: {"notes": "Asked twice about price."},
    ("deconfliction-check", "POST"): lambda s, user: {"identifiers": [{"kind": "phone", "value": "(202) 555-0143"}]},
    ("evidence-list", "POST"): lambda s, user: {
        "case": str(s.case.pk),
        "kind": "subpoena_return",
        "external_uri": "evidence://vault/subpoena-7",
        "sha256": "ab" * 32,
        "size_bytes": 2048,
    },
    ("evidence-detail", "PATCH"): lambda s, user: {"description": "Transcript of the first contact."},
    ("evidence-custody", "POST"): lambda s, user: {
        "action": "transferred",
        "from_party": "Property room",
        "to_party": "Digital forensics lab",
        "location": "HQ",
    },
    ("handoff-list", "POST"): lambda s, user: {
        "case": str(s.case.pk),
        "prosecutor": s.addressee.pk,
        "leads": [str(s.lead.pk)],
        "evidence": [str(s.evidence.pk)],
        "charges": [{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
        "narrative": "The buyer answered the decoy ad.",
    },
    ("handoff-detail", "PATCH"): lambda s, user: {"narrative": "The buyer came to the meeting point."},
    ("handoff-review", "POST"): lambda s, user: {"approve": True, "note": "Reviewed."},
    ("handoff-decision", "POST"): lambda s, user: {"decision": "accepted", "note": "Filing charges."},
}


def _persona_user(world: World, persona: str) -> Any:
    return None if persona == "anonymous" else getattr(world, persona)


def _client(user: Any) -> APIClient:
    return APIClient() if user is None else client_for(user)


def _send(client: APIClient, method: str, path: str, body: dict[str, Any] | None) -> Any:
    send = getattr(client, method.lower())
    response = send(path) if body is None else send(path, body, format="json")
    if response.streaming:
        b"".join(response.streaming_content)  # the test client closes the file once drained
    return response


# Routes whose success changes no domain row (only the audit log).
READ_ONLY_POSTS = {("deconfliction-check", "POST"), ("audit-checkpoint-create", "POST"), ("audit-verify", "POST")}


def _domain_state() -> dict[str, Any]:
    """What any write of the matrix changes: rows added, edits (updated_at), team and handoff
    grants, custody events, issued and revoked tokens, packets. The audit log is left out on
    purpose."""
    return {
        "cases": sorted(Case.objects.values_list("id", "updated_at")),
        "leads": sorted(Lead.objects.values_list("id", "updated_at")),
        "evidence": sorted(EvidenceItem.objects.values_list("id", "updated_at")),
        "custody": CustodyEvent.objects.count(),
        "grants": CaseUserObjectPermission.objects.count(),
        "tokens": AuthToken.objects.count(),
        "revoked": AuthToken.objects.filter(revoked_at__isnull=False).count(),
        "handoffs": sorted(Handoff.objects.values_list("id", "updated_at")),
        "handoff_items": HandoffLead.objects.count() + HandoffEvidence.objects.count(),
        "handoff_grants": HandoffUserObjectPermission.objects.count(),
        "packets": sorted(ExportPacket.objects.values_list("id", "status")),
    }


# Routes of leads and evidence: the scope's handoff is sent before the request, so the
# prosecutor's cells show what a handoff opens (OWN) and what it does not (OTHER).
HANDED_OFF_ROUTES = ("lead-", "evidence-")

# The object each list row looks for; made before the request, so a MISS is a real miss.
PROBES: dict[str, Callable[[Scope], Any]] = {
    "user-list": lambda s: s.person.pk,
    "case-list": lambda s: str(s.case.pk),
    "lead-list": lambda s: str(s.lead.pk),
    "evidence-list": lambda s: str(s.evidence.pk),
    "handoff-list": lambda s: str(s.sent_handoff.pk),
    "handoff-packets": lambda s: str(s.packet.pk),
    "audit-event-list": lambda s: str(s.case.pk),
}


def _listed(name: str, probe: Any, results: list[dict[str, Any]]) -> bool:
    if name == "audit-event-list":
        return any(row["case_id"] == probe for row in results)
    return any(row["id"] == probe for row in results)


def _cells() -> Iterator[Any]:
    for (name, method), scopes in MATRIX.items():
        for scope, row in scopes.items():
            for persona, expected in zip(PERSONAS, row, strict=True):
                suffix = "" if scope in (NONE, OWN) else f"-{scope}"
                yield pytest.param(name, method, scope, persona, expected, id=f"{name}-{method}-{persona}{suffix}")


@pytest.mark.parametrize(("name", "method", "scope", "persona", "expected"), list(_cells()))
def test_matrix(objects: Objects, name: str, method: str, scope: str, persona: str, expected: int | str) -> None:
    target = objects.scopes[OTHER if scope == OTHER else OWN]
    user = _persona_user(objects.world, persona)
    if name.startswith(HANDED_OFF_ROUTES):
        target.sent_handoff  # noqa: B018 (made before the request: see HANDED_OFF_ROUTES)
    probe = PROBES[name](target) if expected in (SEE, MISS) else None
    path = reverse(name, kwargs=_target(name, method, target))
    if method == "GET" and expected in (SEE, MISS):
        path += "?page_size=200"
    path += QUERIES[name]() if name in QUERIES else ""
    body = BODIES[(name, method)](target, user) if (name, method) in BODIES else None
    client = _client(user)
    before = _domain_state()
    response = _send(client, method, path, body)
    status = 200 if expected in (SEE, MISS) else expected
    assert response.status_code == status, (
        f"{method} {path} as {persona}: {response.status_code} {response.content[:300]!r}"
    )
    writes = method != "GET" and status < 400 and (name, method) not in READ_ONLY_POSTS
    assert (_domain_state() != before) is writes, "a refused request or a read changed state, or a write did not"
    if expected in (SEE, MISS):
        data = response.json()
        assert data["count"] == len(data["results"]), "the probe must see a whole list on one page"
        assert _listed(name, probe, data["results"]) is (expected == SEE), data["results"]


# ---------------------------------------------------------------- outside the matrix


@pytest.mark.parametrize(("persona", "expected"), list(zip(PERSONAS, CASE_STATUS_CHANGE, strict=True)))
def test_case_status_change_needs_manage_team(world: World, persona: str, expected: int) -> None:
    user = _persona_user(world, persona)
    response = _send(_client(user), "PATCH", f"/api/cases/{world.case.pk}/", {"status": "active"})
    assert response.status_code == expected, response.content
    world.case.refresh_from_db()
    assert world.case.status == ("active" if expected == 200 else "open")


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("method", ["DELETE", "PUT"])
def test_cases_cannot_be_deleted_or_replaced(world: World, persona: str, method: str) -> None:
    """Authentication runs before method dispatch, so anonymous is 401; every signed-in persona
    gets 405 whether or not the case is in their scope (the method exists for no one)."""
    user = _persona_user(world, persona)
    response = _send(_client(user), method, f"/api/cases/{world.case.pk}/", {"title": "gone"})
    assert response.status_code == (401 if user is None else 405), response.content
    assert Case.objects.filter(pk=world.case.pk, title="Operation Nightfall").exists()


@pytest.mark.parametrize("persona", ["anonymous", "viewer"])
def test_api_schema_and_docs_are_public(world: World, persona: str) -> None:
    client = _client(_persona_user(world, persona))
    schema = client.get(reverse("schema"))
    assert schema.status_code == 200
    assert b"/api/cases/{id}/team/{user_id}/:" in schema.content
    docs = client.get(reverse("docs"))
    assert docs.status_code == 200
    script = client.get(reverse("docs") + "?script=")  # the split view's start-up script
    assert script.status_code == 200
    assert reverse("schema").encode() in script.content


def test_out_of_scope_case_in_a_body_reads_as_a_case_that_does_not_exist(world: World) -> None:
    client = client_for(world.investigator)
    hidden = client.post("/api/leads/", {"case": str(world.case.pk), "display_name": "x"}, format="json")
    missing_id = "00000000-0000-4000-8000-000000000000"
    missing = client.post("/api/leads/", {"case": missing_id, "display_name": "x"}, format="json")
    assert hidden.status_code == missing.status_code == 400
    assert hidden.json()["case"] == [m.replace(missing_id, str(world.case.pk)) for m in missing.json()["case"]]


def _global_case_perms() -> list[Permission]:
    return list(Permission.objects.filter(content_type__app_label="cases", codename__in=["view_case", "change_case"]))


@pytest.mark.parametrize("holder", ["user", "group"])
def test_global_case_permission_never_widens_object_scope(objects: Objects, holder: str) -> None:
    world = objects.world
    perms = _global_case_perms()
    assert len(perms) == 2
    if holder == "user":
        world.investigator.user_permissions.add(*perms)
    else:
        Group.objects.get(name=Role.INVESTIGATOR).permissions.add(*perms)
    world.investigator.refresh_from_db()
    assert world.investigator.has_perm("cases.view_case") and world.investigator.has_perm("cases.change_case")
    own = objects.scopes[OWN]
    client = client_for(world.investigator)
    assert client.get(f"/api/cases/{own.case.pk}/").status_code == 404
    assert client.patch(f"/api/cases/{own.case.pk}/", {"summary": "x"}, format="json").status_code == 404
    assert client.get(f"/api/leads/{own.lead.pk}/").status_code == 404
    assert client.get(f"/api/evidence/{own.evidence.pk}/").status_code == 404
    assert client.get(f"/api/evidence/{own.evidence.pk}/content/").status_code == 404
    listed = client.get("/api/cases/").json()["results"]
    assert str(own.case.pk) not in {row["id"] for row in listed}
    own.case.refresh_from_db()
    assert own.case.summary == ""
