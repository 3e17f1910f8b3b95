"""Normalizing identifiers to one canonical value per kind, so the same phone typed three
ways is one Identifier row. Phones become E.164 through `phonenumbers`."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

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
