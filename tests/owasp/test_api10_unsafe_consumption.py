"""OWASP API10:2023, unsafe consumption of APIs: what bots and ad collectors push is scraped
from sex-trade sites and chats, so it is checked field by field before anything is stored.
Every field of an item is type-checked and a bad one rejects only its item, naming its path;
times must be real times; what is kept verbatim (transcripts) reaches people escaped; and no
pushed value can break a later read."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from intercept import items
from intercept.models import Ad, Conversation, Message
from tests.conftest import World, client_for
from tests.intercept.conftest import Pusher, ad, conversation

# Each field of the wire format with values of the wrong type or shape: (path, item maker,
# where the value goes, bad values). Paths are those the errors name.
NOT_TEXT = [12, True, ["a"], {"a": 1}]
NOT_TIME = [12, "yesterday", "2026-03-02T21:00:00", ["2026-03-02T21:00:00Z"]]
NOT_BOOL = ["yes", 1, [], {}]

CONVERSATION_FIELDS: list[tuple[str, list[Any]]] = [
    ("external_id", [12, "", "has space", "x" * 201, None]),
    ("platform", [*NOT_TEXT, "", "two\nlines"]),
    ("bot", NOT_TEXT),
    ("ad", ["site", 12, ["a"]]),
    ("ad.site", [*NOT_TEXT, ""]),
    ("ad.external_id", [12, ""]),
    ("buyer", ["555-0142", 12, ["a"]]),
    ("buyer.phone", NOT_TEXT),
    ("buyer.email", NOT_TEXT),
    ("buyer.handle", NOT_TEXT),
    ("buyer.name", [*NOT_TEXT, "a\x00b"]),
    ("messages", ["hello", 12, {"a": 1}]),
    ("messages[0]", ["hello", 12, ["a"]]),
    ("messages[0].external_id", [12, ""]),
    ("messages[0].direction", ["sideways", 1, None]),
    ("messages[0].sent_at", NOT_TIME),
    ("messages[0].body", [12, ["a"], "nul\x00byte"]),
    ("signals", ["all", 12, ["a"]]),
    ("signals.minor_age_mentioned", NOT_BOOL),
    ("deterrence_sent_at", NOT_TIME),
    ("closed", NOT_BOOL),
]
AD_FIELDS: list[tuple[str, list[Any]]] = [
    ("site", [*NOT_TEXT, ""]),
    ("external_id", [12, ""]),
    ("url", NOT_TEXT),
    ("title", [*NOT_TEXT, "two\nlines"]),
    ("posted_at", NOT_TIME),
    ("city", NOT_TEXT),
    ("region", NOT_TEXT),
    ("phones", ["305-555-0142", 12, {"a": 1}]),
    ("text", [12, ["a"], "nul\x00byte"]),
]


def _set(item: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`item` with the value at `path` (`a.b`, `messages[0].c`) replaced."""
    node: Any = item
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        if part.isdigit():
            node = node[int(part)]
        else:
            node = node.setdefault(part, {"site": "s", "external_id": "e"} if part == "ad" else {})
    last = parts[-1]
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return item


def _cases(fields: list[tuple[str, list[Any]]]) -> list[Any]:
    return [pytest.param(path, value, id=f"{path}={value!r:.20}") for path, values in fields for value in values]


def _rejected_at(result: dict[str, Any], path: str) -> bool:
    errors = result.get("errors", {})
    parent = path.rsplit(".", 1)[0] if "." in path else path
    return result["status"] == "rejected" and any(key in (path, parent) for key in errors)


def _push_one_good_then_each_bad_value(
    push: Pusher, kind: str, make: Any, fields: Any, model: type[Conversation] | type[Ad]
) -> None:
    """One batch: a good item first, then one item per bad value; every bad one is rejected
    naming the field (or the object holding it), and only the good one is stored."""
    batch = [make("good")]
    cases = [(path, value) for path, values in fields for value in values]
    batch += [_set(make(f"bad{i}"), path, value) for i, (path, value) in enumerate(cases)]
    results = push.ok(kind, batch)
    assert results[0]["status"] == "created"
    wrong = [
        f"{path}={value!r}: {result}"
        for (path, value), result in zip(cases, results[1:], strict=True)
        if not _rejected_at(result, path)
    ]
    assert not wrong, "\n".join(wrong)
    assert list(model.objects.values_list("external_id", flat=True)) == ["good"]


def test_a_wrong_value_in_any_conversation_field_rejects_only_its_item_by_name(push: Pusher) -> None:
    _push_one_good_then_each_bad_value(push, "conversations", conversation, CONVERSATION_FIELDS, Conversation)


def test_a_wrong_value_in_any_ad_field_rejects_only_its_item_by_name(push: Pusher) -> None:
    _push_one_good_then_each_bad_value(push, "ads", ad, AD_FIELDS, Ad)


def test_the_field_tables_cover_the_whole_wire_format() -> None:
    top = {path.split(".")[0].split("[")[0] for path, _ in CONVERSATION_FIELDS}
    assert top == set(items.CONVERSATION_FIELDS)
    assert {path for path, _ in AD_FIELDS} == set(items.AD_FIELDS)
    message = {path.split(".", 1)[1] for path, _ in CONVERSATION_FIELDS if path.startswith("messages[0].")}
    assert message == set(items.MESSAGE_FIELDS)


OUT_OF_CALENDAR = ["0001-01-01T00:00:00+14:00"]


@pytest.mark.parametrize("value", OUT_OF_CALENDAR)
def test_a_pushed_time_outside_the_calendar_in_utc_is_rejected_and_breaks_no_read(
    push: Pusher, world: World, value: str
) -> None:
    """`0001-01-01T00:00:00+14:00` parses and is not in the future, but is year 0 in UTC: stored,
    it was a 500 on SQLite (OverflowError) and, on PostgreSQL, a BC timestamp that made every
    later read of the operation's conversations a 500. intercept.items reads times in UTC and
    rejects such an item (DATETIME_INVALID), alone."""
    push.client.raise_request_exception = False
    item = conversation("c-old")
    item["messages"][0]["sent_at"] = value
    response = push("conversations", [conversation("c-fine"), item, conversation("c-free")])
    assert response.status_code == 200, response.status_code
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "created"], results
    assert results[1]["errors"] == {"messages[0].sent_at": [items.DATETIME_INVALID]}
    ads = push("ads", [ad("a-old", posted_at=value)])
    assert ads.status_code == 200
    assert ads.json()["results"][0]["errors"] == {"posted_at": [items.DATETIME_INVALID]}
    client = client_for(world.lead)
    client.raise_request_exception = False
    assert client.get("/api/conversations/").status_code == 200
    assert client.get("/api/ads/").status_code == 200


def test_a_transcript_is_kept_verbatim_and_served_as_data(push: Pusher, world: World) -> None:
    """Message bodies are evidence: kept exactly as pushed, markup included; the API serves them
    as JSON strings and never as markup."""
    body = "<script>alert(1)</script>\r\n  ‮ price? 200 🌹 "
    item = conversation("c-raw")
    item["messages"][0]["body"] = body
    push.ok("conversations", [item])
    assert Message.objects.get(external_id="c-raw-m1").body == body
    conversation_id = Conversation.objects.get(external_id="c-raw").pk
    response = client_for(world.lead).get(f"/api/conversations/{conversation_id}/")
    assert response["Content-Type"] == "application/json"
    assert response.json()["messages"][0]["body"] == body


def test_pushed_markup_reaches_the_admin_escaped(client: Any, push: Pusher, world: World) -> None:
    script = "<script>alert('pushed')</script>"
    item = conversation("c-x")
    item["messages"][0]["body"] = script
    push.ok("conversations", [item])
    push.ok("ads", [ad("a-x", title=script, text=script)])
    client.force_login(world.lead)
    conversation_page = client.get(
        reverse("admin:intercept_conversation_change", args=[Conversation.objects.get(external_id="c-x").pk])
    )
    ad_page = client.get(reverse("admin:intercept_ad_change", args=[Ad.objects.get(external_id="a-x").pk]))
    for page in (conversation_page, ad_page):
        assert page.status_code == 200
        html = page.content.decode()
        assert script not in html
        assert "&lt;script&gt;alert(" in html


def test_an_ad_url_must_be_http_or_https(push: Pusher) -> None:
    """A collector (or a site it scraped) cannot store a `javascript:` or `data:` link that a client
    rendering the ad's link would run: an ad's url is http or https (intercept.items.parse_ad)."""
    results = push.ok(
        "ads",
        [
            ad("ok", url="https://nightlist.example/ad/1"),
            ad("js", url="javascript:alert(document.cookie)"),
            ad("data", url="data:text/html,<script>alert(1)</script>"),
        ],
    )
    assert [r["status"] for r in results] == ["created", "rejected", "rejected"]
    assert all(set(r["errors"]) == {"url"} for r in results[1:])


def test_a_body_that_is_not_utf8_json_is_400_and_stores_nothing(push: Pusher) -> None:
    for body in (b"\xff\xfe{}", b"{'items': []}", b'{"items": [}', b"", b"null", b"12"):
        response = push.signed("conversations", body)
        assert response.status_code == 400, (body, response.content)
    assert not Conversation.objects.exists()


def test_a_buyer_identifier_that_is_not_one_is_dropped_with_a_warning_not_trusted(push: Pusher) -> None:
    [result] = push.ok(
        "conversations",
        [conversation("c-id", buyer={"phone": "'; DROP TABLE leads; --", "email": "buyer@example.org"})],
    )
    assert result["status"] == "created"
    assert result["warnings"] and result["warnings"][0].startswith("buyer.phone")
    [bad] = push.ok("conversations", [conversation("c-none", phone="not a number at all")])
    assert bad["status"] == "rejected"
    assert bad["errors"] == {"buyer": [items.BUYER_NO_IDENTIFIER]}
