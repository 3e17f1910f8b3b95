"""Verification as it runs outside a transaction on PostgreSQL: blocks of the log queried ahead
on parallel connections while the caller checks the answers in order. The log is cut into
blocks of four events so that a small log spans many of them."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from audit import verify_pg
from audit.models import AuditEvent
from audit.sealing import seal_pending
from audit.services import checkpoint_create
from audit.verify import verify_log

from .test_tamper import record

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def execute_without_triggers(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


@pytest.fixture
def log(world: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(verify_pg, "BLOCK_LEVEL", 2)
    calls: list[tuple[int, int]] = []
    block_on_thread = verify_pg._block_on_thread

    def spy(lo: int, hi: int, canonical: str) -> Any:
        calls.append((lo, hi))
        return block_on_thread(lo, hi, canonical)

    monkeypatch.setattr(verify_pg, "_block_on_thread", spy)
    record(world, 37)
    seal_pending()
    checkpoint_create(actor=None)
    size = AuditEvent.objects.count()
    result = verify_log()
    assert (result.ok, result.checked, result.first_bad_seq) == (True, size, None), result.problems
    assert calls == [(lo, min(size, lo + 3)) for lo in range(1, size + 1, 4)], "every block on a worker connection"
    return size


def test_an_untouched_log_verifies_across_many_blocks_on_parallel_connections(log: int) -> None:
    assert log > 40
    assert not connection.in_atomic_block


def test_a_changed_field_deep_in_the_log_is_caught_at_its_seq(log: int) -> None:
    execute_without_triggers("UPDATE audit_auditevent SET actor_name = 'someone_else' WHERE seq = 23", [])
    result = verify_log()
    assert (result.ok, result.first_bad_seq) == (False, 23), result.problems
    assert "seq 23: entry hash does not match its contents" in result.problems


def test_a_deleted_event_on_a_block_edge_is_caught_and_stops_the_walk(log: int) -> None:
    execute_without_triggers("DELETE FROM audit_auditevent WHERE seq = %s", [17])
    result = verify_log()
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 17, 16), result.problems
    assert "seq 17 is missing" in result.problems


def test_a_broken_link_in_a_later_block_is_caught_at_its_seq(log: int) -> None:
    execute_without_triggers("UPDATE audit_auditevent SET prev_hash = %s WHERE seq = 30", ["ab" * 32])
    result = verify_log()
    assert (result.ok, result.first_bad_seq) == (False, 30), result.problems
    assert "seq 30: previous hash does not link to seq 29" in result.problems
