"""Fixtures of the intercept tests: an operation of agency A with the world's team, an ingest
source bound to it (and its secret), and a signed client that pushes batches."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Case, CaseKind, TeamRole
from intercept import services, signing
from tests.conftest import World
from tests.factories import CaseFactory

BASE = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # a Monday


def at(minutes: float, base: datetime = BASE) -> str:
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def message(n: int, *, conversation: str = "c1", base: datetime = BASE, body: str | None = None) -> dict[str, Any]:
    return {
        "external_id": f"{conversation}-m{n}",
        "direction": "inbound" if n % 2 else "outbound",
        "sent_at": at(n, base),
        "body": body if body is not None else f"message {n} of {conversation}",
    }


def conversation(
    external_id: str = "c1",
    *,
    messages: int = 3,
    phone: str | None = "(305) 555-0142",
    base: datetime = BASE,
    **fields: Any,
) -> dict[str, Any]:
    """A conversation item with `messages` messages (numbered from 1) and a buyer `phone`."""
    item: dict[str, Any] = {
        "external_id": external_id,
        "platform": "sms",
        "bot": "decoy-bot-1",
        "buyer": {"phone": phone} if phone else {},
        "messages": [message(n, conversation=external_id, base=base) for n in range(1, messages + 1)],
    }
    item.update(fields)
    return item


def ad(external_id: str = "a1", *, site: str = "nightlist.example", phones: list[str] | None = None, **fields: Any):
    item = {
        "site": site,
        "external_id": external_id,
        "url": f"https://{site}/ad/{external_id}",
        "title": "Available now",
        "posted_at": at(0),
        "city": "Miami",
        "region": "FL",
        "phones": phones if phones is not None else ["305.555.0142"],
        "text": "Text me",
    }
    item.update(fields)
    return item


def make_operation(world: World, title: str = "Operation Nightfall intercepts") -> Case:
    """An operation of agency A led by world.lead, with teammate and viewer on its team."""
    op = CaseFactory(actor=world.lead, title=title, kind=CaseKind.OPERATION)
    case_services.team_member_set(actor=world.lead, case=op, user=world.teammate, role=TeamRole.INVESTIGATOR)
    case_services.team_member_set(actor=world.lead, case=op, user=world.viewer, role=TeamRole.VIEWER)
    return op


@pytest.fixture
def op(world: World) -> Case:
    return make_operation(world)


@pytest.fixture
def other_op(world: World) -> Case:
    """Agency B's operation, led by world.outsider."""
    return CaseFactory(actor=world.outsider, title="River sting intercepts", kind=CaseKind.OPERATION)


@pytest.fixture
def issued(op: Case) -> services.IssuedSecret:
    return services.ingest_source_create(actor=None, name="nightfall-bot", case=op)


@dataclass
class Pusher:
    """Signs like a bot. Each push gets its own timestamp (a second earlier than the one
    before, counted from when the pusher was made), so sending the same body twice is a
    resend, not a replay of one signature."""

    issued: services.IssuedSecret
    client: APIClient
    pushes: int = 0
    started: int = field(default_factory=lambda: int(time.time()))

    def raw(self, kind: str, body: bytes, **headers: str) -> Any:
        meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
        return self.client.post(f"/api/ingest/{kind}/", data=body, content_type="application/json", **meta)

    def signed(
        self, kind: str, body: bytes, *, secret: str | None = None, timestamp: int | None = None, source_id: str = ""
    ) -> Any:
        if timestamp is None:
            self.pushes += 1
            timestamp = self.started - self.pushes
        headers = signing.signed_headers(
            source_id or str(self.issued.source.pk), secret or self.issued.secret, body, timestamp
        )
        return self.raw(kind, body, **headers)

    def __call__(self, kind: str, items: list[Any], **options: Any) -> Any:
        return self.signed(kind, json.dumps({"items": items}).encode(), **options)

    def ok(self, kind: str, items: list[Any]) -> list[dict[str, Any]]:
        response = self(kind, items)
        assert response.status_code == 200, response.content
        return response.json()["results"]


@pytest.fixture
def push(issued: services.IssuedSecret) -> Pusher:
    return Pusher(issued=issued, client=APIClient())
