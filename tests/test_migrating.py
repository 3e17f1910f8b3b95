"""`manage.py migrate` runs without the requests' statement timeout (caseapi.migrating): a
migration that rewrites or indexes a large table is not cut off after 30 s. The connection gets
its own timeout back afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models.signals import pre_migrate

pytestmark = pytest.mark.django_db


def _statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


@pytest.fixture
def postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL; this run is on sqlite3 (no statement timeout)")


def test_migrations_run_without_the_statement_timeout_and_the_connection_gets_it_back(postgresql):
    seen: list[str] = []

    def during(sender: Any, **kwargs: Any) -> None:  # connected after caseapi.migrating's receiver
        seen.append(_statement_timeout())

    before = _statement_timeout()
    assert before != "0"  # the settings' timeout (DB_STATEMENT_TIMEOUT_MS)
    pre_migrate.connect(during)
    try:
        call_command("migrate", verbosity=0, interactive=False)
    finally:
        pre_migrate.disconnect(during)
    assert seen and set(seen) == {"0"}
    assert _statement_timeout() == before


def test_a_migration_statement_longer_than_the_timeout_completes(postgresql):
    """What the lifted timeout is for, in small: with a 50 ms timeout, a 0.2 s statement is
    cancelled on a request's connection and completes inside a migration's."""
    from django.db import DatabaseError, transaction

    from caseapi.migrating import lift_statement_timeout

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
        with pytest.raises(DatabaseError), transaction.atomic():
            cursor.execute("SELECT pg_sleep(0.2)")
        lift_statement_timeout(sender=None, using=connection.alias)
        cursor.execute("SELECT pg_sleep(0.2)")
