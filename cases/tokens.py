"""Token digests: what is stored in place of an API token."""

from __future__ import annotations

import hashlib


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
