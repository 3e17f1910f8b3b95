"""The hash chain: the canonical JSON of an audit entry and its entry hash.

entry_hash(n) = SHA-256(prev_hash(n) || canonical_json(entry n)), where prev_hash(1) is 32
zero bytes and prev_hash(n) = entry_hash(n-1). Hashes are raw 32-byte digests (stored as
lower-case hex).

The canonical JSON is exactly PostgreSQL's text form of a `jsonb` value: object keys ordered
by their length in UTF-8 bytes, then bytewise; ", " between members and ": " after keys;
strings in UTF-8 with only `"`, `\\` and control characters escaped (`\\n`, `\\u0001`, ...);
no floating-point numbers (recording turns them into strings). So the database can recompute
every hash itself (audit.verify) and a reader can check one with `psql` or `sha256sum`; see
docs/audit.md for a worked example.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from json.encoder import encode_basestring as _string  # json.dumps(s, ensure_ascii=False), in C
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


def _key_order(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return len(encoded), encoded


def render(value: Any) -> str:
    """`value` in PostgreSQL's jsonb text form (see the module docstring)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda item: _key_order(item[0]))
        return "{" + ", ".join(f"{_string(k)}: {render(v)}" for k, v in members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} canonically")


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
    return render(entry).encode()


def entry_hash(prev_hash_hex: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash_hex) + canonical).hexdigest()
