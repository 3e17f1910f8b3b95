"""Fixtures of the OWASP API Security Top 10 tests: the intercept fixtures (an operation, its
ingest source and a signing pusher) are shared with tests/intercept."""

from __future__ import annotations

from tests.intercept.conftest import issued, op, push  # noqa: F401
