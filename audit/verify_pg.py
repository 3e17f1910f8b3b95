"""Verification on PostgreSQL, each part done where it is cheapest, both sides at once.

The log is walked in blocks of 2^16 events (the leaves under one stored subtree), one query
each, run ahead on parallel connections:
- in the database, each entry's canonical JSON is rebuilt from its columns (audit.chain's
  format is jsonb's own text form), hashed with sha256() and compared with the stored entry
  hash; the block's previous and entry hashes come back as one string per column;
- in Python, meanwhile, for the blocks already answered: a gap is a short count, the links are
  one string comparison, and the block's Merkle subtrees are recomputed from the entry hashes
  and compared level by level with the stored ones (one string per level).

Memory is a few blocks, whatever the size of the log. The roots of the signed checkpoints are
then taken from the verified subtrees.
"""

# ruff: noqa: S608 - the SQL here is constant; values travel as query parameters
from __future__ import annotations

import hashlib
import itertools
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import connection, connections

from audit import chain, merkle, tree
from audit.models import ChainHead

# The canonical JSON of audit.chain, built from the columns; keys in jsonb order. One concat()
# (one allocation), not a chain of ||, which costs twice as much.
CANONICAL_SQL = """
concat(
    '{"ip": ', COALESCE('"' || host(ip) || '"', 'null'),
    ', "seq": ', seq,
    ', "action": ', to_json(action),
    ', "case_id": ', COALESCE('"' || case_id::text || '"', 'null'),
    ', "changes": ', changes,
    ', "actor_id": ', COALESCE(actor_id::text, 'null'),
    ', "agency_id": ', COALESCE(agency_id::text, 'null'),
    ', "target_id": ', to_json(target_id),
    ', "actor_name": ', to_json(actor_name),
    ', "created_at": "', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    '", "request_id": ', to_json(request_id),
    ', "user_agent": ', to_json(user_agent),
    ', "target_type": ', to_json(target_type),
    '}'
)
"""

# One block of events [lo, hi]: the first whose contents do not hash to its entry hash, how
# many there are, and their previous and entry hashes in seq order, one string per column.
BLOCK_SQL = f"""
SELECT
    MIN(seq) FILTER (
        WHERE sha256(decode(prev_hash, 'hex') || convert_to({CANONICAL_SQL}, 'UTF8')) <> decode(entry_hash, 'hex')
    ),
    COUNT(*),
    COALESCE(string_agg(prev_hash, ''), ''),
    COALESCE(string_agg(entry_hash, ''), '')
FROM (SELECT * FROM audit_auditevent WHERE seq BETWEEN %(lo)s AND %(hi)s ORDER BY seq) AS e
"""

# The stored subtrees of a block [lo, hi]: for each level 1..16, how many and their hashes in
# index order as one string (the complete subtrees of the block, by the (level, index) index).
BLOCK_NODES_SQL = """
SELECT l.level, n.count, n.hashes
FROM generate_series(1, %(top)s) AS l(level)
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS count, COALESCE(string_agg(hash, ''), '') AS hashes
    FROM (
        SELECT hash FROM audit_treenode
        WHERE level = l.level AND "index" BETWEEN (%(lo)s - 1) >> l.level AND (%(hi)s >> l.level) - 1
        ORDER BY "index"
    ) AS t
) AS n
ORDER BY l.level
"""

# The stored subtrees of one level with index in [lo, hi], in index order, as one string.
LEVEL_SQL = """
SELECT COUNT(*), COALESCE(string_agg(hash, ''), '')
FROM (SELECT hash FROM audit_treenode WHERE level = %(level)s AND "index" BETWEEN %(lo)s AND %(hi)s ORDER BY "index") AS l
"""

LEVEL_ROWS_SQL = (
    'SELECT "index", hash FROM audit_treenode WHERE level = %(level)s AND "index" BETWEEN %(lo)s AND %(hi)s '
    'ORDER BY "index"'
)

SEQS_SQL = "SELECT seq FROM audit_auditevent WHERE seq BETWEEN %(lo)s AND %(hi)s ORDER BY seq"

BLOCK_LEVEL = 16  # a block is the 2^16 events under one subtree of this level: one query each,
# well inside the statement timeout
HASH_HEX = 64


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _block(lo: int, hi: int) -> tuple[tuple[Any, ...], dict[int, tuple[int, str]]]:
    """BLOCK_SQL's answer and the block's stored subtrees by level, on the current connection."""
    params = {"lo": lo, "hi": hi, "top": BLOCK_LEVEL}
    with connection.cursor() as cursor:
        cursor.execute(BLOCK_SQL, params)
        events = cursor.fetchone()
        cursor.execute(BLOCK_NODES_SQL, params)
        nodes = {level: (count, hashes) for level, count, hashes in cursor.fetchall()}
    return events, nodes


def _block_on_thread(lo: int, hi: int) -> tuple[tuple[Any, ...], dict[int, tuple[int, str]]]:
    """_block on this worker thread's own connection (closed afterwards)."""
    try:
        return _block(lo, hi)
    finally:
        connections["default"].close()


def _fetchone(sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def verify_chain_and_tree(result: Any, roots: dict[int, bytes]) -> int:
    """Fill `result` (checked, failures); returns the size of the last checkpoint that holds."""
    # The head is read before the entries: the sequencer moves both in one transaction and
    # never backwards, so an untouched log holds at least `head` entries at any later read
    # (events sealed while the verification runs do not look like a truncated tail).
    head = ChainHead.objects.values_list("size", flat=True).first() or 0
    (top,) = _fetchone("SELECT COALESCE(MAX(seq), 0) FROM audit_auditevent WHERE seq IS NOT NULL", {})
    tree_first_bad = _verify_blocks(result, top)
    checked = result.checked
    chain_failed = result.first_bad_seq is not None
    if tree_first_bad is not None and not chain_failed:
        # Entries that verify one by one under a subtree that does not: the chain was
        # rewritten consistently; the subtree's first leaf is the first that can be trusted no more.
        result.fail(tree_first_bad, f"the stored tree disagrees with the entries from seq {tree_first_bad} on")
    last_good = _check_roots(result, roots, checked)
    if head > checked and result.first_bad_seq is None and not (roots and max(roots) > checked):
        result.fail(checked + 1, f"the chain head records {head} sealed events but only {checked} are present")
    return last_good


def _blocks(size: int) -> Iterator[tuple[int, int, tuple[tuple[Any, ...], dict[int, tuple[int, str]]]]]:
    """(lo, hi, _block's answer) for each block of the first `size` events, in order. The
    queries run ahead on parallel connections while the caller works on the answers; inside a
    transaction (whose rows other connections cannot see) one after another on this one."""
    block = 1 << BLOCK_LEVEL
    ranges = [(lo, min(size, lo + block - 1)) for lo in range(1, size + 1, block)]
    if connection.in_atomic_block:
        for lo, hi in ranges:
            yield lo, hi, _block(lo, hi)
        return
    workers = _workers()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead: deque[tuple[int, int, Future]] = deque()
        pending = iter(ranges)
        try:
            while True:
                # At most one block queued beyond the running ones: answers do not pile up.
                for lo, hi in itertools.islice(pending, workers + 1 - len(ahead)):
                    ahead.append((lo, hi, pool.submit(_block_on_thread, lo, hi)))
                if not ahead:
                    return
                lo, hi, future = ahead.popleft()
                yield lo, hi, future.result()
        finally:
            for _, _, future in ahead:
                future.cancel()


class _Levels:
    """Recomputes subtrees from leaf hashes and compares them with the stored ones."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.first_bad: int | None = None

    def check(
        self, level: int, first_index: int, computed: list[bytes], fetched: dict[int, tuple[int, str]] | None = None
    ) -> list[bytes]:
        """Compare the stored subtrees of `level` from index `first_index` on with `computed`.
        Returns the hashes to build the next level from: the stored ones where they differ,
        so that each stored subtree is judged against its stored children (a damaged subtree
        is reported where it is, not again at every level above it). `fetched` holds the
        stored subtrees of the whole block by level; a block cut short by a gap reads its own."""
        if not computed:
            return computed
        last_index = first_index + len(computed) - 1
        count, stored = (fetched or {}).get(level, (-1, ""))
        if count != len(computed) or len(stored) != count * HASH_HEX:
            count, stored = _fetchone(LEVEL_SQL, {"level": level, "lo": first_index, "hi": last_index})
        expected = b"".join(computed).hex()
        if stored == expected:
            return computed
        if count == len(computed):
            self._differs(level, first_index + _first_difference(stored, expected))
            return [bytes.fromhex(stored[i : i + HASH_HEX]) for i in range(0, len(stored), HASH_HEX)]
        self.result.fail(None, f"level {level} of the tree is missing nodes ({count} of {len(computed)} here)")
        with connection.cursor() as cursor:
            cursor.execute(LEVEL_ROWS_SQL, {"level": level, "lo": first_index, "hi": last_index})
            for index, node in cursor.fetchall():
                if node != computed[index - first_index].hex():
                    self._differs(level, index)
                    break
        return computed

    def _differs(self, level: int, index: int) -> None:
        self.result.fail(None, f"stored subtree at level {level} index {index} does not match the entries under it")
        seq = index * (1 << level) + 1
        self.first_bad = seq if self.first_bad is None else min(self.first_bad, seq)

    def up(
        self,
        level: int,
        first_index: int,
        nodes: list[bytes],
        top: int,
        fetched: dict[int, tuple[int, str]] | None = None,
    ) -> list[bytes]:
        """Levels `level + 1` .. `top` above `nodes` (each checked); returns level `top`."""
        for lvl in range(level + 1, top + 1):
            first_index >>= 1
            nodes = self.check(lvl, first_index, _parents(nodes), fetched)
        return nodes


def _parents(nodes: list[bytes]) -> list[bytes]:
    sha, prefix = hashlib.sha256, merkle.NODE_PREFIX
    return [sha(prefix + left + right).digest() for left, right in zip(nodes[0::2], nodes[1::2], strict=False)]


def _first_difference(stored: str, expected: str) -> int:
    """Index of the first hash that differs between two concatenations of hex hashes."""
    for i in range(0, max(len(stored), len(expected)), HASH_HEX):
        if stored[i : i + HASH_HEX] != expected[i : i + HASH_HEX]:
            return i // HASH_HEX
    return 0


def _verify_blocks(result: Any, size: int) -> int | None:
    """Walk the first `size` sealed events block by block: report every event whose contents
    do not match its hash, the first gap (`result.checked` stops before it), every broken link,
    and every stored subtree that differs from the one recomputed from the entry hashes.
    Returns the first seq under a subtree that differs."""
    levels = _Levels(result)
    sha, leaf_prefix = hashlib.sha256, merkle.LEAF_PREFIX
    prev = chain.GENESIS_HASH
    block_roots: list[bytes] = []
    checked = 0
    for lo, hi, ((bad_content, count, prevs, entries), stored) in _blocks(size):
        if bad_content is not None:
            result.fail(bad_content, f"seq {bad_content}: entry hash does not match its contents")
        if checked < lo - 1:
            continue  # past a gap: contents only
        complete = count == hi - lo + 1
        if not complete:
            missing = _first_missing(lo, hi)
            result.fail(missing, f"seq {missing} is missing")
            count = missing - lo
            prevs, entries = prevs[: count * HASH_HEX], entries[: count * HASH_HEX]
        expected_prevs = prev + entries[:-HASH_HEX] if count else ""
        if prevs != expected_prevs:
            bad = lo + _first_difference(prevs, expected_prevs)
            result.fail(bad, f"seq {bad}: previous hash does not link to seq {bad - 1}")
        checked = lo - 1 + count
        if count:
            prev = entries[-HASH_HEX:]
            raw = bytes.fromhex(entries)
            leaves = [sha(leaf_prefix + raw[i : i + 32]).digest() for i in range(0, len(raw), 32)]
            block_roots.extend(levels.up(0, lo - 1, leaves, BLOCK_LEVEL, stored if complete else None))
    levels.up(BLOCK_LEVEL, 0, block_roots, max(BLOCK_LEVEL, checked.bit_length() - 1))
    result.checked = checked
    return levels.first_bad


def _first_missing(lo: int, hi: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(SEQS_SQL, {"lo": lo, "hi": hi})
        for expected, (seq,) in enumerate(cursor.fetchall(), start=lo):
            if seq != expected:
                return expected
    return hi + 1


def _check_roots(result: Any, roots: dict[int, bytes], size: int) -> int:
    """Each signed checkpoint's root against the tree built from the (verified) subtrees."""
    last_good = 0
    for tree_size in sorted(s for s in roots if 0 < s <= size):
        try:
            root = tree.root_at(tree_size)
        except tree.MissingNode as exc:
            result.fail(last_good + 1, f"the tree of size {tree_size} cannot be rebuilt: {exc}")
            continue
        if root == roots[tree_size]:
            last_good = tree_size
        else:
            seq = last_good + 1 if result.first_bad_seq is None else None
            result.fail(seq, f"the tree of size {tree_size} does not match its signed checkpoint")
    if 0 in roots and roots[0] != merkle.EMPTY_ROOT:
        result.fail(None, "the checkpoint of the empty log has a wrong root")
    return last_good
