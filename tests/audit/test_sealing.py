"""Sealing: gapless sequence numbers, the hash chain, stored Merkle subtrees, the worked example
of docs/audit.md, and concurrent writers that never fork the chain or lose an event."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from audit import chain, merkle, note, tree
from audit.models import AuditAction, AuditEvent, ChainHead, TreeNode
from audit.sealing import seal_batch, seal_pending
from audit.services import audit_record, checkpoint_create
from audit.verify import verify_log
from cases import services
from cases.models import CustodyAction, CustodyEvent, Role
from tests.factories import AgencyFactory, CaseFactory, EvidenceFactory, UserFactory

DOC = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
ENTRY_COLUMNS = (
    "id",
    "seq",
    "prev_hash",
    "entry_hash",
    "created_at",
    "actor_id",
    "actor_name",
    "agency_id",
    "action",
    "target_type",
    "target_id",
    "case_id",
    "changes",
    "request_id",
    "ip",
    "user_agent",
)


def sealed_rows() -> list[dict[str, Any]]:
    return list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values(*ENTRY_COLUMNS))


def chain_state() -> list[tuple[Any, ...]]:
    return list(AuditEvent.objects.order_by("id").values_list("id", "seq", "prev_hash", "entry_hash", "sealed_at"))


def record_views(world: Any, count: int) -> list[AuditEvent]:
    return [
        audit_record(
            action=AuditAction.CASE_VIEWED,
            actor=world.lead,
            target=world.case,
            case_id=world.case.pk,
            changes={"n": n},
        )
        for n in range(count)
    ]


def perfect_subtrees(size: int) -> set[tuple[int, int]]:
    """(level, index) of every perfect aligned subtree of 2^level >= 2 leaves inside [0, size)."""
    return {(level, index) for level in range(1, size.bit_length()) for index in range(size >> level)}


# ---------------------------------------------------------------- the chain


def test_sealing_numbers_events_from_one_without_gaps_in_id_order(world):
    record_views(world, 5)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert AuditEvent.objects.filter(seq__isnull=False).count() == 0
    sealed = seal_pending()
    assert sealed == len(ids)
    rows = sealed_rows()
    assert [r["seq"] for r in rows] == list(range(1, len(ids) + 1))
    assert [r["id"] for r in rows] == ids
    head = ChainHead.objects.get()
    assert (head.size, head.last_hash) == (len(ids), rows[-1]["entry_hash"])


def test_each_entry_hash_chains_the_previous_hash_and_the_canonical_entry(world):
    record_views(world, 3)
    seal_pending()
    rows = sealed_rows()
    assert rows[0]["prev_hash"] == chain.GENESIS_HASH == "00" * 32
    prev = chain.GENESIS_HASH
    for row in rows:
        assert row["prev_hash"] == prev
        assert row["entry_hash"] == chain.entry_hash(prev, chain.canonical_entry(row))
        assert re.fullmatch(r"[0-9a-f]{64}", row["entry_hash"])
        prev = row["entry_hash"]


def jsonb_key_order(keys: list[str]) -> list[str]:
    """PostgreSQL's jsonb order: by length in UTF-8 bytes, then bytewise."""
    return sorted(keys, key=lambda k: (len(k.encode()), k.encode()))


def test_canonical_entry_is_jsonb_text_in_utf8_with_a_microsecond_utc_time(world):
    services.case_update(actor=world.lead, case=world.case, data={"title": "Opération Nuit — 東京"})
    seal_pending()
    row = AuditEvent.objects.filter(action=AuditAction.CASE_UPDATED).values(*ENTRY_COLUMNS).get()
    canonical = chain.canonical_entry(row)
    text = canonical.decode("utf-8")
    parsed = json.loads(text)
    assert list(parsed) == jsonb_key_order(list(parsed))
    assert set(parsed) == set(chain.CHAIN_FIELDS)
    assert text.startswith('{"ip": ') and f'"seq": {row["seq"]}, ' in text
    assert "Opération Nuit — 東京".encode() in canonical
    assert "\\u" not in text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", parsed["created_at"])
    assert parsed["created_at"] == row["created_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert parsed["case_id"] == str(world.case.pk)
    assert parsed["seq"] == row["seq"]
    assert parsed["changes"] == {"title": ["Operation Nightfall", "Opération Nuit — 東京"]}
    assert row["entry_hash"] == chain.entry_hash(row["prev_hash"], canonical)


AWKWARD_CHANGES = {
    "z": 1,
    "ab": [None, True, False, -5, 10**20, 0.1],
    "é": {"long key": "tab\there", "k": 'quote" back\\ nl\n ctrl\x01 del\x7f'},
    "emoji": "\U0001f642",
    "ls": "a\u2028b",
    "nul": "a\x00b",
}


def test_awkward_values_seal_and_verify_after_a_round_trip_through_the_database(world):
    """What the database hands back (jsonb reorders keys, numbers and text are re-read) is
    what gets hashed, at sealing and at verification alike."""
    event = audit_record(
        action=AuditAction.CASE_UPDATED,
        actor=world.lead,
        actor_name="Zoë O'Brien",
        target=world.case,
        case_id=world.case.pk,
        changes=AWKWARD_CHANGES,
    )
    seal_pending()
    event.refresh_from_db()
    assert event.changes["nul"] == "a\ufffdb"
    assert event.changes["ab"][4] == 10**20
    assert event.changes["ab"][5] == "0.1", "floats are recorded as text"
    row = AuditEvent.objects.values(*ENTRY_COLUMNS).get(pk=event.pk)
    canonical = chain.canonical_entry(row)
    assert row["entry_hash"] == chain.entry_hash(row["prev_hash"], canonical)
    assert "Zoë O'Brien".encode() in canonical
    assert list(json.loads(canonical)["changes"]) == ["z", "ab", "ls", "é", "nul", "emoji"]
    assert verify_log().ok


@pytest.mark.postgres_only
def test_canonical_entry_is_byte_for_byte_what_postgresql_prints_for_jsonb(world):
    audit_record(
        action=AuditAction.CASE_UPDATED,
        actor=world.lead,
        target=world.case,
        case_id=world.case.pk,
        changes=AWKWARD_CHANGES,
    )
    seal_pending()
    with connection.cursor() as cursor:
        for row in sealed_rows():
            canonical = chain.canonical_entry(row).decode("utf-8")
            cursor.execute("SELECT %s::jsonb::text", [canonical])
            assert cursor.fetchone()[0] == canonical


def test_sealing_twice_changes_nothing(world):
    record_views(world, 4)
    assert seal_pending() > 0

    def state() -> tuple[Any, ...]:
        nodes = list(TreeNode.objects.order_by("level", "index").values_list("level", "index", "hash"))
        return chain_state(), nodes, ChainHead.objects.values_list("size", "last_hash").get()

    before = state()
    assert seal_pending() == 0
    assert seal_batch() == 0
    assert state() == before


def test_an_event_recorded_after_a_seal_gets_the_next_seq_and_links_to_the_tail(world):
    seal_pending()
    tail = AuditEvent.objects.order_by("-seq").values("seq", "entry_hash").first()
    later = audit_record(action=AuditAction.CASE_VIEWED, actor=world.teammate, target=world.case, case_id=world.case.pk)
    later.refresh_from_db()
    assert later.seq is None and later.entry_hash == ""
    assert seal_pending() == 1
    later.refresh_from_db()
    assert later.seq == tail["seq"] + 1
    assert later.prev_hash == tail["entry_hash"]
    assert later.sealed_at is not None
    assert verify_log().ok


# ---------------------------------------------------------------- the stored tree


@pytest.mark.parametrize("batch", [1000, 3, 1])
def test_stored_subtrees_give_the_root_of_every_prefix(world, settings, batch):
    """Sealed in one batch or many, the nodes stored are every perfect subtree, each with the
    hash the list-based reference computes, and root_at(n) equals merkle.root_hash of the
    first n entry hashes (the raw leaf data) for every n."""
    settings.AUDIT_SEAL_BATCH = batch
    record_views(world, 21)
    seal_pending()
    leaves = [bytes.fromhex(r["entry_hash"]) for r in sealed_rows()]
    size = len(leaves)
    assert size >= 21
    nodes = {(lvl, idx): h for lvl, idx, h in TreeNode.objects.values_list("level", "index", "hash")}
    assert set(nodes) == perfect_subtrees(size)
    for (level, index), h in nodes.items():
        start = index << level
        assert bytes.fromhex(h) == merkle.root_hash(leaves[start : start + (1 << level)]), (level, index)
    for n in range(1, size + 1):
        assert tree.root_at(n) == merkle.root_hash(leaves[:n]), n


def test_stored_inclusion_and_consistency_proofs_equal_the_reference(world):
    record_views(world, 12)
    seal_pending()
    leaves = [bytes.fromhex(r["entry_hash"]) for r in sealed_rows()]
    size = len(leaves)
    for n in (1, 2, 7, 8, size):
        for index in {0, n // 2, n - 1}:
            proof = tree.inclusion_proof(index, n)
            assert proof == merkle.inclusion_proof(index, n, leaves)
            assert merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, n, proof, tree.root_at(n))
    for old, new in ((1, 2), (3, 7), (4, 8), (5, size), (size - 1, size)):
        proof = tree.consistency_proof(old, new)
        assert proof == merkle.consistency_proof(old, new, leaves)
        assert merkle.verify_consistency(old, new, tree.root_at(old), tree.root_at(new), proof)


def test_a_proof_reads_a_bounded_number_of_rows(world, django_assert_max_num_queries):
    record_views(world, 40)
    seal_pending()
    size = ChainHead.objects.get().size
    # One query for leaf entry hashes, one for the stored subtree nodes.
    with django_assert_max_num_queries(2):
        tree.inclusion_proof(size // 3, size)
    with django_assert_max_num_queries(2):
        tree.consistency_proof(size // 2, size)


# ---------------------------------------------------------------- the worked example


def _fenced(lang: str) -> list[str]:
    """The bodies of the fenced code blocks of docs/audit.md whose info string is `lang`."""
    blocks: list[str] = []
    current: list[str] | None = None
    info = ""
    for line in DOC.splitlines():
        if line.startswith("```"):
            if current is None:
                current, info = [], line[3:].strip()
            else:
                if info == lang:
                    blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _doc_entries() -> list[str]:
    entries = _fenced("json")
    assert len(entries) == 2, "docs/audit.md works an example of two events"
    return entries


def _values_of(entry_json: str) -> dict[str, Any]:
    values = json.loads(entry_json)
    values["created_at"] = dt.datetime.strptime(values["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return values


def _documented_hashes() -> list[str]:
    """The full hex digests printed as `# <hex>` after each sha256sum, in order: the entry
    hash of event 1, of event 2, and the tree root."""
    return re.findall(r"^# ([0-9a-f]{64})$", "\n".join(_fenced("sh")), re.M)


def test_worked_example_canonical_json_is_what_the_code_writes():
    for entry in _doc_entries():
        assert chain.canonical_entry(_values_of(entry)) == entry.encode("utf-8")


def test_worked_example_shell_text_is_the_documented_entry():
    first = _doc_entries()[0]
    shell = re.search(r"^J1='(.*)'$", "\n".join(_fenced("sh")), re.M)
    assert shell is not None
    assert shell.group(1) == first


def test_worked_example_entry_hashes_and_root_reproduce():
    entry1, entry2, root = _documented_hashes()
    first, second = (chain.canonical_entry(_values_of(e)) for e in _doc_entries())
    assert chain.entry_hash(chain.GENESIS_HASH, first) == entry1
    assert chain.entry_hash(entry1, second) == entry2
    leaves = [bytes.fromhex(entry1), bytes.fromhex(entry2)]
    assert merkle.root_hash(leaves).hex() == root
    for leaf_data in leaves:
        short = re.search(rf"leaf {leaf_data.hex()}\)\s+# ([0-9a-f]{{8}})…([0-9a-f]{{6}})", DOC)
        assert short is not None
        full = merkle.leaf_hash(leaf_data).hex()
        assert full.startswith(short.group(1)) and full.endswith(short.group(2))


def test_worked_example_checkpoint_body_reproduces(settings):
    checkpoint = next(block for block in _fenced("") if block.count("\n") >= 2 and "\u2014" in block)
    origin, size, root_b64 = checkpoint.split("\n")[:3]
    root = _documented_hashes()[2]
    assert origin == settings.AUDIT_LOG_ORIGIN
    assert base64.b64decode(root_b64) == bytes.fromhex(root)
    body = note.CheckpointBody(origin=origin, tree_size=int(size), root_hash=bytes.fromhex(root))
    assert body.text() == f"{origin}\n{size}\n{root_b64}\n"
    assert note.parse_checkpoint(body.text()) == body
    assert int(size) == len(_doc_entries())


# ---------------------------------------------------------------- concurrency (PostgreSQL)

THREADS = 8
WRITES_PER_THREAD = 500


@pytest.fixture
def custody_target(settings: Any) -> tuple[Any, Any]:
    """An investigator and one evidence item on their case, committed."""
    settings.AUDIT_SEAL_ON_COMMIT = False
    agency = AgencyFactory(code="CONC")
    user = UserFactory(username="conc_lead", agency=agency, role=Role.INVESTIGATOR)
    case = CaseFactory(actor=user, title="Concurrency")
    item = EvidenceFactory(case=case)
    return user, item


def _run_threads(targets: list[Any]) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(target: Any) -> Any:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return errors


def _assert_whole_log_sealed_once() -> int:
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    total = len(seqs)
    assert None not in seqs, "an event was left unsealed"
    assert seqs == list(range(1, total + 1)), "sequence numbers have gaps or repeats"
    assert ChainHead.objects.get().size == total
    assert TreeNode.objects.count() == len(perfect_subtrees(total))
    result = verify_log()
    assert (result.ok, result.checked, result.problems) == (True, total, [])
    return total


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_and_a_sequencer_never_fork_or_lose_events(custody_target):
    user, item = custody_target
    stop = threading.Event()
    batches: list[int] = []

    def writer(n: int) -> Any:
        def write() -> None:
            for i in range(WRITES_PER_THREAD):
                services.custody_record(
                    actor=user, item=item, action=CustodyAction.TRANSFERRED, location=f"w{n}-{i}", note="load"
                )

        return write

    def sequencer() -> None:
        while not stop.is_set():
            batches.append(seal_batch())
        batches.append(seal_pending())

    started = time.monotonic()
    seq_thread_errors: list[BaseException] = []
    seq_thread = threading.Thread(target=lambda: _guard(sequencer, seq_thread_errors))
    seq_thread.start()
    errors = _run_threads([writer(n) for n in range(THREADS)])
    stop.set()
    seq_thread.join(timeout=120)
    elapsed = time.monotonic() - started
    assert not errors and not seq_thread_errors, errors + seq_thread_errors
    assert sum(b for b in batches if b) > 0, "the sequencer sealed nothing while writers ran"
    seal_pending()

    expected = {f"w{n}-{i}" for n in range(THREADS) for i in range(WRITES_PER_THREAD)}
    recorded = list(
        AuditEvent.objects.filter(action=AuditAction.CUSTODY_RECORDED, changes__action=CustodyAction.TRANSFERRED)
        .order_by("seq")
        .values_list("changes__location", "target_id")
    )
    assert len(recorded) == THREADS * WRITES_PER_THREAD
    assert {location for location, _ in recorded} == expected
    custody_ids = set(
        CustodyEvent.objects.filter(action=CustodyAction.TRANSFERRED).values_list("pk", flat=True).iterator()
    )
    assert {target for _, target in recorded} == {str(pk) for pk in custody_ids}
    _assert_whole_log_sealed_once()
    assert elapsed < 120, f"{THREADS}x{WRITES_PER_THREAD} audited writes took {elapsed:.1f}s"


def _guard(target: Any, errors: list[BaseException]) -> None:
    try:
        target()
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_writers_that_seal_on_commit_and_a_sequencer_all_at_once_keep_one_chain(custody_target, settings):
    """Every writer also seals after its own commit: many sealers contend for the chain head."""
    settings.AUDIT_SEAL_ON_COMMIT = True
    user, item = custody_target
    stop = threading.Event()

    def writer(n: int) -> Any:
        def write() -> None:
            for i in range(60):
                services.custody_record(actor=user, item=item, action=CustodyAction.TRANSFERRED, location=f"s{n}-{i}")

        return write

    def sequencer() -> None:
        while not stop.is_set():
            seal_batch()
            checkpoint_create(actor=None)

    seq_errors: list[BaseException] = []
    seq_thread = threading.Thread(target=lambda: _guard(sequencer, seq_errors))
    seq_thread.start()
    errors = _run_threads([writer(n) for n in range(THREADS)])
    stop.set()
    seq_thread.join(timeout=120)
    assert not errors and not seq_errors, errors + seq_errors
    assert AuditEvent.objects.filter(seq__isnull=True).count() == 0, "seal on commit left events behind"
    assert AuditEvent.objects.filter(
        action=AuditAction.CUSTODY_RECORDED, changes__location__startswith="s"
    ).count() == (THREADS * 60)
    _assert_whole_log_sealed_once()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_after_a_later_one_is_sealed_by_the_next_batch(custody_target):
    """Seal order is commit order: an open transaction's event (lower id) is invisible to the
    sealer, which seals the later-committed one first, and the earlier one is not lost."""
    user, item = custody_target
    seal_pending()
    inserted = threading.Event()
    release = threading.Event()
    holder_id: list[int] = []

    def slow_writer() -> None:
        with transaction.atomic():
            event = audit_record(action=AuditAction.CASE_VIEWED, actor=user, target=item.case, case_id=item.case_id)
            holder_id.append(event.pk)
            inserted.set()
            assert release.wait(30)

    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _guard(slow_writer, errors))
    thread.start()
    assert inserted.wait(30)
    quick = audit_record(action=AuditAction.CASE_VIEWED, actor=user, target=item.case, case_id=item.case_id)
    assert quick.pk > holder_id[0]
    assert seal_pending() == 1
    quick.refresh_from_db()
    release.set()
    thread.join(30)
    assert not errors, errors
    assert seal_pending() == 1
    slow = AuditEvent.objects.get(pk=holder_id[0])
    assert slow.seq == quick.seq + 1
    assert slow.prev_hash == quick.entry_hash
    _assert_whole_log_sealed_once()
