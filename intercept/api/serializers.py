"""Serializers of intercept ingest and analytics. Output serializers name their fields and
are read-only. The ingest item serializers document the wire format in the OpenAPI schema;
items are checked by intercept.items (plain Python, fast on 1,000-item batches)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from caseapi.api import StrictInputSerializer
from intercept.items import MAX_AD_TEXT, MAX_MESSAGES, MAX_PHONES
from intercept.models import Ad, Conversation, Message, MessageDirection, TranscriptSnapshot

# ---------------------------------------------------------------- the wire format (schema only)


# What intercept.items accepts, as a schema: an item with a key it does not know is rejected
# (additionalProperties: false); an optional field may be null or absent alike, and an optional
# text blank. Checks a schema cannot state (single-line text, printable ids, real phone numbers,
# times not in the future) reject an item with the reason named.


def _optional_text(max_length: int, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=max_length, **kwargs)


class AdRefSerializer(StrictInputSerializer):
    site = serializers.CharField(max_length=100)
    external_id = serializers.CharField(max_length=200)


class BuyerSerializer(StrictInputSerializer):
    phone = _optional_text(200)
    email = _optional_text(200)
    handle = _optional_text(200)
    name = _optional_text(200)
    city = _optional_text(200)
    zip = _optional_text(200)
    carrier = _optional_text(200)
    employer = _optional_text(200)


class MessageInSerializer(StrictInputSerializer):
    external_id = serializers.CharField(max_length=200)
    direction = serializers.ChoiceField(choices=MessageDirection.choices)
    sent_at = serializers.DateTimeField()
    body = _optional_text(20000, trim_whitespace=False)


class SignalsInSerializer(StrictInputSerializer):
    minor_age_mentioned = serializers.BooleanField(required=False, allow_null=True)
    payment_discussed = serializers.BooleanField(required=False, allow_null=True)
    meeting_requested = serializers.BooleanField(required=False, allow_null=True)


class ConversationItemSerializer(StrictInputSerializer):
    external_id = serializers.CharField(max_length=200, help_text="Idempotency key within the source.")
    platform = serializers.CharField(max_length=50)
    ad = AdRefSerializer(required=False, allow_null=True)
    bot = _optional_text(100)
    buyer = BuyerSerializer(help_text="At least one of phone, email, handle.")
    messages = MessageInSerializer(many=True, required=False, allow_null=True, max_length=MAX_MESSAGES)
    signals = SignalsInSerializer(required=False, allow_null=True)
    deterrence_sent_at = serializers.DateTimeField(required=False, allow_null=True)
    closed = serializers.BooleanField(required=False, allow_null=True, help_text="Closing takes a transcript snapshot.")


class ConversationBatchSerializer(StrictInputSerializer):
    items = ConversationItemSerializer(
        many=True, max_length=settings.INGEST_MAX_ITEMS, help_text="At most INGEST_MAX_ITEMS (1,000 by default)."
    )


class AdItemSerializer(StrictInputSerializer):
    site = serializers.CharField(max_length=100)
    external_id = serializers.CharField(max_length=200)
    url = _optional_text(2000, help_text="http or https.")
    title = _optional_text(500)
    posted_at = serializers.DateTimeField(required=False, allow_null=True)
    city = _optional_text(100)
    region = _optional_text(100)
    phones = serializers.ListField(
        child=serializers.CharField(max_length=64, allow_blank=True, trim_whitespace=False),
        required=False,
        allow_null=True,
        max_length=MAX_PHONES,
    )
    text = _optional_text(MAX_AD_TEXT, trim_whitespace=False)


class AdBatchSerializer(StrictInputSerializer):
    items = AdItemSerializer(
        many=True, max_length=settings.INGEST_MAX_ITEMS, help_text="At most INGEST_MAX_ITEMS (1,000 by default)."
    )


class IngestBodySerializer(serializers.Serializer):
    """A batch body: `{"items": [...]}` (`batch_serializer`) or a bare array of items
    (`item_serializer`). Schema only (IngestBodySchema), for the views that read the signed
    body raw."""

    batch_serializer: type[serializers.Serializer]
    item_serializer: type[serializers.Serializer]


class ConversationBatchBodySerializer(IngestBodySerializer):
    batch_serializer = ConversationBatchSerializer
    item_serializer = ConversationItemSerializer


class AdBatchBodySerializer(IngestBodySerializer):
    batch_serializer = AdBatchSerializer
    item_serializer = AdItemSerializer


class IngestBodySchema(OpenApiSerializerExtension):
    target_class = IngestBodySerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        batch = auto_schema.resolve_serializer(self.target.batch_serializer, direction)
        item = auto_schema.resolve_serializer(self.target.item_serializer, direction)
        array = {"type": "array", "items": item.ref, "maxItems": settings.INGEST_MAX_ITEMS}
        return {"oneOf": [batch.ref, array]}


class ItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "updated", "unchanged", "rejected"])
    id = serializers.UUIDField(required=False)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    warnings = serializers.ListField(child=serializers.CharField(), required=False)
    lead = serializers.UUIDField(required=False, help_text="Conversations: the buyer's lead.")
    lead_created = serializers.BooleanField(required=False)
    messages_added = serializers.IntegerField(required=False)
    snapshot = serializers.UUIDField(required=False, allow_null=True, help_text="Evidence item of a new snapshot.")
    phones = serializers.ListField(child=serializers.CharField(), required=False, help_text="Ads: E.164 phones.")


class BatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = ItemResultSerializer(many=True)


# ---------------------------------------------------------------- reads


class AdSerializer(serializers.ModelSerializer):
    case = serializers.UUIDField(source="case_id", read_only=True)
    source = serializers.CharField(source="source.name", read_only=True)
    phone_identifiers = serializers.SerializerMethodField()

    class Meta:
        model = Ad
        fields = [
            "id",
            "case",
            "source",
            "site",
            "external_id",
            "url",
            "title",
            "posted_at",
            "city",
            "region",
            "phones",
            "phone_identifiers",
            "text",
            "first_seen_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_phone_identifiers(self, ad: Ad) -> list[str]:
        """The ad's phones in E.164 (the Identifier values they link to)."""
        return sorted(i.value for i in ad.identifiers.all())


class LeadBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    priority = serializers.IntegerField(read_only=True)


class ConversationSerializer(serializers.ModelSerializer):
    case = serializers.UUIDField(source="case_id", read_only=True)
    source = serializers.CharField(source="source.name", read_only=True)
    lead = LeadBriefSerializer(read_only=True)
    ad = serializers.SerializerMethodField()
    signals = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "case",
            "source",
            "external_id",
            "platform",
            "bot",
            "ad",
            "buyer",
            "lead",
            "signals",
            "deterrence_sent_at",
            "closed",
            "closed_at",
            "message_count",
            "first_message_at",
            "last_message_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_ad(self, conversation: Conversation) -> dict[str, str] | None:
        if not conversation.ad_site:
            return None
        return {"site": conversation.ad_site, "external_id": conversation.ad_external_id}

    def get_signals(self, conversation: Conversation) -> dict[str, bool]:
        return {
            "minor_age_mentioned": conversation.minor_age_mentioned,
            "payment_discussed": conversation.payment_discussed,
            "meeting_requested": conversation.meeting_requested,
        }


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = ["seq", "external_id", "direction", "sent_at", "body"]
        read_only_fields = fields


class SnapshotSerializer(serializers.ModelSerializer):
    evidence = serializers.UUIDField(source="evidence_id", read_only=True)
    sha256 = serializers.CharField(source="evidence.sha256", read_only=True)
    size_bytes = serializers.IntegerField(source="evidence.size_bytes", read_only=True)
    previous_evidence = serializers.SerializerMethodField()

    class Meta:
        model = TranscriptSnapshot
        fields = [
            "number",
            "evidence",
            "sha256",
            "size_bytes",
            "message_count",
            "reason",
            "previous_evidence",
            "created_at",
        ]
        read_only_fields = fields

    def get_previous_evidence(self, snapshot: TranscriptSnapshot) -> str | None:
        """The evidence item of the snapshot this one follows (null for the first)."""
        previous = self.context.get("previous", {}).get(snapshot.previous_id)
        return str(previous) if previous else None


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, read_only=True)
    snapshots = serializers.SerializerMethodField()
    answered_ad = serializers.SerializerMethodField()
    ads_sharing_numbers = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = [*ConversationSerializer.Meta.fields, "messages", "snapshots", "answered_ad", "ads_sharing_numbers"]
        read_only_fields = fields

    def get_snapshots(self, conversation: Conversation) -> list[dict[str, Any]]:
        snapshots = list(conversation.snapshots.all())
        previous = {s.pk: s.evidence_id for s in snapshots}
        return SnapshotSerializer(snapshots, many=True, context={"previous": previous}).data

    def get_answered_ad(self, conversation: Conversation) -> dict[str, Any] | None:
        ad = self.context.get("answered_ad")
        return AdSerializer(ad).data if ad is not None else None

    def get_ads_sharing_numbers(self, conversation: Conversation) -> list[dict[str, Any]]:
        """Ads in your scope that list a phone number of this buyer."""
        return AdSerializer(self.context.get("ads_sharing_numbers", []), many=True).data


class AnalyticsWeekSerializer(serializers.Serializer):
    week = serializers.DateField(help_text="The Monday the week starts on.")
    count = serializers.IntegerField()


class AnalyticsSiteWeekSerializer(AnalyticsWeekSerializer):
    site = serializers.CharField()


class AnalyticsBuyersSerializer(serializers.Serializer):
    unique = serializers.IntegerField()
    repeat = serializers.IntegerField(help_text="Buyers with two or more conversations in the period.")


class AnalyticsCaseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.CharField()
    title = serializers.CharField()


class AnalyticsSummarySerializer(serializers.Serializer):
    case = AnalyticsCaseSerializer()
    since = serializers.DateField()
    until = serializers.DateField()
    ads_per_site_per_week = AnalyticsSiteWeekSerializer(many=True)
    conversations_per_week = AnalyticsWeekSerializer(many=True)
    buyers = AnalyticsBuyersSerializer()
    deterrence_sent = serializers.IntegerField()
    leads_by_status = serializers.DictField(child=serializers.IntegerField())
    handoff_outcomes = serializers.DictField(child=serializers.IntegerField())
