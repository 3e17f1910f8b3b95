"""The API as the OWASP tests enumerate it: the routes of the URL conf and the OpenAPI schema
drf-spectacular generates from the same views (one generation per test process)."""

from __future__ import annotations

import re
import uuid
from functools import cache
from typing import Any

from drf_spectacular.generators import SchemaGenerator

from tests.test_authorization_matrix import api_routes

Operation = tuple[str, str]  # (route name, METHOD)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@cache
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def schema_path(route: str) -> str:
    """`api/cases/<uuid:pk>/team/<int:user_id>/` -> `/api/cases/{id}/team/{user_id}/` (the
    schema names a `pk` path parameter `id`)."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{id}" if m[1] == "pk" else "{" + m[1] + "}", route)


def routes() -> dict[Operation, str]:
    """(route name, METHOD) -> route of every API route but the documentation's."""
    return api_routes()


def mutating_operations() -> dict[Operation, str]:
    return {op: route for op, route in routes().items() if op[1] in MUTATING}


def operation(op: Operation) -> dict[str, Any]:
    name, method = op
    return openapi()["paths"][schema_path(routes()[op])][method.lower()]


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`, and the single-member `allOf` drf-spectacular wraps references in."""
    while True:
        if "$ref" in node:
            node = openapi()["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        elif len(node.get("allOf", [])) == 1:
            node = {**{k: v for k, v in node.items() if k != "allOf"}, **node["allOf"][0]}
        else:
            return node


def has_request_body(op: Operation) -> bool:
    return "requestBody" in operation(op)


def request_fields(op: Operation) -> frozenset[str]:
    """The writable fields of the JSON request body (none for an action without a body)."""
    body = operation(op).get("requestBody")
    if body is None:
        return frozenset()
    return frozenset(resolve(body["content"]["application/json"]["schema"]).get("properties", {}))


def response_properties(op: Operation) -> dict[str, Any]:
    """The properties of the JSON body of the operation's success answers (2xx), merged."""
    found: dict[str, Any] = {}
    for code, answer in operation(op)["responses"].items():
        if not code.startswith("2"):
            continue
        content = answer.get("content", {}).get("application/json")
        if content is not None:
            found.update(resolve(content["schema"]).get("properties", {}))
    return found


def server_owned_fields(op: Operation) -> dict[str, Any]:
    """What the operation answers with but does not take: the fields the server owns there."""
    writable = request_fields(op)
    return {name: prop for name, prop in response_properties(op).items() if name not in writable}


def forged_value(prop: dict[str, Any]) -> Any:
    """A well-formed value a client might try to set the property to."""
    is_reference = "$ref" in prop or "allOf" in prop
    prop = resolve(prop)
    if "enum" in prop:
        return [value for value in prop["enum"] if value is not None][-1]
    kind = prop.get("type")
    if kind == "object" and is_reference:
        return str(uuid.uuid4())  # e.g. `case`, `agency`, `created_by`: point it elsewhere
    return {
        "integer": 424242,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "object": {},
    }.get(
        kind,
        {
            "uuid": str(uuid.uuid4()),
            "date-time": "2020-01-01T00:00:00Z",
            "date": "2020-01-01",
            "byte": "AAAA",
        }.get(prop.get("format"), "forged"),
    )
