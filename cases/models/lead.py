"""Leads (people of interest), the normalized identifiers they share, and deconfliction hits."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.db import models

from caseapi import crypto
from caseapi.fields import EncryptedTextField


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
    """One normalized value, shared by every lead that carries it (across cases and agencies).

    `value` is stored encrypted; `value_index` (the keyed blind index of kind and value,
    caseapi.crypto.blind_index) is what finds it and what keeps it unique. Build rows with
    `Identifier.of(kind, value)`, which fills both."""

    kind = models.CharField(max_length=20, choices=IdentifierKind.choices)
    value = EncryptedTextField()
    value_index = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "id"]
        constraints = [models.UniqueConstraint(fields=["value_index"], name="identifier_value_index_uniq")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    def save(self, *args: object, **kwargs: object) -> None:
        self.value_index = self.index_of(self.kind, self.value)
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def index_of(kind: str, value: str) -> str:
        """The blind index of a normalized (kind, value): equal pairs, equal digests."""
        return crypto.blind_index(kind, value)

    @classmethod
    def of(cls, kind: str, value: str) -> Identifier:
        return cls(kind=kind, value=value, value_index=cls.index_of(kind, value))

    @property
    def audit_label(self) -> str:
        """How audit events name this identifier without its value: `kind:` and the first 16
        hex digits of its blind index (whoever holds BLIND_INDEX_KEY can match a value)."""
        return f"{self.kind}:{self.value_index[:16]}"


class Lead(models.Model):
    """`priority` is the effective score: the override when set, else the computed score.
    `display_name` and `notes` are stored encrypted (they name and describe a person)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="leads")
    display_name = EncryptedTextField(blank=True, validators=[MaxLengthValidator(200)])
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
    notes = EncryptedTextField(blank=True)
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
