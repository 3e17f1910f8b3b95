"""The checkpoint signing key: AUDIT_SIGNING_KEY (signer-key text), or AUDIT_SIGNING_KEY_FILE;
in development only, a key generated into the var folder with a warning."""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit import note

logger = logging.getLogger(__name__)


def _read_key_file(path: Path) -> note.Signer:
    try:
        return note.parse_signer(path.read_text().strip())
    except OSError as exc:
        raise ImproperlyConfigured(f"cannot read the audit signing key file: {exc.strerror}") from exc
    except note.NoteError as exc:
        raise ImproperlyConfigured(f"the audit signing key file is not a signer key: {exc}") from exc


@cache
def signer() -> note.Signer:
    if settings.AUDIT_SIGNING_KEY:
        try:
            return note.parse_signer(settings.AUDIT_SIGNING_KEY)
        except note.NoteError as exc:
            raise ImproperlyConfigured(f"AUDIT_SIGNING_KEY is not a signer key: {exc}") from exc
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if path.exists():
        return _read_key_file(path)
    if not (settings.DEBUG or settings.TESTING):
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE is required when DEBUG is off")
    generated = note.Signer.generate(settings.AUDIT_LOG_ORIGIN)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated.text() + "\n")
    logger.warning("generated a development audit signing key at %s; set AUDIT_SIGNING_KEY in production", path)
    return generated


def verifier() -> note.Verifier:
    return signer().verifier
