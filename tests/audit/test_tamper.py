"""Tampering with the audit log: the triggers refuse every change but the sequencer's, and
whatever gets past them (a superuser who disables triggers) is caught by verification, which
names the first bad sequence number."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit import canonical_sql, chain, merkle, note, signing, tree
from audit.models import AuditAction, AuditEvent, ChainHead, Checkpoint, TreeNode
from audit.sealing import seal_batch, seal_pending
from audit.services import audit_record, checkpoint_create
from audit.sinks import DirectorySink
from audit.verify import verify_log

# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True, params=[16, 2], ids=["one-block", "blocks-of-4"])
def block_level(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every case runs twice on PostgreSQL: with the log inside one block, and cut into blocks
    of four events, so that gaps, links and subtrees across block edges are checked too."""
    if connection.vendor != "postgresql" and request.param != 16:
        pytest.skip("blocks are how PostgreSQL verifies; SQLite streams every event")
    from audit import verify_pg

    monkeypatch.setattr(verify_pg, "BLOCK_LEVEL", request.param)
    return request.param


def execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def refused(sql: str, params: list[Any] | None = None) -> DatabaseError:
    """Run `sql` in a savepoint and return the database's refusal (the test fails if none)."""
    with pytest.raises(DatabaseError) as error, transaction.atomic():
        execute(sql, params)
    return error.value


def _pg_constraints_immediate() -> None:
    # Fire the test transaction's deferred foreign-key checks now: PostgreSQL refuses ALTER
    # TABLE and TRUNCATE on a table with pending trigger events.
    execute("SET CONSTRAINTS ALL IMMEDIATE")


@contextmanager
def triggers_disabled(*tables: str) -> Iterator[None]:
    """What a database superuser can do: switch off the append-only triggers of `tables`.
    PostgreSQL: ALTER TABLE ... DISABLE TRIGGER USER, re-enabled after. SQLite: drop the
    triggers and re-create them from the SQL sqlite_master saved."""
    saved: list[str] = []
    if connection.vendor == "postgresql":
        _pg_constraints_immediate()
        for table in tables:
            execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    else:
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
                for name, sql in cursor.fetchall():
                    saved.append(sql)
                    cursor.execute(f'DROP TRIGGER "{name}"')
    try:
        yield
    finally:
        if connection.vendor == "postgresql":
            for table in tables:
                execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            for sql in saved:
                execute(sql)


def record(world: Any, count: int) -> None:
    for n in range(count):
        audit_record(
            action=AuditAction.CASE_VIEWED, actor=world.lead, target=world.case, case_id=world.case.pk, changes={"n": n}
        )


def checkpoint(capture: Any) -> Checkpoint:
    """A checkpoint over everything sealed, written to the external sink as on commit."""
    with capture(execute=True):
        result = checkpoint_create(actor=None)
    return result.checkpoint


def assert_caught(first_bad_seq: int | None, *problem_parts: str) -> None:
    """verify_log and `manage.py verify_audit` both fail and name `first_bad_seq`."""
    result = verify_log()
    assert result.ok is False
    assert result.first_bad_seq == first_bad_seq, result.problems
    for part in problem_parts:
        assert any(part in p for p in result.problems), (part, result.problems)
    err = StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit", stdout=StringIO(), stderr=err)
    assert f"first bad seq {first_bad_seq};" in str(failed.value)
    assert "FAIL " in err.getvalue()


def event_id(seq: int) -> int:
    return AuditEvent.objects.values_list("id", flat=True).get(seq=seq)


@pytest.fixture
def log(world: Any, django_capture_on_commit_callbacks: Any) -> int:
    """A sealed log of at least 20 events under a signed checkpoint (in the database and the
    sink) that verifies; returns its size."""
    record(world, 20)
    seal_pending()
    size = checkpoint(django_capture_on_commit_callbacks).tree_size
    assert size == AuditEvent.objects.count() >= 20
    result = verify_log()
    assert (result.ok, result.checked, result.first_bad_seq) == (True, size, None), result.problems
    return size


# ---------------------------------------------------------------- triggers: audit events


@pytest.mark.parametrize(
    ("assignment", "params"),
    [
        ("action = %s", ["auth.login_failed"]),
        ("actor_name = %s", ["someone_else"]),
        ("entry_hash = %s", ["ab" * 32]),
        ("prev_hash = %s", ["cd" * 32]),
        ("seq = NULL, prev_hash = '', entry_hash = ''", None),
        ("seq = seq + 1000", None),
        ("sealed_at = NULL", None),
    ],
    ids=["field", "name", "entry_hash", "prev_hash", "unseal", "renumber", "sealed_at"],
)
def test_a_sealed_event_refuses_any_update(log, assignment, params):
    before = AuditEvent.objects.values().get(seq=3)
    error = refused(f"UPDATE audit_auditevent SET {assignment} WHERE seq = 3", params)
    assert "append-only" in str(error)
    assert AuditEvent.objects.values().get(seq=3) == before


def test_an_unsealed_event_refuses_a_field_change_even_while_being_sealed(log, world):
    record(world, 1)
    pending = AuditEvent.objects.get(seq__isnull=True)
    sealing = "seq = %s, prev_hash = %s, entry_hash = %s"
    chain_values = [log + 1, "00" * 32, "11" * 32]
    for change, value in (("action", "auth.login_failed"), ("actor_name", "someone_else"), ("case_id", None)):
        refused(
            f"UPDATE audit_auditevent SET {sealing}, {change} = %s WHERE id = %s", [*chain_values, value, pending.pk]
        )
    refused(
        f"UPDATE audit_auditevent SET {sealing}, created_at = %s WHERE id = %s",
        [*chain_values, pending.created_at.replace(year=2001), pending.pk],
    )
    refused("UPDATE audit_auditevent SET action = 'auth.login_failed' WHERE id = %s", [pending.pk])
    refused("UPDATE audit_auditevent SET entry_hash = %s WHERE id = %s", ["11" * 32, pending.pk])
    refused("UPDATE audit_auditevent SET changes = changes, seq = NULL WHERE id = %s", [pending.pk])
    pending.refresh_from_db()
    assert (pending.seq, pending.action, pending.entry_hash) == (None, AuditAction.CASE_VIEWED, "")
    assert seal_pending() == 1
    pending.refresh_from_db()
    assert pending.seq == log + 1
    assert verify_log().ok


def test_the_sealing_update_itself_is_allowed_on_an_unsealed_event(log, world):
    record(world, 1)
    pending = AuditEvent.objects.get(seq__isnull=True)
    execute(
        "UPDATE audit_auditevent SET seq = %s, prev_hash = %s, entry_hash = %s WHERE id = %s",
        [log + 1, "00" * 32, "11" * 32, pending.pk],
    )
    assert AuditEvent.objects.get(pk=pending.pk).seq == log + 1


def test_an_event_sealed_by_hand_with_a_forged_chain_is_caught(log, world):
    """The trigger cannot tell the sequencer from anyone else filling the chain fields of an
    unsealed row; verification can."""
    record(world, 2)
    forged, honest = AuditEvent.objects.filter(seq__isnull=True).order_by("id")
    execute(
        "UPDATE audit_auditevent SET seq = %s, prev_hash = %s, entry_hash = %s WHERE id = %s",
        [log + 2, "00" * 32, "11" * 32, forged.pk],
    )
    assert seal_pending() == 1
    assert AuditEvent.objects.get(pk=honest.pk).seq == log + 1
    assert_caught(log + 2, f"seq {log + 2}: previous hash does not link")


def test_an_event_cannot_be_inserted_already_sealed(log, world):
    """Writers insert unsealed rows; only the sequencer fills the chain. A row inserted with a
    sequence number of its own would take the next seq and wedge the sequencer."""
    template = AuditEvent.objects.values().get(seq=1)
    columns = [c for c in template if c != "id"]
    values = {**template, "seq": log + 1, "prev_hash": "00" * 32, "entry_hash": "11" * 32}
    placeholders = ", ".join("%s" for _ in columns)
    params = [values[c] if c != "changes" else "{}" for c in columns]
    refused(f"INSERT INTO audit_auditevent ({', '.join(columns)}) VALUES ({placeholders})", params)
    record(world, 1)
    assert seal_pending() == 1
    assert verify_log().ok


def test_events_refuse_delete_sealed_or_not(log, world):
    record(world, 1)
    pending = AuditEvent.objects.get(seq__isnull=True)
    count = AuditEvent.objects.count()
    assert "append-only" in str(refused("DELETE FROM audit_auditevent WHERE seq = %s", [log]))
    assert "append-only" in str(refused("DELETE FROM audit_auditevent WHERE id = %s", [pending.pk]))
    assert "append-only" in str(refused("DELETE FROM audit_auditevent"))
    assert AuditEvent.objects.count() == count


@pytest.mark.postgres_only
@pytest.mark.parametrize("table", ["audit_auditevent", "audit_treenode", "audit_checkpoint", "audit_chainhead"])
def test_postgresql_refuses_truncate_of_the_log_tables(log, table):
    counts = (AuditEvent.objects.count(), TreeNode.objects.count(), Checkpoint.objects.count())
    head = ChainHead.objects.values().get()
    _pg_constraints_immediate()
    refused(f"TRUNCATE {table} CASCADE")
    assert (AuditEvent.objects.count(), TreeNode.objects.count(), Checkpoint.objects.count()) == counts
    assert ChainHead.objects.values().get() == head


# ---------------------------------------------------------------- triggers: tree, checkpoints, head


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_treenode SET hash = '{}' WHERE level = 1 AND {} = 0".format("ee" * 32, '"index"'),
        'DELETE FROM audit_treenode WHERE level = 1 AND "index" = 0',
        "DELETE FROM audit_treenode",
        "UPDATE audit_checkpoint SET root_hash = '{}'".format("ee" * 32),
        "UPDATE audit_checkpoint SET signed_note = 'forged'",
        "DELETE FROM audit_checkpoint",
    ],
    ids=["node-update", "node-delete", "nodes-delete-all", "cp-root", "cp-note", "cp-delete"],
)
def test_tree_nodes_and_checkpoints_refuse_update_and_delete(log, sql):
    nodes = list(TreeNode.objects.order_by("level", "index").values_list())
    checkpoints = list(Checkpoint.objects.values_list())
    assert "append-only" in str(refused(sql))
    assert list(TreeNode.objects.order_by("level", "index").values_list()) == nodes
    assert list(Checkpoint.objects.values_list()) == checkpoints


@pytest.mark.parametrize("table", ["audit_treenode", "audit_checkpoint"])
def test_tree_nodes_and_checkpoints_refuse_an_upsert_over_an_existing_row(log, table):
    """SQLite's INSERT OR REPLACE deletes the conflicting row without firing DELETE triggers
    unless recursive_triggers is on; PostgreSQL's ON CONFLICT DO UPDATE fires UPDATE triggers."""
    key, column = ('level, "index"', "hash") if table == "audit_treenode" else ("tree_size", "root_hash")
    with connection.cursor() as cursor:
        columns = [f'"{c.name}"' for c in connection.introspection.get_table_description(cursor, table)]
    before = sorted(execute_fetch(f"SELECT * FROM {table}"))
    select = ", ".join("%s" if c == f'"{column}"' else c for c in columns)
    where = 'level = 1 AND "index" = 0' if table == "audit_treenode" else f"tree_size = {log}"
    if connection.vendor == "postgresql":
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} WHERE {where} "
            f'ON CONFLICT ({key}) DO UPDATE SET "{column}" = EXCLUDED."{column}"'
        )
    else:
        sql = f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) SELECT {select} FROM {table} WHERE {where}"
    try:
        with transaction.atomic():
            execute(sql, ["ee" * 32])
    except DatabaseError:
        pass
    assert sorted(execute_fetch(f"SELECT * FROM {table}")) == before


def execute_fetch(sql: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [tuple(str(v) for v in row) for row in cursor.fetchall()]


def test_the_chain_head_refuses_to_shrink_or_disappear(log):
    refused("UPDATE audit_chainhead SET size = size - 1")
    refused("UPDATE audit_chainhead SET size = 0, last_hash = %s", [chain.GENESIS_HASH])
    refused("DELETE FROM audit_chainhead")
    head = ChainHead.objects.get()
    assert head.size == log
    execute("UPDATE audit_chainhead SET size = size")
    assert ChainHead.objects.get().size == log


def test_disabling_and_restoring_triggers_in_a_test_restores_the_refusals(log):
    with triggers_disabled("audit_auditevent"):
        execute("UPDATE audit_auditevent SET user_agent = 'x' WHERE seq = 2")
    refused("UPDATE audit_auditevent SET user_agent = 'y' WHERE seq = 2")
    assert AuditEvent.objects.get(seq=2).user_agent == "x"


# ---------------------------------------------------------------- (a) a changed field


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "auth.login_failed"),
        ("actor_name", "someone_else"),
        ("target_id", "00000000-0000-4000-8000-000000000000"),
        ("user_agent", "curl/0.0"),
        ("request_id", "forged"),
    ],
)
def test_a_field_changed_with_the_trigger_off_is_caught_at_its_seq(log, column, value):
    with triggers_disabled("audit_auditevent"):
        execute(f"UPDATE audit_auditevent SET {column} = %s WHERE seq = 7", [value])
    assert AuditEvent.objects.values_list(column, flat=True).get(seq=7) == value
    assert_caught(7, "seq 7: entry hash does not match its contents")


def test_a_changed_time_is_caught_at_its_seq(log):
    event = AuditEvent.objects.get(seq=5)
    with triggers_disabled("audit_auditevent"):
        execute(
            "UPDATE audit_auditevent SET created_at = %s WHERE seq = 5",
            [event.created_at.replace(microsecond=(event.created_at.microsecond + 1) % 1_000_000)],
        )
    assert_caught(5, "seq 5: entry hash does not match")


def test_a_changed_field_of_an_event_sealed_after_the_checkpoint_is_caught(log, world):
    record(world, 3)
    seal_pending()
    with triggers_disabled("audit_auditevent"):
        execute("UPDATE audit_auditevent SET actor_name = 'x' WHERE seq = %s", [log + 2])
    assert_caught(log + 2, f"seq {log + 2}: entry hash")


def test_a_changed_entry_hash_is_reported_at_its_own_seq(log):
    """The chain pinpoints the event; the checkpoint over it fails too, which must not move
    the report back to seq 1."""
    with triggers_disabled("audit_auditevent"):
        execute("UPDATE audit_auditevent SET entry_hash = %s WHERE seq = 9", ["ab" * 32])
    assert_caught(9, "seq 9: entry hash does not match", "seq 10: previous hash does not link")


def test_a_broken_link_is_caught_at_its_seq(log):
    with triggers_disabled("audit_auditevent"):
        execute("UPDATE audit_auditevent SET prev_hash = %s WHERE seq = 11", ["ab" * 32])
    assert_caught(11, "seq 11: previous hash does not link to seq 10")


def test_two_events_swapping_places_is_caught_at_the_first(log):
    a, b = event_id(4), event_id(6)
    with triggers_disabled("audit_auditevent"):
        execute("UPDATE audit_auditevent SET seq = -1 WHERE id = %s", [a])
        execute("UPDATE audit_auditevent SET seq = 4 WHERE id = %s", [b])
        execute("UPDATE audit_auditevent SET seq = 6 WHERE id = %s", [a])
    assert_caught(4)


# ---------------------------------------------------------------- (a') the canonical column (PostgreSQL)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the generated canonical column is PostgreSQL's"
)

NASTY = "".join(chr(c) for c in range(1, 32)) + ' "quoted" back\\slash \u00e9t\u00e9 \U0001f600 \u2028 \x7f'


@postgresql_only
def test_the_canonical_column_is_the_chain_canonical_json_byte_for_byte(world):
    """Control characters, quotes, backslashes and non-ASCII text in every string field and
    in changes: the database's column and audit.chain agree, and the log verifies."""
    audit_record(
        action=AuditAction.CASE_VIEWED,
        actor=world.lead,
        actor_name=NASTY[:150],
        target_type="cases.case",
        target_id=NASTY[:64],
        case_id=world.case.pk,
        changes={NASTY: [NASTY, None], "n": 1, "ab": {"nested": [True, False, 7]}, "": ""},
    )
    seal_pending()
    rows = AuditEvent.objects.order_by("seq").values(*chain.CHAIN_FIELDS, "id")
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, canonical_json FROM audit_auditevent")
        stored = dict(cursor.fetchall())
    assert len(stored) == len(rows) >= 1
    for row in rows:
        assert stored[row["id"]].encode() == chain.canonical_entry(row)
    assert verify_log().ok


@postgresql_only
def test_the_canonical_column_cannot_be_written_even_with_the_triggers_off(log):
    with triggers_disabled("audit_auditevent"):
        error = refused("UPDATE audit_auditevent SET canonical_json = '{}' WHERE seq = 4")
    assert "canonical_json" in str(error)
    assert verify_log().ok


@postgresql_only
def test_a_field_changed_under_a_canonical_column_no_longer_generated_is_caught_at_its_seq(log):
    """Dropping the expression freezes the column: the field changes and the column does not.
    Verification notices the column and hashes the entries from their columns instead."""
    with triggers_disabled("audit_auditevent"):
        execute("ALTER TABLE audit_auditevent ALTER COLUMN canonical_json DROP EXPRESSION")
        execute("UPDATE audit_auditevent SET actor_name = 'someone_else' WHERE seq = 6")
    assert_caught(6, "no longer generated by the canonical expression", "seq 6: entry hash does not match")


@postgresql_only
def test_a_canonical_column_regenerated_by_a_forging_expression_is_caught_at_its_seq(log):
    """A column made again with an expression that keeps the old JSON for one event."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT canonical_json FROM audit_auditevent WHERE seq = 8")
        (original,) = cursor.fetchone()
    literal = original.replace("'", "''")
    forged = f"CASE WHEN seq = 8 THEN '{literal}' ELSE ({canonical_sql.EXPRESSION}) END"
    with triggers_disabled("audit_auditevent"):
        execute("ALTER TABLE audit_auditevent DROP COLUMN canonical_json")
        execute("UPDATE audit_auditevent SET action = 'auth.login_failed' WHERE seq = 8")
        execute(f"ALTER TABLE audit_auditevent ADD COLUMN canonical_json text GENERATED ALWAYS AS ({forged}) STORED")
    with connection.cursor() as cursor:
        cursor.execute("SELECT canonical_json FROM audit_auditevent WHERE seq = 8")
        assert cursor.fetchone() == (original,)
    assert_caught(8, "no longer generated by the canonical expression", "seq 8: entry hash does not match")


@postgresql_only
def test_a_log_without_its_canonical_column_is_still_verified_from_the_columns(log):
    with triggers_disabled("audit_auditevent"):
        execute("ALTER TABLE audit_auditevent DROP COLUMN canonical_json")
        execute("UPDATE audit_auditevent SET user_agent = 'curl/0.0' WHERE seq = 2")
    assert_caught(2, "has no canonical_json column", "seq 2: entry hash does not match")


# ---------------------------------------------------------------- (b) a deleted row


@pytest.mark.parametrize("where", ["first", "middle"])
def test_a_deleted_event_is_caught_at_its_seq(log, where):
    seq = 1 if where == "first" else log // 2
    with triggers_disabled("audit_auditevent"):
        execute("DELETE FROM audit_auditevent WHERE seq = %s", [seq])
    assert not AuditEvent.objects.filter(seq=seq).exists()
    assert_caught(seq, f"seq {seq} is missing")


def test_a_deleted_event_whose_successors_were_renumbered_is_caught(log):
    with triggers_disabled("audit_auditevent"):
        execute("DELETE FROM audit_auditevent WHERE seq = 8")
        for seq in range(9, log + 1):
            execute("UPDATE audit_auditevent SET seq = seq - 1 WHERE seq = %s", [seq])
    assert_caught(8, "seq 8: previous hash does not link")


# ---------------------------------------------------------------- (c) a truncated tail


def test_a_truncated_tail_is_caught_at_the_first_missing_seq(log):
    with triggers_disabled("audit_auditevent"):
        execute("DELETE FROM audit_auditevent WHERE seq > %s", [log - 3])
    assert_caught(log - 2, f"checkpoint covers {log} events but only {log - 3} are present")


def test_a_truncated_tail_with_its_tree_and_database_checkpoints_gone_is_caught_by_the_sink(log):
    """Everything in the database is cut back consistently; the external copy still covers
    the lost events."""
    with triggers_disabled("audit_auditevent", "audit_treenode", "audit_checkpoint"):
        execute("DELETE FROM audit_auditevent WHERE seq > %s", [log - 3])
        execute("DELETE FROM audit_treenode")
        execute("DELETE FROM audit_checkpoint")
    assert_caught(log - 2, f"external checkpoint at size {log} is missing from the database")


# ---------------------------------------------------------------- (d) a consistent rewrite


def rewrite_chain_from(seq: int, column: str, value: str) -> None:
    """Change `column` of event `seq`, then recompute every later link and hash with the same
    code the sequencer uses, and rebuild the stored tree: the chain alone verifies again."""
    with triggers_disabled("audit_auditevent", "audit_treenode"):
        execute(f"UPDATE audit_auditevent SET {column} = %s WHERE seq = %s", [value, seq])
        rows = list(
            AuditEvent.objects.filter(seq__gte=seq)
            .order_by("seq")
            .values("id", "seq", "prev_hash", *[c for c in chain.CHAIN_FIELDS if c != "seq"])
        )
        prev = rows[0]["prev_hash"]
        for row in rows:
            digest = chain.entry_hash(prev, chain.canonical_entry(row))
            execute(
                "UPDATE audit_auditevent SET prev_hash = %s, entry_hash = %s WHERE id = %s", [prev, digest, row["id"]]
            )
            prev = digest
        execute("DELETE FROM audit_treenode")
        compact = tree.CompactRange(0, [])
        for entry in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values_list("entry_hash", flat=True):
            for level, index, node in compact.append(tree.leaf_of(entry)):
                TreeNode.objects.create(level=level, index=index, hash=node.hex())
    execute("UPDATE audit_chainhead SET last_hash = %s", [prev])


def assert_chain_alone_verifies() -> None:
    prev = chain.GENESIS_HASH
    for row in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values():
        assert row["prev_hash"] == prev
        assert row["entry_hash"] == chain.entry_hash(prev, chain.canonical_entry(row))
        prev = row["entry_hash"]


@pytest.fixture
def two_checkpoints(log: int, world: Any, django_capture_on_commit_callbacks: Any) -> tuple[int, int]:
    record(world, 9)
    seal_pending()
    second = checkpoint(django_capture_on_commit_callbacks).tree_size
    assert second == log + 9
    assert verify_log().ok
    return log, second


def test_a_consistently_rewritten_chain_is_caught_by_the_signed_checkpoint(two_checkpoints):
    first, second = two_checkpoints
    rewrite_chain_from(first + 3, "actor_name", "rewritten")
    assert_chain_alone_verifies()
    assert_caught(first + 1, f"the tree of size {second} does not match its signed checkpoint")


def test_a_rewritten_chain_over_the_old_stored_tree_is_caught_between_checkpoint_and_rewrite(two_checkpoints):
    """The rewriter leaves the stored subtrees alone: they still match the signed roots but
    no longer the entries under them."""
    first, second = two_checkpoints
    nodes = list(TreeNode.objects.order_by("level", "index").values_list("level", "index", "hash"))
    rewrite_chain_from(first + 3, "actor_name", "rewritten")
    with triggers_disabled("audit_treenode"):
        execute("DELETE FROM audit_treenode")
    for level, index, node in nodes:
        TreeNode.objects.create(level=level, index=index, hash=node)
    assert_chain_alone_verifies()
    result = verify_log()
    assert result.ok is False
    assert first + 1 <= result.first_bad_seq <= first + 3, result.problems


def test_a_rewrite_before_the_first_checkpoint_is_caught_from_seq_one(two_checkpoints):
    first, second = two_checkpoints
    rewrite_chain_from(4, "action", "auth.login_failed")
    assert_chain_alone_verifies()
    assert_caught(1, f"the tree of size {first} does not match its signed checkpoint")


def test_a_rewrite_with_the_database_checkpoints_deleted_is_caught_by_the_sink(two_checkpoints):
    first, second = two_checkpoints
    rewrite_chain_from(first + 3, "user_agent", "rewritten")
    with triggers_disabled("audit_checkpoint"):
        execute("DELETE FROM audit_checkpoint")
    assert_chain_alone_verifies()
    # Only the sink's latest checkpoint is left, so nothing before it is known good.
    assert_caught(1, f"the tree of size {second} does not match its signed checkpoint")


def test_a_rewrite_resealed_under_a_new_checkpoint_is_still_inconsistent_with_the_old(
    two_checkpoints, world, django_capture_on_commit_callbacks
):
    """Even after new events and a fresh, honestly signed checkpoint over the rewritten log."""
    first, second = two_checkpoints
    rewrite_chain_from(first + 3, "actor_name", "rewritten")
    record(world, 2)
    seal_pending()
    third = checkpoint(django_capture_on_commit_callbacks).tree_size
    assert third == second + 2
    assert_caught(first + 1, f"the tree of size {second} does not match its signed checkpoint")


# ---------------------------------------------------------------- (e) a forged checkpoint


def _forged_notes(size: int, root: bytes, origin: str) -> dict[str, str]:
    body = note.CheckpointBody(origin=origin, tree_size=size, root_hash=root).text()
    genuine = signing.signer()
    other = note.Signer.generate(genuine.name)
    stranger = note.Signer.generate("attacker.example/audit")
    signed = genuine.sign(body)
    sig_line = signed.rstrip("\n").rsplit("\n", 1)[1]
    raw = base64.b64decode(sig_line.split(" ")[-1])
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    return {
        "same-name-other-key": other.sign(body),
        "other-name": stranger.sign(body),
        "bad-signature": signed.replace(
            sig_line, sig_line.rsplit(" ", 1)[0] + " " + base64.b64encode(flipped).decode()
        ),
        "text-changed-after-signing": signed.replace(
            body, note.CheckpointBody(origin=origin, tree_size=size, root_hash=b"\xee" * 32).text()
        ),
        "unsigned": body,
    }


@pytest.mark.parametrize(
    "kind", ["same-name-other-key", "other-name", "bad-signature", "text-changed-after-signing", "unsigned"]
)
def test_a_forged_checkpoint_row_is_reported(log, settings, kind):
    size = log - 5
    forged = _forged_notes(size, tree.root_at(size), settings.AUDIT_LOG_ORIGIN)[kind]
    Checkpoint.objects.create(
        tree_size=size, root_hash=tree.root_at(size).hex(), signed_note=forged, key_name=signing.signer().name
    )
    assert_caught(None, f"checkpoint at size {size}:")


def test_a_genuine_note_stored_under_another_size_is_reported(log):
    genuine = Checkpoint.objects.get(tree_size=log)
    Checkpoint.objects.create(
        tree_size=log - 1, root_hash=tree.root_at(log - 1).hex(), signed_note=genuine.signed_note, key_name="x"
    )
    assert_caught(None, f"checkpoint at size {log - 1}: stored fields differ from its signed text")


def test_a_checkpoint_forged_over_a_rewritten_log_does_not_hide_the_rewrite(two_checkpoints, settings):
    """An attacker without the key signs the rewritten tree with a key of their own."""
    first, second = two_checkpoints
    rewrite_chain_from(first + 3, "actor_name", "rewritten")
    record_size = second
    forged = _forged_notes(record_size, tree.root_at(record_size), settings.AUDIT_LOG_ORIGIN)["same-name-other-key"]
    with triggers_disabled("audit_checkpoint"):
        execute("DELETE FROM audit_checkpoint WHERE tree_size = %s", [second])
    Checkpoint.objects.create(
        tree_size=second, root_hash=tree.root_at(second).hex(), signed_note=forged, key_name=signing.signer().name
    )
    assert_caught(first + 1, f"checkpoint at size {second}: no signature by the expected key")


# ---------------------------------------------------------------- (f) the external sink


def test_a_sink_copy_that_differs_from_the_database_is_reported(log, settings):
    body = note.CheckpointBody(origin=settings.AUDIT_LOG_ORIGIN, tree_size=log, root_hash=b"\xee" * 32)
    DirectorySink().write(log, signing.signer().sign(body.text()))
    assert_caught(None, f"external checkpoint at size {log} differs from the database's")


def test_a_sink_copy_with_a_bad_signature_is_reported(log, settings):
    body = note.CheckpointBody(origin=settings.AUDIT_LOG_ORIGIN, tree_size=log, root_hash=tree.root_at(log))
    DirectorySink().write(log, note.Signer.generate(signing.signer().name).sign(body.text()))
    assert_caught(None, "external checkpoint: no signature by the expected key")


def test_a_sink_copy_ahead_of_the_database_is_reported(log, settings):
    body = note.CheckpointBody(origin=settings.AUDIT_LOG_ORIGIN, tree_size=log + 4, root_hash=b"\xee" * 32)
    DirectorySink().write(log + 4, signing.signer().sign(body.text()))
    assert_caught(log + 1, f"external checkpoint at size {log + 4} is missing from the database")


def test_an_untouched_log_with_sink_and_checkpoints_verifies(two_checkpoints):
    first, second = two_checkpoints
    result = verify_log()
    assert (result.ok, result.checked, result.first_bad_seq, result.checkpoint_size) == (True, second, None, second)
    out = StringIO()
    call_command("verify_audit", stdout=out, stderr=StringIO())
    assert out.getvalue().startswith(f"ok: checked {second} events; latest checkpoint size {second}")
    assert merkle.verify_consistency(
        first, second, tree.root_at(first), tree.root_at(second), tree.consistency_proof(first, second)
    )


def test_seal_batch_after_tampering_still_seals_new_events_at_the_tail(log, world):
    with triggers_disabled("audit_auditevent"):
        execute("UPDATE audit_auditevent SET actor_name = 'x' WHERE seq = 2")
    record(world, 1)
    assert seal_batch() == 1
    assert AuditEvent.objects.filter(seq=log + 1).exists()
    assert_caught(2)


@pytest.mark.postgres_only
def test_events_sealed_while_a_verification_runs_do_not_look_like_a_truncated_log(log, world, monkeypatch):
    """The sequencer keeps sealing during a verification (working hours): entries it adds
    after the verification started must not read as a head larger than the entries checked."""
    from audit import verify_pg

    original = verify_pg._verify_blocks

    def seal_more_midway(result: Any, size: int, *args: Any) -> Any:
        record(world, 5)
        seal_pending()
        return original(result, size, *args)

    monkeypatch.setattr(verify_pg, "_verify_blocks", seal_more_midway)
    result = verify_log()
    assert (result.ok, result.first_bad_seq) == (True, None), result.problems
    assert ChainHead.objects.get().size == log + 5
