"""OWASP API5:2023, broken function level authorization: each role may call the functions
DESIGN.md gives it and no other. The table below says, for every mutating route, which roles
may call it; every other role (machine clients and anonymous callers included) is refused,
with the answer the authorization matrix gives that persona (401 without credentials, 404
out of scope, 403 in scope but not allowed, 400 for a reference to a case the caller cannot
see), and nothing changes. Roles are checked when the call is made, not when the token was
issued; and a team cannot hand case content to a role that must not see it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from django.urls import reverse
from rest_framework.test import APIClient

from cases import services
from cases.models import Role, TeamRole
from intercept import signing
from tests.conftest import World, client_for
from tests.factories import TEST_PASSWORD
from tests.intercept.conftest import ad, conversation
from tests.intercept.test_authorization import TABLE as INTERCEPT_TABLE
from tests.intercept.test_authorization import Side, sides  # noqa: F401 (fixture)
from tests.owasp.schema import mutating_operations
from tests.test_authorization_matrix import (
    BODIES,
    HANDED_OFF_ROUTES,
    MATRIX,
    NONE,
    OWN,
    PERSONAS,
    Objects,
    _domain_state,
    _target,
    objects,  # noqa: F401 (fixture)
)

# Roles, and the persona of the world that plays each: the strongest holder of the role on
# agency A's case (the investigator leads it; the prosecutor is addressed by its handoffs).
ROLES = {
    "investigator": "lead",
    "supervisor": "supervisor",
    "prosecutor": "prosecutor",
    "auditor": "auditor",
    "agency_admin": "admin",
    "ingest_source": None,
    "anonymous": "anonymous",
}
PEOPLE = frozenset({"investigator", "supervisor", "prosecutor", "auditor", "agency_admin"})
CASEWORK = frozenset({"investigator", "supervisor"})

# Who may call each mutating route (DESIGN.md, "Who uses it" and "Authorization"; API.md).
MAY: dict[tuple[str, str], frozenset[str]] = {
    ("auth-token", "POST"): frozenset(ROLES),  # the way in: it takes no credentials
    ("auth-logout", "POST"): PEOPLE,
    ("case-list", "POST"): CASEWORK,
    ("case-detail", "PATCH"): CASEWORK,
    ("case-team", "POST"): CASEWORK,
    ("case-team-member", "DELETE"): CASEWORK,
    ("lead-list", "POST"): CASEWORK,
    ("lead-detail", "PATCH"): CASEWORK,
    ("deconfliction-check", "POST"): CASEWORK,
    ("evidence-list", "POST"): CASEWORK,
    ("evidence-detail", "PATCH"): CASEWORK,
    ("evidence-custody", "POST"): CASEWORK,
    ("evidence-verify", "POST"): CASEWORK,
    ("handoff-list", "POST"): CASEWORK,
    ("handoff-detail", "PATCH"): CASEWORK,
    ("handoff-submit", "POST"): CASEWORK,
    ("handoff-review", "POST"): frozenset({"supervisor"}),
    ("handoff-acknowledge", "POST"): frozenset({"prosecutor"}),
    ("handoff-decision", "POST"): frozenset({"prosecutor"}),
    ("handoff-packets", "POST"): CASEWORK | {"prosecutor"},
    ("conversation-snapshot", "POST"): CASEWORK,
    ("audit-checkpoint-create", "POST"): frozenset({"auditor"}),
    ("audit-verify", "POST"): frozenset({"auditor"}),
    ("ingest-conversations", "POST"): frozenset({"ingest_source"}),
    ("ingest-ads", "POST"): frozenset({"ingest_source"}),
}
REFUSALS = frozenset({400, 401, 403, 404})


def _row(key: tuple[str, str]) -> tuple[Any, ...]:
    scopes = {**MATRIX, **INTERCEPT_TABLE}[key]
    return scopes.get(OWN) or scopes[NONE]


def _cell(key: tuple[str, str], role: str) -> Any:
    """What the authorization matrix says the role's persona gets (machine clients: 401 on
    people's routes, the ingest routes answer them 200)."""
    if role == "ingest_source":
        return 200 if key[0].startswith("ingest-") else 401
    return _row(key)[PERSONAS.index(ROLES[role])]


def test_the_table_names_every_mutating_route_and_nothing_else() -> None:
    assert set(MAY) == set(mutating_operations())


# Login takes no credentials, so it refuses nobody; the matrix sends anonymous callers an empty
# body there, which is why it shows them a 400.
TAKES_NO_CREDENTIALS = {("auth-token", "POST")}


@pytest.mark.parametrize("key", sorted(set(MAY) - TAKES_NO_CREDENTIALS), ids="-".join)
def test_the_matrix_lets_exactly_the_roles_the_design_names(key: tuple[str, str]) -> None:
    """The matrix and the design agree: roles that may get a success, the others a refusal."""
    wrong = []
    for role in ROLES:
        cell = _cell(key, role)
        allowed = isinstance(cell, int) and cell < 400
        if allowed != (role in MAY[key]):
            wrong.append(f"{role}: matrix says {cell}, design says {'may' if role in MAY[key] else 'may not'}")
        if not allowed and cell not in REFUSALS:
            wrong.append(f"{role}: refused with {cell}")
    assert not wrong, wrong


# ---------------------------------------------------------------- calling them


def _machine_headers(objects: Objects, body: bytes) -> dict[str, str]:  # noqa: F811
    from intercept import services as intercept_services

    operation = services.case_create(actor=objects.world.lead, title="Role probe operation", kind="operation")
    issued = intercept_services.ingest_source_create(actor=None, name="role-probe-bot", case=operation)
    headers = signing.signed_headers(str(issued.source.pk), issued.secret, body)
    return {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}


def _path(key: tuple[str, str], objects: Objects, request: pytest.FixtureRequest) -> str:  # noqa: F811
    name, method = key
    if name == "conversation-snapshot":
        return reverse(name, kwargs={"pk": request.getfixturevalue("sides")[OWN].conversation.pk})
    scope = objects.scopes[OWN]
    if name.startswith(HANDED_OFF_ROUTES):
        scope.sent_handoff  # noqa: B018 (as in the matrix: the prosecutor sees what was handed off)
    return reverse(name, kwargs=_target(name, method, scope))


def _body(key: tuple[str, str], objects: Objects, user: Any) -> Any:  # noqa: F811
    if key[0] == "ingest-conversations":
        return {"items": [conversation("role-probe")]}
    if key[0] == "ingest-ads":
        return {"items": [ad("role-probe")]}
    if key == ("auth-token", "POST"):
        return {"username": objects.world.lead.username, "password": TEST_PASSWORD}
    return BODIES[key](objects.scopes[OWN], user) if key in BODIES else None


@pytest.mark.parametrize("key", sorted(set(MAY) - TAKES_NO_CREDENTIALS), ids="-".join)
def test_every_role_is_refused_every_function_it_may_not_call_and_nothing_changes(
    objects: Objects,  # noqa: F811
    request: pytest.FixtureRequest,
    key: tuple[str, str],
) -> None:
    name, method = key
    path = _path(key, objects, request)
    problems = []
    for role in sorted(set(ROLES) - MAY[key]):
        persona = ROLES[role]
        user = getattr(objects.world, persona) if role in PEOPLE else None
        body = _body(key, objects, user)
        raw = json.dumps(body).encode() if body is not None else b""
        extra = _machine_headers(objects, raw) if role == "ingest_source" else {}
        client = client_for(user) if user is not None else APIClient()
        with transaction.atomic():
            before = _domain_state()
            response = client.generic(method, path, raw, content_type="application/json", **extra)
            changed = _domain_state() != before
            transaction.set_rollback(True)
        expected = _cell(key, role)
        if response.status_code != expected or expected not in REFUSALS:
            problems.append(f"{role}: {response.status_code}, expected {expected} {response.content[:150]!r}")
        if changed:
            problems.append(f"{role}: refused, but the request changed something")
    assert not problems, f"{method} {path}:\n" + "\n".join(problems)


# ---------------------------------------------------------------- roles change


def test_a_demoted_supervisor_cannot_review_with_the_token_they_already_hold(objects: Objects) -> None:  # noqa: F811
    world, scope = objects.world, objects.scopes[OWN]
    handoff = scope.pending_handoff
    client = client_for(world.supervisor)
    services.user_ensure(
        username=world.supervisor.username, agency=world.agency_a, role=Role.INVESTIGATOR, password=None
    )
    response = client.post(f"/api/handoffs/{handoff.pk}/review/", {"approve": True}, format="json")
    assert response.status_code in (403, 404), response.content
    handoff.refresh_from_db()
    assert handoff.status == "pending_review"


def test_a_promoted_investigator_can_review_at_once_and_a_new_auditor_can_verify(objects: Objects) -> None:  # noqa: F811
    """The other direction: roles are read at each call, so a promotion needs no new token."""
    world, scope = objects.world, objects.scopes[OWN]
    handoff = scope.pending_handoff
    client = client_for(world.investigator)
    assert client.post(f"/api/handoffs/{handoff.pk}/review/", {"approve": True}, format="json").status_code == 404
    services.user_ensure(
        username=world.investigator.username, agency=world.agency_a, role=Role.SUPERVISOR, password=None
    )
    assert client.post(f"/api/handoffs/{handoff.pk}/review/", {"approve": True}, format="json").status_code == 200
    auditor_to_be = client_for(world.viewer)
    assert auditor_to_be.post("/api/audit/verify/").status_code == 403
    services.user_ensure(username=world.viewer.username, agency=world.agency_a, role=Role.AUDITOR, password=None)
    assert auditor_to_be.post("/api/audit/verify/").status_code == 200


def test_a_method_override_header_does_not_change_the_function(world: World) -> None:
    client = client_for(world.lead)
    for header in ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD"):
        response = client.post(f"/api/cases/{world.case.pk}/", {}, format="json", **{header: "DELETE"})
        assert response.status_code == 405
    response = client.post(f"/api/cases/{world.case.pk}/?_method=DELETE", {}, format="json")
    assert response.status_code == 405
    world.case.refresh_from_db()
    assert world.case.status == "open"


# ---------------------------------------------------------------- team grants


@pytest.mark.parametrize("persona", ["auditor", "prosecutor", "admin"])
def test_a_team_cannot_give_case_content_to_a_role_that_must_not_see_it(world: World, persona: str) -> None:
    """Only investigators and supervisors join a case team (cases.services.team_member_set): an
    auditor ("sees no case content"), a prosecutor (only handoffs sent to them) or an agency
    admin put on a team would see the whole case and act on it."""
    user = getattr(world, persona)
    lead = client_for(world.lead)
    response = lead.post(f"/api/cases/{world.case.pk}/team/", {"user": user.pk, "role": TeamRole.LEAD}, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["user"]
    assert client_for(user).get(f"/api/cases/{world.case.pk}/").status_code == 404


def test_an_investigator_who_becomes_an_auditor_no_longer_sees_their_cases(world: World) -> None:
    """Case scope follows the role as well as the object permissions (cases.selectors): the
    grants of an investigator made auditor are no longer in force."""
    client = client_for(world.teammate)
    assert client.get(f"/api/cases/{world.case.pk}/").status_code == 200
    services.user_ensure(username=world.teammate.username, agency=world.agency_a, role=Role.AUDITOR, password=None)
    assert client.get(f"/api/cases/{world.case.pk}/").status_code == 404
    assert client.patch(f"/api/cases/{world.case.pk}/", {"summary": "x"}, format="json").status_code == 404
