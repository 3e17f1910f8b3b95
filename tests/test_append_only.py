"""Custody events and audit events are append-only at the model, the queryset and the database:
every way to change or remove a row (ORM, raw SQL, TRUNCATE, upsert) is refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, IntegrityError, connection, transaction

from audit.models import AuditEvent
from caseapi.appendonly import AppendOnlyError
from cases.models import CustodyEvent
from tests.factories import EvidenceFactory

TABLES = {"audit": ("audit_auditevent", "action"), "custody": ("cases_custodyevent", "note")}


@pytest.fixture
def custody_event(world: Any) -> CustodyEvent:
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("chat.txt", b"bytes that matter"))
    return CustodyEvent.objects.get(evidence=item)


@pytest.fixture
def audit_event(world: Any) -> AuditEvent:
    return AuditEvent.objects.filter(case_id=world.case.pk).first()


def row_of(kind: str, custody_event: CustodyEvent, audit_event: AuditEvent) -> Any:
    return audit_event if kind == "audit" else custody_event


def db_pk(row: Any) -> Any:
    return type(row)._meta.pk.get_db_prep_value(row.pk, connection)


def snapshot(model: type, pk: Any) -> dict[str, Any]:
    return model.objects.values().get(pk=pk)


def execute_refused(sql: str, params: list[Any] | None = None) -> DatabaseError:
    """Run `sql` in a savepoint and return the database's refusal (the test fails if none)."""
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return refused.value


# ---------------------------------------------------------------- model and queryset


@pytest.mark.parametrize("kind", ["audit", "custody"])
def test_saving_an_existing_row_is_refused(kind, custody_event, audit_event):
    row = row_of(kind, custody_event, audit_event)
    before = snapshot(type(row), row.pk)
    setattr(row, TABLES[kind][1], "tampered")
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.save(update_fields=[TABLES[kind][1]])
    with pytest.raises(AppendOnlyError):
        row.save(force_update=True)
    assert snapshot(type(row), row.pk) == before


@pytest.mark.parametrize("kind", ["audit", "custody"])
def test_deleting_a_row_is_refused(kind, custody_event, audit_event):
    row = row_of(kind, custody_event, audit_event)
    with pytest.raises(AppendOnlyError):
        row.delete()
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.parametrize("kind", ["audit", "custody"])
def test_queryset_update_and_delete_are_refused(kind, custody_event, audit_event):
    row = row_of(kind, custody_event, audit_event)
    model = type(row)
    column = TABLES[kind][1]
    before = snapshot(model, row.pk)
    with pytest.raises(AppendOnlyError):
        model.objects.filter(pk=row.pk).update(**{column: "tampered"})
    with pytest.raises(AppendOnlyError):
        model.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        model.objects.none().update(**{column: "tampered"})
    setattr(row, column, "tampered")
    with pytest.raises(AppendOnlyError):
        model.objects.bulk_update([row], [column])
    with pytest.raises(AppendOnlyError):
        model.objects.update_or_create(pk=row.pk, defaults={column: "tampered"})
    assert snapshot(model, row.pk) == before


def test_related_manager_cannot_update_or_delete_custody(custody_event):
    item = custody_event.evidence
    with pytest.raises(AppendOnlyError):
        item.custody_events.update(note="tampered")
    with pytest.raises(AppendOnlyError):
        item.custody_events.all().delete()
    assert item.custody_events.count() == 1


@pytest.mark.parametrize("kind", ["audit", "custody"])
def test_a_new_instance_with_an_existing_key_cannot_overwrite(kind, custody_event, audit_event):
    row = row_of(kind, custody_event, audit_event)
    model = type(row)
    before = snapshot(model, row.pk)
    clone = model.objects.get(pk=row.pk)
    clone._state.adding = True
    setattr(clone, TABLES[kind][1], "tampered")
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()
    assert snapshot(model, row.pk) == before


def test_new_rows_can_still_be_added(custody_event):
    before = CustodyEvent.objects.count()
    CustodyEvent.objects.create(
        evidence=custody_event.evidence,
        action="sealed",
        actor=custody_event.actor,
        occurred_at=custody_event.occurred_at,
    )
    assert CustodyEvent.objects.count() == before + 1


# ---------------------------------------------------------------- database triggers


@pytest.mark.parametrize("kind", ["audit", "custody"])
def test_database_refuses_raw_update(kind, custody_event, audit_event):
    row = row_of(kind, custody_event, audit_event)
    table, column = TABLES[kind]
    before = snapshot(type(row), row.pk)
    error = execute_refused(f"UPDATE {table} SET {column} = %s WHERE id = %s", ["tampered", db_pk(row)])
    assert "append-only" in str(error)
    assert snapshot(type(row), row.pk) == before


@pytest.mark.parametrize("kind", ["audit", "custody"])
def test_database_refuses_raw_delete(kind, custody_event, audit_event):
    row = row_of(kind, custody_event, audit_event)
    table = TABLES[kind][0]
    count = type(row).objects.count()
    error = execute_refused(f"DELETE FROM {table} WHERE id = %s", [db_pk(row)])
    assert "append-only" in str(error)
    error = execute_refused(f"DELETE FROM {table}")
    assert "append-only" in str(error)
    assert type(row).objects.count() == count


@pytest.mark.parametrize("kind", ["audit", "custody"])
def test_database_refuses_an_upsert_over_an_existing_row(kind, custody_event, audit_event):
    """SQLite's INSERT OR REPLACE deletes the old row without firing DELETE triggers (unless
    recursive_triggers is on); PostgreSQL's ON CONFLICT DO UPDATE fires UPDATE triggers."""
    row = row_of(kind, custody_event, audit_event)
    model = type(row)
    table, column = TABLES[kind]
    before = snapshot(model, row.pk)
    count = model.objects.count()
    with connection.cursor() as cursor:
        columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
    select = ", ".join("%s" if c == column else c for c in columns)
    if connection.vendor == "postgresql":
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} WHERE id = %s "
            f"ON CONFLICT (id) DO UPDATE SET {column} = EXCLUDED.{column}"
        )
    else:
        sql = f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} WHERE id = %s"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, ["tampered", db_pk(row)])
    except DatabaseError:
        pass
    assert model.objects.count() == count
    assert snapshot(model, row.pk) == before


@pytest.mark.postgres_only
@pytest.mark.parametrize("table", ["audit_auditevent", "cases_custodyevent"])
def test_database_refuses_truncate(table, custody_event, audit_event):
    counts = (AuditEvent.objects.count(), CustodyEvent.objects.count())
    with connection.cursor() as cursor:
        # Fire the test transaction's deferred foreign-key checks now; PostgreSQL refuses a
        # TRUNCATE with pending trigger events, which would hide what the append-only trigger does.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    error = execute_refused(f"TRUNCATE {table} CASCADE")
    assert "append-only" in str(error)
    assert (AuditEvent.objects.count(), CustodyEvent.objects.count()) == counts


def test_the_connection_stays_usable_after_a_refusal(world, audit_event):
    execute_refused("DELETE FROM audit_auditevent WHERE id = %s", [audit_event.pk])
    assert AuditEvent.objects.filter(pk=audit_event.pk).exists()
