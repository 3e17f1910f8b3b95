"""The packet's audit excerpt: the case's sealed events up to a checkpoint, each with its RFC
9162 inclusion proof, streamed in chunks so a long history never sits in memory at once.

events.jsonl, one line per event, ordered by seq, keys in sorted order:

    {"canonical":<the event's canonical JSON, verbatim>,"entry_hash":"<hex>","prev_hash":"<hex>","seq":<n>}

The bytes between `{"canonical":` and `,"entry_hash":` are exactly the canonical JSON that was
hashed (audit.chain), so entry_hash = SHA-256(bytes of prev_hash || those bytes) can be
recomputed without knowing how the canonical form is made. Both are checked here before
anything is written: a log that does not recompute, or a proof that does not lead to the
checkpoint's root, fails the build (PacketAuditError) rather than ship an unverifiable packet.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator

from django.db.models import QuerySet

from audit import chain, merkle, tree
from audit.models import AuditEvent, TreeNode

EVENT_FIELDS = (
    "seq",
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
CHUNK = 500
PROOF_BATCH = 1000
IN_CHUNK = 500
_DUMMY = bytes(32)


class PacketAuditError(RuntimeError):
    """The stored audit log does not recompute or prove; the packet is not built."""


def _events(case_id: uuid.UUID, tree_size: int) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(case_id=case_id, seq__isnull=False, seq__lte=tree_size).order_by("seq")


def event_count(case_id: uuid.UUID, tree_size: int) -> int:
    return _events(case_id, tree_size).count()


def event_lines(case_id: uuid.UUID, tree_size: int) -> Iterator[bytes]:
    rows = _events(case_id, tree_size).values(*EVENT_FIELDS, "prev_hash", "entry_hash")
    for row in rows.iterator(chunk_size=CHUNK):
        canonical = chain.canonical_entry(row)
        if chain.entry_hash(row["prev_hash"], canonical) != row["entry_hash"]:
            raise PacketAuditError(f"audit event seq {row['seq']} does not recompute from its stored fields")
        yield (
            b'{"canonical":'
            + canonical
            + f',"entry_hash":"{row["entry_hash"]}","prev_hash":"{row["prev_hash"]}","seq":{row["seq"]}}}\n'.encode()
        )


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def proofs_json(case_id: uuid.UUID, tree_size: int, root: bytes, origin: str) -> Iterator[bytes]:
    """proofs.json, as a stream: `{"checkpoint": {...}, "proofs": [...]}` with one proof per
    event line, keys sorted; proof hashes in base64, leaf-side first."""
    head = {"origin": origin, "root_hash": b64(root), "tree_size": tree_size}
    yield b'{"checkpoint":' + json.dumps(head, sort_keys=True, separators=(",", ":")).encode() + b',"proofs":['
    rows = _events(case_id, tree_size).values_list("seq", "entry_hash")
    batch: list[tuple[int, str]] = []
    first = True
    for row in rows.iterator(chunk_size=CHUNK):
        batch.append(row)
        if len(batch) == PROOF_BATCH:
            yield _proof_batch(batch, tree_size, root, first)
            first = False
            batch = []
    if batch:
        yield _proof_batch(batch, tree_size, root, first)
    yield b"\n]}\n"


def _chunks(values: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _subtrees(needed: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Hashes of the perfect subtrees `(start, size)`: leaves from the events' entry hashes,
    larger ones from the stored tree nodes, one IN query per level (and per IN_CHUNK)."""
    found: dict[tuple[int, int], bytes] = {}
    leaves = sorted(start + 1 for start, size in needed if size == 1)
    for seqs in _chunks(leaves, IN_CHUNK):
        for seq, entry_hash in AuditEvent.objects.filter(seq__in=seqs).values_list("seq", "entry_hash"):
            found[(seq - 1, 1)] = tree.leaf_of(entry_hash)
    levels: dict[int, list[int]] = defaultdict(list)
    for start, size in needed:
        if size > 1:
            levels[size.bit_length() - 1].append(start // size)
    for level, indexes in sorted(levels.items()):
        for chunk in _chunks(sorted(indexes), IN_CHUNK):
            for index, node in TreeNode.objects.filter(level=level, index__in=chunk).values_list("index", "hash"):
                found[(index << level, 1 << level)] = bytes.fromhex(node)
    missing = needed - found.keys()
    if missing:
        raise PacketAuditError(f"the audit tree is missing subtrees {sorted(missing)[:5]}")
    return found


def _proof_batch(batch: list[tuple[int, str]], tree_size: int, root: bytes, first: bool) -> bytes:
    """Proofs for a batch of events: a dry run learns which subtrees they need, which are then
    read in a few queries (audit.tree reads them per proof)."""
    needed: set[tuple[int, int]] = set()

    def record(start: int, size: int) -> bytes:
        needed.add((start, size))
        return _DUMMY

    for seq, _ in batch:
        merkle.inclusion_proof_from(seq - 1, tree_size, record)
    found = _subtrees(needed)
    out = []
    for seq, entry_hash in batch:
        proof = merkle.inclusion_proof_from(seq - 1, tree_size, lambda start, size: found[(start, size)])
        leaf = tree.leaf_of(entry_hash)
        if not merkle.verify_inclusion(leaf, seq - 1, tree_size, proof, root):
            raise PacketAuditError(f"audit event seq {seq} does not prove into the checkpoint of size {tree_size}")
        record_json = {
            "entry_hash": entry_hash,
            "leaf_hash": b64(leaf),
            "leaf_index": seq - 1,
            "proof": [b64(p) for p in proof],
            "seq": seq,
            "tree_size": tree_size,
        }
        out.append(json.dumps(record_json, sort_keys=True, separators=(",", ":")))
    return (("\n" if first else ",\n") + ",\n".join(out)).encode()
