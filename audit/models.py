"""Audit events: one append-only row per thing anyone did, recorded with the change itself."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from caseapi.appendonly import AppendOnlyModel


class AuditAction(models.TextChoices):
    # 100s: authentication and sessions
    LOGIN_SUCCEEDED = "auth.login_succeeded"
    LOGIN_FAILED = "auth.login_failed"
    ACCOUNT_LOCKED = "auth.account_locked"
    ACCOUNT_UNLOCKED = "auth.account_unlocked"
    TOKEN_ISSUED = "auth.token_issued"  # noqa: S105
    TOKEN_REVOKED = "auth.token_revoked"  # noqa: S105
    # 200s: people, groups and permissions
    AGENCY_CREATED = "agency.created"
    AGENCY_UPDATED = "agency.updated"
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_PASSWORD_CHANGED = "user.password_changed"  # noqa: S105
    USER_LISTED = "user.listed"
    # 300s: cases and teams
    CASE_CREATED = "case.created"
    CASE_UPDATED = "case.updated"
    CASE_STATUS_CHANGED = "case.status_changed"
    CASE_VIEWED = "case.viewed"
    CASE_LISTED = "case.listed"
    TEAM_MEMBER_SET = "team.member_set"
    TEAM_MEMBER_REMOVED = "team.member_removed"
    TEAM_VIEWED = "team.viewed"
    # 400s: leads, identifiers, deconfliction
    LEAD_CREATED = "lead.created"
    LEAD_UPDATED = "lead.updated"
    LEAD_STATUS_CHANGED = "lead.status_changed"
    LEAD_VIEWED = "lead.viewed"
    LEAD_LISTED = "lead.listed"
    DECONFLICTION_HIT = "deconfliction.hit"
    DECONFLICTION_NOTIFIED = "deconfliction.notified"
    DECONFLICTION_CHECKED = "deconfliction.checked"
    # 500s: evidence and custody
    EVIDENCE_CREATED = "evidence.created"
    EVIDENCE_UPDATED = "evidence.updated"
    EVIDENCE_WITHDRAWN = "evidence.withdrawn"
    EVIDENCE_VIEWED = "evidence.viewed"
    EVIDENCE_LISTED = "evidence.listed"
    EVIDENCE_DOWNLOADED = "evidence.content_downloaded"
    EVIDENCE_VERIFIED = "evidence.verified"
    CUSTODY_RECORDED = "custody.recorded"
    CUSTODY_LISTED = "custody.listed"
    # 600s: handoffs and packets
    HANDOFF_CREATED = "handoff.created"
    HANDOFF_UPDATED = "handoff.updated"
    HANDOFF_SUBMITTED = "handoff.submitted"
    HANDOFF_APPROVED = "handoff.approved"
    HANDOFF_REJECTED = "handoff.rejected"
    HANDOFF_ACKNOWLEDGED = "handoff.acknowledged"
    HANDOFF_ACCEPTED = "handoff.accepted"
    HANDOFF_DECLINED = "handoff.declined"
    HANDOFF_RETURNED = "handoff.returned"
    HANDOFF_VIEWED = "handoff.viewed"
    HANDOFF_LISTED = "handoff.listed"
    PACKET_REQUESTED = "packet.requested"
    PACKET_BUILD_STARTED = "packet.build_started"
    PACKET_BUILT = "packet.built"
    PACKET_FAILED = "packet.failed"
    PACKET_DOWNLOADED = "packet.downloaded"
    # 700s: intercept ingest, conversations, ads, analytics (intercept.events names them too)
    INGEST_SOURCE_CREATED = "ingest.source_created"
    INGEST_SOURCE_ROTATED = "ingest.source_rotated"
    INGEST_SOURCE_UPDATED = "ingest.source_updated"
    INGEST_AUTH_FAILED = "ingest.auth_failed"
    INGEST_BATCH_RECEIVED = "ingest.batch_received"
    CONVERSATION_LISTED = "conversation.listed"
    CONVERSATION_VIEWED = "conversation.viewed"
    CONVERSATION_SNAPSHOT_TAKEN = "conversation.snapshot_taken"
    AD_LISTED = "ad.listed"
    ANALYTICS_VIEWED = "analytics.viewed"
    # 900s: the audit log itself
    AUDIT_LISTED = "audit.listed"
    AUDIT_PROOF_READ = "audit.proof_read"
    AUDIT_CHECKPOINT_CREATED = "audit.checkpoint_created"
    AUDIT_VERIFIED = "audit.verified"
    AUDIT_TAMPER_ATTEMPT = "audit.tamper_attempt"
    # 1000s: keys of the data at rest
    FIELD_KEYS_ROTATED = "security.field_keys_rotated"


class AuditEvent(AppendOnlyModel):
    """An append-only record; the actor is PROTECTed so history never disappears with a user.

    `actor_name` snapshots who acted (the username, or the name typed at a failed login), so an
    event reads the same after a user is renamed.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # audit_actor_id_idx (actor, id) serves it; one index less per INSERT
    )
    actor_name = models.CharField(max_length=150, blank=True)
    agency = models.ForeignKey(
        "cases.Agency",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # audit_agency_id_idx (agency, id) serves it
    )
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    case_id = models.UUIDField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # Chain fields, filled once by the sequencer (audit.sealing); the trigger allows nothing else.
    seq = models.BigIntegerField(null=True, blank=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    entry_hash = models.CharField(max_length=64, blank=True, editable=False)
    sealed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="audit_unsealed_idx"),
            models.Index(fields=["case_id", "id"], name="audit_case_id_idx"),
            models.Index(fields=["agency", "id"], name="audit_agency_id_idx"),
            models.Index(fields=["actor", "id"], name="audit_actor_id_idx"),
            models.Index(fields=["action", "id"], name="audit_action_id_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor_name or '-'}"


class ChainHead(models.Model):
    """The sequencer's lock and cursor: one row, taken FOR UPDATE by whoever seals. `size` and
    `last_hash` are a cache of the chain's tail; verification never trusts them."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON)
    size = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="00" * 32)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"audit chain: {self.size} sealed"


class TreeNode(AppendOnlyModel):
    """The hash of the perfect subtree of 2^level leaves starting at leaf index * 2^level."""

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="audit_treenode_uniq")]

    def __str__(self) -> str:
        return f"node L{self.level}#{self.index}"


class Checkpoint(AppendOnlyModel):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) over the first `tree_size`
    sealed events."""

    tree_size = models.BigIntegerField(unique=True)
    root_hash = models.CharField(max_length=64)
    signed_note = models.TextField()
    key_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-tree_size"]
        get_latest_by = "tree_size"

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size}"
