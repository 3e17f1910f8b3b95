"""Serializers name their fields. Input serializers are strict (caseapi.api.StrictInputSerializer):
each names the output serializer of its operation, and any key of a request body that is not
writable there (server-owned, or unknown) is refused with a 400 naming it, never ignored."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from caseapi.api import SERVER_OWNED_FIELD, StrictInputSerializer, StrictPrimaryKeyRelatedField
from caseapi.api import UNKNOWN_FIELD as UNKNOWN_FIELD
from cases import selectors
from cases.models import (
    Case,
    CaseKind,
    CasePriority,
    CaseStatus,
    CustodyAction,
    CustodyEvent,
    EvidenceItem,
    EvidenceKind,
    EvidenceStatus,
    ExportPacket,
    Handoff,
    HandoffStatus,
    IdentifierKind,
    Lead,
    LeadSource,
    LeadStatus,
    PacketStatus,
    Role,
    TeamRole,
)

User = get_user_model()

READ_ONLY_FIELD = SERVER_OWNED_FIELD


# ---------------------------------------------------------------- people


class AgencyBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    kind = serializers.CharField(read_only=True)


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    full_name = serializers.SerializerMethodField()

    def get_full_name(self, user: Any) -> str:
        return user.get_full_name() or user.get_username()


class PersonSerializer(UserBriefSerializer):
    email = serializers.EmailField(read_only=True)
    title = serializers.CharField(source="profile.title", read_only=True)
    phone = serializers.CharField(source="profile.phone", read_only=True)
    agency = AgencyBriefSerializer(source="profile.agency", read_only=True)
    roles = serializers.SerializerMethodField()

    def get_roles(self, user: Any) -> list[str]:
        return sorted(g.name for g in user.groups.all() if g.name in Role.values)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True)


class LoginSerializer(StrictInputSerializer):
    output_serializer = TokenSerializer
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


# ---------------------------------------------------------------- cases


class CaseOutputSerializer(serializers.ModelSerializer):
    agency = AgencyBriefSerializer(read_only=True)
    lead_investigator = UserBriefSerializer(read_only=True)
    parent = serializers.UUIDField(source="parent_id", read_only=True, allow_null=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "number",
            "title",
            "kind",
            "status",
            "priority",
            "summary",
            "agency",
            "lead_investigator",
            "parent",
            "created_at",
            "updated_at",
            "closed_at",
        ]
        read_only_fields = fields


CASE_SERVER_OWNED = frozenset({"created_by"})


class CaseCreateSerializer(StrictInputSerializer):
    output_serializer = CaseOutputSerializer
    server_owned = CASE_SERVER_OWNED
    title = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=CaseKind.choices, default=CaseKind.INVESTIGATION)
    priority = serializers.ChoiceField(choices=CasePriority.choices, default=CasePriority.NORMAL)
    summary = serializers.CharField(allow_blank=True, default="", max_length=20000)
    parent = StrictPrimaryKeyRelatedField(queryset=Case.objects.none(), required=False, allow_null=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["parent"].queryset = selectors.case_list(user=request.user)


class CaseUpdateSerializer(StrictInputSerializer):
    output_serializer = CaseOutputSerializer
    server_owned = CASE_SERVER_OWNED
    title = serializers.CharField(max_length=200, required=False)
    priority = serializers.ChoiceField(choices=CasePriority.choices, required=False)
    summary = serializers.CharField(allow_blank=True, max_length=20000, required=False)
    status = serializers.ChoiceField(choices=CaseStatus.choices, required=False)
    lead_investigator = StrictPrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)


class TeamMemberSerializer(serializers.Serializer):
    user = UserBriefSerializer(read_only=True)
    agency = serializers.CharField(source="user.profile.agency.code", read_only=True)
    role = serializers.ChoiceField(choices=TeamRole.choices, read_only=True)


class TeamMemberInputSerializer(StrictInputSerializer):
    output_serializer = TeamMemberSerializer
    user = StrictPrimaryKeyRelatedField(queryset=User.objects.all())
    role = serializers.ChoiceField(choices=TeamRole.choices)


# ---------------------------------------------------------------- leads


class IdentifierSerializer(StrictInputSerializer):
    kind = serializers.ChoiceField(choices=IdentifierKind.choices)
    value = serializers.CharField(max_length=254)


class DeconflictionHitSerializer(serializers.Serializer):
    identifier = serializers.SerializerMethodField()
    agency = serializers.SerializerMethodField()
    contact = serializers.SerializerMethodField()

    @extend_schema_field(IdentifierSerializer)
    def get_identifier(self, hit: Any) -> dict[str, str]:
        return {"kind": hit.identifier_kind, "value": hit.identifier_value}

    @extend_schema_field({"type": "object", "properties": {"code": {"type": "string"}, "name": {"type": "string"}}})
    def get_agency(self, hit: Any) -> dict[str, str]:
        return {"code": hit.agency_code, "name": hit.agency_name}

    @extend_schema_field(
        {
            "type": "object",
            "properties": {k: {"type": "string"} for k in ("name", "title", "phone", "email")},
        }
    )
    def get_contact(self, hit: Any) -> dict[str, str]:
        return {
            "name": hit.contact_name,
            "title": hit.contact_title,
            "phone": hit.contact_phone,
            "email": hit.contact_email,
        }


LEAD_SIGNALS = ("minor_age_mentioned", "payment_discussed", "meeting_arranged", "repeat_contact")


class LeadOutputSerializer(serializers.ModelSerializer):
    case = serializers.UUIDField(source="case_id", read_only=True)
    case_number = serializers.CharField(source="case.number", read_only=True)
    assignee = UserBriefSerializer(read_only=True, allow_null=True)
    identifiers = IdentifierSerializer(many=True, read_only=True)
    signals = serializers.SerializerMethodField()

    class Meta:
        model = Lead
        fields = [
            "id",
            "case",
            "case_number",
            "display_name",
            "source",
            "status",
            "assignee",
            "signals",
            "priority",
            "priority_score",
            "priority_override",
            "priority_factors",
            "first_seen_at",
            "last_seen_at",
            "notes",
            "identifiers",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "boolean"}})
    def get_signals(self, lead: Lead) -> dict[str, bool]:
        return {name: getattr(lead, name) for name in LEAD_SIGNALS}


class LeadWithHitsSerializer(LeadOutputSerializer):
    deconfliction = serializers.SerializerMethodField()

    class Meta(LeadOutputSerializer.Meta):
        fields = [*LeadOutputSerializer.Meta.fields, "deconfliction"]
        read_only_fields = fields

    @extend_schema_field(DeconflictionHitSerializer(many=True))
    def get_deconfliction(self, lead: Lead) -> list[dict[str, Any]]:
        return DeconflictionHitSerializer(self.context.get("hits", []), many=True).data


class SignalsSerializer(StrictInputSerializer):
    minor_age_mentioned = serializers.BooleanField(required=False)
    payment_discussed = serializers.BooleanField(required=False)
    meeting_arranged = serializers.BooleanField(required=False)
    repeat_contact = serializers.BooleanField(required=False)


class LeadUpdateSerializer(StrictInputSerializer):
    """PATCH of a lead: its case is fixed (a field of the answer, so refused by name)."""

    output_serializer = LeadWithHitsSerializer
    server_owned = frozenset({"created_by"})
    display_name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    source = serializers.ChoiceField(choices=LeadSource.choices, required=False)
    status = serializers.ChoiceField(choices=LeadStatus.choices, required=False)
    assignee = StrictPrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), allow_null=True, required=False
    )
    signals = SignalsSerializer(required=False)
    priority_override = serializers.IntegerField(min_value=0, max_value=100, allow_null=True, required=False)
    first_seen_at = serializers.DateTimeField(required=False, allow_null=True)
    last_seen_at = serializers.DateTimeField(required=False, allow_null=True)
    notes = serializers.CharField(allow_blank=True, max_length=20000, required=False)
    identifiers = IdentifierSerializer(many=True, required=False, max_length=100)

    def to_service_kwargs(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        data.pop("case", None)
        data.update(data.pop("signals", {}) or {})
        if "identifiers" in data:
            data["identifiers"] = [dict(i) for i in data["identifiers"]]
        return data


class LeadInputSerializer(LeadUpdateSerializer):
    """POST of a lead, into a case of the caller's scope."""

    case = StrictPrimaryKeyRelatedField(queryset=Case.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["case"].queryset = selectors.case_list(user=request.user)


class DeconflictionResultSerializer(serializers.Serializer):
    hits = DeconflictionHitSerializer(many=True, read_only=True)


class DeconflictionCheckSerializer(StrictInputSerializer):
    output_serializer = DeconflictionResultSerializer
    identifiers = IdentifierSerializer(many=True, min_length=1, max_length=100)


# ---------------------------------------------------------------- evidence and custody


class EvidenceOutputSerializer(serializers.ModelSerializer):
    case = serializers.UUIDField(source="case_id", read_only=True)
    lead = serializers.UUIDField(source="lead_id", read_only=True, allow_null=True)
    collected_by = UserBriefSerializer(read_only=True, allow_null=True)
    withdrawn_by = UserBriefSerializer(read_only=True, allow_null=True)
    stored = serializers.BooleanField(source="is_stored", read_only=True)

    class Meta:
        model = EvidenceItem
        fields = [
            "id",
            "case",
            "lead",
            "kind",
            "description",
            "stored",
            "original_filename",
            "external_uri",
            "sha256",
            "size_bytes",
            "media_type",
            "collected_at",
            "collected_by",
            "status",
            "withdrawn_reason",
            "withdrawn_at",
            "withdrawn_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


EVIDENCE_SERVER_OWNED = frozenset({"created_by", "content_name"})


class EvidenceCreateSerializer(StrictInputSerializer):
    output_serializer = EvidenceOutputSerializer
    server_owned = EVIDENCE_SERVER_OWNED
    case = StrictPrimaryKeyRelatedField(queryset=Case.objects.none())
    lead = StrictPrimaryKeyRelatedField(queryset=Lead.objects.none(), required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=EvidenceKind.choices)
    description = serializers.CharField(allow_blank=True, max_length=20000, required=False, default="")
    content = serializers.FileField(required=False, allow_empty_file=True, use_url=False)
    external_uri = serializers.CharField(max_length=2000, required=False, default="")
    sha256 = serializers.CharField(max_length=64, min_length=64, required=False, default="")
    size_bytes = serializers.IntegerField(min_value=0, required=False)
    media_type = serializers.CharField(max_length=127, required=False, default="")
    collected_at = serializers.DateTimeField(required=False)
    location = serializers.CharField(max_length=200, required=False, default="")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["case"].queryset = selectors.case_list(user=request.user)
            self.fields["lead"].queryset = selectors.lead_list(user=request.user)


class EvidenceUpdateSerializer(StrictInputSerializer):
    """The SHA-256, size, content and origin of an item never change after intake."""

    output_serializer = EvidenceOutputSerializer
    server_owned = EVIDENCE_SERVER_OWNED | {"content"}
    description = serializers.CharField(allow_blank=True, max_length=20000, required=False)
    lead = StrictPrimaryKeyRelatedField(queryset=Lead.objects.none(), required=False, allow_null=True)
    media_type = serializers.CharField(max_length=127, required=False)
    status = serializers.ChoiceField(choices=[EvidenceStatus.WITHDRAWN], required=False)
    withdrawn_reason = serializers.CharField(max_length=5000, required=False, allow_blank=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["lead"].queryset = selectors.lead_list(user=request.user)


class CustodyEventSerializer(serializers.ModelSerializer):
    evidence = serializers.UUIDField(source="evidence_id", read_only=True)
    actor = UserBriefSerializer(read_only=True)

    class Meta:
        model = CustodyEvent
        fields = [
            "id",
            "evidence",
            "action",
            "actor",
            "from_party",
            "to_party",
            "location",
            "occurred_at",
            "note",
            "details",
            "created_at",
        ]
        read_only_fields = fields


class CustodyInputSerializer(StrictInputSerializer):
    output_serializer = CustodyEventSerializer
    action = serializers.ChoiceField(choices=CustodyAction.choices)
    occurred_at = serializers.DateTimeField(required=False)
    from_party = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    to_party = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    location = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")


# ---------------------------------------------------------------- handoffs and packets


class CaseBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    number = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)


class ChargeSerializer(StrictInputSerializer):
    statute = serializers.CharField(max_length=200)
    text = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")


class HandoffOutputSerializer(serializers.ModelSerializer):
    """A handoff from `selectors.handoff_list` (it needs the `in_case_scope` annotation and the
    prefetched item links). A reader who sees it only as its addressed prosecutor gets no
    internal review note, and no items while it does not stand sent (back in draft or review)."""

    case = CaseBriefSerializer(read_only=True)
    prosecutor = UserBriefSerializer(read_only=True)
    prosecutor_office = AgencyBriefSerializer(read_only=True)
    leads = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()
    charges = ChargeSerializer(many=True, read_only=True)
    created_by = UserBriefSerializer(read_only=True)
    submitted_by = UserBriefSerializer(read_only=True, allow_null=True)
    reviewed_by = UserBriefSerializer(read_only=True, allow_null=True)
    review_note = serializers.SerializerMethodField()

    class Meta:
        model = Handoff
        fields = [
            "id",
            "number",
            "case",
            "status",
            "prosecutor",
            "prosecutor_office",
            "leads",
            "evidence",
            "charges",
            "narrative",
            "created_by",
            "submitted_by",
            "submitted_at",
            "reviewed_by",
            "reviewed_at",
            "review_note",
            "sent_at",
            "acknowledged_at",
            "decided_at",
            "decision_note",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @staticmethod
    def _addressee_only(handoff: Handoff) -> bool:
        return not getattr(handoff, "in_case_scope", False)

    def _items_hidden(self, handoff: Handoff) -> bool:
        return self._addressee_only(handoff) and handoff.status not in selectors.HANDOFF_SENT_STATUSES

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_leads(self, handoff: Handoff) -> list[str]:
        if self._items_hidden(handoff):
            return []
        return [str(link.lead_id) for link in handoff.handoff_leads.all()]

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_evidence(self, handoff: Handoff) -> list[str]:
        if self._items_hidden(handoff):
            return []
        return [str(link.evidence_id) for link in handoff.handoff_evidence.all()]

    def get_review_note(self, handoff: Handoff) -> str:
        return "" if self._addressee_only(handoff) else handoff.review_note


class _ScopedIdsMixin:
    """Resolves lists of lead and evidence ids in one query each, against what the caller may
    see: an id out of scope reads exactly as one that does not exist."""

    context: dict[str, Any]

    def _resolve(self, ids: list[Any], queryset: Any) -> list[Any]:
        found = {obj.pk: obj for obj in queryset.filter(id__in=ids)}
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise serializers.ValidationError([f'Invalid pk "{i}" - object does not exist.' for i in missing])
        return [found[i] for i in dict.fromkeys(ids)]

    def validate_leads(self, ids: list[Any]) -> list[Lead]:
        user = self.context["request"].user
        return self._resolve(ids, selectors.lead_list(user=user).select_related(None).prefetch_related(None))

    def validate_evidence(self, ids: list[Any]) -> list[EvidenceItem]:
        user = self.context["request"].user
        return self._resolve(ids, selectors.evidence_list(user=user).select_related(None))


class HandoffCreateSerializer(_ScopedIdsMixin, StrictInputSerializer):
    output_serializer = HandoffOutputSerializer
    case = StrictPrimaryKeyRelatedField(queryset=Case.objects.none())
    prosecutor = StrictPrimaryKeyRelatedField(queryset=User.objects.all())
    leads = serializers.ListField(child=serializers.UUIDField(), max_length=1000, required=False, default=list)
    evidence = serializers.ListField(child=serializers.UUIDField(), max_length=1000, required=False, default=list)
    charges = ChargeSerializer(many=True, required=False, default=list, max_length=100)
    narrative = serializers.CharField(max_length=100000, allow_blank=True, required=False, default="")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["case"].queryset = selectors.case_list(user=request.user)


class HandoffUpdateSerializer(_ScopedIdsMixin, StrictInputSerializer):
    output_serializer = HandoffOutputSerializer
    prosecutor = StrictPrimaryKeyRelatedField(queryset=User.objects.all(), required=False)
    leads = serializers.ListField(child=serializers.UUIDField(), max_length=1000, required=False)
    evidence = serializers.ListField(child=serializers.UUIDField(), max_length=1000, required=False)
    charges = ChargeSerializer(many=True, required=False, max_length=100)
    narrative = serializers.CharField(max_length=100000, allow_blank=True, required=False)


class HandoffNoteSerializer(StrictInputSerializer):
    """A workflow step's note; every field of the handoff it answers with is refused by name
    (`status` changes only through these steps)."""

    output_serializer = HandoffOutputSerializer
    note = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")


class HandoffReviewSerializer(HandoffNoteSerializer):
    approve = serializers.BooleanField()


class HandoffDecisionSerializer(HandoffNoteSerializer):
    decision = serializers.ChoiceField(choices=[HandoffStatus.ACCEPTED, HandoffStatus.DECLINED, HandoffStatus.RETURNED])


class PacketOutputSerializer(serializers.ModelSerializer):
    handoff = serializers.UUIDField(source="handoff_id", read_only=True)
    handoff_number = serializers.CharField(source="handoff.number", read_only=True)
    case_number = serializers.CharField(source="handoff.case.number", read_only=True)
    requested_by = UserBriefSerializer(read_only=True)
    status_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportPacket
        fields = [
            "id",
            "handoff",
            "handoff_number",
            "case_number",
            "status",
            "progress",
            "stage",
            "sha256",
            "size_bytes",
            "manifest_sha256",
            "checkpoint_size",
            "signature",
            "error",
            "attempts",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "status_url",
            "download_url",
        ]
        read_only_fields = fields

    def _url(self, name: str, packet: ExportPacket) -> str:
        path = reverse(name, kwargs={"pk": packet.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_status_url(self, packet: ExportPacket) -> str:
        return self._url("packet-detail", packet)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, packet: ExportPacket) -> str | None:
        return self._url("packet-download", packet) if packet.status == PacketStatus.READY else None


class PacketAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    status = serializers.CharField(read_only=True)
    status_url = serializers.CharField(read_only=True)
