"""audit.merkle against the Certificate Transparency reference vectors (transparency-dev/merkle
testdata, copied to tests/data) and against itself on random trees."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from audit import merkle

VECTORS = json.loads((Path(__file__).resolve().parent.parent / "data" / "merkle-proofs.json").read_text())
# The RFC 6962 / transparency-dev reference leaves behind those vectors.
REFERENCE_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
]


def _b64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


def _proof(value: list[str] | None) -> list[bytes] | None:
    return None if value is None else [base64.b64decode(p) for p in value]


def _case_id(case: dict[str, Any]) -> str:
    return case["file"].removeprefix("testdata/")


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=_case_id)
def test_verify_inclusion_agrees_with_reference_vector(case: dict[str, Any]) -> None:
    ok = merkle.verify_inclusion(
        _b64(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case["proof"]), _b64(case["root"])
    )
    assert ok is (not case["wantErr"])


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=_case_id)
def test_verify_consistency_agrees_with_reference_vector(case: dict[str, Any]) -> None:
    ok = merkle.verify_consistency(
        case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case["proof"])
    )
    assert ok is (not case["wantErr"])


HAPPY_INCLUSION = [c for c in VECTORS["inclusion"] if c["desc"] == "happy path" and c["treeSize"] <= 8]
HAPPY_CONSISTENCY = [c for c in VECTORS["consistency"] if c["desc"] == "happy path" and c["size2"] <= 8]


@pytest.mark.parametrize("case", HAPPY_INCLUSION, ids=_case_id)
def test_inclusion_proof_matches_reference_proof(case: dict[str, Any]) -> None:
    proof = merkle.inclusion_proof(case["leafIdx"], case["treeSize"], REFERENCE_LEAVES)
    assert proof == (_proof(case["proof"]) or [])
    assert merkle.root_hash(REFERENCE_LEAVES[: case["treeSize"]]) == _b64(case["root"])


@pytest.mark.parametrize("case", HAPPY_CONSISTENCY, ids=_case_id)
def test_consistency_proof_matches_reference_proof(case: dict[str, Any]) -> None:
    proof = merkle.consistency_proof(case["size1"], case["size2"], REFERENCE_LEAVES)
    assert proof == (_proof(case["proof"]) or [])


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root_hash([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_generated_proofs_verify_for_every_index_and_size_up_to_40() -> None:
    rng = random.Random(7)
    leaves = [rng.randbytes(rng.randint(0, 40)) for _ in range(40)]
    roots = [merkle.root_hash(leaves[:n]) for n in range(41)]
    for size in range(1, 41):
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, leaves)
            assert merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, roots[size])
            assert not merkle.verify_inclusion(merkle.leaf_hash(leaves[index] + b"x"), index, size, proof, roots[size])
        for old in range(1, size):
            proof = merkle.consistency_proof(old, size, leaves)
            assert merkle.verify_consistency(old, size, roots[old], roots[size], proof)
            assert not merkle.verify_consistency(
                old, size, roots[old - 1] if old > 1 else b"\0" * 32, roots[size], proof
            )


@pytest.mark.parametrize(
    "args",
    [
        ("not bytes", 0, 1, [], b"\0" * 32),
        (b"\0" * 32, -1, 1, [], b"\0" * 32),
        (b"\0" * 32, 0, 1, "proof", b"\0" * 32),
        (b"\0" * 32, 0, 1, [object()], b"\0" * 32),
        (b"\0" * 32, True, 2, [b"\0" * 32], b"\0" * 32),
        (None, None, None, None, None),
        (b"\0" * 32, 2**70, 2**71, [b"\0" * 32] * 3, b"\0" * 32),
    ],
)
def test_verify_inclusion_returns_false_on_malformed_input_and_never_raises(args: tuple[Any, ...]) -> None:
    assert merkle.verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args",
    [
        (1, 2, "a", "b", []),
        (-1, 2, b"\0" * 32, b"\0" * 32, []),
        (3, 2, b"\0" * 32, b"\0" * 32, []),
        (1, 2, b"\0" * 32, b"\0" * 32, [b"short"]),
        (None, None, None, None, None),
        (1, 2, b"\0" * 32, b"\0" * 32, 12),
    ],
)
def test_verify_consistency_returns_false_on_malformed_input_and_never_raises(args: tuple[Any, ...]) -> None:
    assert merkle.verify_consistency(*args) is False


def test_proof_generation_refuses_out_of_range_requests() -> None:
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_proof(3, 3, REFERENCE_LEAVES)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(5, 4, REFERENCE_LEAVES)
