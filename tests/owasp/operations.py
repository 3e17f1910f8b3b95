"""The mutating operations of the API as the OWASP tests send them: for each, who sends it,
at which object of agency A, with a body that succeeds; and how to read back the state a
refused request must leave as it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db.models import Model
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from cases.models import TeamRole
from intercept.models import Ad, Conversation
from tests.conftest import World, client_for
from tests.factories import TEST_PASSWORD
from tests.intercept.test_authorization import Side
from tests.owasp.schema import Operation
from tests.test_authorization_matrix import OWN, Objects, Scope, _domain_state


@dataclass
class Ctx:
    world: World
    scope: Scope  # agency A's case, its lead, stored evidence and handoffs (tests/test_authorization_matrix.py)
    request: pytest.FixtureRequest

    @property
    def side(self) -> Side:
        """An operation of agency A with a conversation (tests/intercept/test_authorization.py),
        made for the one operation that needs it."""
        return self.request.getfixturevalue("sides")[OWN]


@dataclass(frozen=True)
class Op:
    """Who sends the request, at which object (URL kwargs), with a body that succeeds; the row
    the request would change (re-read after every refusal), and the success status."""

    persona: str
    success: int
    body: Callable[[Ctx], dict[str, Any]] = lambda c: {}
    target: Callable[[Ctx], dict[str, Any]] | None = None
    row: Callable[[Ctx], Model] | None = None


def _case(c: Ctx) -> dict[str, Any]:
    return {"pk": c.scope.case.pk}


def _lead(c: Ctx) -> dict[str, Any]:
    return {"pk": c.scope.lead.pk}


def _evidence(c: Ctx) -> dict[str, Any]:
    return {"pk": c.scope.evidence.pk}


# fmt: off
WITH_BODY: dict[Operation, Op] = {
    ("auth-token", "POST"): Op("anonymous", 200, lambda c: {"username": c.world.lead.username, "password": TEST_PASSWORD}),
    ("case-list", "POST"): Op("lead", 201, lambda c: {"title": "Operation Daybreak", "kind": "operation"}),
    ("case-detail", "PATCH"): Op("lead", 200, lambda c: {"summary": "Buyers answer within minutes."}, _case, lambda c: c.scope.case),
    ("case-team", "POST"): Op("lead", 201, lambda c: {"user": c.world.investigator.pk, "role": TeamRole.VIEWER}, _case, lambda c: c.scope.case),
    ("lead-list", "POST"): Op("lead", 201, lambda c: {"case": str(c.scope.case.pk), "display_name": "Buyer 2"}),
    ("lead-detail", "PATCH"): Op("lead", 200, lambda c: {"notes": "Asked twice about price."}, _lead, lambda c: c.scope.lead),
    ("deconfliction-check", "POST"): Op("lead", 200, lambda c: {"identifiers": [{"kind": "phone", "value": "(202) 555-0143"}]}),
    ("evidence-list", "POST"): Op("lead", 201, lambda c: {
        "case": str(c.scope.case.pk), "kind": "subpoena_return", "external_uri": "evidence://vault/7",
        "sha256": "ab" * 32, "size_bytes": 2048,
    }),
    ("evidence-detail", "PATCH"): Op("lead", 200, lambda c: {"description": "First contact."}, _evidence, lambda c: c.scope.evidence),
    ("evidence-custody", "POST"): Op("lead", 201, lambda c: {"action": "transferred", "to_party": "Forensics lab"}, _evidence, lambda c: c.scope.evidence),
    ("handoff-list", "POST"): Op("lead", 201, lambda c: {
        "case": str(c.scope.case.pk), "prosecutor": c.world.prosecutor.pk, "leads": [str(c.scope.lead.pk)],
    }),
    ("handoff-detail", "PATCH"): Op("lead", 200, lambda c: {"narrative": "The buyer came."}, lambda c: {"pk": c.scope.draft_handoff.pk}, lambda c: c.scope.draft_handoff),
    ("handoff-submit", "POST"): Op("lead", 200, lambda c: {}, lambda c: {"pk": c.scope.draft_handoff.pk}, lambda c: c.scope.draft_handoff),
    ("handoff-review", "POST"): Op("supervisor", 200, lambda c: {"approve": True}, lambda c: {"pk": c.scope.pending_handoff.pk}, lambda c: c.scope.pending_handoff),
    ("handoff-acknowledge", "POST"): Op("prosecutor", 200, lambda c: {}, lambda c: {"pk": c.scope.sent_handoff.pk}, lambda c: c.scope.sent_handoff),
    ("handoff-decision", "POST"): Op("prosecutor", 200, lambda c: {"decision": "accepted"}, lambda c: {"pk": c.scope.sent_handoff.pk}, lambda c: c.scope.sent_handoff),
}

# Actions that take no body: what they answer with is the server's, every key of it.
WITHOUT_BODY: dict[Operation, Op] = {
    ("auth-logout", "POST"): Op("lead", 204),
    ("evidence-verify", "POST"): Op("lead", 200, target=_evidence, row=lambda c: c.scope.evidence),
    ("handoff-packets", "POST"): Op("lead", 202, target=lambda c: {"pk": c.scope.sent_handoff.pk}, row=lambda c: c.scope.sent_handoff),
    ("conversation-snapshot", "POST"): Op("lead", 201, target=lambda c: {"pk": c.side.conversation.pk}, row=lambda c: c.side.conversation),
    ("audit-checkpoint-create", "POST"): Op("auditor", 200),
    ("audit-verify", "POST"): Op("auditor", 200),
}
# fmt: on

# Pushed by signed machine clients: the batch envelope, and each item, are checked separately.
INGEST: dict[Operation, type[Model]] = {("ingest-conversations", "POST"): Conversation, ("ingest-ads", "POST"): Ad}


def ctx(objects: Objects, request: pytest.FixtureRequest) -> Ctx:
    return Ctx(world=objects.world, scope=objects.scopes[OWN], request=request)


def client(world: World, persona: str) -> Any:
    return APIClient() if persona == "anonymous" else client_for(getattr(world, persona))


def path(name: str, entry: Op, c: Ctx) -> str:
    return reverse(name, kwargs=entry.target(c) if entry.target else None)


def _row(entry: Op, c: Ctx) -> dict[str, Any] | None:
    if entry.row is None:
        return None
    row = entry.row(c)
    return type(row).objects.filter(pk=row.pk).values().get()


def state(entry: Op, c: Ctx) -> tuple[Any, ...]:
    return _domain_state(), _row(entry, c), AuditEvent.objects.count()


def send(client: Any, method: str, path: str, body: dict[str, Any]) -> Any:
    return getattr(client, method.lower())(path, body, format="json")
