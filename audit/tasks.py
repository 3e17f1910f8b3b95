"""Background jobs of the audit log: the sequencer and the minute checkpoint. Both are safe to
run concurrently and twice (the chain head row is their lock)."""

from __future__ import annotations

from celery import shared_task

from audit import sealing, services


@shared_task(acks_late=True, ignore_result=True)
def audit_seal() -> int:
    return sealing.seal_pending()


@shared_task(acks_late=True, ignore_result=True)
def audit_checkpoint() -> int:
    return services.checkpoint_create(actor=None).checkpoint.tree_size
