"""Audit actions of intercept ingest and analytics (the 600s block), recorded through
audit.services.audit_record next to the case domain's own actions."""

from __future__ import annotations

from django.db import models


class InterceptAction(models.TextChoices):
    # 600s: ingest sources, ingest, conversations, ads, analytics
    SOURCE_CREATED = "ingest.source_created"
    SOURCE_ROTATED = "ingest.source_rotated"
    SOURCE_UPDATED = "ingest.source_updated"
    AUTH_FAILED = "ingest.auth_failed"
    BATCH_RECEIVED = "ingest.batch_received"
    CONVERSATION_LISTED = "conversation.listed"
    CONVERSATION_VIEWED = "conversation.viewed"
    SNAPSHOT_TAKEN = "conversation.snapshot_taken"
    AD_LISTED = "ad.listed"
    ANALYTICS_VIEWED = "analytics.viewed"
