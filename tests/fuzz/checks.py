"""The cross-agency replay check: every successful request made as a user of agency A is sent
again, unchanged but for its credentials, as the user of agency B who holds the same role, and
B must learn nothing of A's objects.

- A request that names one of A's objects in its path (a detail, sub-collection or action
  route) must be answered 404 for B: out of scope does not exist.
- A request that names one of A's objects in its query or body (a filter, a reference such as
  `case` in a new lead) must not succeed for B (400 or 404), except a GET whose answer names
  none of A's objects and is a collection (a filter that matches nothing B can see).
- Whatever B is answered with 2xx (a collection, a singleton, an action's result) must not
  name any of A's objects: no id of A's seeded objects, nor of any object A's successful
  responses have shown so far (so a case A creates mid-run must not appear in B's list).

OPTIONS is not replayed: DRF answers it with the view's metadata whatever the id, so it tells
nothing about any object. Ingest sources and anonymous callers are not replayed: an ingest request names no object (its
items land in the source's own operation), and an anonymous one has no agency.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
from schemathesis.core.failures import Failure

REPLAYED_ROLES = frozenset({"investigator", "supervisor", "prosecutor", "auditor", "agency_admin"})
PATH_REFERENCE_STATUSES = frozenset({404})
BODY_REFERENCE_STATUSES = frozenset({400, 404})


class CrossAgencyLeak(Failure):
    """B, of another agency, was answered about one of A's objects."""

    kind_title = "Cross-agency replay leaked agency A's object"


def is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def strings_in(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value (keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def object_ids_in(value: Any) -> Iterator[str]:
    """The uuid `id` of every object in a JSON-like value: what a response shows its caller."""
    if isinstance(value, dict):
        if is_uuid(value.get("id")):
            yield value["id"]
        for item in value.values():
            yield from object_ids_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from object_ids_in(item)


def json_body(response: Any) -> Any:
    if not response.headers.get("content-type", [""])[0].startswith("application/json"):
        return None
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


def is_collection(response: Any) -> bool:
    body = json_body(response)
    return isinstance(body, list) or (isinstance(body, dict) and isinstance(body.get("results"), list))


def make_cross_agency_check(
    *, role: str, a_ids: set[str], a_seqs: list[int], replay: Callable[[Any], Any]
) -> Callable[[Any, Any, Any], None]:
    """The check for `role`: `a_ids` are A's object ids known so far (grown with each of A's
    successful answers), `a_seqs` the sequence numbers of A's audit events; `replay(case)`
    sends `case` again with B's credentials."""

    def cross_agency_replay(ctx: Any, response: Any, case: Any) -> None:
        if role not in REPLAYED_ROLES or not 200 <= response.status_code < 300 or case.method.upper() == "OPTIONS":
            return
        known = a_ids | set(object_ids_in(json_body(response)))
        a_ids.update(known)
        in_path = {str(v) for v in (case.path_parameters or {}).values()}
        sent = set(strings_in(case.query)) | set(strings_in(case.body))
        named_in_request = sent & known
        other = replay(case)
        label = f"{case.method.upper()} {case.formatted_path}"
        leaked = sorted(set(strings_in(json_body(other))) & known) if 200 <= other.status_code < 300 else []

        def fail(why: str) -> None:
            raise CrossAgencyLeak(
                operation=case.operation.label,
                message=f"{label} as agency B's {role}: {why} (A's request succeeded with {response.status_code}).",
            )

        if in_path & (known | {str(seq) for seq in a_seqs}):
            if other.status_code not in PATH_REFERENCE_STATUSES:
                fail(f"answered {other.status_code}, expected 404 for A's object in the path")
            return
        if named_in_request:
            if 200 <= other.status_code < 300 and not (case.method.upper() == "GET" and is_collection(other)):
                fail(f"answered {other.status_code} to a request naming A's {sorted(named_in_request)}")
            if not 200 <= other.status_code < 300 and other.status_code not in BODY_REFERENCE_STATUSES:
                fail(f"answered {other.status_code}, expected 400 or 404 for a request naming A's objects")
        if leaked:
            fail(f"the 2xx answer names A's objects {leaked}")

    return cross_agency_replay


# ---------------------------------------------------------------- ingest batches

# An ingest batch (`{"items": [...]}` or a bare array) is judged item by item: a batch in the
# documented shape is answered 200 with a
# result per item, each created, updated, unchanged or rejected with its reasons. So a
# schema-violating item is not refused with a 4xx for the whole batch (negative_data_rejection
# accepts 200 for these operations) but must come back `rejected`, which this check asserts.
INGEST_ITEM_SCHEMAS = {
    "POST /api/ingest/conversations/": "ConversationItemRequest",
    "POST /api/ingest/ads/": "AdItemRequest",
}


class SchemaViolatingItemAccepted(Failure):
    """An ingest item that violates the published item schema was not rejected."""

    kind_title = "Schema-violating ingest item accepted"


def json_schema(node: Any, components: dict[str, Any]) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema: references inlined, `nullable` as a null type."""
    if isinstance(node, list):
        return [json_schema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return json_schema(components[node["$ref"].rsplit("/", 1)[-1]], components)
    out = {key: json_schema(value, components) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def ingest_items_judged_one_by_one(ctx: Any, response: Any, case: Any) -> None:
    component = INGEST_ITEM_SCHEMAS.get(case.operation.label)
    if component is None or response.status_code != 200:
        return
    body = case.body
    items = body["items"] if isinstance(body, dict) and set(body) == {"items"} else body
    if not isinstance(items, list):
        raise SchemaViolatingItemAccepted(
            operation=case.operation.label, message=f"a body that is not a batch was answered 200: {body!r:.200}"
        )
    components = case.operation.schema.raw_schema["components"]["schemas"]
    validator = jsonschema.Draft4Validator(json_schema(components[component], components))
    results = json_body(response)["results"]
    for index, item in enumerate(items):
        errors = sorted(e.message for e in validator.iter_errors(item))
        if errors and results[index]["status"] != "rejected":
            raise SchemaViolatingItemAccepted(
                operation=case.operation.label,
                message=f"item {index} violates the item schema ({errors[0]:.200}) but was {results[index]['status']}",
            )
