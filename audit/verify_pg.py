"""Verification inside PostgreSQL: the database rebuilds each entry's canonical JSON from its
columns (audit.chain's format is jsonb's own text form), hashes it with sha256() and checks
the links, and checks every stored Merkle subtree against the level below it, down to the
leaves made from the entry hashes. Work is split into seq ranges run on parallel connections.
Nothing per event crosses into Python; the roots of the signed checkpoints are then computed
from the verified subtrees.
"""

# ruff: noqa: S608 - the SQL here is constant; values travel as query parameters
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection, connections

from audit import chain, merkle, tree
from audit.models import ChainHead

# The canonical JSON of audit.chain, built from the columns; keys in jsonb order.
CANONICAL_SQL = """
'{"ip": ' || COALESCE(to_json(host(ip))::text, 'null')
|| ', "seq": ' || seq
|| ', "action": ' || to_json(action)::text
|| ', "case_id": ' || COALESCE('"' || case_id::text || '"', 'null')
|| ', "changes": ' || changes::text
|| ', "actor_id": ' || COALESCE(actor_id::text, 'null')
|| ', "agency_id": ' || COALESCE(agency_id::text, 'null')
|| ', "target_id": ' || to_json(target_id)::text
|| ', "actor_name": ' || to_json(actor_name)::text
|| ', "created_at": "' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '"'
|| ', "request_id": ' || to_json(request_id)::text
|| ', "user_agent": ' || to_json(user_agent)::text
|| ', "target_type": ' || to_json(target_type)::text
|| '}'
"""

CHAIN_SQL = f"""
SELECT
    MIN(rn) FILTER (WHERE rn <> seq),
    MIN(seq) FILTER (WHERE rn = seq AND prev_hash <> lp),
    MIN(seq) FILTER (
        WHERE rn = seq
        AND encode(sha256(decode(prev_hash, 'hex') || convert_to(canonical, 'UTF8')), 'hex') <> entry_hash
    ),
    COUNT(*)
FROM (
    SELECT seq, prev_hash, entry_hash, {CANONICAL_SQL} AS canonical,
           lag(entry_hash, 1, %(prev)s) OVER (ORDER BY seq) AS lp,
           %(lo)s - 1 + row_number() OVER (ORDER BY seq) AS rn
    FROM audit_auditevent
    WHERE seq BETWEEN %(lo)s AND %(hi)s
) AS t
"""

LEAF_LEVEL_SQL = """
SELECT MIN(n.index), COUNT(*)
FROM audit_treenode AS n
LEFT JOIN audit_auditevent AS l ON l.seq = 2 * n.index + 1
LEFT JOIN audit_auditevent AS r ON r.seq = 2 * n.index + 2
WHERE n.level = 1 AND n.index BETWEEN %(lo)s AND %(hi)s
  AND (l.entry_hash IS NULL OR r.entry_hash IS NULL OR n.hash <> encode(sha256(
        '\\x01'::bytea || sha256('\\x00'::bytea || decode(l.entry_hash, 'hex'))
                       || sha256('\\x00'::bytea || decode(r.entry_hash, 'hex'))), 'hex'))
"""

NODE_LEVEL_SQL = """
SELECT MIN(n.index), COUNT(*)
FROM audit_treenode AS n
LEFT JOIN audit_treenode AS l ON l.level = n.level - 1 AND l.index = 2 * n.index
LEFT JOIN audit_treenode AS r ON r.level = n.level - 1 AND r.index = 2 * n.index + 1
WHERE n.level = %(level)s AND n.index BETWEEN %(lo)s AND %(hi)s
  AND (l.hash IS NULL OR r.hash IS NULL
       OR n.hash <> encode(sha256('\\x01'::bytea || decode(l.hash, 'hex') || decode(r.hash, 'hex')), 'hex'))
"""

LEVEL_COUNTS_SQL = "SELECT level, COUNT(*) FROM audit_treenode GROUP BY level"


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


CHUNK_ROWS = 100_000  # per query, so each stays well inside the statement timeout


def _chunks(lo: int, hi: int) -> list[tuple[int, int]]:
    """[lo, hi] in pieces for the worker pool: at least one per worker, at most CHUNK_ROWS each."""
    return _ranges(lo, hi, max(_workers(), -(-(hi - lo + 1) // CHUNK_ROWS)))


def _ranges(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    if hi < lo:
        return []
    step = max(1, -(-(hi - lo + 1) // parts))
    return [(start, min(hi, start + step - 1)) for start in range(lo, hi + 1, step)]


def _run_on_thread(sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    """One query on this worker thread's own connection (closed afterwards)."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    finally:
        connections["default"].close()


def _run_all(jobs: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, ...]]:
    """Run the queries on parallel connections; inside a transaction (whose rows other
    connections cannot see) run them one after another on this one."""
    if connection.in_atomic_block:
        answers = []
        with connection.cursor() as cursor:
            for sql, params in jobs:
                cursor.execute(sql, params)
                answers.append(cursor.fetchone())
        return answers
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        return list(pool.map(lambda job: _run_on_thread(*job), jobs))


def _prev_hashes(starts: list[int]) -> dict[int, str]:
    wanted = [s - 1 for s in starts if s > 1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, entry_hash FROM audit_auditevent WHERE seq = ANY(%s)", [wanted])
        found = dict(cursor.fetchall())
    return {s: (chain.GENESIS_HASH if s == 1 else found.get(s - 1, "")) for s in starts}


def verify_chain_and_tree(result: Any, roots: dict[int, bytes]) -> int:
    """Fill `result` (checked, failures); returns the size of the last checkpoint that holds."""
    # The head is read before the entries: the sequencer moves both in one transaction and
    # never backwards, so an untouched log holds at least `head` entries at any later read
    # (events sealed while the verification runs do not look like a truncated tail).
    head = ChainHead.objects.values_list("size", flat=True).first() or 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(seq), 0) FROM audit_auditevent WHERE seq IS NOT NULL")
        (top,) = cursor.fetchone()
    chunks = _chunks(1, top)
    prevs = _prev_hashes([lo for lo, _ in chunks])
    answers = _run_all([(CHAIN_SQL, {"lo": lo, "hi": hi, "prev": prevs[lo]}) for lo, hi in chunks])
    checked = top
    for (lo, hi), (gap, badlink, badhash, count) in zip(chunks, answers, strict=True):
        if gap is not None or count < hi - lo + 1:
            missing = gap if gap is not None else lo + count
            result.fail(missing, f"seq {missing} is missing")
            checked = min(checked, missing - 1)
        if badlink is not None:
            result.fail(badlink, f"seq {badlink}: previous hash does not link to seq {badlink - 1}")
        if badhash is not None:
            result.fail(badhash, f"seq {badhash}: entry hash does not match its contents")
    result.checked = checked
    chain_failed = result.first_bad_seq is not None
    tree_first_bad = _verify_tree(result, checked)
    if tree_first_bad is not None and not chain_failed:
        # Entries that verify one by one under a subtree that does not: the chain was
        # rewritten consistently; the subtree's first leaf is the first that can be trusted no more.
        result.fail(tree_first_bad, f"the stored tree disagrees with the entries from seq {tree_first_bad} on")
    last_good = _check_roots(result, roots, checked)
    if head > checked and result.first_bad_seq is None and not (roots and max(roots) > checked):
        result.fail(checked + 1, f"the chain head records {head} sealed events but only {checked} are present")
    return last_good


def _verify_tree(result: Any, size: int) -> int | None:
    """Every stored subtree of the first `size` leaves equals the hash of its two children;
    returns the first seq under a subtree that does not."""
    with connection.cursor() as cursor:
        cursor.execute(LEVEL_COUNTS_SQL)
        counts = dict(cursor.fetchall())
    jobs = []
    for level in range(1, size.bit_length()):
        expected = size >> level
        if counts.get(level, 0) < expected:
            result.fail(None, f"level {level} of the tree is missing nodes ({counts.get(level, 0)} of {expected})")
        sql = LEAF_LEVEL_SQL if level == 1 else NODE_LEVEL_SQL
        for lo, hi in _chunks(0, expected - 1):
            jobs.append((level, sql, {"level": level, "lo": lo, "hi": hi}))
    answers = _run_all([(sql, params) for _, sql, params in jobs])
    first_seq = None
    for (level, _, _), (first_bad, count) in zip(jobs, answers, strict=True):
        if count:
            seq = first_bad * (1 << level) + 1
            first_seq = seq if first_seq is None else min(first_seq, seq)
            result.fail(None, f"stored subtree at level {level} index {first_bad} does not match the entries under it")
    return first_seq


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
