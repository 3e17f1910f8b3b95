"""Schemathesis runs every operation of /api/schema/ in-process, as each role, with all of its
built-in checks plus the cross-agency replay check and the ingest item check
(tests/fuzz/checks.py). Every failure fails the test: there is no allow-list. See
docs/fuzzing.md."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import schemathesis
from django.db import DatabaseError, transaction
from schemathesis.core.failures import FailureGroup

from tests.fuzz.checks import ingest_items_judged_one_by_one, make_cross_agency_check
from tests.fuzz.conftest import FuzzWorld, auth_headers

schema = schemathesis.pytest.from_fixture("fuzz_schema")


@contextmanager
def own_savepoint() -> Iterator[None]:
    """Each request runs in a savepoint of the test's transaction: a database error inside one
    request (a 500 the checks report) cannot poison the requests after it on PostgreSQL."""
    sid = transaction.savepoint()
    try:
        yield
    finally:
        try:
            transaction.savepoint_commit(sid)
        except DatabaseError:
            transaction.savepoint_rollback(sid)


@schema.parametrize()
def test_every_operation_conforms_to_the_schema_for_each_role(case: Any, role: str, fuzz_world: FuzzWorld) -> None:
    def replay_as_agency_b(original: Any) -> Any:
        return original.call(headers=auth_headers(role, fuzz_world.b))

    check = make_cross_agency_check(
        role=role, a_ids=fuzz_world.known_a_ids, a_seqs=fuzz_world.seqs, replay=replay_as_agency_b
    )
    with own_savepoint():
        try:
            case.call_and_validate(
                headers=auth_headers(role, fuzz_world.a), additional_checks=[check, ingest_items_judged_one_by_one]
            )
        except FailureGroup as failure:
            failure.add_note(f"Reproduce (as {role}): {case.as_curl_command()}")
            raise
