"""Personal data at rest: buyer names, notes, contact details and chat messages reach the
database only as ciphertext (and the audit log not at all), still read back in clear through
the API, are found by any typed form of a phone or email, survive a key rotation, and never
appear in log records."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditAction, AuditEvent
from caseapi import crypto
from caseapi.fields import encrypted_columns
from cases import selectors
from cases.models import Identifier, Lead
from intercept.models import Conversation, Message
from tests.conftest import World, client_for
from tests.factories import LeadFactory
from tests.intercept.conftest import Pusher, conversation, message

User = get_user_model()
KEY_OLD = crypto.encode_key(b"o" * 32)
KEY_NEW = crypto.encode_key(b"n" * 32)

NAME = "Marcus Whitfield"
NOTES = "Drives a red pickup, plates 7KQ-219"
PHONE_TYPED, PHONE = "(305) 555-0199", "+13055550199"
EMAIL_TYPED, EMAIL = " Marcus.W@Example.ORG", "marcus.w@example.org"
HANDLE_TYPED, HANDLE = "@MW_Night", "mw_night"
BUYER_NAME = "Dale Hemmings"
BUYER_PHONE_TYPED, BUYER_PHONE = "786-555-0134", "+17865550134"
BUYER_EMAIL = "dale.h@example.net"
BODY = "meet me at the Seaside Motel room 12, I'm bringing cash"
# What must never be found in a raw column, an audit row or a log record (the forms typed and
# the normalized ones; the phone's digits without punctuation too).
SECRETS = (
    NAME,
    NOTES,
    "Whitfield",
    "3055550199",
    "305) 555-0199",
    EMAIL,
    "Marcus.W",
    HANDLE,
    BUYER_NAME,
    "Hemmings",
    "7865550134",
    "786-555-0134",
    BUYER_EMAIL,
    "Seaside Motel",
)
SEALED_COLUMNS = {
    "cases_lead.display_name",
    "cases_lead.notes",
    "cases_identifier.value",
    "intercept_conversation.buyer",
    "intercept_message.body",
}


@dataclass
class Recorded:
    lead: Lead
    conversation: Conversation


def _record(world: World, push: Pusher) -> Recorded:
    """A lead typed in by an investigator and a conversation pushed by a bot, with every kind of
    personal data, then both changed once."""
    client = client_for(world.lead)
    response = client.post(
        "/api/leads/",
        {
            "case": str(push.issued.source.case_id),
            "display_name": NAME,
            "notes": NOTES,
            "identifiers": [
                {"kind": "phone", "value": PHONE_TYPED},
                {"kind": "email", "value": EMAIL_TYPED},
                {"kind": "handle", "value": HANDLE_TYPED},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(pk=response.json()["id"])
    patched = client.patch(f"/api/leads/{lead.pk}/", {"notes": NOTES + " (seen twice)"}, format="json")
    assert patched.status_code == 200, patched.content
    item = conversation("c1", phone=BUYER_PHONE_TYPED, buyer={"name": BUYER_NAME, "phone": BUYER_PHONE_TYPED})
    item["messages"].append({**message(4, conversation="c1"), "body": BODY})
    [created] = push.ok("conversations", [item])
    again = conversation("c1", phone=BUYER_PHONE_TYPED, buyer={"email": BUYER_EMAIL}, messages=0)
    [updated] = push.ok("conversations", [again])
    assert (created["status"], updated["status"]) == ("created", "updated")
    return Recorded(lead=lead, conversation=Conversation.objects.get(pk=created["id"]))


def _raw(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(table)}")  # noqa: S608
        return [row[0] if isinstance(row[0], str) else str(row[0]) for row in cursor.fetchall()]


def _leaks(texts: list[str]) -> list[str]:
    return sorted({secret for secret in SECRETS for text in texts if secret.lower() in text.lower()})


def test_the_sensitive_columns_are_the_encrypted_ones():
    assert {f"{model._meta.db_table}.{field.column}" for model, field in encrypted_columns()} == SEALED_COLUMNS


def test_raw_columns_hold_only_ciphertext_and_the_api_still_reads_clear_text(world, push):
    recorded = _record(world, push)
    for name in sorted(SEALED_COLUMNS):
        table, column = name.split(".")
        stored = [value for value in _raw(table, column) if value]
        assert stored, f"{name}: nothing stored, nothing checked"
        assert all(value.startswith("enc:v1:") for value in stored), f"{name} holds a value in clear"
        assert _leaks(stored) == [], f"{name} holds personal data"
    assert _leaks(_raw("cases_identifier", "value_index")) == []
    lead = client_for(world.lead).get(f"/api/leads/{recorded.lead.pk}/").json()
    assert (lead["display_name"], lead["notes"]) == (NAME, NOTES + " (seen twice)")
    assert sorted((i["kind"], i["value"]) for i in lead["identifiers"]) == [
        ("email", EMAIL),
        ("handle", HANDLE),
        ("phone", PHONE),
    ]
    chat = client_for(world.lead).get(f"/api/conversations/{recorded.conversation.pk}/").json()
    assert chat["buyer"] == {"name": BUYER_NAME, "phone": BUYER_PHONE_TYPED, "email": BUYER_EMAIL}
    assert chat["messages"][-1]["body"] == BODY


def test_the_audit_log_records_that_personal_data_changed_without_the_data(world, push):
    recorded = _record(world, push)
    assert _leaks(_raw("audit_auditevent", "changes")) == []
    updated = AuditEvent.objects.filter(action=AuditAction.LEAD_UPDATED, target_id=str(recorded.lead.pk)).get()
    assert updated.changes == {"notes": "changed"}
    created = AuditEvent.objects.get(action=AuditAction.LEAD_CREATED, target_id=str(recorded.lead.pk))
    assert created.changes["display_name"] == "changed"
    assert (
        Identifier.objects.get(value_index=Identifier.index_of("phone", PHONE)).audit_label
        in (created.changes["identifiers"][1])
    )
    batch = AuditEvent.objects.filter(action=AuditAction.INGEST_BATCH_RECEIVED).order_by("id").last()
    assert batch.changes["updated"][str(recorded.conversation.pk)]["buyer"] == ["email"]


def test_no_personal_data_reaches_a_log_record(world, push, caplog):
    """At DEBUG, with every SQL statement and its parameters logged (django.db.backends)."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    connection.force_debug_cursor = True
    try:
        _record(world, push)
    finally:
        connection.force_debug_cursor = False
    assert any(r.name == "django.db.backends" for r in caplog.records), "no SQL was logged: the check saw nothing"
    texts = [record.getMessage() for record in caplog.records]
    texts += [repr(getattr(record, "args", "")) for record in caplog.records]
    assert _leaks(texts) == []


@pytest.mark.parametrize("typed", [PHONE_TYPED, "305.555.0199", "+1 305 555 0199", "3055550199"])
def test_a_phone_typed_any_way_finds_the_encrypted_identifier(world, push, typed):
    recorded = _record(world, push)
    assert list(selectors.identifier_matches(typed)) == [recorded.lead.identifiers.get(kind="phone")]
    found = client_for(world.lead).get("/api/leads/", {"identifier": typed}).json()["results"]
    assert [row["id"] for row in found] == [str(recorded.lead.pk)]


@pytest.mark.parametrize("typed", [EMAIL_TYPED, "MARCUS.W@EXAMPLE.ORG", EMAIL])
def test_an_email_typed_any_way_finds_the_encrypted_identifier(world, push, typed):
    recorded = _record(world, push)
    found = client_for(world.lead).get("/api/leads/", {"identifier": typed}).json()["results"]
    assert [row["id"] for row in found] == [str(recorded.lead.pk)]


def test_a_bots_buyer_with_the_same_phone_is_matched_to_the_existing_lead(world, push):
    recorded = _record(world, push)
    [result] = push.ok("conversations", [conversation("c9", phone="305.555.0199")])
    assert (result["lead"], result["lead_created"]) == (str(recorded.lead.pk), False)


def test_a_tampered_ciphertext_fails_loudly_instead_of_reading_garbage(world, push):
    recorded = _record(world, push)
    pk = Lead._meta.pk.get_db_prep_value(recorded.lead.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT display_name FROM cases_lead WHERE id = %s", [pk])
        [stored] = cursor.fetchone()
        tampered = stored[:-6] + ("AAAAAA" if not stored.endswith("AAAAAA") else "BBBBBB")
        cursor.execute("UPDATE cases_lead SET display_name = %s WHERE id = %s", [tampered, pk])
        assert cursor.rowcount == 1
    with pytest.raises(crypto.DecryptionError, match=r"cases_lead\.display_name: the stored value does not open"):
        Lead.objects.get(pk=recorded.lead.pk)


def test_a_ciphertext_copied_into_another_row_of_another_column_does_not_open(world, push):
    recorded = _record(world, push)
    body = next(v for v in _raw("intercept_message", "body") if v)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_lead SET notes = %s", [body])
    with pytest.raises(crypto.DecryptionError, match=r"cases_lead\.notes"):
        Lead.objects.get(pk=recorded.lead.pk)


def _reading_everything() -> tuple[Any, ...]:
    return (
        sorted((lead.display_name, lead.notes) for lead in Lead.objects.all()),
        sorted((i.kind, i.value) for i in Identifier.objects.all()),
        sorted(str(c.buyer) for c in Conversation.objects.all()),
        sorted(m.body for m in Message.objects.all()),
    )


def test_rotation_re_encrypts_everything_so_the_old_key_can_go(world, push, settings):
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"old:{KEY_OLD}")
    _record(world, push)
    before = _reading_everything()
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"new:{KEY_NEW},old:{KEY_OLD}")
    call_command("rotate_field_keys", "--batch", "2")
    for name in SEALED_COLUMNS:
        stored = [v for v in _raw(*name.split(".")) if v]
        assert {crypto.key_id_of(v) for v in stored} == {"new"}, name
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"new:{KEY_NEW}")
    assert _reading_everything() == before
    event = AuditEvent.objects.get(action=AuditAction.FIELD_KEYS_ROTATED)
    assert event.changes["key"] == "new"
    assert event.changes["resealed"]["intercept_message.body"] == Message.objects.count()
    assert event.changes["resealed"]["cases_lead.display_name"] == sum(
        1 for lead in Lead.objects.all() if lead.display_name
    )
    assert "reindexed" not in event.changes


def test_rotation_leaves_messages_append_only(world, push, settings):
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"old:{KEY_OLD}")
    _record(world, push)
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"new:{KEY_NEW},old:{KEY_OLD}")
    call_command("rotate_field_keys")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE intercept_message SET body = ''")


def test_a_second_rotation_changes_nothing(world, push):
    _record(world, push)
    call_command("rotate_field_keys")
    event = AuditEvent.objects.get(action=AuditAction.FIELD_KEYS_ROTATED)
    assert set(event.changes["resealed"].values()) == {0}


def test_rotation_without_a_key_still_in_use_stops_and_says_which(world, push, settings):
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"old:{KEY_OLD}")
    _record(world, push)
    settings.FIELD_ENCRYPTION_KEYS = crypto.parse_keys(f"new:{KEY_NEW}")
    with pytest.raises(CommandError, match="no key 'old' in FIELD_ENCRYPTION_KEYS"):
        call_command("rotate_field_keys")
    assert not AuditEvent.objects.filter(action=AuditAction.FIELD_KEYS_ROTATED).exists()


def test_reindex_makes_identifiers_findable_under_a_new_blind_index_key(world, push, settings):
    recorded = _record(world, push)
    settings.BLIND_INDEX_KEY = b"r" * 32
    assert list(selectors.identifier_matches(PHONE_TYPED)) == []
    call_command("rotate_field_keys", "--reindex")
    assert [link.lead_id for link in selectors.identifier_matches(PHONE_TYPED)[0].lead_links.all()] == [
        recorded.lead.pk
    ]
    event = AuditEvent.objects.get(action=AuditAction.FIELD_KEYS_ROTATED)
    assert event.changes["reindexed"] == {"cases_identifier.value_index": Identifier.objects.count()}


def _migration(app: str, name: str) -> Any:
    return importlib.import_module(f"{app}.migrations.{name}")


def test_the_migration_encrypts_rows_written_before_encryption(world, push):
    """An existing database: rows in clear (as before the upgrade) and identifiers without a
    blind index come out encrypted and indexed; the way back opens them again."""
    recorded = _record(world, push)
    before = _reading_everything()
    schema_editor = type("Editor", (), {"connection": connection})()
    for app, name in (("cases", "0005_encrypt_existing_rows"), ("intercept", "0004_encrypt_existing_rows")):
        _migration(app, name).decrypt(None, schema_editor)
    assert NAME in _raw("cases_lead", "display_name")
    assert BODY in _raw("intercept_message", "body")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_identifier SET value_index = 'stale-' || id")
    for app, name in (("cases", "0005_encrypt_existing_rows"), ("intercept", "0004_encrypt_existing_rows")):
        _migration(app, name).encrypt(None, schema_editor)
    for name in SEALED_COLUMNS:
        assert all(v.startswith("enc:v1:") for v in _raw(*name.split(".")) if v), name
    assert _reading_everything() == before
    assert selectors.identifier_matches(PHONE_TYPED).get().lead_links.get().lead_id == recorded.lead.pk


@pytest.mark.parametrize(
    ("path", "typed"),
    [
        ("/admin/cases/lead/", "305.555.0199"),
        ("/admin/cases/identifier/", "MARCUS.W@example.org"),
        ("/admin/cases/leadidentifier/", "@mw_night"),
    ],
)
def test_the_admin_finds_rows_by_an_identifier_typed_any_way(world, push, client, path, typed):
    recorded = _record(world, push)
    root = User.objects.create_superuser("root", "root@example.org", "a-long-enough-password-1")
    client.force_login(root)
    found = client.get(path, {"q": typed})
    assert found.status_code == 200
    assert found.context["cl"].result_count == 1
    row = found.context["cl"].result_list[0]
    lead_id = getattr(row, "lead_id", None) or getattr(row, "pk", None)
    if isinstance(row, Identifier):
        lead_id = row.lead_links.get().lead_id
    assert lead_id == recorded.lead.pk
    assert client.get(path, {"q": "305.555.0100"}).context["cl"].result_count == 0


def test_a_name_typed_to_look_like_a_ciphertext_is_sealed_like_any_other(world):
    lead = LeadFactory(case=world.case, display_name="enc:v1:dev:AAAA")
    assert Lead.objects.get(pk=lead.pk).display_name == "enc:v1:dev:AAAA"


@pytest.mark.parametrize(
    "query",
    [
        lambda: Lead.objects.filter(display_name="Marcus"),
        lambda: Identifier.objects.filter(value__in=[PHONE]),
        lambda: Conversation.objects.filter(buyer__phone=PHONE),
        lambda: Message.objects.filter(body__icontains="motel"),
    ],
    ids=["exact", "in", "json key", "icontains"],
)
def test_filtering_an_encrypted_column_is_refused_rather_than_silently_empty(db, query):
    with pytest.raises(FieldError, match="is encrypted"):
        query()
