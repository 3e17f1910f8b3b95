"""Evidence items (stored content or a reference) and their append-only custody chain."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from caseapi.appendonly import AppendOnlyModel


class EvidenceKind(models.TextChoices):
    CHAT_TRANSCRIPT = "chat_transcript"
    AD_CAPTURE = "ad_capture"
    SCREENSHOT = "screenshot"
    SUBPOENA_RETURN = "subpoena_return"
    DEVICE_EXTRACTION = "device_extraction"
    RECORDING = "recording"
    DOCUMENT = "document"
    OTHER = "other"


class EvidenceStatus(models.TextChoices):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class EvidenceItem(models.Model):
    """Either `content_name` (bytes in the evidence storage, hashed by the server) or
    `external_uri` (declared SHA-256) is set. `sha256`, `size_bytes`, `content_name` and
    `external_uri` never change after intake; a database trigger refuses it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="evidence")
    lead = models.ForeignKey("cases.Lead", on_delete=models.PROTECT, null=True, blank=True, related_name="evidence")
    kind = models.CharField(max_length=24, choices=EvidenceKind.choices)
    description = models.TextField(blank=True)
    content_name = models.CharField(max_length=255, blank=True, editable=False)
    original_filename = models.CharField(max_length=255, blank=True)
    external_uri = models.CharField(max_length=2000, blank=True)
    sha256 = models.CharField(max_length=64, editable=False)
    size_bytes = models.BigIntegerField(editable=False)
    media_type = models.CharField(max_length=127, blank=True)
    collected_at = models.DateTimeField()
    collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=12, choices=EvidenceStatus.choices, default=EvidenceStatus.ACTIVE)
    withdrawn_reason = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name_plural = "evidence items"
        indexes = [
            # The list's order with its tie-breaker: a page's keys are read from this index
            # alone (an index-only scan), not from the table, for every case in scope.
            models.Index(fields=["case", "-created_at", "id"], name="evidence_case_created_id_idx"),
            # The same order across every case, with the case (PostgreSQL): a wide scope's
            # page is found by walking it (selectors.walked_page), from the index alone.
            models.Index(fields=["-created_at", "id"], include=["case"], name="evidence_created_id_idx"),
            models.Index(fields=["lead"], name="evidence_lead_idx"),
            models.Index(fields=["sha256"], name="evidence_sha256_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(content_name="", external_uri=""),
                name="evidence_content_or_reference",
            ),
            models.CheckConstraint(condition=models.Q(size_bytes__gte=0), name="evidence_size_nonnegative"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    @property
    def is_stored(self) -> bool:
        return bool(self.content_name)


class CustodyAction(models.TextChoices):
    COLLECTED = "collected"
    RECEIVED = "received"
    TRANSFERRED = "transferred"
    CHECKED_OUT = "checked_out"
    CHECKED_IN = "checked_in"
    VERIFIED = "verified"
    SEALED = "sealed"
    RELEASED = "released"
    DISPOSED = "disposed"


class CustodyEvent(AppendOnlyModel):
    """One link of an item's chain of custody. Append-only at model, queryset and trigger
    level; `details` carries machine results (a verification's computed hash and verdict)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    evidence = models.ForeignKey(EvidenceItem, on_delete=models.PROTECT, related_name="custody_events")
    action = models.CharField(max_length=16, choices=CustodyAction.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    from_party = models.CharField(max_length=200, blank=True)
    to_party = models.CharField(max_length=200, blank=True)
    location = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    note = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["occurred_at", "created_at", "id"]
        indexes = [models.Index(fields=["evidence", "occurred_at"], name="custody_evidence_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.evidence_id} at {self.occurred_at:%Y-%m-%d %H:%M}"
