"""Ad ingest: deduplicated by site and external id within the operation; the phones become
shared identifiers, so every ad and every buyer conversation with one number can be found."""

from __future__ import annotations

import pytest

from cases.models import Identifier
from intercept import items, services
from intercept.models import Ad, AdPhone
from tests.conftest import client_for
from tests.intercept.conftest import ad, conversation

pytestmark = pytest.mark.django_db


def test_an_ad_is_stored_once_per_site_and_external_id(push):
    first = push.ok("ads", [ad("a1"), ad("a1", site="cityvibe.example"), ad("a2")])
    assert [r["status"] for r in first] == ["created", "created", "created"]
    again = push.ok("ads", [ad("a1"), ad("a1", site="cityvibe.example")])
    assert [r["status"] for r in again] == ["unchanged", "unchanged"]
    assert [r["id"] for r in again] == [r["id"] for r in first[:2]]
    assert Ad.objects.count() == 3


def test_a_recaptured_ad_with_new_content_is_updated_in_place(push):
    [created] = push.ok("ads", [ad("a1")])
    [updated] = push.ok("ads", [ad("a1", title="Back in town", phones=["305.555.0142", "(786) 555-0123"])])
    assert updated["status"] == "updated" and updated["id"] == created["id"]
    stored = Ad.objects.get()
    assert stored.title == "Back in town"
    assert sorted(i.value for i in stored.identifiers.all()) == ["+13055550142", "+17865550123"]


def test_ad_phones_become_e164_identifiers_and_bad_ones_are_warnings(push):
    [result] = push.ok("ads", [ad("a1", phones=["305.555.0142", "(305) 555-0142", "call me"])])
    assert result["phones"] == ["+13055550142"]
    [warning] = result["warnings"]
    assert warning.startswith("phones[2] 'call me' was not recorded: Not a phone number: 'call me' could not be parsed")
    assert Ad.objects.get().phones == ["305.555.0142", "(305) 555-0142", "call me"]
    assert AdPhone.objects.count() == 1
    assert Identifier.objects.get(kind="phone").value == "+13055550142"


def test_a_bad_ad_is_rejected_alone(push):
    results = push.ok("ads", [ad("a1"), ad("bad id with spaces"), ad("a3", posted_at="2999-01-01T00:00:00Z")])
    assert [r["status"] for r in results] == ["created", "rejected", "rejected"]
    assert results[1]["errors"] == {"external_id": [items.ID_INVALID]}
    assert results[2]["errors"] == {"posted_at": [items.DATETIME_FUTURE]}
    assert list(Ad.objects.values_list("external_id", flat=True)) == ["a1"]


def test_ads_and_conversations_that_share_a_number_find_each_other(push, world):
    push.ok("ads", [ad("a1", phones=["305.555.0142"]), ad("a2", phones=["786-555-0199"]), ad("decoy", phones=[])])
    [buyer] = push.ok(
        "conversations",
        [conversation("c1", phone="+13055550142", ad={"site": "nightlist.example", "external_id": "decoy"})],
    )
    push.ok("conversations", [conversation("c2", phone="786 555 0123")])
    client = client_for(world.teammate)

    ads = client.get("/api/ads/", {"phone": "(305) 555-0142"}).json()["results"]
    assert [a["external_id"] for a in ads] == ["a1"]
    assert ads[0]["phone_identifiers"] == ["+13055550142"]
    conversations = client.get("/api/conversations/", {"phone": "305.555.0142"}).json()["results"]
    assert [c["external_id"] for c in conversations] == ["c1"]

    detail = client.get(f"/api/conversations/{buyer['id']}/").json()
    assert [a["external_id"] for a in detail["ads_sharing_numbers"]] == ["a1"]
    assert detail["answered_ad"]["external_id"] == "decoy"


def test_shared_number_ads_of_another_operation_stay_hidden(push, world, other_op):
    theirs = services.ingest_source_create(actor=None, name="river-collector", case=other_op).source
    services.ads_ingest(source=theirs, items=[ad("b1", phones=["305.555.0142"])])
    [buyer] = push.ok("conversations", [conversation("c1")])
    client = client_for(world.teammate)
    assert client.get("/api/conversations/" + buyer["id"] + "/").json()["ads_sharing_numbers"] == []
    assert client.get("/api/ads/", {"phone": "3055550142"}).json()["count"] == 0
    assert client_for(world.outsider).get("/api/ads/", {"phone": "3055550142"}).json()["count"] == 1
