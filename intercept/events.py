"""Short names, for intercept code, of the audit actions of ingest and analytics (the 700s
block of audit.models.AuditAction, which is the one list of actions)."""

from __future__ import annotations

from audit.models import AuditAction


class InterceptAction:
    SOURCE_CREATED = AuditAction.INGEST_SOURCE_CREATED
    SOURCE_ROTATED = AuditAction.INGEST_SOURCE_ROTATED
    SOURCE_UPDATED = AuditAction.INGEST_SOURCE_UPDATED
    AUTH_FAILED = AuditAction.INGEST_AUTH_FAILED
    BATCH_RECEIVED = AuditAction.INGEST_BATCH_RECEIVED
    CONVERSATION_LISTED = AuditAction.CONVERSATION_LISTED
    CONVERSATION_VIEWED = AuditAction.CONVERSATION_VIEWED
    SNAPSHOT_TAKEN = AuditAction.CONVERSATION_SNAPSHOT_TAKEN
    AD_LISTED = AuditAction.AD_LISTED
    ANALYTICS_VIEWED = AuditAction.ANALYTICS_VIEWED
