"""Background jobs of intercept ingest. Each takes no arguments or ids and is safe to run
twice; schedule them with Celery beat (see docs/ingest.md)."""

from __future__ import annotations

from celery import shared_task

from cases.models import CaseStatus
from intercept import services
from intercept.models import IngestSource


@shared_task(acks_late=True, ignore_result=True)
def seen_signatures_purge() -> int:
    """Forget used signatures that can no longer pass the 5-minute window (replay table)."""
    return services.seen_signatures_purge()


@shared_task(acks_late=True, ignore_result=True)
def leads_rescore() -> int:
    """Keep bot leads' priorities current as their last contact ages, for every open
    operation that has an ingest source."""
    cases = {
        source.case for source in IngestSource.objects.select_related("case").exclude(case__status=CaseStatus.CLOSED)
    }
    return sum(services.leads_rescore(case=case) for case in cases)
