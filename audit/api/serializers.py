"""Audit events, checkpoints, proofs and verification results as the API serves them. Hashes
inside proofs are base64, as in checkpoints; an event's own entry hash is hex, as stored."""

from __future__ import annotations

import base64

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditEvent, Checkpoint


@extend_schema_field(OpenApiTypes.BYTE)
class Base64Field(serializers.Field):
    def to_representation(self, value: bytes) -> str:
        return base64.b64encode(value).decode()


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(source="actor_id", read_only=True, allow_null=True)
    agency = serializers.IntegerField(source="agency_id", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "seq",
            "entry_hash",
            "prev_hash",
            "created_at",
            "sealed_at",
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


class CheckpointSerializer(serializers.ModelSerializer):
    root_hash = serializers.SerializerMethodField()

    class Meta:
        model = Checkpoint
        fields = ["tree_size", "root_hash", "key_name", "signed_note", "created_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BYTE)
    def get_root_hash(self, checkpoint: Checkpoint) -> str:
        return base64.b64encode(bytes.fromhex(checkpoint.root_hash)).decode()


class InclusionProofSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    entry_hash = serializers.CharField(help_text="Hex, as stored on the event.")
    leaf_hash = Base64Field(help_text="SHA-256(0x00 || entry hash), base64.")
    root_hash = Base64Field()
    proof = serializers.ListField(child=Base64Field())
    checkpoint = serializers.CharField(allow_null=True, help_text="The signed checkpoint at tree_size, if one exists.")


class ConsistencyProofSerializer(serializers.Serializer):
    from_size = serializers.IntegerField(source="old_size")
    to_size = serializers.IntegerField(source="new_size")
    from_root = Base64Field(source="old_root")
    to_root = Base64Field(source="new_root")
    proof = serializers.ListField(child=Base64Field())


class VerifyResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    first_bad_seq = serializers.IntegerField(allow_null=True)
    checkpoint_size = serializers.IntegerField(allow_null=True)
    problems = serializers.ListField(child=serializers.CharField())
