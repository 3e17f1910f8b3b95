"""Encryption of personal data at rest, and keyed blind indexes for looking it up.

Sensitive columns (buyer names and details, chat message bodies, identifier values) hold
`enc:v1:<key id>:<base64url(nonce || AES-256-GCM ciphertext+tag)>`. The associated data is the
column's name (`<table>.<column>`), so a ciphertext copied into another column does not open.
The key ring (FIELD_ENCRYPTION_KEYS: `id:base64key,...`) encrypts with its first key and opens
with any of them; rotating is: put a new key first, keep the old ones, run
`manage.py rotate_field_keys` (re-encrypts every row under the first key), then drop the old.

Values are found without decrypting through a blind index: HMAC-SHA256 under BLIND_INDEX_KEY
of the normalized value (cases.identifiers), stored beside the ciphertext and indexed. Equal
values have equal digests; the digest reveals nothing without the key. A new blind-index key
takes `manage.py rotate_field_keys --reindex`.

In DEBUG (and tests) both keys are derived from SECRET_KEY by HKDF when unset; outside DEBUG
they are required (caseapi.settings).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "enc:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """A stored value that no key of the ring opens (wrong key, or tampered ciphertext)."""


@dataclass(frozen=True)
class KeyRing:
    current: str
    keys: dict[str, AESGCM]


def derive_key(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key derived from `secret` (development defaults only)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=b"caseapi/fields", info=purpose).derive(
        secret.encode()
    )


def parse_keys(raw: str) -> list[tuple[str, bytes]]:
    """`id:base64key,...` → [(id, 32-byte key)]; ImproperlyConfigured says what is wrong."""
    keys: list[tuple[str, bytes]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id.isalnum() or len(key_id) > 16:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS items are <id>:<base64 key>, id 1-16 letters or digits")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS: key {key_id!r} is not base64") from exc
        if len(key) != KEY_BYTES:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS: key {key_id!r} must be 32 bytes, got {len(key)}")
        if any(existing == key_id for existing, _ in keys):
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds no key")
    return keys


def parse_blind_index_key(raw: str) -> bytes:
    """BLIND_INDEX_KEY (base64 of 32 bytes) → the key; ImproperlyConfigured says what is wrong."""
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured("BLIND_INDEX_KEY is not base64") from exc
    if len(key) != KEY_BYTES:
        raise ImproperlyConfigured(f"BLIND_INDEX_KEY must be 32 bytes, got {len(key)}")
    return key


def format_keys(keys: list[tuple[str, bytes]]) -> str:
    """The FIELD_ENCRYPTION_KEYS text of a parsed ring (to hand the same keys to a subprocess)."""
    return ",".join(f"{key_id}:{encode_key(key)}" for key_id, key in keys)


def encode_key(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def development_keys(secret: str) -> tuple[list[tuple[str, bytes]], bytes]:
    """The key ring and blind-index key DEBUG and tests use when none is set: derived from
    SECRET_KEY, so every process of one development setup agrees."""
    return [("dev", derive_key(secret, b"field-encryption"))], derive_key(secret, b"blind-index")


def new_key() -> str:
    """A fresh key in the form FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY take."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


@lru_cache(maxsize=4)
def _ring(config: tuple[tuple[str, bytes], ...]) -> KeyRing:
    return KeyRing(current=config[0][0], keys={key_id: AESGCM(key) for key_id, key in config})


def ring() -> KeyRing:
    return _ring(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str, column: str) -> str:
    """`plaintext` sealed under the current key, bound to `column` (`table.column`)."""
    keys = ring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = keys.keys[keys.current].encrypt(nonce, plaintext.encode(), column.encode())
    return f"{PREFIX}{keys.current}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def key_id_of(stored: str) -> str | None:
    if not is_encrypted(stored):
        return None
    return stored[len(PREFIX) :].partition(":")[0]


def decrypt(stored: str, column: str) -> str:
    """The plaintext of a value from `column`; DecryptionError if no key opens it. A value
    without the prefix is returned as it is (rows written before encryption; the migration
    and rotate_field_keys leave none behind)."""
    if not is_encrypted(stored):
        return stored
    key_id, _, body = stored[len(PREFIX) :].partition(":")
    aead = ring().keys.get(key_id)
    if aead is None:
        raise DecryptionError(f"{column}: no key {key_id!r} in FIELD_ENCRYPTION_KEYS")
    try:
        raw = base64.urlsafe_b64decode(body)
        return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode()).decode()
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise DecryptionError(f"{column}: the stored value does not open under key {key_id!r}") from exc


def blind_index(kind: str, value: str) -> str:
    """Hex HMAC-SHA256 of `kind:value` (a normalized value) under BLIND_INDEX_KEY."""
    return hmac.new(settings.BLIND_INDEX_KEY, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
