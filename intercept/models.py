"""What bots and ad collectors push: ingest sources (machine clients), the signatures they
already used, conversations with their append-only messages and transcript snapshots, and ads
with the phone identifiers they carry."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from caseapi.appendonly import AppendOnlyModel
from caseapi.fields import EncryptedJSONField, EncryptedTextField


class IngestSource(models.Model):
    """A bot or ad collector of one agency, bound to one operation case of that agency.

    HMAC verification needs the secret itself, so it is kept encrypted (Fernet, key derived
    from SECRET_KEY; see intercept.signing) and never shown after creation or rotation.
    After a rotation the previous secret still verifies until `previous_valid_until`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, unique=True)
    agency = models.ForeignKey("cases.Agency", on_delete=models.PROTECT, related_name="ingest_sources")
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="ingest_sources")
    is_active = models.BooleanField(default=True)
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["agency", "name"], name="ingestsource_agency_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def actor_name(self) -> str:
        """How audit events and custody records name this machine client."""
        return f"source:{self.name}"


class SeenSignature(models.Model):
    """A signature already accepted from a source, remembered until its timestamp leaves the
    allowed window; the unique constraint refuses a replay across processes and servers."""

    source = models.ForeignKey(IngestSource, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "signature"], name="seensignature_uniq")]
        indexes = [models.Index(fields=["expires_at"], name="seensignature_expires_idx")]

    def __str__(self) -> str:
        return f"{self.source_id} {self.signature[:12]}…"


class Ad(models.Model):
    """One ad as captured on a site; deduplicated by (case, site, external id): capturing it
    again changes nothing unless its content changed, which updates the row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="ads")
    source = models.ForeignKey(IngestSource, on_delete=models.PROTECT, related_name="ads")
    site = models.CharField(max_length=100)
    external_id = models.CharField(max_length=200)
    url = models.CharField(max_length=2000, blank=True)
    title = models.CharField(max_length=500, blank=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    phones = models.JSONField(default=list, blank=True)
    text = models.TextField(blank=True)
    first_seen_at = models.DateTimeField()
    identifiers = models.ManyToManyField("cases.Identifier", through="intercept.AdPhone", related_name="ads")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-first_seen_at", "id"]
        constraints = [models.UniqueConstraint(fields=["case", "site", "external_id"], name="ad_case_site_ext_uniq")]
        indexes = [
            models.Index(fields=["case", "-first_seen_at"], name="ad_case_seen_idx"),
            models.Index(fields=["case", "site", "posted_at"], name="ad_case_site_posted_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.site}:{self.external_id}"


class AdPhone(models.Model):
    """A phone number found in an ad, as a shared Identifier (the same row leads point at)."""

    ad = models.ForeignKey(Ad, on_delete=models.CASCADE, related_name="ad_phones")
    identifier = models.ForeignKey("cases.Identifier", on_delete=models.PROTECT, related_name="ad_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ad", "identifier"], name="adphone_uniq")]
        indexes = [models.Index(fields=["identifier", "ad"], name="adphone_identifier_idx")]

    def __str__(self) -> str:
        return f"{self.ad_id} ~ {self.identifier_id}"


class Conversation(models.Model):
    """A bot's chat with one buyer, idempotent by (source, external id). The buyer is a lead of
    the source's operation (found by any shared identifier, or created). Signals only ever
    turn on; `snapshot_messages` is how many messages the latest transcript snapshot covers.
    `buyer` (name and contact details) is stored encrypted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.ForeignKey(IngestSource, on_delete=models.PROTECT, related_name="conversations")
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="conversations")
    lead = models.ForeignKey("cases.Lead", on_delete=models.PROTECT, related_name="conversations")
    external_id = models.CharField(max_length=200)
    platform = models.CharField(max_length=50)
    bot = models.CharField(max_length=100, blank=True)
    ad_site = models.CharField(max_length=100, blank=True)
    ad_external_id = models.CharField(max_length=200, blank=True)
    buyer = EncryptedJSONField(default=dict, blank=True)
    minor_age_mentioned = models.BooleanField(default=False)
    payment_discussed = models.BooleanField(default=False)
    meeting_requested = models.BooleanField(default=False)
    deterrence_sent_at = models.DateTimeField(null=True, blank=True)
    closed = models.BooleanField(default=False)
    closed_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    first_message_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    snapshot_messages = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="conversation_source_ext_uniq"),
        ]
        indexes = [
            models.Index(fields=["case", "-created_at"], name="conversation_case_created_idx"),
            models.Index(fields=["case", "first_message_at"], name="conversation_case_first_idx"),
            models.Index(fields=["lead"], name="conversation_lead_idx"),
            models.Index(fields=["case", "deterrence_sent_at"], name="conversation_case_deter_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.platform}:{self.external_id}"


class MessageDirection(models.TextChoices):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Message(AppendOnlyModel):
    """One chat message exactly as received; append-only (model, queryset and trigger), so a
    transcript can never be edited. `seq` is the order of arrival within the conversation.
    `body` is stored encrypted (re-encrypting it under a new key is the one rewrite allowed,
    by rotate_field_keys, which lifts the trigger for its own transaction only)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="messages")
    seq = models.PositiveIntegerField()
    external_id = models.CharField(max_length=200)
    direction = models.CharField(max_length=8, choices=MessageDirection.choices)
    sent_at = models.DateTimeField()
    body = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "external_id"], name="message_conv_ext_uniq"),
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_conv_seq_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id} #{self.seq}"


class SnapshotReason(models.TextChoices):
    CLOSED = "closed"
    REQUESTED = "requested"


class TranscriptSnapshot(AppendOnlyModel):
    """Links a conversation to each evidence item made from its transcript, in order; a later
    snapshot names the one before it (`previous`). Append-only: none is ever replaced."""

    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="snapshots")
    number = models.PositiveIntegerField()
    evidence = models.OneToOneField("cases.EvidenceItem", on_delete=models.PROTECT, related_name="transcript_snapshot")
    previous = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="next_snapshot"
    )
    message_count = models.PositiveIntegerField()
    reason = models.CharField(max_length=10, choices=SnapshotReason.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "number"]
        constraints = [models.UniqueConstraint(fields=["conversation", "number"], name="snapshot_conv_number_uniq")]

    def __str__(self) -> str:
        return f"{self.conversation_id} snapshot {self.number}"


class OperationDashboard(Conversation):
    """No table: the admin's entry for the supervisors' operation dashboard (intercept.admin)."""

    class Meta:
        proxy = True
        verbose_name = "operation dashboard"
        verbose_name_plural = "operation dashboard"
