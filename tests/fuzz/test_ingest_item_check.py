"""The ingest item check on hand-made answers, against the schema the service publishes: a
200 to a batch must reject every item that violates the item schema (so the fuzz run's
acceptance of 200 for schema-violating batches means something)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.fuzz.checks import SchemaViolatingItemAccepted, ingest_items_judged_one_by_one

ADS = "POST /api/ingest/ads/"
GOOD = {"site": "nightlist.example", "external_id": "a1", "url": None, "phones": ["305-555-0142"]}
BAD = {"site": "nightlist.example", "external_id": "a2", "forged": True}


@pytest.fixture(scope="module")
def raw_schema() -> dict[str, Any]:
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


def check(raw_schema: dict[str, Any], body: Any, statuses: list[str], *, code: int = 200) -> None:
    results = [{"index": i, "status": status} for i, status in enumerate(statuses)]
    response = SimpleNamespace(
        status_code=code,
        headers={"content-type": ["application/json"]},
        content=json.dumps({"accepted": 0, "rejected": 0, "results": results}).encode(),
    )
    case = SimpleNamespace(
        body=body, operation=SimpleNamespace(label=ADS, schema=SimpleNamespace(raw_schema=raw_schema))
    )
    ingest_items_judged_one_by_one(None, response, case)


def test_a_schema_violating_item_that_was_accepted_fails_the_check(raw_schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaViolatingItemAccepted, match="item 1 violates"):
        check(raw_schema, {"items": [GOOD, BAD]}, ["created", "created"])
    with pytest.raises(SchemaViolatingItemAccepted, match="item 0 violates"):
        check(raw_schema, [{**GOOD, "phones": "305-555-0142"}], ["created"])


def test_a_rejected_violating_item_and_null_optional_fields_pass(raw_schema: dict[str, Any]) -> None:
    check(raw_schema, {"items": [GOOD, BAD]}, ["created", "rejected"])
    check(raw_schema, [GOOD], ["unchanged"])


def test_a_body_that_is_not_a_batch_must_not_be_answered_200(raw_schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaViolatingItemAccepted, match="not a batch"):
        check(raw_schema, {"items": "x"}, [])
    check(raw_schema, {"items": "x"}, [], code=400)
