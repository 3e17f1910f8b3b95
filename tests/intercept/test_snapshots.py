"""Transcript snapshots: a closed conversation's transcript, in its canonical text, becomes a
chat_transcript evidence item with its SHA-256 and a `collected` custody event by the source;
a later snapshot of a grown conversation is a new item that names the earlier one; an
investigator can ask for one; none is ever replaced."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.core.files.storage import storages

from audit.models import AuditAction, AuditEvent
from cases.models import CustodyAction, EvidenceItem, EvidenceKind
from cases.services import system_user
from intercept import services
from intercept.events import InterceptAction
from intercept.models import Conversation, SnapshotReason, TranscriptSnapshot
from tests.conftest import client_for
from tests.intercept.conftest import conversation, message

pytestmark = pytest.mark.django_db


def stored_bytes(item: EvidenceItem) -> bytes:
    with storages["evidence"].open(item.content_name, "rb") as handle:
        return handle.read()


def test_closing_a_conversation_stores_its_transcript_as_evidence(push):
    item = conversation("c1", messages=2, closed=True)
    item["messages"][1]["body"] = "line one\nline two"
    [result] = push.ok("conversations", [item])
    evidence = EvidenceItem.objects.get(pk=result["snapshot"])
    stored = Conversation.objects.get(pk=result["id"])
    source = push.issued.source
    expected = (
        "caseapi chat transcript v1\n"
        f"conversation: {stored.pk}\n"
        f"operation: {source.case.number}\n"
        "source: nightfall-bot\n"
        "platform: sms\n"
        "bot: decoy-bot-1\n"
        "external-id: c1\n"
        "ad: -\n"
        "buyer-phone: (305) 555-0142\n"
        "snapshot: 1\n"
        "previous-snapshot-sha256: -\n"
        "messages: 2\n"
        "\n"
        "#1 2026-03-02T21:01:00Z inbound c1-m1\n"
        "| message 1 of c1\n"
        "\n"
        "#2 2026-03-02T21:02:00Z outbound c1-m2\n"
        "| line one\n"
        "| line two\n"
    ).encode()
    content = stored_bytes(evidence)
    assert content == expected
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert (evidence.kind, evidence.size_bytes, evidence.lead_id) == (
        EvidenceKind.CHAT_TRANSCRIPT,
        len(content),
        stored.lead_id,
    )
    assert evidence.case == source.case
    assert evidence.collected_by == system_user() and evidence.created_by == system_user()
    [custody] = evidence.custody_events.all()
    assert (custody.action, custody.actor, custody.from_party) == (
        CustodyAction.COLLECTED,
        system_user(),
        "source:nightfall-bot",
    )
    assert custody.details["sha256"] == evidence.sha256
    created = AuditEvent.objects.get(action=AuditAction.EVIDENCE_CREATED, target_id=str(evidence.pk))
    assert (created.actor_id, created.actor_name, created.case_id) == (None, "source:nightfall-bot", source.case_id)
    assert created.changes["sha256"] == [None, evidence.sha256]
    snapshot = TranscriptSnapshot.objects.get(evidence=evidence)
    assert (snapshot.number, snapshot.message_count, snapshot.previous, snapshot.reason) == (
        1,
        2,
        None,
        SnapshotReason.CLOSED,
    )


def test_an_open_conversation_has_no_snapshot_until_it_closes(push):
    [open_result] = push.ok("conversations", [conversation("c1")])
    assert open_result["snapshot"] is None
    assert not EvidenceItem.objects.exists()
    [closing] = push.ok("conversations", [conversation("c1", closed=True)])
    assert closing["status"] == "updated" and closing["snapshot"] is not None


def test_a_grown_conversation_gets_a_new_snapshot_that_names_the_earlier_one(push):
    [first] = push.ok("conversations", [conversation("c1", messages=2, closed=True)])
    earlier = EvidenceItem.objects.get(pk=first["snapshot"])
    earlier_bytes = stored_bytes(earlier)
    [again] = push.ok("conversations", [conversation("c1", messages=2, closed=True)])
    assert again["status"] == "unchanged" and again["snapshot"] is None
    [grown] = push.ok("conversations", [conversation("c1", messages=4)])
    later = EvidenceItem.objects.get(pk=grown["snapshot"])
    assert later.pk != earlier.pk
    earlier.refresh_from_db()
    assert stored_bytes(earlier) == earlier_bytes
    assert earlier.sha256 == hashlib.sha256(earlier_bytes).hexdigest()
    content = stored_bytes(later).decode()
    assert "snapshot: 2\n" in content
    assert f"previous-snapshot-sha256: {earlier.sha256}\n" in content
    assert "messages: 4\n" in content and "#4 " in content
    assert str(earlier.pk) in later.description and earlier.sha256 in later.description
    chain = list(TranscriptSnapshot.objects.order_by("number"))
    assert [(s.number, s.message_count) for s in chain] == [(1, 2), (2, 4)]
    assert chain[1].previous == chain[0]


def test_an_investigator_can_snapshot_an_open_conversation_once_per_growth(push, world):
    [result] = push.ok("conversations", [conversation("c1", messages=3)])
    client = client_for(world.teammate)
    url = f"/api/conversations/{result['id']}/snapshot/"
    made = client.post(url)
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["number"], body["message_count"], body["reason"], body["previous_evidence"]) == (
        1,
        3,
        "requested",
        None,
    )
    evidence = EvidenceItem.objects.get(pk=body["evidence"])
    assert body["sha256"] == evidence.sha256 == hashlib.sha256(stored_bytes(evidence)).hexdigest()
    assert evidence.created_by == world.teammate and evidence.collected_by == system_user()
    [custody] = evidence.custody_events.all()
    assert (custody.actor, custody.from_party) == (world.teammate, "source:nightfall-bot")
    taken = AuditEvent.objects.get(action=InterceptAction.SNAPSHOT_TAKEN)
    assert (taken.actor, taken.target_id) == (world.teammate, result["id"])
    assert taken.changes == {"snapshot": 1, "evidence": str(evidence.pk), "message_count": 3}

    same = client.post(url)
    assert same.status_code == 200 and same.json()["evidence"] == str(evidence.pk)
    grown = conversation("c1", messages=0)
    grown["messages"] = [message(4)]
    push.ok("conversations", [grown])
    second = client.post(url)
    assert second.status_code == 201
    assert second.json()["previous_evidence"] == str(evidence.pk)
    assert EvidenceItem.objects.count() == 2


def test_a_snapshot_needs_change_case_and_scope(push, world):
    [result] = push.ok("conversations", [conversation("c1")])
    url = f"/api/conversations/{result['id']}/snapshot/"
    assert client_for(world.viewer).post(url).status_code == 403
    assert client_for(world.outsider).post(url).status_code == 404
    assert client_for(world.investigator).post(url).status_code == 404
    assert not EvidenceItem.objects.exists()


def test_a_conversation_without_messages_has_nothing_to_snapshot(push, world):
    [result] = push.ok("conversations", [conversation("c1", messages=0)])
    response = client_for(world.lead).post(f"/api/conversations/{result['id']}/snapshot/")
    assert response.status_code == 409
    assert response.json()["detail"] == services.SNAPSHOT_EMPTY


def test_a_failed_snapshot_leaves_no_file_behind(push, world, monkeypatch):
    [result] = push.ok("conversations", [conversation("c1")])

    def refuse(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services.TranscriptSnapshot, "save", refuse)
    with pytest.raises(RuntimeError):
        services.conversation_snapshot(actor=world.lead, conversation=Conversation.objects.get(pk=result["id"]))
    assert not [p for p in Path(storages["evidence"].location).rglob("*") if p.is_file()]
    assert not EvidenceItem.objects.exists()
