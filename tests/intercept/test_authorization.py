"""Authorization of every intercept route for every persona of the `world` fixture, in and out
of scope: machine routes take signed sources only (people and anonymous callers are 401);
read routes are scoped through the operation (out of scope is 404, or not listed); taking a
snapshot needs change_case (403 for a viewer)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from cases.models import Case, EvidenceItem, Lead
from intercept import services
from intercept.api import urls as intercept_urls
from intercept.models import Ad, Conversation, TranscriptSnapshot
from tests.conftest import World, client_for
from tests.factories import CaseFactory
from tests.intercept.conftest import ad, conversation, make_operation

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
NONE, OWN, OTHER = "none", "case", "other_case"
SEE, MISS = "200, lists it", "200, does not list it"

# fmt: off
TABLE: dict[tuple[str, str], dict[str, tuple[int | str, ...]]] = {
    #                               anon  lead  team  view  inv   sup   aud   adm   pros  out   osup
    ("ingest-conversations", "POST"): {
        NONE:                      (401,  401,  401,  401,  401,  401,  401,  401,  401,  401,  401),
    },
    ("ingest-ads", "POST"): {
        NONE:                      (401,  401,  401,  401,  401,  401,  401,  401,  401,  401,  401),
    },
    ("conversation-list", "GET"): {
        OWN:                       (401,  SEE,  SEE,  SEE,  MISS, SEE,  MISS, MISS, MISS, MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    ("conversation-detail", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
    ("conversation-snapshot", "POST"): {
        OWN:                       (401,  201,  201,  403,  404,  201,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  201,  201),
    },
    ("ad-list", "GET"): {
        OWN:                       (401,  SEE,  SEE,  SEE,  MISS, SEE,  MISS, MISS, MISS, MISS, MISS),
        OTHER:                     (401,  MISS, MISS, MISS, MISS, MISS, MISS, MISS, MISS, SEE,  SEE),
    },
    ("analytics-summary", "GET"): {
        OWN:                       (401,  200,  200,  200,  404,  200,  404,  404,  404,  404,  404),
        OTHER:                     (401,  404,  404,  404,  404,  404,  404,  404,  404,  200,  200),
    },
}
# fmt: on


@dataclass
class Side:
    operation: Case
    conversation: Conversation
    ad: Ad


def _side(operation: Case, name: str) -> Side:
    source = services.ingest_source_create(actor=None, name=name, case=operation).source
    services.ads_ingest(source=source, items=[ad(f"{name}-ad")])
    [result] = services.conversations_ingest(source=source, items=[conversation(f"{name}-c1")])
    return Side(
        operation=operation,
        conversation=Conversation.objects.get(pk=result["id"]),
        ad=Ad.objects.get(external_id=f"{name}-ad"),
    )


@pytest.fixture
def sides(world: World) -> dict[str, Side]:
    other = CaseFactory(actor=world.outsider, title="River sting intercepts", kind="operation")
    return {OWN: _side(make_operation(world), "nightfall-bot"), OTHER: _side(other, "river-bot")}


def _path(name: str, side: Side) -> str:
    if name in ("conversation-detail", "conversation-snapshot"):
        return reverse(name, kwargs={"pk": side.conversation.pk})
    path = reverse(name)
    if name == "analytics-summary":
        return f"{path}?case={side.operation.pk}"
    return path + "?page_size=200" if name.endswith("-list") else path


def _state() -> tuple[int, ...]:
    return (
        Conversation.objects.count(),
        Ad.objects.count(),
        Lead.objects.count(),
        EvidenceItem.objects.count(),
        TranscriptSnapshot.objects.count(),
    )


def _listed(name: str, side: Side, results: list[dict[str, Any]]) -> bool:
    probe = str(side.conversation.pk) if name == "conversation-list" else str(side.ad.pk)
    return any(row["id"] == probe for row in results)


def _request(client: APIClient, name: str, method: str, path: str) -> Any:
    if method == "GET":
        return client.get(path)
    if name.startswith("ingest-"):
        return client.post(path, {"items": [conversation("c9") if "conv" in name else ad("a9")]}, format="json")
    return client.post(path)


def _answer(world: World, side: Side, name: str, method: str, persona: str, expected: int | str) -> str | None:
    """What is wrong with `persona`'s answer, or None. Runs in a savepoint that is rolled back,
    so every persona meets the same state."""
    user = None if persona == "anonymous" else getattr(world, persona)
    path = _path(name, side)
    with transaction.atomic():
        client = APIClient() if user is None else client_for(user)
        before = _state()
        response = _request(client, name, method, path)
        status = 200 if expected in (SEE, MISS) else expected
        problem = None
        if response.status_code != status:
            problem = f"{persona}: {response.status_code} (expected {expected}) {response.content[:200]!r}"
        elif (_state() != before) is not (status == 201):
            problem = f"{persona}: a refused request or a read changed state, or a write did not"
        elif expected in (SEE, MISS):
            data = response.json()
            if data["count"] != len(data["results"]) or _listed(name, side, data["results"]) is not (expected == SEE):
                problem = f"{persona}: expected {expected}"
        transaction.set_rollback(True)
    return problem


def _rows() -> Iterator[Any]:
    for (name, method), scopes in TABLE.items():
        for scope, row in scopes.items():
            suffix = "" if scope in (NONE, OWN) else f"-{scope}"
            yield pytest.param(name, method, scope, row, id=f"{name}-{method}{suffix}")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "method", "scope", "row"), list(_rows()))
def test_route_answers_each_persona_as_the_table_says(sides, world, name, method, scope, row):
    side = sides[OTHER if scope == OTHER else OWN]
    problems = [
        problem
        for persona, expected in zip(PERSONAS, row, strict=True)
        if (problem := _answer(world, side, name, method, persona, expected)) is not None
    ]
    assert not problems, f"{method} {_path(name, side)}:\n" + "\n".join(problems)


def _named_routes(patterns: list[Any]) -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _named_routes(entry.url_patterns)
        elif isinstance(entry, URLPattern):
            yield entry.name, entry


def test_every_intercept_route_and_method_is_in_the_table():
    found = set()
    for name, pattern in _named_routes(intercept_urls.urlpatterns):
        view = pattern.callback.view_class
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                found.add((name, method.upper()))
    assert found == set(TABLE)
    assert all(any(p.name == name for _, p in _named_routes(get_resolver().url_patterns)) for name, _ in TABLE)
