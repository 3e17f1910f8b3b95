"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and proof verification.

Pure functions over bytes. Hashing: leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left
|| right), the empty tree's root is SHA-256 of nothing. `leaves` is a sequence of leaf *data*
(the service passes entry hashes); proofs are lists of 32-byte hashes, leaf-side first.

Proof generation is written once, over a `SubtreeSource`: a callable giving the hash of the
perfect, aligned subtree of `size` (a power of two) leaves starting at `start`. Over a list of
leaves that source hashes them; the service answers it from stored subtree hashes, so a proof
in a tree of any size reads O(log n) rows. The two verify functions never raise: anything
malformed is simply False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

SubtreeSource = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly less than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_hash(start: int, end: int, subtree: SubtreeSource) -> bytes:
    """MTH of leaves [start, end): perfect aligned pieces from `subtree`, joined right to left.
    `start` must be aligned to the largest power of two that fits in the range, which holds for
    every range RFC 9162's proofs ask for."""
    size = end - start
    if size == 0:
        return EMPTY_ROOT
    if size & (size - 1) == 0:
        return subtree(start, size)
    k = _split(size)
    return node_hash(subtree(start, k), range_hash(start + k, end, subtree))


def tree_root(tree_size: int, subtree: SubtreeSource) -> bytes:
    return range_hash(0, tree_size, subtree)


def _path(m: int, start: int, end: int, subtree: SubtreeSource) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(m, D[start:end]), iterative-friendly recursion depth O(log n)."""
    n = end - start
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, start, start + k, subtree), range_hash(start + k, end, subtree)]
    return [*_path(m - k, start + k, end, subtree), subtree(start, k)]


def _subproof(m: int, start: int, end: int, complete: bool, subtree: SubtreeSource) -> list[bytes]:
    """RFC 9162 2.1.4.1 SUBPROOF(m, D[start:end], b)."""
    n = end - start
    if m == n:
        return [] if complete else [range_hash(start, end, subtree)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, start, start + k, complete, subtree), range_hash(start + k, end, subtree)]
    return [*_subproof(m - k, start + k, end, False, subtree), subtree(start, k)]


def inclusion_proof_from(index: int, tree_size: int, subtree: SubtreeSource) -> list[bytes]:
    if not 0 <= index < tree_size:
        raise ValueError(f"leaf index {index} is outside a tree of size {tree_size}")
    return _path(index, 0, tree_size, subtree)


def consistency_proof_from(old_size: int, new_size: int, subtree: SubtreeSource) -> list[bytes]:
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    return _subproof(old_size, 0, new_size, True, subtree)


def _list_source(leaves: Sequence[bytes]) -> SubtreeSource:
    hashes = [leaf_hash(bytes(d)) for d in leaves]

    @cache
    def subtree(start: int, size: int) -> bytes:
        if size == 1:
            return hashes[start]
        half = size // 2
        return node_hash(subtree(start, half), subtree(start + half, half))

    return subtree


def root_hash(leaves: Sequence[bytes]) -> bytes:
    return tree_root(len(leaves), _list_source(leaves))


def inclusion_proof(index: int, tree_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    if tree_size > len(leaves):
        raise ValueError(f"tree size {tree_size} is larger than the {len(leaves)} leaves given")
    return inclusion_proof_from(index, tree_size, _list_source(leaves[:tree_size]))


def consistency_proof(old_size: int, new_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    if new_size > len(leaves):
        raise ValueError(f"tree size {new_size} is larger than the {len(leaves)} leaves given")
    return consistency_proof_from(old_size, new_size, _list_source(leaves[:new_size]))


def _well_formed(proof: object) -> list[bytes] | None:
    if proof is None:
        return []
    if not isinstance(proof, list | tuple):
        return None
    out = []
    for item in proof:
        if not isinstance(item, bytes | bytearray) or len(item) != HASH_SIZE:
            return None
        out.append(bytes(item))
    return out


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes] | None, root: bytes) -> bool:
    """RFC 9162 2.1.3.2: True only if `proof` proves `leaf_hash` at `index` in the tree of
    `tree_size` leaves whose root is `root`."""
    try:
        hashes = _well_formed(proof)
        if hashes is None or not (_is_hash(leaf_hash) and _is_hash(root)):
            return False
        if not (_is_size(index) and _is_size(tree_size)) or index >= tree_size:
            return False
        fn, sn, r = index, tree_size - 1, bytes(leaf_hash)
        for p in hashes:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = node_hash(p, r)
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
            else:
                r = node_hash(r, p)
            fn >>= 1
            sn >>= 1
        return sn == 0 and r == bytes(root)
    except Exception:  # noqa: BLE001 - a verifier answers False, never raises
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes] | None
) -> bool:
    """RFC 9162 2.1.4.2: True only if `proof` shows the tree of `old_size` leaves with root
    `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`."""
    try:
        hashes = _well_formed(proof)
        if hashes is None or not (_is_size(old_size) and _is_size(new_size)) or old_size > new_size:
            return False
        if old_size == 0:
            # Every tree extends the empty tree: such a "proof" proves nothing, so it is refused.
            return False
        if old_size == new_size:
            return not hashes and isinstance(old_root, bytes | bytearray) and bytes(old_root) == bytes(new_root)
        if not hashes or not (_is_hash(old_root) and _is_hash(new_root)):
            return False
        if old_size & (old_size - 1) == 0:
            hashes = [bytes(old_root), *hashes]
        fn, sn = old_size - 1, new_size - 1
        while fn & 1:
            fn >>= 1
            sn >>= 1
        fr = sr = hashes[0]
        for c in hashes[1:]:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                fr = node_hash(c, fr)
                sr = node_hash(c, sr)
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
            else:
                sr = node_hash(sr, c)
            fn >>= 1
            sn >>= 1
        return fr == bytes(old_root) and sr == bytes(new_root) and sn == 0
    except Exception:  # noqa: BLE001 - a verifier answers False, never raises
        return False
