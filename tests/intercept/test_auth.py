"""Machine clients authenticate each request by HMAC signature: a good signature is
accepted once; a wrong one, a stale or future timestamp, a replay, an inactive or unknown
source, or missing headers is a 401, and every refusal is in the audit log naming the source."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from intercept import services, signing
from intercept.events import InterceptAction
from intercept.models import Conversation, SeenSignature
from tests.conftest import client_for
from tests.intercept.conftest import conversation

pytestmark = pytest.mark.django_db

BODY = json.dumps({"items": [conversation()]}).encode()


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=InterceptAction.AUTH_FAILED).order_by("id"))


def assert_refused(response, reason: str, source=None) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["code"] == reason
    assert response["WWW-Authenticate"].startswith("HMAC-SHA256")
    [event] = refusals()
    assert event.changes["reason"] == reason
    assert event.actor_id is None
    if source is None:
        assert event.actor_name == "source:unknown"
        assert event.agency_id is None
    else:
        assert event.actor_name == f"source:{source.name}"
        assert event.agency_id == source.agency_id
        assert (event.target_type, event.target_id) == ("intercept.ingestsource", str(source.pk))
    assert not Conversation.objects.exists()


def test_a_correctly_signed_batch_is_accepted(push):
    response = push.signed("conversations", BODY)
    assert response.status_code == 200, response.content
    assert response.json()["accepted"] == 1
    assert not refusals()


def test_a_wrong_signature_is_refused_and_audited(push):
    response = push.signed("conversations", BODY, secret="not-the-secret")
    assert_refused(response, "bad_signature", push.issued.source)


def test_a_signature_over_other_bytes_is_refused(push):
    stamp = str(int(time.time()))
    headers = {
        "X-Source-Id": str(push.issued.source.pk),
        "X-Timestamp": stamp,
        "X-Signature": "sha256=" + signing.signature(push.issued.secret, stamp, BODY + b" "),
    }
    assert_refused(push.raw("conversations", BODY, **headers), "bad_signature", push.issued.source)


# Two seconds past the bound each way: whole-second timestamps and the time the request takes
# must not decide the outcome.
@pytest.mark.parametrize("offset", [-302, 302])
def test_a_timestamp_more_than_five_minutes_off_is_refused(push, offset):
    response = push.signed("conversations", BODY, timestamp=int(time.time()) + offset)
    assert_refused(response, "timestamp_skew", push.issued.source)


def test_a_timestamp_within_five_minutes_is_accepted(push):
    assert push.signed("conversations", BODY, timestamp=int(time.time()) - 290).status_code == 200


def test_a_replayed_signature_is_refused_even_for_the_same_bytes(push):
    stamp = int(time.time())
    assert push.signed("conversations", BODY, timestamp=stamp).status_code == 200
    before = Conversation.objects.get().updated_at
    response = push.signed("conversations", BODY, timestamp=stamp)
    assert response.status_code == 401
    assert response.json()["code"] == "replayed"
    [event] = refusals()
    assert event.changes["reason"] == "replayed"
    assert Conversation.objects.get().updated_at == before
    assert SeenSignature.objects.count() == 1


def test_the_same_body_signed_again_later_is_not_a_replay(push):
    stamp = int(time.time())
    assert push.signed("conversations", BODY, timestamp=stamp - 1).status_code == 200
    assert push.signed("conversations", BODY, timestamp=stamp).status_code == 200


def test_an_inactive_source_is_refused(push):
    services.ingest_source_set_active(actor=None, source=push.issued.source, active=False)
    assert_refused(push.signed("conversations", BODY), "inactive_source", push.issued.source)


def test_an_unknown_source_is_refused_like_a_bad_signature(push):
    unknown = "00000000-0000-4000-8000-000000000000"
    response = push.signed("conversations", BODY, source_id=unknown)
    assert response.status_code == 401
    assert response.json()["detail"] == services.AUTH_INVALID
    [event] = refusals()
    assert event.changes == {"reason": "unknown_source", "source_id": unknown}
    assert event.actor_name == "source:unknown"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_headers"),
        (
            {"X-Source-Id": "nightfall-bot", "X-Timestamp": "1", "X-Signature": "sha256=" + "0" * 64},
            "malformed_headers",
        ),
        ({"X-Timestamp": "soon", "X-Signature": "sha256=" + "0" * 64}, "malformed_headers"),
        ({"X-Timestamp": "1", "X-Signature": "md5=abc"}, "malformed_headers"),
    ],
)
def test_missing_or_malformed_headers_are_refused(push, headers, reason):
    headers = {"X-Source-Id": str(push.issued.source.pk), **headers} if headers else {}
    response = push.raw("conversations", BODY, **headers)
    assert response.status_code == 401
    assert refusals()[0].changes["reason"] == reason


def test_a_person_with_a_token_cannot_push(world, push):
    client = client_for(world.lead)
    response = client.post("/api/ingest/conversations/", data=BODY, content_type="application/json")
    assert response.status_code == 401
    assert refusals()[0].changes["reason"] == "missing_headers"


def test_the_previous_secret_works_until_its_overlap_ends(push):
    old = push.issued.secret
    new = services.ingest_source_rotate(actor=None, source=push.issued.source, overlap=timedelta(hours=1)).secret
    assert push("conversations", [conversation("c1")], secret=old).status_code == 200
    assert push("conversations", [conversation("c2")], secret=new).status_code == 200
    source = push.issued.source
    source.refresh_from_db()
    source.previous_valid_until = timezone.now() - timedelta(seconds=1)
    source.save(update_fields=["previous_valid_until"])
    assert push("conversations", [conversation("c3")], secret=old).status_code == 401
    assert push("conversations", [conversation("c4")], secret=new).status_code == 200


def test_a_rotation_without_overlap_stops_the_old_secret_at_once(push):
    old = push.issued.secret
    services.ingest_source_rotate(actor=None, source=push.issued.source, overlap=timedelta(0))
    assert push("conversations", [conversation()], secret=old).status_code == 401


def test_expired_signatures_are_forgotten_and_live_ones_kept(push):
    assert push("conversations", [conversation("c1")]).status_code == 200
    assert push("conversations", [conversation("c2")]).status_code == 200
    expired = SeenSignature.objects.order_by("id").first()
    SeenSignature.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.seen_signatures_purge() == 1
    assert list(SeenSignature.objects.values_list("pk", flat=True)) != [expired.pk]
    assert SeenSignature.objects.count() == 1


def test_a_body_over_the_size_limit_is_413_before_it_is_read(push, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    body = json.dumps({"items": [conversation(messages=40)]}).encode()
    assert len(body) > 1000
    response = push.signed("conversations", body)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Conversation.objects.exists()


def test_more_than_a_thousand_items_is_400(push):
    response = push("conversations", [{} for _ in range(1001)])
    assert response.status_code == 400
    assert response.json() == {"items": ["At most 1000 items per batch."]}


@pytest.mark.parametrize("body", [b"not json", b'{"conversations": []}', b'{"items": {}}'])
def test_a_body_that_is_not_a_batch_is_400(push, body):
    assert push.signed("conversations", body).status_code == 400


def test_the_agencys_auditor_reads_the_refusals_of_its_sources(push, world):
    push.signed("conversations", BODY, secret="not-the-secret")
    rows = client_for(world.auditor).get("/api/audit/events/", {"page_size": 200}).json()["results"]
    refused = [row for row in rows if row["action"] == InterceptAction.AUTH_FAILED]
    assert len(refused) == 1 and refused[0]["actor_name"] == "source:nightfall-bot"
    theirs = client_for(world.outsider_supervisor).get("/api/audit/events/", {"page_size": 200}).json()["results"]
    assert not [row for row in theirs if row["action"] == InterceptAction.AUTH_FAILED]
