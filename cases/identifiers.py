"""Normalizing identifiers to one canonical value per kind, so the same phone typed three
ways is one Identifier row. Phones become E.164 through `phonenumbers`."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connections, transaction

from caseapi import crypto
from cases.models import IdentifierKind

MAX_VALUE_LENGTH = 254
_HANDLE = re.compile(r"^[\w.\-]{1,100}$", re.UNICODE)

PHONE_UNPARSEABLE = "Not a phone number: {value!r} could not be parsed ({reason})."
PHONE_INVALID = "Not a valid phone number: {value!r} is not assigned in its numbering plan."
EMAIL_INVALID = "Not a valid email address: {value!r}."
HANDLE_INVALID = "A handle is 1-100 letters, digits, '.', '_' or '-' (a leading @ or $ is dropped): {value!r}."
VALUE_EMPTY = "An identifier value cannot be empty."
VALUE_TOO_LONG = f"An identifier value is at most {MAX_VALUE_LENGTH} characters."
KIND_UNKNOWN = "Unknown identifier kind {kind!r}; expected one of: {kinds}."


def normalize_phone(value: str, region: str | None = None) -> str:
    try:
        parsed = phonenumbers.parse(value, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(PHONE_UNPARSEABLE.format(value=value, reason=str(exc)), code="invalid_phone") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(PHONE_INVALID.format(value=value), code="invalid_phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize(kind: str, value: str) -> str:
    """The canonical value of `value` as an identifier of `kind`; ValidationError says why not."""
    if kind not in IdentifierKind.values:
        raise ValidationError(
            KIND_UNKNOWN.format(kind=kind, kinds=", ".join(IdentifierKind.values)), code="invalid_kind"
        )
    value = unicodedata.normalize("NFKC", value or "").strip()
    if not value:
        raise ValidationError(VALUE_EMPTY, code="blank")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValidationError(VALUE_TOO_LONG, code="max_length")
    if kind == IdentifierKind.PHONE:
        return normalize_phone(value)
    if kind == IdentifierKind.EMAIL:
        lowered = value.lower()
        try:
            validate_email(lowered)
        except ValidationError as exc:
            raise ValidationError(EMAIL_INVALID.format(value=value), code="invalid_email") from exc
        return lowered
    handle = value.lstrip("@$").casefold()
    if not _HANDLE.match(handle):
        raise ValidationError(HANDLE_INVALID.format(value=value), code="invalid_handle")
    return handle


def audit_label(kind: str, value: str) -> str:
    """How the audit log names a normalized identifier without its value (Identifier.audit_label)."""
    return f"{kind}:{crypto.blind_index(kind, value)[:16]}"


def identifiers_reindex(*, using: str = "default", batch: int = 1000) -> int:
    """Recompute the blind index (`value_index`) of every identifier under the current
    BLIND_INDEX_KEY, one transaction per `batch` rows in id order; returns how many changed.
    Raw SQL, so migrations can use it. A value no key opens raises crypto.DecryptionError."""
    connection = connections[using]
    column = "cases_identifier.value"
    changed = 0
    last = 0
    while True:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, kind, value, value_index FROM cases_identifier WHERE id > %s ORDER BY id LIMIT %s",
                [last, batch],
            )
            rows = cursor.fetchall()
            if not rows:
                return changed
            last = rows[-1][0]
            params = []
            for pk, kind, stored, old in rows:
                digest = crypto.blind_index(kind, crypto.decrypt(stored, column))
                if digest != old:
                    params.append((digest, pk))
            if params:
                cursor.executemany("UPDATE cases_identifier SET value_index = %s WHERE id = %s", params)
                changed += len(params)
