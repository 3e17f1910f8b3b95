"""OWASP API7:2023, server side request forgery. Clients hand the server URLs in two places:
an evidence item's `external_uri` (a reference to another evidence system) and an ad's `url`
(what a collector scraped). The server stores them as text and never fetches them: not at
intake, not when verifying the item, not when building the prosecutor's packet, not when
showing it. These tests run those paths with every outgoing connection recorded."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.urls import reverse

from cases import services
from cases.models import EvidenceItem
from tests.conftest import World, client_for
from tests.factories import LeadFactory
from tests.intercept.conftest import Pusher, ad

# Where a forged reference would point to reach the inside of a deployment.
INTERNAL_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://127.0.0.1:6379/",
    "http://localhost:5432/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:11211/_stats",
]


@pytest.fixture
def connections_made(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every outgoing connection Python makes from here on (the database drivers connect in C
    and were connected before)."""
    made: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        made.append(address)
        return real_connect(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(address)
        raise OSError("outgoing connections are not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return made


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_evidence_reference_is_stored_verified_and_packed_without_being_fetched(
    world: World, connections_made: list[Any], url: str, django_capture_on_commit_callbacks: Any
) -> None:
    client = client_for(world.lead)
    body = {"case": str(world.case.pk), "kind": "document", "external_uri": url, "sha256": "cd" * 32, "size_bytes": 9}
    created = client.post("/api/evidence/", body, format="json")
    assert created.status_code == 201, created.content
    item = EvidenceItem.objects.get(pk=created.json()["id"])
    assert item.external_uri == url
    assert client.post(f"/api/evidence/{item.pk}/verify/").status_code == 409
    assert client.get(f"/api/evidence/{item.pk}/content/").status_code == 409
    assert client.get(f"/api/evidence/{item.pk}/").json()["external_uri"] == url
    lead = LeadFactory(case=world.case)
    handoff = services.handoff_create(
        actor=world.lead, case=world.case, prosecutor=world.prosecutor, leads=[lead], evidence=[item]
    )
    services.handoff_submit(actor=world.lead, handoff=handoff)
    services.handoff_review(actor=world.supervisor, handoff=handoff, approve=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("handoff-packets", kwargs={"pk": handoff.pk}))
    assert response.status_code == 202
    packet = client.get(response.json()["status_url"]).json()
    assert packet["status"] == "ready", packet
    assert connections_made == []


def test_a_scraped_ad_url_is_kept_as_text_and_never_followed(
    push: Pusher, world: World, connections_made: list[Any]
) -> None:
    results = push.ok("ads", [ad(f"a{i}", url=url) for i, url in enumerate(INTERNAL_URLS[:3])])
    assert [r["status"] for r in results] == ["created"] * 3
    listed = client_for(world.lead).get("/api/ads/").json()["results"]
    assert {row["url"] for row in listed} == set(INTERNAL_URLS[:3])
    assert connections_made == []


def test_the_recorder_sees_an_attempt_to_fetch(connections_made: list[Any]) -> None:
    import urllib.request

    with pytest.raises(OSError):
        urllib.request.urlopen("http://169.254.169.254/latest/meta-data/", timeout=1)  # noqa: S310
    assert connections_made == [("169.254.169.254", 80)]
