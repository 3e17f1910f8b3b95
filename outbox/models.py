"""An outbox row is one task to hand to the Celery broker. It is written in the same
transaction as the change that needs the task, so a rolled-back change leaves no task and a
committed change never loses its task, whether or not the broker is up at that moment."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "pending"
    SENT = "sent", "sent (the broker accepted it)"


class OutboxMessage(models.Model):
    """`task_id` becomes the Celery task id, so a worker's log names the row it came from.
    A non-empty `dedup_key` is unique: the same piece of work is enqueued at most once while
    its row is kept (sent rows are purged after OUTBOX_RETENTION)."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    dedup_key = models.CharField(max_length=200, blank=True, default="")
    task_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(fields=["dedup_key"], condition=~Q(dedup_key=""), name="outbox_dedup_key_unique"),
        ]
        indexes = [
            models.Index(fields=["id"], condition=Q(status="pending"), name="outbox_pending_idx"),
            models.Index(fields=["sent_at"], condition=Q(status="sent"), name="outbox_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.status} ({self.dedup_key or self.task_id})"
