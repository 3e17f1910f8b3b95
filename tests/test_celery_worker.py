"""Tasks through a real Redis broker and a real Celery worker process (PostgreSQL runs only:
the worker must share the test database, which SQLite keeps in this process's memory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import AuditAction, AuditEvent
from cases.models import CustodyAction, CustodyEvent
from cases.services import SYSTEM_USERNAME
from cases.tasks import evidence_fixity_sweep
from tests.conftest import wait_for
from tests.factories import EvidenceFactory

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.celery_worker,
    pytest.mark.django_db(transaction=True),
]


def test_fixity_sweep_rehashes_stored_evidence_in_a_real_worker(world: Any, celery_worker: Any) -> None:
    item = EvidenceFactory(case=world.case, upload=SimpleUploadedFile("chat.txt", b"transcript " * 1000))
    reference = EvidenceFactory(case=world.case)

    evidence_fixity_sweep.delay()

    verified = wait_for(
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

    verified = wait_for(
        lambda: CustodyEvent.objects.filter(evidence=item, action=CustodyAction.VERIFIED).first(),
        60,
        "the worker to record a verified custody event",
    )
    assert verified.details["match"] is False
    assert verified.details["expected"] == item.sha256
    assert verified.details["computed"] != item.sha256
