"""The hash chain: the canonical JSON of an audit entry and its entry hash.

entry_hash(n) = SHA-256(prev_hash(n) || canonical_json(entry n)), where prev_hash(1) is 32
zero bytes and prev_hash(n) = entry_hash(n-1). Hashes are raw 32-byte digests (stored as
lower-case hex). The canonical JSON is an object of exactly the fields in CHAIN_FIELDS, keys
sorted, no insignificant white space, non-ASCII characters as UTF-8 (not \\u escapes), encoded
as UTF-8. docs/audit.md works an example by hand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

GENESIS_HASH = "00" * 32

CHAIN_FIELDS = (
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


def canonical_time(value: dt.datetime) -> str:
    """UTC, microsecond precision, `Z` suffix: 2026-11-28T15:42:49.000123Z."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_entry(values: dict[str, Any]) -> bytes:
    """The canonical JSON bytes of an entry given its column values (seq included)."""
    entry = {
        "seq": int(values["seq"]),
        "created_at": canonical_time(values["created_at"]),
        "actor_id": values["actor_id"],
        "actor_name": values["actor_name"],
        "agency_id": values["agency_id"],
        "action": values["action"],
        "target_type": values["target_type"],
        "target_id": values["target_id"],
        "case_id": str(values["case_id"]) if values["case_id"] is not None else None,
        "changes": values["changes"],
        "request_id": values["request_id"],
        "ip": values["ip"],
        "user_agent": values["user_agent"],
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def entry_hash(prev_hash_hex: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash_hex) + canonical).hexdigest()
