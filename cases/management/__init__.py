"""Operator commands of the case domain, and how they turn service errors into one line."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from rest_framework.exceptions import APIException

NON_FIELD_KEYS = {"__all__", "non_field_errors"}


def _flatten(value: object) -> list[str]:
    if isinstance(value, dict):
        return [m for v in value.values() for m in _flatten(v)]
    if isinstance(value, list | tuple):
        return [m for v in value for m in _flatten(v)]
    return [str(value)]


def error_line(exc: ValidationError | APIException) -> str:
    """One readable line for a service error: `field: message; other: message`."""
    if isinstance(exc, APIException):
        return "; ".join(_flatten(exc.detail))
    if hasattr(exc, "error_dict"):
        parts = []
        for field, errors in exc.message_dict.items():
            text = " ".join(errors)
            parts.append(text if field in NON_FIELD_KEYS else f"{field}: {text}")
        return "; ".join(parts)
    return " ".join(exc.messages)


def command_error(exc: ValidationError | APIException) -> CommandError:
    return CommandError(error_line(exc))
