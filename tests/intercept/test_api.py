"""The conversation and ad read API: scoped through the case (outsiders get 404), messages in
order, reads audited, and list and detail pages in a fixed number of queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from intercept import services
from intercept.events import InterceptAction
from tests.conftest import client_for
from tests.intercept.conftest import ad, conversation, message

pytestmark = pytest.mark.django_db


def ingest(issued: Any, kind: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    run = services.conversations_ingest if kind == "conversations" else services.ads_ingest
    return run(source=issued.source, items=items)


def queries(user: Any, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
    client = client_for(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries), response.json()


def test_the_team_lists_and_reads_conversations_and_outsiders_get_404(issued, world):
    [result] = ingest(issued, "conversations", [conversation("c1", messages=4, closed=True)])
    for member in (world.lead, world.teammate, world.viewer, world.supervisor):
        listed = client_for(member).get("/api/conversations/").json()
        assert [row["id"] for row in listed["results"]] == [result["id"]], member
    for stranger in (world.outsider, world.outsider_supervisor, world.investigator, world.auditor, world.prosecutor):
        assert client_for(stranger).get("/api/conversations/").json()["count"] == 0
        assert client_for(stranger).get(f"/api/conversations/{result['id']}/").status_code == 404


def test_a_conversation_reads_with_its_messages_in_order_and_its_snapshots(issued, world):
    item = conversation("c1", messages=3)
    item["messages"].reverse()
    ingest(issued, "conversations", [item])
    more = conversation("c1", messages=0, closed=True, signals={"payment_discussed": True})
    more["messages"] = [message(4)]
    [result] = ingest(issued, "conversations", [more])
    body = client_for(world.viewer).get(f"/api/conversations/{result['id']}/").json()
    assert [(m["seq"], m["external_id"]) for m in body["messages"]] == [
        (1, "c1-m3"),
        (2, "c1-m2"),
        (3, "c1-m1"),
        (4, "c1-m4"),
    ]
    assert body["signals"] == {"minor_age_mentioned": False, "payment_discussed": True, "meeting_requested": False}
    assert body["lead"]["id"] == result["lead"]
    [snapshot] = body["snapshots"]
    assert (snapshot["number"], snapshot["message_count"], snapshot["evidence"]) == (1, 4, result["snapshot"])
    viewed = AuditEvent.objects.get(action=InterceptAction.CONVERSATION_VIEWED)
    assert (viewed.actor, viewed.target_id, viewed.case_id) == (world.viewer, result["id"], issued.source.case_id)


def test_conversation_filters_narrow_the_scoped_list(issued, world):
    ingest(
        issued,
        "conversations",
        [
            conversation("c1", closed=True),
            conversation("c2", phone="786-555-0123", platform="whatsapp", signals={"minor_age_mentioned": True}),
        ],
    )
    client = client_for(world.lead)

    def ids(**params: str) -> list[str]:
        return sorted(row["external_id"] for row in client.get("/api/conversations/", params).json()["results"])

    assert ids() == ["c1", "c2"]
    assert ids(closed="true") == ["c1"]
    assert ids(platform="whatsapp") == ["c2"]
    assert ids(minor_age_mentioned="true") == ["c2"]
    assert ids(phone="+17865550123") == ["c2"]
    assert ids(case=str(issued.source.case_id)) == ["c1", "c2"]
    assert ids(case=str(world.other_case.pk)) == []
    listed = AuditEvent.objects.filter(action=InterceptAction.CONVERSATION_LISTED).last()
    assert listed.changes == {"query": {"case": [str(world.other_case.pk)]}}


def _buyer_conversation(n: int) -> dict[str, Any]:
    return conversation(
        f"c{n}",
        messages=2 + n % 3,
        phone=f"+1305555{100 + n % 90:04d}",
        buyer={"phone": f"+1305555{100 + n % 90:04d}", "email": f"b{n}@example.org"},
        closed=bool(n % 2),
    )


def test_the_conversation_list_costs_the_same_for_one_row_as_for_thirty(issued, world):
    ingest(issued, "conversations", [_buyer_conversation(0)])
    one, body = queries(world.lead, "/api/conversations/")
    assert body["count"] == 1
    ingest(issued, "conversations", [_buyer_conversation(n) for n in range(1, 30)])
    many, body = queries(world.lead, "/api/conversations/")
    assert body["count"] == 30
    assert many == one


def test_a_conversation_detail_costs_the_same_however_long_it_is(issued, world):
    ingest(issued, "ads", [ad("a1", phones=["+13055550142"])])
    [result] = ingest(issued, "conversations", [conversation("c1", messages=2, closed=True)])
    # the token with its user; the conversation (scope subquery, source, case, lead); its
    # messages; its snapshots with their evidence; the audit insert; the ads sharing a number;
    # their identifiers. (No answered ad here: that is one more query when there is one.)
    short, body = queries(world.lead, f"/api/conversations/{result['id']}/")
    assert len(body["messages"]) == 2 and len(body["snapshots"]) == 1 and len(body["ads_sharing_numbers"]) == 1
    ingest(issued, "ads", [ad(f"a{n}", phones=["+13055550142"]) for n in range(2, 8)])
    ingest(issued, "conversations", [conversation("c1", messages=30, closed=True)])
    grown = conversation("c1", messages=40)
    ingest(issued, "conversations", [grown])
    long, body = queries(world.lead, f"/api/conversations/{result['id']}/")
    assert len(body["messages"]) == 40 and len(body["snapshots"]) == 3 and len(body["ads_sharing_numbers"]) == 7
    assert long == short == 7


def test_the_ad_list_costs_the_same_for_one_row_as_for_thirty(issued, world):
    ingest(issued, "ads", [ad("a0", phones=["+13055550100"])])
    one, body = queries(world.lead, "/api/ads/")
    assert body["count"] == 1
    ingest(issued, "ads", [ad(f"a{n}", phones=[f"+1305555{100 + n:04d}", "+17865550123"]) for n in range(1, 30)])
    many, body = queries(world.lead, "/api/ads/")
    assert body["count"] == 30
    assert many == one
