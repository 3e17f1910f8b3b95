"""OWASP API4:2023, unrestricted resource consumption: every list is paginated with a hard cap
on the page size, a page out of range is a 404; request bodies, uploads and batches have
limits answered with 413 or 400, never a 500; a body nested too deeply is a 400; logins,
ingest pushes and packet requests are throttled (429 with Retry-After)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import get_resolver, reverse
from rest_framework.generics import GenericAPIView
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from audit.models import AuditAction, AuditEvent
from audit.services import audit_record
from caseapi import throttling
from caseapi.api import JSON_TOO_DEEP, JSONParser
from caseapi.pagination import PAGE_SIZE_INVALID as PAGE_SIZE_INVALID_MESSAGE
from caseapi.pagination import CappedPageNumberPagination
from cases.api import views as case_views
from cases.models import EvidenceItem, ExportPacket, Handoff, Lead
from intercept.models import Ad, Conversation
from tests.conftest import World, client_for
from tests.factories import TEST_PASSWORD
from tests.intercept.conftest import Pusher, ad, conversation
from tests.intercept.test_authorization import sides  # noqa: F401 (fixture)
from tests.owasp import operations as ops
from tests.owasp.operations import WITH_BODY
from tests.test_authorization_matrix import (
    OWN,
    QUERIES,
    Objects,
    _target,
    _walk,
    objects,  # noqa: F401 (fixture)
)

PAGE_OUT_OF_RANGE = ["10000000000000000000000000000", "0", "-1", "abc", "1e400", "2"]
PAGE_SIZE_INVALID = ["-5", "abc", "0", "1.5"]
PAGE_SIZE_HUGE = "10000000000000000000000000000"


def _list_routes() -> dict[str, Any]:
    """Route name -> view class of every paginated GET route of the API."""
    found = {}
    for route, pattern in _walk(get_resolver().url_patterns):
        view = getattr(pattern.callback, "view_class", None)
        if route.startswith("api/") and view and issubclass(view, GenericAPIView) and hasattr(view, "list"):
            found[pattern.name] = view
    return found


# ---------------------------------------------------------------- pagination


def test_every_list_route_pages_with_the_capped_paginator() -> None:
    routes = _list_routes()
    assert set(routes) == {
        "user-list",
        "prosecutor-list",
        "case-list",
        "case-team",
        "lead-list",
        "evidence-list",
        "evidence-custody",
        "handoff-list",
        "handoff-packets",
        "audit-event-list",
        "conversation-list",
        "ad-list",
    }
    for name, view in routes.items():
        assert issubclass(view.pagination_class, CappedPageNumberPagination), name
        assert view.pagination_class.max_page_size == django_settings.MAX_PAGE_SIZE, name


def test_a_page_size_above_the_cap_gets_the_cap(world: World) -> None:
    cap = django_settings.MAX_PAGE_SIZE
    for _ in range(cap + 15):
        audit_record(actor=world.lead, action=AuditAction.CASE_VIEWED, target=world.case, case_id=world.case.pk)
    total = AuditEvent.objects.filter(agency_id=world.agency_a.pk).count()
    assert total > cap
    response = client_for(world.auditor).get(f"/api/audit/events/?page_size={cap * 1000}")
    assert response.status_code == 200
    page = response.json()
    assert len(page["results"]) == cap
    assert page["count"] == total
    assert page["next"] is not None


def _list_path(name: str, objects: Objects, request: pytest.FixtureRequest) -> str:  # noqa: F811
    scope = objects.scopes[OWN]
    if name == "handoff-packets":
        scope.packet  # noqa: B018 (a page to go past)
    if name in ("conversation-list", "ad-list"):
        request.getfixturevalue("sides")
    path = reverse(name, kwargs=_target(name, "GET", scope))
    return path + (QUERIES[name]() if name in QUERIES else "")


@pytest.mark.parametrize("name", sorted(_list_routes()))
def test_page_numbers_out_of_range_are_404_and_invalid_page_sizes_400(
    objects: Objects,  # noqa: F811
    request: pytest.FixtureRequest,
    name: str,
) -> None:
    """A page size that is not a whole number of at least 1 is refused by name (the schema
    says `minimum: 1`), never silently replaced; a huge one is served at the cap."""
    client = client_for(objects.world.lead)
    path = _list_path(name, objects, request)
    joiner = "&" if "?" in path else "?"
    first = client.get(path)
    assert first.status_code == 200, first.content
    for page in PAGE_OUT_OF_RANGE:
        response = client.get(f"{path}{joiner}page={page}")
        assert response.status_code == 404, (page, response.content)
        assert response.json() == {"detail": "Invalid page.", "code": "not_found"}
    for size in PAGE_SIZE_INVALID:
        response = client.get(f"{path}{joiner}page_size={size}")
        assert response.status_code == 400, (size, response.content)
        assert response.json() == {"page_size": [PAGE_SIZE_INVALID_MESSAGE]}
    response = client.get(f"{path}{joiner}page_size={PAGE_SIZE_HUGE}")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == first.json()["count"]


def test_too_many_query_parameters_are_400(world: World, settings: Any) -> None:
    query = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client_for(world.lead).get(f"/api/cases/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


# ---------------------------------------------------------------- request bodies


@pytest.mark.parametrize("endpoint", sorted(WITH_BODY), ids="-".join)
def test_a_json_body_over_the_request_limit_is_413(
    objects: Objects,  # noqa: F811
    request: pytest.FixtureRequest,
    settings: Any,
    endpoint: tuple[str, str],
) -> None:
    name, method = endpoint
    entry, c = WITH_BODY[endpoint], ops.ctx(objects, request)
    client, path = ops.client(c.world, entry.persona), ops.path(name, entry, c)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = {**entry.body(c), "padding": "x" * 5000}
    response = ops.send(client, method, path, body)
    assert response.status_code == 413, response.content
    assert response.json() == {"detail": "The request body is larger than allowed.", "code": "payload_too_large"}


def _stored_files(settings: Any) -> list[Path]:
    root = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_an_upload_over_the_evidence_limit_is_413_and_nothing_is_kept(world: World, settings: Any) -> None:
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1000
    response = client_for(world.lead).post(
        "/api/evidence/",
        {
            "case": str(world.case.pk),
            "kind": "chat_transcript",
            "content": SimpleUploadedFile("chat.txt", b"buyer: how much\n" * 100),
        },
        format="multipart",
    )
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "payload_too_large"
    assert not _stored_files(settings)
    assert not EvidenceItem.objects.exists()


def test_a_multipart_body_with_too_many_fields_or_files_is_400(world: World, settings: Any) -> None:
    client = client_for(world.lead)
    fields = {f"f{i}": "1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post("/api/evidence/", {"case": str(world.case.pk), **fields}, format="multipart")
    assert response.status_code == 400
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = {f"file{i}": SimpleUploadedFile(f"{i}.txt", b"x") for i in range(3)}
    response = client.post("/api/evidence/", {"case": str(world.case.pk), **files}, format="multipart")
    assert response.status_code == 400
    assert not EvidenceItem.objects.exists()


# Lists in request bodies and their limits: (route, method, body over the limit, field named).
LIST_LIMITS = [
    (
        "lead-list",
        lambda c: {
            "case": str(c.scope.case.pk),
            "identifiers": [{"kind": "email", "value": f"b{i}@x.org"} for i in range(101)],
        },
        "identifiers",
    ),
    (
        "deconfliction-check",
        lambda c: {"identifiers": [{"kind": "email", "value": f"b{i}@x.org"} for i in range(101)]},
        "identifiers",
    ),
    (
        "handoff-list",
        lambda c: {
            "case": str(c.scope.case.pk),
            "prosecutor": c.world.prosecutor.pk,
            "leads": [str(c.scope.lead.pk)] * 1001,
        },
        "leads",
    ),
    (
        "handoff-list",
        lambda c: {
            "case": str(c.scope.case.pk),
            "prosecutor": c.world.prosecutor.pk,
            "charges": [{"statute": f"s{i}"} for i in range(101)],
        },
        "charges",
    ),
    (
        "handoff-list",
        lambda c: {"case": str(c.scope.case.pk), "prosecutor": c.world.prosecutor.pk, "narrative": "x" * 100001},
        "narrative",
    ),
]


@pytest.mark.parametrize(("name", "body", "field"), LIST_LIMITS, ids=[f"{n}-{f}" for n, _, f in LIST_LIMITS])
def test_lists_and_texts_in_a_body_have_limits_answered_400_naming_them(
    objects: Objects,  # noqa: F811
    request: pytest.FixtureRequest,
    name: str,
    body: Any,
    field: str,
) -> None:
    c = ops.ctx(objects, request)
    counts = (Lead.objects.count(), Handoff.objects.count())
    response = client_for(c.world.lead).post(reverse(name), body(c), format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}
    assert (Lead.objects.count(), Handoff.objects.count()) == counts


# ---------------------------------------------------------------- deep nesting


DEEP = "[" * 100_000 + "]" * 100_000


def _deep_answers(objects: Objects, request: pytest.FixtureRequest) -> dict[str, int]:  # noqa: F811
    c = ops.ctx(objects, request)
    answers = {}
    for (name, method), entry in sorted(WITH_BODY.items()):
        client = ops.client(c.world, entry.persona)
        client.raise_request_exception = False
        response = client.generic(method, ops.path(name, entry, c), DEEP, content_type="application/json")
        answers[f"{method} {name}"] = response.status_code
    return answers


def test_a_deeply_nested_json_body_is_400(objects: Objects, request: pytest.FixtureRequest) -> None:  # noqa: F811
    """A body nested 100,000 deep fits in any size limit; DRF's JSONParser let its RecursionError
    escape (500). Every route parses JSON with caseapi.api.JSONParser (the default parser, and the
    evidence upload's), which answers it with a 400 naming the reason."""
    answers = _deep_answers(objects, request)
    assert set(answers.values()) == {400}, answers
    c = ops.ctx(objects, request)
    response = client_for(c.world.lead).generic("POST", "/api/cases/", DEEP, content_type="application/json")
    assert response.json() == {"detail": JSON_TOO_DEEP, "code": "parse_error"}


def test_every_api_view_parses_json_with_the_parser_that_refuses_deep_nesting() -> None:
    """The routes a request body reaches: each JSON parser of their views is caseapi.api's."""
    views = {
        pattern.callback.cls
        for route, pattern in _walk(get_resolver().url_patterns)
        if route.startswith("api/") and issubclass(getattr(pattern.callback, "cls", object), APIView)
    }
    assert len(views) > 20
    for view in views:
        json_parsers = [p for p in view.parser_classes if "json" in p.media_type]
        assert all(p is JSONParser for p in json_parsers), (view, view.parser_classes)


def test_a_deeply_nested_ingest_batch_is_400(push: Pusher) -> None:
    """The ingest views decode the raw (signed) body themselves: a batch nested 100,000 deep is a
    400 like any other body that is not JSON (intercept.api.views.batch_items)."""
    push.client.raise_request_exception = False
    response = push.signed("conversations", DEEP.encode())
    assert response.status_code == 400, response.content


# ---------------------------------------------------------------- ingest limits


def test_an_ingest_batch_over_the_item_limit_is_400_and_over_the_size_limit_413(push: Pusher, settings: Any) -> None:
    settings.INGEST_MAX_ITEMS = 3
    response = push("ads", [ad(f"a{i}") for i in range(4)])
    assert response.status_code == 400
    assert list(response.json()) == ["items"]
    settings.INGEST_MAX_BODY_BYTES = 2048
    response = push("ads", [ad("big", text="x" * 4096)])
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Ad.objects.exists()


def test_an_item_over_its_message_or_phone_limit_is_rejected_alone(push: Pusher) -> None:
    from intercept import items

    results = push.ok(
        "conversations",
        [conversation("long", messages=items.MAX_MESSAGES + 1), conversation("fine")],
    )
    assert [r["status"] for r in results] == ["rejected", "created"]
    assert "messages" in results[0]["errors"]
    results = push.ok("ads", [ad("many", phones=[f"305555{i:04d}" for i in range(items.MAX_PHONES + 1)])])
    assert results[0]["status"] == "rejected"
    assert "phones" in results[0]["errors"]
    assert Conversation.objects.count() == 1


# ---------------------------------------------------------------- throttles


def _assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "throttled"


def test_logins_are_throttled_with_retry_after(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    api = APIClient()
    body = {"username": world.lead.username, "password": "wrong password, again"}
    answers = [api.post("/api/auth/token/", body, format="json").status_code for _ in range(3)]
    assert answers == [401, 401, 401]
    _assert_throttled(api.post("/api/auth/token/", {**body, "password": TEST_PASSWORD}, format="json"))


def test_packet_requests_are_throttled_per_user_with_retry_after(
    objects: Objects,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    monkeypatch.setattr(case_views.PacketRequestThrottle, "THROTTLE_RATES", {"packets": "2/min"})
    scope = objects.scopes[OWN]
    path = reverse("handoff-packets", kwargs={"pk": scope.sent_handoff.pk})
    lead, supervisor = client_for(objects.world.lead), client_for(objects.world.supervisor)
    before = ExportPacket.objects.count()
    with django_capture_on_commit_callbacks(execute=False):
        assert [lead.post(path).status_code for _ in range(2)] == [202, 202]
        _assert_throttled(lead.post(path))
        assert supervisor.post(path).status_code == 202
    assert ExportPacket.objects.count() == before + 3


def _rate(settings: Any, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def _second_source(push: Pusher) -> Pusher:
    from intercept import services

    issued = services.ingest_source_create(actor=None, name="second-bot", case=push.issued.source.case)
    return Pusher(issued=issued, client=APIClient())


def test_ingest_pushes_are_throttled_per_source(push: Pusher, settings: Any) -> None:
    """Batches are counted per source after the signature is checked (`ingest` rate,
    INGEST_THROTTLE_RATE): a source cannot spend another's allowance."""
    _rate(settings, ingest="2/min")
    assert [push("ads", [ad(f"a{i}")]).status_code for i in range(2)] == [200, 200]
    _assert_throttled(push("ads", [ad("a2")]))
    assert _second_source(push)("ads", [ad("b0")]).status_code == 200
    assert sorted(Ad.objects.values_list("external_id", flat=True)) == ["a0", "a1", "b0"]


def test_unsigned_ingest_floods_are_cut_off_before_they_are_audited(push: Pusher, settings: Any) -> None:
    """Every refused signature costs a lookup and an audit row, so ingest requests are also counted
    per client address before the signature is checked (`ingest_address` rate,
    INGEST_ADDRESS_THROTTLE_RATE): an unsigned flood is cut off before it fills the audit log,
    and the signed pushes from the same address wait too."""
    _rate(settings, ingest_address="3/min")
    body = json.dumps({"items": []}).encode()
    answers = [push.signed("ads", body, secret="not the secret").status_code for _ in range(3)]
    assert answers == [401, 401, 401]
    audited = AuditEvent.objects.count()
    _assert_throttled(push.signed("ads", body, secret="not the secret"))
    _assert_throttled(push("ads", [ad("a0")]))
    assert AuditEvent.objects.count() == audited
    assert not Ad.objects.exists()


def test_throttle_rates_default_when_the_settings_leave_a_scope_out(settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {}}
    assert throttling.IngestSourceThrottle().rate == throttling.INGEST_RATE
    assert throttling.IngestAddressThrottle().rate == throttling.INGEST_ADDRESS_RATE
    _rate(settings, ingest="7/hour")
    assert throttling.IngestSourceThrottle().num_requests == 7


# ---------------------------------------------------------------- edges of the calendar


def test_analytics_periods_at_the_edges_of_the_calendar_are_400(world: World, op: Any) -> None:
    """`until=9999-12-31` overflowed computing the end of the period and `until=0001-01-02` the
    default start (500): the query's days are bounded (1900-01-01 to 9998-12-31), so they are a 400."""
    client = client_for(world.lead)
    client.raise_request_exception = False
    for query in ("until=9999-12-31", "since=0001-01-01&until=0001-01-02", "until=0001-01-01"):
        response = client.get(f"/api/analytics/summary/?case={op.pk}&{query}")
        assert response.status_code == 400, (query, response.status_code)


def test_audit_times_that_leave_the_calendar_in_utc_are_never_a_500(world: World) -> None:
    """An offset that takes a time out of the calendar in UTC (`0001-01-01T00:00:00+14:00`)
    overflowed on SQLite when the query was built, and PostgreSQL refuses offsets beyond 15:59
    that Python accepts: audit/api/filters.py turns since/until into UTC, and such a time is a 400."""
    client = client_for(world.auditor)
    client.raise_request_exception = False
    for value in ("0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-14:00"):
        for name in ("since", "until"):
            response = client.get(f"/api/audit/events/?{name}={value}")
            assert response.status_code in (200, 400), (name, value, response.status_code)


def test_evidence_and_lead_times_that_leave_the_calendar_are_400(world: World) -> None:
    client = client_for(world.lead)
    for value in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        lead = client.post("/api/leads/", {"case": str(world.case.pk), "first_seen_at": value}, format="json")
        assert lead.status_code == 400, lead.content
        assert list(lead.json()) == ["first_seen_at"]
    assert not Lead.objects.exists()
