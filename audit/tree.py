"""The Merkle tree over sealed audit entries, answered from stored subtree hashes.

Leaf i (0-based) is the event with seq i+1; its leaf hash is RFC 9162's SHA-256(0x00 ||
entry hash). Every perfect, aligned subtree of 2^L leaves (L >= 1) is stored once, when its
last leaf is sealed, as TreeNode(level=L, index=start / 2^L). Any root or proof is then a
handful of stored hashes: the proof functions of audit.merkle ask for the subtrees they need,
which are first collected (a dry run), then fetched in two queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db.models import Q

from audit import merkle
from audit.models import AuditEvent, TreeNode

T = TypeVar("T")
_DUMMY = b"\0" * 32


def leaf_of(entry_hash_hex: str) -> bytes:
    return merkle.leaf_hash(bytes.fromhex(entry_hash_hex))


class MissingNode(LookupError):
    """A subtree the tree should hold is not stored (the log is incomplete or damaged)."""


def _fetch(needed: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Hashes of the perfect subtrees `(start, size)`: leaves from events, others from nodes."""
    found: dict[tuple[int, int], bytes] = {}
    leaf_seqs = {start + 1: (start, size) for start, size in needed if size == 1}
    if leaf_seqs:
        for seq, h in AuditEvent.objects.filter(seq__in=leaf_seqs).values_list("seq", "entry_hash"):
            found[leaf_seqs[seq]] = leaf_of(h)
    nodes = {(size.bit_length() - 1, start // size): (start, size) for start, size in needed if size > 1}
    if nodes:
        query = Q()
        for level, index in nodes:
            query |= Q(level=level, index=index)
        for level, index, h in TreeNode.objects.filter(query).values_list("level", "index", "hash"):
            found[nodes[(level, index)]] = bytes.fromhex(h)
    missing = needed - found.keys()
    if missing:
        raise MissingNode(f"subtrees not stored: {sorted(missing)[:5]}")
    return found


def with_stored_subtrees(compute: Callable[[merkle.SubtreeSource], T]) -> T:
    """Run `compute(source)` twice: once to learn which subtrees it reads, once for real."""
    needed: set[tuple[int, int]] = set()

    def record(start: int, size: int) -> bytes:
        needed.add((start, size))
        return _DUMMY

    compute(record)
    found = _fetch(needed)
    return compute(lambda start, size: found[(start, size)])


def root_at(tree_size: int) -> bytes:
    return with_stored_subtrees(lambda source: merkle.tree_root(tree_size, source))


def inclusion_proof(index: int, tree_size: int) -> list[bytes]:
    return with_stored_subtrees(lambda source: merkle.inclusion_proof_from(index, tree_size, source))


def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    return with_stored_subtrees(lambda source: merkle.consistency_proof_from(old_size, new_size, source))


def border(tree_size: int) -> list[tuple[int, int, bytes]]:
    """The compact range of [0, tree_size): (level, index, hash) of the perfect subtrees that
    make it up, largest first."""
    pieces: list[tuple[int, int]] = []
    start = 0
    for level in range(tree_size.bit_length() - 1, -1, -1):
        size = 1 << level
        if tree_size & size:
            pieces.append((start, size))
            start += size
    if not pieces:
        return []
    found = _fetch(set(pieces))
    return [(size.bit_length() - 1, start // size, found[(start, size)]) for start, size in pieces]


class CompactRange:
    """Appends leaves to a tree's right border, emitting each perfect subtree it completes.
    Memory is O(log n) whatever the number of leaves."""

    def __init__(self, tree_size: int, pieces: Iterable[tuple[int, int, bytes]]) -> None:
        self.size = tree_size
        self.stack: list[tuple[int, int, bytes]] = list(pieces)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; returns the (level >= 1, index, hash) nodes it completed."""
        completed: list[tuple[int, int, bytes]] = []
        self.stack.append((0, self.size, leaf))
        self.size += 1
        while len(self.stack) >= 2 and self.stack[-1][0] == self.stack[-2][0]:
            level, _, right = self.stack.pop()
            _, left_index, left = self.stack.pop()
            node = (level + 1, left_index // 2, merkle.node_hash(left, right))
            self.stack.append(node)
            completed.append(node)
        return completed

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        acc = self.stack[-1][2]
        for _, _, h in reversed(self.stack[:-1]):
            acc = merkle.node_hash(h, acc)
        return acc
