"""Verification of the whole audit log: the chain, the tree, the signed checkpoints (in the
database and in the external sink) and the consistency between successive checkpoints.

Reads every sealed event once, in sequence order, streaming (memory is O(log n)). Reports the
first bad sequence number:
- a changed field, a broken link or a gap: that event's seq;
- a truncated tail: the first seq a checkpoint covers that is missing;
- a chain rewritten consistently (every hash recomputed): no single event is wrong by itself,
  so the first seq after the last checkpoint whose signed root still matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import connection

from audit import chain, merkle, note, signing, tree
from audit.models import AuditEvent, Checkpoint
from audit.sinks import get_sink

_FIELDS = (
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


@dataclass
class VerifyResult:
    ok: bool = True
    checked: int = 0
    first_bad_seq: int | None = None
    checkpoint_size: int | None = None
    problems: list[str] = field(default_factory=list)

    def fail(self, seq: int | None, problem: str) -> None:
        self.ok = False
        if seq is not None and (self.first_bad_seq is None or seq < self.first_bad_seq):
            self.first_bad_seq = seq
        self.problems.append(problem)


def _events() -> Iterator[dict]:
    rows = AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values(*_FIELDS)
    yield from rows.iterator(chunk_size=5000)


def _checkpoints(result: VerifyResult, verifier: note.Verifier) -> dict[int, bytes]:
    """Signed roots by tree size, from the database and the external sink."""
    roots: dict[int, bytes] = {}
    for cp in Checkpoint.objects.order_by("tree_size"):
        try:
            body = note.parse_checkpoint(note.open_note(cp.signed_note, verifier))
        except note.NoteError as exc:
            result.fail(None, f"checkpoint at size {cp.tree_size}: {exc}")
            continue
        if body.tree_size != cp.tree_size or body.root_hash.hex() != cp.root_hash:
            result.fail(None, f"checkpoint at size {cp.tree_size}: stored fields differ from its signed text")
            continue
        roots[body.tree_size] = body.root_hash
    external = get_sink().latest()
    if external is not None:
        try:
            body = note.parse_checkpoint(note.open_note(external, verifier))
        except note.NoteError as exc:
            result.fail(None, f"external checkpoint: {exc}")
        else:
            if body.tree_size in roots and roots[body.tree_size] != body.root_hash:
                result.fail(None, f"external checkpoint at size {body.tree_size} differs from the database's")
            elif body.tree_size not in roots:
                if roots and body.tree_size < max(roots):
                    pass  # an older external copy; the sink keeps only the latest
                else:
                    result.fail(None, f"external checkpoint at size {body.tree_size} is missing from the database")
            roots.setdefault(body.tree_size, body.root_hash)
    return roots


def verify_log() -> VerifyResult:
    """Verify the whole log. On PostgreSQL the database recomputes every hash itself, in
    parallel chunks (audit.verify_pg); elsewhere events stream through Python."""
    result = VerifyResult()
    roots = _checkpoints(result, signing.verifier())
    result.checkpoint_size = max(roots) if roots else None
    if connection.vendor == "postgresql":
        from audit.verify_pg import verify_chain_and_tree

        verify_chain_and_tree(result, roots)
    else:
        _verify_chain_python(result, roots)
    if roots and max(roots) > result.checked and result.first_bad_seq is None:
        result.fail(result.checked + 1, f"checkpoint covers {max(roots)} events but only {result.checked} are present")
    _check_consistency(result, roots)
    return result


def _verify_chain_python(result: VerifyResult, roots: dict[int, bytes]) -> int:
    """Stream the sealed events in order, recomputing each entry hash and the tree."""
    compact = tree.CompactRange(0, [])
    prev = chain.GENESIS_HASH
    last_good_checkpoint = 0
    for row in _events():
        seq = row["seq"]
        expected = compact.size + 1
        if seq != expected:
            result.fail(expected, f"seq {expected} is missing (next present is {seq})")
            break
        if row["prev_hash"] != prev:
            result.fail(seq, f"seq {seq}: previous hash does not link to seq {seq - 1}")
        recomputed = chain.entry_hash(prev, chain.canonical_entry(row))
        if recomputed != row["entry_hash"]:
            result.fail(seq, f"seq {seq}: entry hash does not match its contents")
        prev = row["entry_hash"]
        compact.append(tree.leaf_of(row["entry_hash"]))
        result.checked = compact.size
        signed_root = roots.get(compact.size)
        if signed_root is not None:
            if compact.root() == signed_root:
                last_good_checkpoint = compact.size
            else:
                # A consistent rewrite shows only here; a pinpointed failure is not moved back.
                result.fail(
                    last_good_checkpoint + 1 if result.first_bad_seq is None else None,
                    f"the tree of size {compact.size} does not match its signed checkpoint",
                )
    return last_good_checkpoint


def _check_consistency(result: VerifyResult, roots: dict[int, bytes]) -> None:
    """Each checkpoint extends the one before it (a proof from stored subtrees)."""
    sizes = sorted(s for s in roots if s <= result.checked)
    for old, new in zip(sizes, sizes[1:], strict=False):
        if old == 0:
            continue
        try:
            proof = tree.consistency_proof(old, new)
        except tree.MissingNode as exc:
            result.fail(None, f"consistency {old} -> {new}: {exc}")
            continue
        if not merkle.verify_consistency(old, new, roots[old], roots[new], proof):
            result.fail(None, f"checkpoint {new} is not consistent with checkpoint {old}")
