"""Leads (people of interest), the normalized identifiers they share, and deconfliction hits."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class LeadSource(models.TextChoices):
    INTERCEPT_BOT = "intercept_bot"
    TIP = "tip"
    AD_ANALYSIS = "ad_analysis"
    INVESTIGATOR = "investigator"


class LeadStatus(models.TextChoices):
    NEW = "new"
    TRIAGED = "triaged"
    ASSIGNED = "assigned"
    INVESTIGATING = "investigating"
    REFERRED = "referred"
    CLOSED_NO_ACTION = "closed_no_action"


class IdentifierKind(models.TextChoices):
    PHONE = "phone"
    EMAIL = "email"
    HANDLE = "handle"
    PAYMENT_HANDLE = "payment_handle"


class Identifier(models.Model):
    """One normalized value, shared by every lead that carries it (across cases and agencies)."""

    kind = models.CharField(max_length=20, choices=IdentifierKind.choices)
    value = models.CharField(max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identifier_kind_value_uniq")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Lead(models.Model):
    """`priority` is the effective score: the override when set, else the computed score."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="leads")
    display_name = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=20, choices=LeadSource.choices, default=LeadSource.INVESTIGATOR)
    status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="assigned_leads"
    )
    minor_age_mentioned = models.BooleanField(default=False)
    payment_discussed = models.BooleanField(default=False)
    meeting_arranged = models.BooleanField(default=False)
    repeat_contact = models.BooleanField(default=False)
    priority_score = models.PositiveSmallIntegerField(default=0, editable=False)
    priority_factors = models.JSONField(default=list, blank=True, editable=False)
    priority_override = models.PositiveSmallIntegerField(null=True, blank=True)
    priority = models.PositiveSmallIntegerField(default=0, editable=False)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    identifiers = models.ManyToManyField(Identifier, through="cases.LeadIdentifier", related_name="leads")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "-created_at", "id"]
        indexes = [
            models.Index(fields=["case", "-priority", "-created_at"], name="lead_case_priority_idx"),
            models.Index(fields=["case", "status"], name="lead_case_status_idx"),
            models.Index(fields=["assignee", "status"], name="lead_assignee_idx"),
        ]

    def __str__(self) -> str:
        return self.display_name or str(self.id)


class LeadIdentifier(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="lead_identifiers")
    identifier = models.ForeignKey(Identifier, on_delete=models.PROTECT, related_name="lead_links")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lead", "identifier"], name="lead_identifier_uniq")]
        indexes = [models.Index(fields=["identifier", "lead"], name="leadident_identifier_idx")]

    def __str__(self) -> str:
        return f"{self.lead_id} ~ {self.identifier_id}"


class DeconflictionHit(models.Model):
    """An identifier recorded (or checked) by one side that already sat on a case the
    requester could not see. Kept for supervisors of both sides; never shown as case content."""

    identifier = models.ForeignKey(Identifier, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requesting_agency = models.ForeignKey("cases.Agency", on_delete=models.PROTECT, related_name="+")
    requesting_case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    matched_case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="+")
    matched_agency = models.ForeignKey("cases.Agency", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.identifier} → {self.matched_case_id}"
