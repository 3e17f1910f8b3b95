"""Serializers of intercept ingest and analytics. Output serializers name their fields and
are read-only. The ingest item serializers document the wire format in the OpenAPI schema;
items are checked by intercept.items (plain Python, fast on 1,000-item batches)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from intercept.models import Ad, Conversation, Message, MessageDirection, TranscriptSnapshot

# ---------------------------------------------------------------- the wire format (schema only)


class AdRefSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=100)
    external_id = serializers.CharField(max_length=200)


class BuyerSerializer(serializers.Serializer):
    phone = serializers.CharField(required=False, max_length=200)
    email = serializers.CharField(required=False, max_length=200)
    handle = serializers.CharField(required=False, max_length=200)
    name = serializers.CharField(required=False, max_length=200)
    city = serializers.CharField(required=False, max_length=200)
    zip = serializers.CharField(required=False, max_length=200)
    carrier = serializers.CharField(required=False, max_length=200)
    employer = serializers.CharField(required=False, max_length=200)


class MessageInSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=200)
    direction = serializers.ChoiceField(choices=MessageDirection.choices)
    sent_at = serializers.DateTimeField()
    body = serializers.CharField(allow_blank=True, max_length=20000)


class SignalsInSerializer(serializers.Serializer):
    minor_age_mentioned = serializers.BooleanField(required=False)
    payment_discussed = serializers.BooleanField(required=False)
    meeting_requested = serializers.BooleanField(required=False)


class ConversationItemSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=200, help_text="Idempotency key within the source.")
    platform = serializers.CharField(max_length=50)
    ad = AdRefSerializer(required=False, allow_null=True)
    bot = serializers.CharField(required=False, max_length=100)
    buyer = BuyerSerializer(help_text="At least one of phone, email, handle.")
    messages = MessageInSerializer(many=True, required=False)
    signals = SignalsInSerializer(required=False)
    deterrence_sent_at = serializers.DateTimeField(required=False, allow_null=True)
    closed = serializers.BooleanField(required=False, help_text="Closing takes a transcript snapshot.")


class ConversationBatchSerializer(serializers.Serializer):
    items = ConversationItemSerializer(many=True, help_text="At most 1,000.")


class AdItemSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=100)
    external_id = serializers.CharField(max_length=200)
    url = serializers.CharField(required=False, max_length=2000)
    title = serializers.CharField(required=False, max_length=500)
    posted_at = serializers.DateTimeField(required=False, allow_null=True)
    city = serializers.CharField(required=False, max_length=100)
    region = serializers.CharField(required=False, max_length=100)
    phones = serializers.ListField(child=serializers.CharField(max_length=64), required=False, max_length=20)
    text = serializers.CharField(required=False, allow_blank=True, max_length=50000)


class AdBatchSerializer(serializers.Serializer):
    items = AdItemSerializer(many=True, help_text="At most 1,000.")


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
