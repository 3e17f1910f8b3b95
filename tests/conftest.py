"""Shared fixtures: fast hashing, isolated evidence storage, append-only-aware flushes, and
the personas every permission test uses."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections
from django.test import TransactionTestCase
from django.utils import timezone
from rest_framework.test import APIClient

from audit import signing
from caseapi.celery import app as celery_app
from cases import services
from cases.models import AgencyKind, AuthToken, Case, Role, TeamRole
from cases.tokens import token_digest
from tests.factories import AgencyFactory, CaseFactory, UserFactory

IS_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _patch_transactional_flush() -> None:
    """TransactionTestCase empties tables between tests; the append-only triggers would
    refuse. Around that flush only, PostgreSQL runs in replica mode (user triggers do not
    fire) and SQLite's triggers are dropped and then recreated from their own SQL."""
    original = TransactionTestCase._fixture_teardown

    def teardown(self: Any) -> None:
        saved: dict[str, list[str]] = {}
        for alias in connections:
            conn = connections[alias]
            with conn.cursor() as cursor:
                if conn.vendor == "postgresql":
                    cursor.execute("SET session_replication_role = replica")
                else:
                    cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
                    triggers = cursor.fetchall()
                    saved[alias] = [sql for _, sql in triggers]
                    for name, _ in triggers:
                        cursor.execute(f'DROP TRIGGER "{name}"')
        try:
            original(self)
        finally:
            for alias in connections:
                conn = connections[alias]
                with conn.cursor() as cursor:
                    if conn.vendor == "postgresql":
                        cursor.execute("SET session_replication_role = DEFAULT")
                    else:
                        for sql in saved.get(alias, []):
                            cursor.execute(sql)
            # The flush emptied the chain head too; sealing needs its row.
            from audit.models import ChainHead

            ChainHead.objects.get_or_create(pk=ChainHead.SINGLETON)

    TransactionTestCase._fixture_teardown = teardown


_patch_transactional_flush()


@pytest.fixture(autouse=True)
def _test_settings(settings: Any, tmp_path: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "evidence")},
        },
        "packets": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "packets")},
        },
    }
    settings.FILE_UPLOAD_TEMP_DIR = None
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    settings.AUDIT_SIGNING_KEY = None
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "audit-signing.key")
    signing.signer.cache_clear()
    cache.clear()


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    vendor = django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL; this run is on " + vendor)
    for item in items:
        if "postgres_only" in item.keywords and vendor != "postgresql":
            item.add_marker(skip_pg)


@dataclass
class World:
    """Named personas, healthchecks-style:

    - agency A (MCSO): `lead` opened `case` and leads it; `teammate` is an investigator on the
      team; `viewer` can only view; `investigator` is in agency A but not on the team;
      `supervisor`, `auditor`, `admin` hold those roles in agency A.
    - agency B (RCPD): `outsider` investigator and `outsider_supervisor`; `other_case` is theirs.
    - prosecutor's office (SAO): `prosecutor`.
    """

    agency_a: Any
    agency_b: Any
    agency_p: Any
    lead: Any
    teammate: Any
    viewer: Any
    investigator: Any
    supervisor: Any
    auditor: Any
    admin: Any
    prosecutor: Any
    outsider: Any
    outsider_supervisor: Any
    case: Case
    other_case: Case


@pytest.fixture
def world(db: Any) -> World:
    agency_a = AgencyFactory(code="MCSO", name="Metro County Sheriff")
    agency_b = AgencyFactory(code="RCPD", name="River City Police")
    agency_p = AgencyFactory(code="SAO", name="State Attorney", kind=AgencyKind.PROSECUTOR)
    lead = UserFactory(username="lena_lead", agency=agency_a, role=Role.INVESTIGATOR)
    teammate = UserFactory(username="tom_team", agency=agency_a, role=Role.INVESTIGATOR)
    viewer = UserFactory(username="vic_viewer", agency=agency_a, role=Role.INVESTIGATOR)
    investigator = UserFactory(username="ivy_noteam", agency=agency_a, role=Role.INVESTIGATOR)
    supervisor = UserFactory(username="sam_super", agency=agency_a, role=Role.SUPERVISOR)
    auditor = UserFactory(username="aud_audit", agency=agency_a, role=Role.AUDITOR)
    admin = UserFactory(username="ada_admin", agency=agency_a, role=Role.AGENCY_ADMIN)
    prosecutor = UserFactory(username="pat_pros", agency=agency_p, role=Role.PROSECUTOR)
    outsider = UserFactory(username="otto_out", agency=agency_b, role=Role.INVESTIGATOR)
    outsider_supervisor = UserFactory(username="olga_outsup", agency=agency_b, role=Role.SUPERVISOR)
    case = CaseFactory(actor=lead, title="Operation Nightfall")
    services.team_member_set(actor=lead, case=case, user=teammate, role=TeamRole.INVESTIGATOR)
    services.team_member_set(actor=lead, case=case, user=viewer, role=TeamRole.VIEWER)
    other_case = CaseFactory(actor=outsider, title="River sting")
    return World(
        agency_a=agency_a,
        agency_b=agency_b,
        agency_p=agency_p,
        lead=lead,
        teammate=teammate,
        viewer=viewer,
        investigator=investigator,
        supervisor=supervisor,
        auditor=auditor,
        admin=admin,
        prosecutor=prosecutor,
        outsider=outsider,
        outsider_supervisor=outsider_supervisor,
        case=case,
        other_case=other_case,
    )


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def client_for(user: Any) -> APIClient:
    """An API client authenticated with a real token issued for `user`."""
    key = secrets.token_urlsafe(32)
    AuthToken.objects.create(
        user=user, digest=token_digest(key), prefix=key[:8], expires_at=timezone.now() + django_settings.AUTH_TOKEN_TTL
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def as_user() -> Any:
    return client_for


# ---------------------------------------------------------------- a real Celery worker


def _worker_broker_url() -> str:
    """CASEAPI_TEST_REDIS_URL (default database 15) with one database number per pytest-xdist
    worker, counting down, so parallel worker tests never share a queue."""
    base = urlsplit(os.environ.get("CASEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    offset = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    number = int(base.path.strip("/") or 0)
    return urlunsplit(base._replace(path=f"/{(number - offset) % 16}"))


REDIS_URL = _worker_broker_url()
ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _configure_celery(**conf: Any) -> None:
    """Point this process's Celery app at another broker. Celery keeps its producer pool bound
    to the first broker it used even after `app.close()`, so that pool is dropped too."""
    celery_app.loader.import_default_modules()
    celery_app.conf.update(**conf)
    celery_app.close()
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_broker() -> str:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if IS_CI:
            pytest.fail(f"Redis is required in CI and is not reachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    client.flushdb()
    return REDIS_URL


def spawn_celery_worker(
    settings: Any, var_dir: Path, broker_url: str, log_path: Path, *, new_session: bool = False
) -> subprocess.Popen:
    """A prefork worker (one child process) on the test database (PostgreSQL: transactional
    tests only), the same evidence and packet folders and the same audit signing key, logging
    to `log_path`; returns once it is ready."""
    signing.signer()  # the key file exists before the worker reads it: one key for both processes
    db = connections["default"].settings_dict
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": broker_url,
        "EVIDENCE_ROOT": settings.STORAGES["evidence"]["OPTIONS"]["location"],
        "PACKET_ROOT": settings.STORAGES["packets"]["OPTIONS"]["location"],
        "AUDIT_SIGNING_KEY_FILE": settings.AUDIT_SIGNING_KEY_FILE,
        "AUDIT_CHECKPOINT_DIR": settings.AUDIT_CHECKPOINT_DIR,
        "CASEAPI_VAR_DIR": str(var_dir),
    }
    env.pop("AUDIT_SIGNING_KEY", None)
    command = [sys.executable, "-m", "celery", "-A", "caseapi", "worker", "--pool=prefork", "--concurrency=1"]
    command += ["--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session
        )
    try:
        wait_for(lambda: b"ready." in log_path.read_bytes() or worker.poll() is not None, 60, "the worker to start")
        assert worker.poll() is None, log_path.read_text()
    except BaseException:
        worker.kill()
        worker.wait()
        raise
    return worker


@pytest.fixture
def celery_worker(redis_broker: str, settings: Any, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A worker from spawn_celery_worker; this process sends tasks to it through the broker
    instead of running them eagerly."""
    log_path = tmp_path / "worker.log"
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    _configure_celery(broker_url=redis_broker, task_always_eager=False)
    worker = None
    try:
        worker = spawn_celery_worker(settings, tmp_path / "var", redis_broker, log_path)
        worker.log_path = log_path  # type: ignore[attr-defined]
        yield worker
    finally:
        _configure_celery(**previous)
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        connections["default"].close()
