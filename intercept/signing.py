"""Request signatures of machine clients and the encryption of their secrets at rest.

A request is signed with `X-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." +
raw body)>` and `X-Timestamp: <Unix seconds>`. Verifying an HMAC needs the secret itself,
so sources keep it encrypted with Fernet under a key derived by HKDF-SHA256 from SECRET_KEY
(and SECRET_KEY_FALLBACKS, so a SECRET_KEY rotation that keeps the old key as a fallback
still decrypts). A database dump alone yields no usable secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SIGNATURE_PREFIX = "sha256="
HKDF_SALT = b"caseapi/intercept"
HKDF_INFO = b"ingest source secret encryption v1"


def new_secret() -> str:
    """A fresh 256-bit secret, URL-safe text (what the client keeps and signs with)."""
    return secrets.token_urlsafe(32)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body` under `secret`."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signed_headers(source_id: str, secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers a client sends with `body` (the client side of the scheme)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "X-Source-Id": source_id,
        "X-Timestamp": stamp,
        "X-Signature": SIGNATURE_PREFIX + signature(secret, stamp, body),
    }


def signature_matches(secret: str, timestamp: str, body: bytes, given_hex: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), given_hex)


def _derive(key: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(key.encode())))


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_derive(key) for key in keys])


def _keys() -> tuple[str, ...]:
    return (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []))


def encrypt_secret(secret: str) -> str:
    return _fernet(_keys()).encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    """The secret; cryptography.fernet.InvalidToken if no current or fallback key opens it."""
    return _fernet(_keys()).decrypt(token.encode()).decode()
