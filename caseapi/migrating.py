"""Schema changes run without the requests' statement timeout.

The settings give every PostgreSQL connection `statement_timeout` (DB_STATEMENT_TIMEOUT_MS, 30 s
by default), which keeps a runaway request from holding a connection. `manage.py migrate` is an
operator's deliberate step, and some of its statements rewrite or index a whole table (the audit
log's canonical column, the evidence list's index): on a regional database they run for
minutes, and a migration cut off by the timeout leaves the upgrade to be resumed by hand. So
the migrate command's connection lifts the timeout before the first migration and restores it
after the last (for a process that goes on using the connection, such as the test runner)."""

from __future__ import annotations

from typing import Any

from django.db import connections


def lift_statement_timeout(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """pre_migrate receiver: `SET statement_timeout = 0` on the connection being migrated
    (PostgreSQL; other databases have no such timeout). Sent once per app; the setting is the
    session's, so it holds for every migration the command runs."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")


def restore_statement_timeout(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver: the connection's own statement timeout again (`RESET`: the value
    the settings gave it when it was opened)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout")
