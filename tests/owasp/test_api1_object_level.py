"""OWASP API1:2023, broken object level authorization. The authorization matrix
(tests/test_authorization_matrix.py, and tests/intercept/test_authorization.py for intercept
routes) sends every route and method as every persona at an object in and out of their scope.
This module adds what the matrix does not check: that an object of another agency cannot be
told apart from one that never existed (same status, same body, no trace), whether its id is
in the path, in a body or in a filter; and that the ids themselves cannot be guessed."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import get_resolver, reverse

from audit.models import AuditAction, AuditEvent
from cases.models import Case, EvidenceItem, ExportPacket, Handoff, Lead
from intercept.models import Conversation
from tests.conftest import client_for
from tests.intercept.test_authorization import TABLE as INTERCEPT_TABLE
from tests.intercept.test_authorization import Side, sides  # noqa: F401 (fixture)
from tests.test_authorization_matrix import (
    BODIES,
    MATRIX,
    OTHER,
    OWN,
    Objects,
    Scope,
    _domain_state,
    _walk,
    objects,  # noqa: F401 (fixture)
)

NEVER_ISSUED = uuid.UUID("7d3c1a52-90c4-4b7e-9d44-3f2b6a1c0e99")
NEVER_ISSUED_SEQ = 987654321

# Agency A's people who are not on agency B's case, each of a different role.
PROBERS = ("lead", "supervisor", "auditor", "admin", "prosecutor")


def test_every_route_that_names_an_object_is_probed_out_of_scope_by_the_matrices() -> None:
    """The matrices are this module's base: each route with an id in its path has a row for
    another agency's object."""
    named = {
        (pattern.name, method)
        for route, pattern in _walk(get_resolver().url_patterns)
        if route.startswith("api/") and re.search(r"<(uuid|int):", route)
        for method in ("GET", "POST", "PATCH", "DELETE")
        if hasattr(pattern.callback.view_class, method.lower())
    }
    probed = {key for key, scopes in {**MATRIX, **INTERCEPT_TABLE}.items() if OTHER in scopes}
    assert named <= probed, sorted(named - probed)


# ---------------------------------------------------------------- ids in the path


# Route, method and the path kwargs of agency B's object (from the matrix's OTHER scope and
# the intercept side of agency B); the same kwargs with a never-issued id stand for "no such
# object". A body is sent where the route takes one.
Probe = tuple[str, str, Callable[[Scope, Side], dict[str, Any]], Callable[[dict[str, Any]], dict[str, Any]]]


def _pk(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "pk": NEVER_ISSUED}


PROBES: list[Probe] = [
    ("case-detail", "GET", lambda s, d: {"pk": s.case.pk}, _pk),
    ("case-detail", "PATCH", lambda s, d: {"pk": s.case.pk}, _pk),
    ("case-team", "GET", lambda s, d: {"pk": s.case.pk}, _pk),
    ("case-team", "POST", lambda s, d: {"pk": s.case.pk}, _pk),
    ("case-team-member", "DELETE", lambda s, d: {"pk": s.case.pk, "user_id": s.member.pk}, _pk),
    ("lead-detail", "GET", lambda s, d: {"pk": s.lead.pk}, _pk),
    ("lead-detail", "PATCH", lambda s, d: {"pk": s.lead.pk}, _pk),
    ("evidence-detail", "GET", lambda s, d: {"pk": s.evidence.pk}, _pk),
    ("evidence-detail", "PATCH", lambda s, d: {"pk": s.evidence.pk}, _pk),
    ("evidence-content", "GET", lambda s, d: {"pk": s.evidence.pk}, _pk),
    ("evidence-custody", "GET", lambda s, d: {"pk": s.evidence.pk}, _pk),
    ("evidence-custody", "POST", lambda s, d: {"pk": s.evidence.pk}, _pk),
    ("evidence-verify", "POST", lambda s, d: {"pk": s.evidence.pk}, _pk),
    ("handoff-detail", "GET", lambda s, d: {"pk": s.sent_handoff.pk}, _pk),
    ("handoff-detail", "PATCH", lambda s, d: {"pk": s.draft_handoff.pk}, _pk),
    ("handoff-submit", "POST", lambda s, d: {"pk": s.draft_handoff.pk}, _pk),
    ("handoff-review", "POST", lambda s, d: {"pk": s.pending_handoff.pk}, _pk),
    ("handoff-acknowledge", "POST", lambda s, d: {"pk": s.sent_handoff.pk}, _pk),
    ("handoff-decision", "POST", lambda s, d: {"pk": s.sent_handoff.pk}, _pk),
    ("handoff-packets", "GET", lambda s, d: {"pk": s.sent_handoff.pk}, _pk),
    ("handoff-packets", "POST", lambda s, d: {"pk": s.sent_handoff.pk}, _pk),
    ("packet-detail", "GET", lambda s, d: {"pk": s.packet.pk}, _pk),
    ("packet-download", "GET", lambda s, d: {"pk": s.packet.pk}, _pk),
    ("conversation-detail", "GET", lambda s, d: {"pk": d.conversation.pk}, _pk),
    ("conversation-snapshot", "POST", lambda s, d: {"pk": d.conversation.pk}, _pk),
    ("audit-event-proof", "GET", lambda s, d: {"seq": _first_seq_of(s.case)}, lambda k: {"seq": NEVER_ISSUED_SEQ}),
]


def _first_seq_of(case: Case) -> int:
    from audit.sealing import seal_pending

    seal_pending()
    return AuditEvent.objects.filter(case_id=case.pk, seq__isnull=False).order_by("seq")[0].seq


def _send(client: Any, method: str, path: str, body: dict[str, Any] | None) -> Any:
    send = getattr(client, method.lower())
    return send(path) if body is None else send(path, body, format="json")


@pytest.mark.parametrize(("name", "method", "target", "missing"), PROBES, ids=[f"{p[0]}-{p[1]}" for p in PROBES])
def test_another_agencys_object_answers_exactly_like_one_that_never_existed(
    objects: Objects,  # noqa: F811
    sides: dict[str, Side],  # noqa: F811
    name: str,
    method: str,
    target: Callable[[Scope, Side], dict[str, Any]],
    missing: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    scope = objects.scopes[OTHER]
    kwargs = target(scope, sides[OTHER])
    theirs, nobodys = reverse(name, kwargs=kwargs), reverse(name, kwargs=missing(kwargs))
    body = BODIES[(name, method)](objects.scopes[OWN], None) if (name, method) in BODIES else None
    different = []
    for persona in PROBERS:
        client = client_for(getattr(objects.world, persona))
        before = (_domain_state(), AuditEvent.objects.filter(case_id=scope.case.pk).count())
        a, b = _send(client, method, theirs, body), _send(client, method, nobodys, body)
        if (a.status_code, a.content) != (b.status_code, b.content) or a.status_code != 404:
            different.append(f"{persona}: {a.status_code} {a.content[:120]!r} vs {b.status_code} {b.content[:120]!r}")
        if (_domain_state(), AuditEvent.objects.filter(case_id=scope.case.pk).count()) != before:
            different.append(f"{persona}: the probe left a trace on the other agency's case")
    assert not different, f"{method} {theirs}:\n" + "\n".join(different)


def test_a_team_member_of_another_agency_reads_like_a_user_who_never_existed(objects: Objects) -> None:  # noqa: F811
    """Removing a member is checked before the member is looked up: a manager of agency A
    learns nothing about agency B's user ids from the answer."""
    world = objects.world
    client = client_for(world.lead)
    theirs = client.delete(reverse("case-team-member", kwargs={"pk": world.case.pk, "user_id": world.outsider.pk}))
    nobodys = client.delete(reverse("case-team-member", kwargs={"pk": world.case.pk, "user_id": 10**9}))
    assert (theirs.status_code, theirs.content) == (nobodys.status_code, nobodys.content)
    assert theirs.status_code == 404


# ---------------------------------------------------------------- ids in bodies


def _same_but_the_id(a: Any, b: Any, theirs: Any, nobodys: Any) -> bool:
    return a.status_code == b.status_code == 400 and a.content.replace(
        str(theirs).encode(), b"ID"
    ) == b.content.replace(str(nobodys).encode(), b"ID")


BODY_REFERENCES: list[tuple[str, str, Callable[[Scope, Scope, Any], dict[str, Any]], Callable[[Scope], Any]]] = [
    ("lead-list", "POST", lambda own, other, ref: {"case": str(ref), "display_name": "x"}, lambda s: s.case.pk),
    (
        "evidence-list",
        "POST",
        lambda own, other, ref: {
            "case": str(ref),
            "kind": "other",
            "external_uri": "e://x",
            "sha256": "a" * 64,
            "size_bytes": 1,
        },
        lambda s: s.case.pk,
    ),
    (
        "evidence-list",
        "POST",
        lambda own, other, ref: {
            "case": str(own.case.pk),
            "lead": str(ref),
            "kind": "other",
            "external_uri": "e://x",
            "sha256": "a" * 64,
            "size_bytes": 1,
        },
        lambda s: s.lead.pk,
    ),
    ("evidence-detail", "PATCH", lambda own, other, ref: {"lead": str(ref)}, lambda s: s.lead.pk),
    (
        "handoff-list",
        "POST",
        lambda own, other, ref: {"case": str(own.case.pk), "prosecutor": 0, "leads": [str(ref)]},
        lambda s: s.lead.pk,
    ),
    (
        "handoff-list",
        "POST",
        lambda own, other, ref: {"case": str(own.case.pk), "prosecutor": 0, "evidence": [str(ref)]},
        lambda s: s.evidence.pk,
    ),
    ("handoff-detail", "PATCH", lambda own, other, ref: {"leads": [str(ref)]}, lambda s: s.lead.pk),
    ("case-list", "POST", lambda own, other, ref: {"title": "x", "parent": str(ref)}, lambda s: s.case.pk),
]


@pytest.mark.parametrize(
    ("name", "method", "body", "reference"),
    BODY_REFERENCES,
    ids=[f"{n}-{m}-{i}" for i, (n, m, _, _) in enumerate(BODY_REFERENCES)],
)
def test_another_agencys_id_in_a_body_reads_like_an_id_that_never_existed(
    objects: Objects,  # noqa: F811
    name: str,
    method: str,
    body: Callable[[Scope, Scope, Any], dict[str, Any]],
    reference: Callable[[Scope], Any],
) -> None:
    own, other = objects.scopes[OWN], objects.scopes[OTHER]
    kwargs = {"pk": own.evidence.pk} if name == "evidence-detail" else {}
    if name == "handoff-detail":
        kwargs = {"pk": own.draft_handoff.pk}
    path = reverse(name, kwargs=kwargs or None)
    client = client_for(objects.world.lead)
    theirs = reference(other)
    before = _domain_state()
    a = _send(client, method, path, body(own, other, theirs))
    b = _send(client, method, path, body(own, other, NEVER_ISSUED))
    assert _same_but_the_id(a, b, theirs, NEVER_ISSUED), (a.content, b.content)
    assert _domain_state() == before


# ---------------------------------------------------------------- ids in filters


B_EMAIL = "only.b@example.org"
B_PHONE = "(786) 555-0199"


def _agency_b_extras(scope: Scope, side: Side) -> dict[str, Any]:
    """Objects only agency B holds, for the filters that match on values: a lead with its own
    identifier, evidence of that lead with its own hash, a sent handoff, and a conversation and
    an ad with a buyer number nobody else has."""
    from intercept import services as intercept_services
    from tests.factories import EvidenceFactory, LeadFactory
    from tests.intercept.conftest import ad, conversation

    lead = LeadFactory(case=scope.case, identifiers=[{"kind": "email", "value": B_EMAIL}])
    evidence = EvidenceFactory(case=scope.case, lead=lead, external_uri="evidence://river/only-b")
    source = side.conversation.source
    intercept_services.conversations_ingest(source=source, items=[conversation("b-only", phone=B_PHONE)])
    intercept_services.ads_ingest(source=source, items=[ad("b-only", phones=[B_PHONE])])
    return {"lead": lead, "evidence": evidence, "handoff": scope.sent_handoff}


FILTERS: list[tuple[str, str, Callable[[Scope, Side, dict[str, Any]], Any]]] = [
    ("lead-list", "case", lambda s, d, b: s.case.pk),
    ("lead-list", "handoff", lambda s, d, b: b["handoff"].pk),
    ("lead-list", "identifier", lambda s, d, b: B_EMAIL),
    ("evidence-list", "case", lambda s, d, b: s.case.pk),
    ("evidence-list", "lead", lambda s, d, b: b["lead"].pk),
    ("evidence-list", "handoff", lambda s, d, b: b["handoff"].pk),
    ("evidence-list", "sha256", lambda s, d, b: b["evidence"].sha256),
    ("handoff-list", "case", lambda s, d, b: s.case.pk),
    ("audit-event-list", "case", lambda s, d, b: s.case.pk),
    ("conversation-list", "case", lambda s, d, b: d.operation.pk),
    ("conversation-list", "lead", lambda s, d, b: d.conversation.lead_id),
    ("conversation-list", "phone", lambda s, d, b: B_PHONE),
    ("ad-list", "case", lambda s, d, b: d.operation.pk),
    ("ad-list", "phone", lambda s, d, b: B_PHONE),
]


@pytest.mark.parametrize(("name", "field", "value"), FILTERS, ids=[f"{n}-{f}" for n, f, _ in FILTERS])
def test_filtering_on_another_agencys_object_finds_nothing(
    objects: Objects,  # noqa: F811
    sides: dict[str, Side],  # noqa: F811
    name: str,
    field: str,
    value: Callable[[Scope, Side, dict[str, Any]], Any],
) -> None:
    """A filter narrows what the caller may already see: naming another agency's case, lead,
    handoff, hash or buyer's number lists nothing, exactly as a never-issued value does."""
    scope, side = objects.scopes[OTHER], sides[OTHER]
    probe = value(scope, side, _agency_b_extras(scope, side))
    owner = client_for(objects.world.outsider)
    assert owner.get(reverse(name), {field: probe}).json()["count"] > 0, "the owner finds it this way"
    for persona in ("lead", "supervisor", "auditor"):
        client = client_for(getattr(objects.world, persona))
        theirs = client.get(reverse(name), {field: probe})
        assert theirs.status_code == 200, theirs.content
        assert theirs.json()["count"] == 0, (persona, theirs.json())


# ---------------------------------------------------------------- the ids themselves


def test_object_ids_are_random_uuids_not_counters(objects: Objects, sides: dict[str, Side]) -> None:  # noqa: F811
    scope = objects.scopes[OWN]
    scope.packet  # noqa: B018
    for model in (Case, Lead, EvidenceItem, Handoff, ExportPacket, Conversation):
        ids = list(model.objects.values_list("pk", flat=True))
        assert ids, model
        assert all(isinstance(pk, uuid.UUID) and pk.version == 4 for pk in ids), model


def test_an_out_of_scope_download_leaves_no_download_event(objects: Objects) -> None:  # noqa: F811
    other = objects.scopes[OTHER]
    client = client_for(objects.world.lead)
    assert client.get(reverse("evidence-content", kwargs={"pk": other.evidence.pk})).status_code == 404
    assert client.get(reverse("packet-download", kwargs={"pk": other.packet.pk})).status_code == 404
    assert not AuditEvent.objects.filter(
        actor_id=objects.world.lead.pk,
        action__in=[AuditAction.EVIDENCE_DOWNLOADED, AuditAction.PACKET_DOWNLOADED],
    ).exists()
