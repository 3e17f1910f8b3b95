"""OWASP API3:2023, broken object property level authorization (mass assignment): every field
the server owns, sent in the body of any POST or PATCH, is refused with a 400 that names it
(caseapi.api.SERVER_OWNED_FIELD) and changes nothing, not even the audit log.

The operations come from the URL conf; which fields the server owns in each comes from the
OpenAPI schema: the fields of the operation's answer that its request does not take. The
table below only says who sends each request and at what, and a body that succeeds; each
test ends by sending that body, so a 400 was the forged field's doing and nothing else's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Model

from caseapi.api import SERVER_OWNED_FIELD, UNKNOWN_FIELD
from cases.models import EvidenceItem
from intercept import items as ingest_items
from intercept.models import Ad, Conversation
from tests.conftest import World, client_for
from tests.intercept.conftest import Pusher, ad, conversation
from tests.intercept.test_authorization import Side, sides  # noqa: F401 (fixture)
from tests.owasp import operations as ops
from tests.owasp.operations import INGEST, WITH_BODY, WITHOUT_BODY, Ctx, Op
from tests.owasp.schema import (
    Operation,
    forged_value,
    has_request_body,
    mutating_operations,
    operation,
    request_fields,
    resolve,
    response_properties,
    server_owned_fields,
)
from tests.test_authorization_matrix import Objects, objects  # noqa: F401 (fixture)

# Server columns no answer shows, refused all the same.
HIDDEN_SERVER_FIELDS: dict[Operation, tuple[str, ...]] = {
    ("case-list", "POST"): ("created_by",),
    ("case-detail", "PATCH"): ("created_by",),
    ("lead-list", "POST"): ("created_by",),
    ("lead-detail", "PATCH"): ("created_by",),
    ("evidence-list", "POST"): ("created_by", "content_name"),
    ("evidence-detail", "PATCH"): ("created_by", "content_name", "content"),
}

# What DESIGN.md names as the server's must stay among what the schema says is: a change that
# made one of these writable would otherwise shrink the tests without failing them.
MUST_BE_SERVER_OWNED: dict[Operation, set[str]] = {
    ("case-list", "POST"): {"id", "number", "status", "agency", "created_at", "updated_at", "closed_at"},
    ("case-detail", "PATCH"): {"id", "number", "kind", "agency", "parent", "created_at", "updated_at", "closed_at"},
    ("lead-list", "POST"): {"id", "priority", "priority_score", "priority_factors", "created_at"},
    ("lead-detail", "PATCH"): {"id", "priority", "priority_score", "created_at"},
    ("evidence-list", "POST"): {"id", "stored", "status", "collected_by", "withdrawn_at", "withdrawn_by"},
    ("evidence-detail", "PATCH"): {"id", "case", "kind", "sha256", "size_bytes", "external_uri", "collected_at"},
    ("evidence-custody", "POST"): {"id", "evidence", "actor", "details", "created_at"},
    ("handoff-list", "POST"): {"id", "number", "status", "created_by", "submitted_by", "reviewed_by", "sent_at"},
    ("handoff-detail", "PATCH"): {"id", "case", "number", "status", "created_by", "submitted_by", "reviewed_by"},
    ("handoff-submit", "POST"): {"status", "submitted_by", "reviewed_by", "narrative", "prosecutor"},
    ("handoff-review", "POST"): {"status", "created_by", "submitted_by", "reviewed_by", "sent_at"},
    ("handoff-acknowledge", "POST"): {"status", "acknowledged_at", "prosecutor"},
    ("handoff-decision", "POST"): {"status", "decided_at", "decision_note", "prosecutor"},
}


# ---------------------------------------------------------------- the table and the schema


def test_the_tables_cover_every_post_put_and_patch_of_the_url_conf() -> None:
    wanted = {endpoint for endpoint in mutating_operations() if endpoint[1] in ("POST", "PUT", "PATCH")}
    assert set(WITH_BODY) | set(WITHOUT_BODY) | set(INGEST) == wanted


def test_operations_are_in_the_table_that_matches_their_schema() -> None:
    assert all(has_request_body(endpoint) for endpoint in WITH_BODY)
    assert not any(has_request_body(endpoint) for endpoint in WITHOUT_BODY)


@pytest.mark.parametrize("endpoint", sorted(MUST_BE_SERVER_OWNED), ids="-".join)
def test_what_the_design_calls_server_owned_is_server_owned_in_the_schema(endpoint: Operation) -> None:
    missing = MUST_BE_SERVER_OWNED[endpoint] - set(server_owned_fields(endpoint))
    assert not missing, f"writable in {endpoint} by the schema: {sorted(missing)}"


# ---------------------------------------------------------------- sending them


def _refusals(name: str, method: str, entry: Op, c: Ctx, fields: dict[str, Any]) -> list[str]:
    """Send the succeeding body plus each field; what went wrong, per field."""
    client, path, body = ops.client(c.world, entry.persona), ops.path(name, entry, c), entry.body(c)
    problems = []
    for field, value in fields.items():
        before = ops.state(entry, c)
        response = ops.send(client, method, path, {**body, field: value})
        expected = {field: [SERVER_OWNED_FIELD if field != "zz_unknown" else UNKNOWN_FIELD]}
        if response.status_code != 400 or response.json() != expected:
            problems.append(f"{field}={value!r}: {response.status_code} {response.content[:200]!r}")
        elif ops.state(entry, c) != before:
            problems.append(f"{field}: refused, but something changed")
    return problems


@pytest.mark.parametrize("endpoint", sorted(WITH_BODY), ids="-".join)
def test_every_server_owned_field_is_refused_by_name_and_changes_nothing(
    objects: Objects,  # noqa: F811
    request: pytest.FixtureRequest,
    endpoint: Operation,
) -> None:
    name, method = endpoint
    entry, c = WITH_BODY[endpoint], ops.ctx(objects, request)
    owned = server_owned_fields(endpoint)
    assert owned, f"{endpoint}: the schema shows no server-owned field, so this test would check nothing"
    fields = {field: forged_value(prop) for field, prop in owned.items()}
    fields.update({field: "forged" for field in HIDDEN_SERVER_FIELDS.get(endpoint, ())})
    fields["zz_unknown"] = "forged"
    problems = _refusals(name, method, entry, c, fields)
    assert not problems, f"{method} {ops.path(name, entry, c)}:\n" + "\n".join(problems)
    refused = _writable_but_refused(name, method, entry, c)
    assert not refused, f"offered by the request schema of {endpoint}, but refused: {refused}"
    control = ops.send(ops.client(c.world, entry.persona), method, ops.path(name, entry, c), entry.body(c))
    assert control.status_code == entry.success, control.content


def _writable_but_refused(name: str, method: str, entry: Op, c: Ctx) -> list[str]:
    """The other side of the coin: the fields the published request schema offers that the
    server refuses as server-owned or unknown (each tried in a rolled-back savepoint)."""
    client, path = ops.client(c.world, entry.persona), ops.path(name, entry, c)
    refused = []
    for field in sorted(request_fields((name, method))):
        body = entry.body(c)
        body.setdefault(field, "x")
        with transaction.atomic():
            response = ops.send(client, method, path, body)
            transaction.set_rollback(True)
        errors = response.json().get(field) if response.status_code == 400 else None
        if errors in ([SERVER_OWNED_FIELD], [UNKNOWN_FIELD]):
            refused.append(field)
    return refused


@pytest.mark.parametrize("endpoint", sorted(set(WITHOUT_BODY) - {("auth-logout", "POST")}), ids="-".join)
def test_actions_without_a_body_refuse_server_owned_fields_by_name(
    objects: Objects,  # noqa: F811
    request: pytest.FixtureRequest,
    endpoint: Operation,
) -> None:
    """POSTs that take no body (evidence verify, packet request, conversation snapshot, audit
    checkpoint and verify) refuse any key sent, naming it (caseapi.api.refuse_input), instead of
    silently dropping `{"status": "ready"}`."""
    name, method = endpoint
    entry, c = WITHOUT_BODY[endpoint], ops.ctx(objects, request)
    fields = {field: forged_value(prop) for field, prop in response_properties(endpoint).items()}
    problems = _refusals(name, method, entry, c, fields)
    assert not problems, f"{method} {ops.path(name, entry, c)}:\n" + "\n".join(problems)


def test_a_lead_patch_is_documented_without_its_case() -> None:
    """A lead's case is fixed: its PATCH is documented and parsed with LeadUpdateSerializer, which
    has no `case` (so the schema does not offer a field every PATCH refuses)."""
    assert "case" not in request_fields(("lead-detail", "PATCH"))
    assert "case" in server_owned_fields(("lead-detail", "PATCH"))


def test_logout_answers_with_nothing_so_it_has_no_server_owned_field() -> None:
    assert response_properties(("auth-logout", "POST")) == {}


# ---------------------------------------------------------------- nested and multipart bodies


NESTED: list[tuple[Operation, Callable[[Ctx], dict[str, Any]], dict[str, Any]]] = [
    (
        ("lead-list", "POST"),
        lambda c: {"case": str(c.scope.case.pk), "identifiers": [{"kind": "phone", "value": "2025550143", "id": 7}]},
        {"identifiers": {"0": {"id": [UNKNOWN_FIELD]}}},
    ),
    (
        ("lead-detail", "PATCH"),
        lambda c: {"signals": {"payment_discussed": True, "priority": 100}},
        {"signals": {"priority": [UNKNOWN_FIELD]}},
    ),
    (
        ("deconfliction-check", "POST"),
        lambda c: {
            "identifiers": [{"kind": "email", "value": "a@b.org"}, {"kind": "email", "value": "c@d.org", "hits": []}]
        },
        {"identifiers": {"1": {"hits": [UNKNOWN_FIELD]}}},
    ),
    (
        ("handoff-detail", "PATCH"),
        lambda c: {"charges": [{"statute": "796.07", "text": "", "status": "accepted"}]},
        {"charges": {"0": {"status": [UNKNOWN_FIELD]}}},
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "body", "expected"), NESTED, ids=[f"{endpoint[0]}-{endpoint[1]}" for endpoint, _, _ in NESTED]
)
def test_keys_nested_inside_a_body_are_refused_by_name_too(
    objects: Objects,  # noqa: F811
    request: pytest.FixtureRequest,
    endpoint: Operation,
    body: Callable[[Ctx], dict[str, Any]],
    expected: dict[str, Any],
) -> None:
    name, method = endpoint
    entry, c = WITH_BODY[endpoint], ops.ctx(objects, request)
    client, path, sent = ops.client(c.world, entry.persona), ops.path(name, entry, c), body(c)
    before = ops.state(entry, c)
    response = ops.send(client, method, path, sent)
    assert response.status_code == 400, response.content
    assert response.json() == expected
    assert ops.state(entry, c) == before


def _stored_files(settings: Any) -> list[Path]:
    root = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_multipart_upload_with_a_server_owned_field_is_refused_and_nothing_is_stored(
    world: World, settings: Any
) -> None:
    client = client_for(world.lead)
    for field in ("sha256_verified", "status", "stored", "original_filename", "collected_by", "id"):
        _refuse_upload(client, world, settings, field)


def _refuse_upload(client: Any, world: World, settings: Any, field: str) -> None:
    files_before, rows_before = _stored_files(settings), EvidenceItem.objects.count()
    response = client.post(
        "/api/evidence/",
        {
            "case": str(world.case.pk),
            "kind": "chat_transcript",
            "content": SimpleUploadedFile("chat.txt", b"buyer: how much\nbot: 200\n"),
            field: "forged",
        },
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert response.json() == {field: [SERVER_OWNED_FIELD if field != "sha256_verified" else UNKNOWN_FIELD]}
    assert _stored_files(settings) == files_before
    assert EvidenceItem.objects.count() == rows_before


# ---------------------------------------------------------------- ingest


def test_the_ingest_envelope_takes_items_and_nothing_else(push: Pusher) -> None:
    for key in ("accepted", "rejected", "results", "source", "case"):
        before = Conversation.objects.count()
        body = json.dumps({"items": [conversation(f"env-{key}")], key: 1}).encode()
        response = push.signed("conversations", body)
        assert response.status_code == 400, (key, response.content)
        assert Conversation.objects.count() == before


WIRE_FIELDS: dict[type[Model], frozenset[str]] = {
    Conversation: ingest_items.CONVERSATION_FIELDS,
    Ad: ingest_items.AD_FIELDS,
}


def _read_fields(model: type[Model]) -> dict[str, Any]:
    """The fields the API shows of a stored conversation or ad (its list operation's answer)."""
    endpoint = ("conversation-list", "GET") if model is Conversation else ("ad-list", "GET")
    page = resolve(operation(endpoint)["responses"]["200"]["content"]["application/json"]["schema"])
    return resolve(page["properties"]["results"]["items"])["properties"]


@pytest.mark.parametrize("endpoint", sorted(INGEST), ids="-".join)
def test_each_pushed_item_with_a_server_owned_field_is_rejected_naming_it(push: Pusher, endpoint: Operation) -> None:
    """A bot pushes what it saw; ids, the case, the lead, counts and times of the record are
    the server's. Each such key rejects its item by name (the batch answers 200 with one
    result per item) and stores nothing."""
    name, _ = endpoint
    model = INGEST[endpoint]
    owned = {f: p for f, p in _read_fields(model).items() if f not in WIRE_FIELDS[model]}
    assert {"id", "case", "source", "updated_at"} <= set(owned)
    make = (lambda i: conversation(f"own-{i}")) if model is Conversation else (lambda i: ad(f"own-{i}"))
    batch = [{**make(i), field: forged_value(prop)} for i, (field, prop) in enumerate(owned.items())]
    before = model.objects.count()
    response = push(name.removeprefix("ingest-"), batch)
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["rejected"] * len(owned)
    assert [r["errors"] for r in results] == [{field: [ingest_items.UNKNOWN_FIELD]} for field in owned]
    assert model.objects.count() == before
