"""Prosecutor handoffs (a reviewed selection of a case's leads and evidence, addressed to one
prosecutor) and the export packets built from them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from guardian.models import UserObjectPermissionBase


class HandoffStatus(models.TextChoices):
    DRAFT = "draft"
    PENDING_REVIEW = "pending_review"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    RETURNED = "returned"


class Handoff(models.Model):
    """`number` is `H<NNN>`, sequential within the case; the packet folder is
    `<case number>_<handoff number>`. `charges` is a list of `{statute, text}`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="handoffs")
    number = models.CharField(max_length=8, editable=False)
    prosecutor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="handoffs_received")
    prosecutor_office = models.ForeignKey("cases.Agency", on_delete=models.PROTECT, related_name="handoffs_received")
    leads = models.ManyToManyField("cases.Lead", through="cases.HandoffLead", related_name="handoffs")
    evidence = models.ManyToManyField("cases.EvidenceItem", through="cases.HandoffEvidence", related_name="handoffs")
    charges = models.JSONField(default=list, blank=True)
    narrative = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=HandoffStatus.choices, default=HandoffStatus.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["case", "number"], name="handoff_case_number_uniq")]
        indexes = [
            models.Index(fields=["prosecutor", "status"], name="handoff_prosecutor_idx"),
            models.Index(fields=["case", "-created_at"], name="handoff_case_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.number}"


class HandoffLead(models.Model):
    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="handoff_leads")
    lead = models.ForeignKey("cases.Lead", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["handoff", "lead"], name="handoff_lead_uniq")]
        indexes = [models.Index(fields=["lead", "handoff"], name="handofflead_lead_idx")]

    def __str__(self) -> str:
        return f"{self.handoff_id} ~ {self.lead_id}"


class HandoffEvidence(models.Model):
    handoff = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="handoff_evidence")
    evidence = models.ForeignKey("cases.EvidenceItem", on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["handoff", "evidence"], name="handoff_evidence_uniq")]
        indexes = [models.Index(fields=["evidence", "handoff"], name="handoffevidence_evidence_idx")]

    def __str__(self) -> str:
        return f"{self.handoff_id} ~ {self.evidence_id}"


class HandoffUserObjectPermission(UserObjectPermissionBase):
    """Direct foreign-key guardian rows: a prosecutor's view permission on a handoff sent to them."""

    content_object = models.ForeignKey(Handoff, on_delete=models.CASCADE, related_name="user_permissions")

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "handoff user permission"
        indexes = [models.Index(fields=["user", "permission", "content_object"], name="handoff_uperm_lookup_idx")]


class PacketStatus(models.TextChoices):
    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"
    FAILED = "failed"


class ExportPacket(models.Model):
    """One requested export of a handoff (shared/PACKET.md). Built by a Celery task; `file_name`
    names the ZIP in the `packets` storage once ready. `manifest_sha256` and `checkpoint_size`
    pin what the packet proves; `signature` is manifest.sig's signed-note text."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="packets")
    status = models.CharField(max_length=10, choices=PacketStatus.choices, default=PacketStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    stage = models.CharField(max_length=64, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    checkpoint_size = models.BigIntegerField(null=True, blank=True)
    signature = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["handoff", "-created_at"], name="packet_handoff_idx")]

    def __str__(self) -> str:
        return f"packet {self.id} ({self.status})"
