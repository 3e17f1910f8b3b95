"""Tasks through a real Redis broker and a real Celery worker process (PostgreSQL runs only:
the worker must share the test database, which SQLite keeps in this process's memory)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from audit.models import AuditAction, AuditEvent
from caseapi.celery import app
from cases.models import CustodyAction, CustodyEvent
from cases.services import SYSTEM_USERNAME
from cases.tasks import evidence_fixity_sweep
from tests.conftest import IS_CI
from tests.factories import EvidenceFactory

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]

REDIS_URL = os.environ.get("CASEAPI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parent.parent


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


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


@pytest.fixture
def celery_worker(redis_broker: str, settings: Any, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A worker process on the test database and the same evidence folder; this process
    sends tasks to it through the broker instead of running them eagerly."""
    db = connection.settings_dict
    evidence_root = settings.STORAGES["evidence"]["OPTIONS"]["location"]
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": redis_broker,
        "EVIDENCE_ROOT": evidence_root,
        "CASEAPI_VAR_DIR": str(tmp_path / "var"),
    }
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "caseapi",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    previous = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    app.conf.update(broker_url=redis_broker, task_always_eager=False)
    try:
        _wait_for(lambda: b"ready." in log_path.read_bytes() or worker.poll() is not None, 60, "the worker to start")
        assert worker.poll() is None, log_path.read_text()
        yield worker
    finally:
        app.conf.update(**previous)
        app.close()
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        connection.close()


def test_fixity_sweep_rehashes_stored_evidence_in_a_real_worker(world: Any, celery_worker: Any) -> None:
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("chat.txt", b"transcript " * 1000))
    reference = EvidenceFactory(case=world.case)

    evidence_fixity_sweep.delay()

    verified = _wait_for(
        lambda: CustodyEvent.objects.filter(evidence=item, action=CustodyAction.VERIFIED).first(),
        60,
        "the worker to record a verified custody event",
    )
    assert verified.details["match"] is True
    assert verified.details["computed"] == item.sha256
    assert verified.actor.username == SYSTEM_USERNAME
    assert AuditEvent.objects.filter(action=AuditAction.EVIDENCE_VERIFIED, target_id=str(item.pk)).count() == 1
    assert not CustodyEvent.objects.filter(evidence=reference, action=CustodyAction.VERIFIED).exists()


def test_worker_records_a_mismatch_when_stored_bytes_were_altered(
    world: Any, celery_worker: Any, settings: Any
) -> None:
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("photo.bin", b"\x89PNG original bytes"))
    stored = Path(settings.STORAGES["evidence"]["OPTIONS"]["location"]) / item.content_name
    stored.chmod(0o600)
    stored.write_bytes(b"\x89PNG altered bytes!")

    evidence_fixity_sweep.delay()

    verified = _wait_for(
        lambda: CustodyEvent.objects.filter(evidence=item, action=CustodyAction.VERIFIED).first(),
        60,
        "the worker to record a verified custody event",
    )
    assert verified.details["match"] is False
    assert verified.details["expected"] == item.sha256
    assert verified.details["computed"] != item.sha256
