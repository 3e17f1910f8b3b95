"""Background jobs of the case domain. Tasks take ids, load objects and call a service; each
is safe to run twice."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from celery import shared_task
from django.db import DatabaseError, connection
from django.utils import timezone

from cases.models import EvidenceItem, EvidenceStatus, ExportPacket, PacketStatus
from cases.services import evidence_verify, packet_build, system_user

logger = logging.getLogger(__name__)

# pg_try_advisory_lock(PACKET_LOCK_SPACE, hashtext(packet id)): one build per packet at a time.
PACKET_LOCK_SPACE = 0x70616B74  # "pakt"
PACKET_LOCK_POLL_SECONDS = 0.5
FINISHED = (PacketStatus.READY, PacketStatus.FAILED)


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


def _try_build_lock(packet_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::integer, hashtext(%s))", [PACKET_LOCK_SPACE, packet_id])
        return bool(cursor.fetchone()[0])


def _release_build_lock(packet_id: str) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::integer, hashtext(%s))", [PACKET_LOCK_SPACE, packet_id])
    except DatabaseError:
        pass  # the connection is gone, and its session lock with it


@contextmanager
def packet_build_slot(packet_id: str) -> Iterator[bool]:
    """The right to build one packet, on PostgreSQL a session advisory lock held for the whole
    build: a second delivery of the same build (a broker redelivery while the first still
    runs, an outbox row published twice) waits here instead of building alongside. It yields
    False once the packet is finished while waiting (nothing left to do). The lock dies with
    its database session, so a worker killed mid-build never blocks the rebuild for long.
    Elsewhere (SQLite: one process) it always yields True."""
    if connection.vendor != "postgresql":
        yield True
        return
    announced = False
    while not _try_build_lock(packet_id):
        status = ExportPacket.objects.filter(pk=packet_id).values_list("status", flat=True).first()
        if status is None or status in FINISHED:
            yield False
            return
        if not announced:
            logger.info("packet %s is being built by another worker; waiting for it", packet_id)
            announced = True
        time.sleep(PACKET_LOCK_POLL_SECONDS)
    try:
        yield True
    finally:
        _release_build_lock(packet_id)


def packet_build_in_progress(packet_id: str) -> bool:
    """PostgreSQL: whether a live build holds this packet's build lock (always False elsewhere)."""
    if connection.vendor != "postgresql":
        return False
    if not _try_build_lock(str(packet_id)):
        return True
    _release_build_lock(str(packet_id))
    return False


@shared_task(acks_late=True, reject_on_worker_lost=True)
def build_export_packet(packet_id: str) -> dict[str, object]:
    """Build one requested export packet (services.packet_build). Acknowledged only once it
    returns, and requeued if the worker dies mid-build: the rerun rebuilds the half-built packet
    (a ready or failed one is left alone), so one request makes at most one packet. Two runs of
    the same build never overlap (packet_build_slot)."""
    packet_id = str(packet_id)
    with packet_build_slot(packet_id) as mine:
        packet = packet_build(packet_id=packet_id) if mine else ExportPacket.objects.get(pk=packet_id)
    return {"packet": str(packet.pk), "status": packet.status, "sha256": packet.sha256, "attempts": packet.attempts}


@shared_task(acks_late=True, ignore_result=True)
def packets_resume_orphaned(grace_seconds: int = 60) -> int:
    """PostgreSQL: queue again the build of every packet left `building` (for longer than
    `grace_seconds`) that no build holds: its worker died and the broker has not redelivered
    the task (Redis does so only after its visibility timeout, e.g. when a whole worker host
    was killed). Queued through the outbox, once per build attempt; returns how many were
    found."""
    from outbox.services import outbox_enqueue

    if connection.vendor != "postgresql":
        return 0
    cutoff = timezone.now() - timedelta(seconds=grace_seconds)
    stalled = ExportPacket.objects.filter(status=PacketStatus.BUILDING, started_at__lte=cutoff)
    resumed = 0
    for pk, attempts in stalled.values_list("pk", "attempts"):
        packet_id = str(pk)
        if packet_build_in_progress(packet_id):
            continue
        logger.warning("packet %s was left building by a worker that died; queueing it again", packet_id)
        outbox_enqueue(
            task=build_export_packet.name, args=[packet_id], dedup_key=f"packet_build:{packet_id}:resume:{attempts}"
        )
        resumed += 1
    return resumed
