"""Background jobs of the case domain. Tasks take ids, load objects and call a service; each
is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from cases.models import EvidenceItem, EvidenceStatus
from cases.services import evidence_verify, packet_build, system_user


@shared_task(acks_late=True)
def evidence_verify_task(evidence_id: str) -> dict[str, object]:
    """Re-hash one stored item as the system account; returns the verification details."""
    item = EvidenceItem.objects.select_related("case").get(pk=evidence_id)
    event = evidence_verify(actor=system_user(), item=item, check_perm=False)
    return {"evidence": str(item.pk), **event.details}


@shared_task(acks_late=True)
def evidence_fixity_sweep() -> dict[str, int]:
    """Queue a re-hash of every active stored item (a periodic fixity check). Re-running only
    adds another dated `verified` custody event per item."""
    ids = list(
        EvidenceItem.objects.filter(status=EvidenceStatus.ACTIVE).exclude(content_name="").values_list("pk", flat=True)
    )
    for pk in ids:
        evidence_verify_task.delay(str(pk))
    return {"queued": len(ids)}


@shared_task(acks_late=True, reject_on_worker_lost=True)
def build_export_packet(packet_id: str) -> dict[str, object]:
    """Build one requested export packet (services.packet_build). Acknowledged only once it
    returns, and requeued if the worker dies mid-build: the rerun rebuilds the half-built packet
    (a ready or failed one is left alone), so one request makes at most one packet."""
    packet = packet_build(packet_id=packet_id)
    return {"packet": str(packet.pk), "status": packet.status, "sha256": packet.sha256, "attempts": packet.attempts}
