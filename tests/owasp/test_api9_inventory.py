"""OWASP API9:2023, improper inventory management: the published OpenAPI schema is the whole
API and nothing but the API. Every route of the URL conf, with each method its view serves,
is in the schema and every operation of the schema is served; the contract of API.md is all
there; nothing is served outside /api/ but the known probes and the admin; and every
operation documents the refusals it can answer with."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import get_resolver
from rest_framework.test import APIRequestFactory

from tests.conftest import World, client_for
from tests.owasp.schema import openapi, operation, routes, schema_path
from tests.test_authorization_matrix import _walk

# The contract of API.md (its tables, one row per method and path).
CONTRACT = {
    ("POST", "/api/auth/token/"),
    ("POST", "/api/auth/logout/"),
    ("GET", "/api/me/"),
    ("GET", "/api/users/"),
    ("GET", "/api/cases/"),
    ("POST", "/api/cases/"),
    ("GET", "/api/cases/{id}/"),
    ("PATCH", "/api/cases/{id}/"),
    ("GET", "/api/cases/{id}/team/"),
    ("POST", "/api/cases/{id}/team/"),
    ("DELETE", "/api/cases/{id}/team/{user_id}/"),
    ("GET", "/api/leads/"),
    ("POST", "/api/leads/"),
    ("GET", "/api/leads/{id}/"),
    ("PATCH", "/api/leads/{id}/"),
    ("POST", "/api/deconfliction/check/"),
    ("GET", "/api/evidence/"),
    ("POST", "/api/evidence/"),
    ("GET", "/api/evidence/{id}/"),
    ("PATCH", "/api/evidence/{id}/"),
    ("GET", "/api/evidence/{id}/content/"),
    ("GET", "/api/evidence/{id}/custody/"),
    ("POST", "/api/evidence/{id}/custody/"),
    ("POST", "/api/evidence/{id}/verify/"),
    ("GET", "/api/handoffs/"),
    ("POST", "/api/handoffs/"),
    ("GET", "/api/handoffs/{id}/"),
    ("PATCH", "/api/handoffs/{id}/"),
    ("POST", "/api/handoffs/{id}/submit/"),
    ("POST", "/api/handoffs/{id}/review/"),
    ("POST", "/api/handoffs/{id}/acknowledge/"),
    ("POST", "/api/handoffs/{id}/decision/"),
    ("POST", "/api/handoffs/{id}/packets/"),
    ("GET", "/api/packets/{id}/"),
    ("GET", "/api/packets/{id}/download/"),
    ("POST", "/api/ingest/conversations/"),
    ("POST", "/api/ingest/ads/"),
    ("GET", "/api/conversations/"),
    ("GET", "/api/conversations/{id}/"),
    ("GET", "/api/analytics/summary/"),
    ("GET", "/api/audit/events/"),
    ("GET", "/api/audit/checkpoints/latest/"),
    ("POST", "/api/audit/checkpoints/"),
    ("GET", "/api/audit/checkpoints/key/"),
    ("GET", "/api/audit/events/{seq}/proof/"),
    ("GET", "/api/audit/consistency/"),
    ("POST", "/api/audit/verify/"),
}

# Served, but not operations of the schema: the schema and its browser, the probes, the admin.
OUTSIDE_THE_SCHEMA = {"api/schema/", "api/docs/", "healthz", "readyz"}
ADMIN_PREFIX = "admin/"


def _served() -> set[tuple[str, str]]:
    return {(method, schema_path(route)) for (_, method), route in routes().items()}


def _documented() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in openapi()["paths"].items() for method in ops}


def test_every_served_route_and_method_is_an_operation_of_the_schema() -> None:
    missing = sorted(_served() - _documented())
    assert not missing, f"served but not in the OpenAPI schema: {missing}"


def test_every_operation_of_the_schema_is_served() -> None:
    ghosts = sorted(_documented() - _served())
    assert not ghosts, f"in the OpenAPI schema but served by no route: {ghosts}"


def test_the_rest_contract_is_served_in_full() -> None:
    missing = sorted(CONTRACT - _served())
    assert not missing, f"routes of API.md the URL conf does not serve: {missing}"


def test_nothing_is_served_outside_the_api_but_the_probes_the_docs_and_the_admin() -> None:
    served = {route for route, _ in _walk(get_resolver().url_patterns) if not route.startswith(ADMIN_PREFIX)}
    assert served == set(routes().values()) | OUTSIDE_THE_SCHEMA


def _responses(method: str, path: str) -> set[str]:
    return set(openapi()["paths"][path][method.lower()]["responses"])


def test_every_operation_documents_its_refusals() -> None:
    """401 wherever a caller must authenticate, 404 wherever a path names an object, 400
    wherever a body or a query is read."""
    problems = []
    for method, path in sorted(_documented()):
        op = openapi()["paths"][path][method.lower()]
        codes = _responses(method, path)
        if op.get("security") and "401" not in codes:
            problems.append(f"{method} {path}: no 401")
        if "{" in path and "404" not in codes:
            problems.append(f"{method} {path}: no 404")
        if "requestBody" in op and "400" not in codes:
            problems.append(f"{method} {path}: no 400")
    assert not problems, problems


def _throttles(name: str, method: str, route: str) -> list[Any]:
    pattern = next(p for r, p in _walk(get_resolver().url_patterns) if p.name == name)
    view_class = pattern.callback.view_class
    view = view_class()
    view.request = APIRequestFactory().generic(method, "/" + route)
    view.args, view.kwargs, view.format_kwarg = (), {}, None
    return view.get_throttles()


def test_every_throttled_operation_documents_its_429() -> None:
    """A client must be able to learn from the schema that it can be told to slow down."""
    throttled = {
        (method, schema_path(route)) for (name, method), route in routes().items() if _throttles(name, method, route)
    }
    assert throttled, "no operation is throttled at all"
    undocumented = sorted(op for op in throttled if "429" not in _responses(*op))
    assert not undocumented, f"throttled but without a 429 in the schema: {undocumented}"


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for ops in openapi()["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_the_login_operation_is_the_only_one_open_to_anonymous_callers() -> None:
    """Every other operation names the schemes it accepts; login names none (auth=[])."""
    open_ops = sorted(
        f"{method.upper()} {path}"
        for path, ops in openapi()["paths"].items()
        for method, op in ops.items()
        if not op.get("security")
    )
    assert open_ops == ["POST /api/auth/token/"]
    assert operation(("auth-token", "POST"))["responses"].keys() >= {"400", "401", "429"}


@pytest.mark.parametrize("name", ["ingest-conversations", "ingest-ads"])
def test_the_ingest_wire_format_is_published_in_the_schema(name: str) -> None:
    """The ingest views read the body raw (it is signed) and parse no media type themselves, so
    they name it for the schema: the batch format bots must send is published."""
    body = operation((name, "POST")).get("requestBody")
    assert body is not None
    assert set(body["content"]) == {"application/json"}


# ---------------------------------------------------------------- what the schema promises


@pytest.mark.parametrize(
    "path", ["/api/cases/not-a-uuid/", "/api/audit/events/-1/proof/", "/api/no-such-route/", "/api/cases/1/team/x/"]
)
def test_a_path_no_route_takes_is_the_apis_json_404(world: World, path: str) -> None:
    """A path under /api/ that no route takes (an id its converter refuses included) answers
    the error shape the schema declares for 404, not Django's HTML page."""
    response = client_for(world.lead).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_outside_the_api_a_404_is_still_a_page(client: Any) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_every_request_body_is_json_but_the_evidence_upload() -> None:
    """Bodies are JSON documents (nested lists and objects no form can carry): a form or
    multipart body is offered, and parsed, only where a file is uploaded."""
    media = {
        f"{method.upper()} {path}": set(op["requestBody"]["content"])
        for path, ops in openapi()["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    assert media.pop("POST /api/evidence/") == {"application/json", "multipart/form-data"}
    assert {m for types in media.values() for m in types} == {"application/json"}, media


def test_a_form_body_to_a_json_route_is_415(world: World) -> None:
    response = client_for(world.lead).post("/api/cases/", {"title": "By form"}, format="multipart")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_strict_request_bodies_are_published_as_closed_objects() -> None:
    schemas = openapi()["components"]["schemas"]
    for name in (
        "CaseCreateRequest",
        "PatchedLeadUpdateRequest",
        "AdItemRequest",
        "ConversationItemRequest",
        "LoginRequest",
    ):
        assert schemas[name]["additionalProperties"] is False, name
    assert schemas["DeconflictionCheckRequest"]["properties"]["identifiers"]["minItems"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [("minor_age_mentioned=null", "minor_age_mentioned"), ("closed=maybe", "closed"), ("page_size=0", "page_size")],
)
def test_a_query_value_of_the_wrong_type_is_refused_by_name(world: World, query: str, field: str) -> None:
    """A boolean filter sent `null`, or a page size of 0, was silently ignored; it is a 400
    naming it, as the schema's types and minimums say."""
    response = client_for(world.lead).get(f"/api/conversations/?{query}")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]


def test_an_empty_query_value_is_no_filter_and_the_schema_says_so(world: World) -> None:
    client = client_for(world.lead)
    assert client.get("/api/leads/?case=&handoff=&page=&page_size=").status_code == 200
    parameters = operation(("lead-list", "GET"))["parameters"]
    assert all(p["allowEmptyValue"] for p in parameters if p["in"] == "query"), parameters


def test_every_operation_declares_the_errors_any_route_can_answer() -> None:
    """A lost database connection is a 503 on any route, and a body too large or of another
    media type a 413 or 415: each operation declares them, with the error body."""
    missing = []
    for path, ops in openapi()["paths"].items():
        for method, op in ops.items():
            expected = {"503"} | ({"413", "415"} if "requestBody" in op else set())
            for status in expected - set(op["responses"]):
                missing.append(f"{method.upper()} {path}: {status}")
            for status in expected & set(op["responses"]):
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    assert not missing, missing
