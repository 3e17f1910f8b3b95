"""Audit events as served to auditors and case leads."""

from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(source="actor_id", read_only=True, allow_null=True)
    agency = serializers.IntegerField(source="agency_id", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "actor_name",
            "agency",
            "action",
            "target_type",
            "target_id",
            "case_id",
            "changes",
            "request_id",
            "ip",
            "user_agent",
        ]
        read_only_fields = fields
