"""Typed readers for settings taken from the environment; a bad value fails loudly at start."""

from __future__ import annotations

import os
import re

from django.core.exceptions import ImproperlyConfigured

# A media type, or a whole family as `type/*` (for allow-lists).
MEDIA_TYPE_PATTERN = r"[a-z0-9][a-z0-9.+-]*/(\*|[a-z0-9][a-z0-9.+-]*)"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def envstr(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def envint(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def envlist(name: str, default: list[str], *, pattern: str | None = None) -> list[str]:
    """Comma-separated items; with `pattern`, every item (default ones too) must match it whole."""
    raw = os.environ.get(name)
    items = default if raw is None else [item.strip() for item in raw.split(",") if item.strip()]
    if pattern is not None:
        for item in items:
            if not re.fullmatch(pattern, item):
                raise ImproperlyConfigured(f"{name}: {item!r} is not valid (expected {pattern})")
    return items
