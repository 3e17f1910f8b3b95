"""Thin views: parse, call a selector or a service, serialize. Querysets come from selectors
(out of scope is 404); services decide what the caller may do (403) and audit it."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib.auth import get_user_model
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from audit.models import AuditAction
from audit.services import audit_record
from caseapi.api import ERROR_RESPONSES, AuditedListMixin, ErrorSerializer, JSONParser, refuse_input
from cases import selectors, services, uploads
from cases.api import serializers as s
from cases.api.filters import CaseFilter, EvidenceFilter, HandoffFilter, LeadFilter
from cases.models import Case, CustodyEvent, EvidenceItem, ExportPacket, Handoff, Lead, Role

User = get_user_model()
PACKET_REQUEST_RATE = "10/min"
DIRECTORY_ROLES = frozenset({Role.INVESTIGATOR, Role.SUPERVISOR})
DIRECTORY_NOT_ALLOWED = "Only investigators and supervisors look up prosecutors."


# ---------------------------------------------------------------- auth and people


@extend_schema(
    request=s.LoginSerializer,
    responses={
        200: s.TokenSerializer,
        400: ERROR_RESPONSES[400],
        401: ErrorSerializer,
        403: ErrorSerializer,
        429: ErrorSerializer,
    },
    auth=[],
)
class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    def get_authenticate_header(self, request: Request) -> str:
        return "Token"

    def post(self, request: Request) -> Response:
        payload = s.LoginSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        issued = services.auth_login(**payload.validated_data)
        return Response({"token": issued.key, "expires_at": issued.token.expires_at})


@extend_schema(request=None, responses={204: None, **ERROR_RESPONSES})
class LogoutView(APIView):
    def post(self, request: Request) -> Response:
        if request.auth is not None and hasattr(request.auth, "revoked_at"):
            services.token_revoke(token=request.auth, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(responses={200: s.PersonSerializer, **ERROR_RESPONSES})
class MeView(APIView):
    def get(self, request: Request) -> Response:
        return Response(s.PersonSerializer(request.user).data)


@extend_schema_view(get=extend_schema(responses={200: s.PersonSerializer(many=True), **ERROR_RESPONSES}))
class UserListView(AuditedListMixin, generics.ListAPIView):
    serializer_class = s.PersonSerializer
    list_audit_action = AuditAction.USER_LISTED

    def get_queryset(self) -> Any:
        return selectors.agency_people(user=self.request.user)


@extend_schema_view(get=extend_schema(responses={200: s.PersonSerializer(many=True), **ERROR_RESPONSES}))
class ProsecutorListView(AuditedListMixin, generics.ListAPIView):
    """Who a handoff can be addressed to: active prosecutors of every prosecutor's office."""

    serializer_class = s.PersonSerializer
    list_audit_action = AuditAction.USER_LISTED

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return User.objects.none()
        if not selectors.user_roles(self.request.user) & DIRECTORY_ROLES:
            raise PermissionDenied(DIRECTORY_NOT_ALLOWED)
        return selectors.prosecutor_directory()


# ---------------------------------------------------------------- cases and teams


@extend_schema_view(
    get=extend_schema(responses={200: s.CaseOutputSerializer(many=True), **ERROR_RESPONSES}),
    post=extend_schema(request=s.CaseCreateSerializer, responses={201: s.CaseOutputSerializer, **ERROR_RESPONSES}),
)
class CaseListCreateView(AuditedListMixin, generics.ListCreateAPIView):
    filterset_class = CaseFilter
    list_audit_action = AuditAction.CASE_LISTED

    def get_queryset(self) -> Any:
        return selectors.case_list(user=self.request.user)

    def get_serializer_class(self) -> Any:
        return s.CaseCreateSerializer if self.request.method == "POST" else s.CaseOutputSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = s.CaseCreateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        case = services.case_create(actor=request.user, **payload.validated_data)
        return Response(s.CaseOutputSerializer(case).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(responses={200: s.CaseOutputSerializer, **ERROR_RESPONSES}),
    patch=extend_schema(request=s.CaseUpdateSerializer, responses={200: s.CaseOutputSerializer, **ERROR_RESPONSES}),
)
class CaseDetailView(generics.RetrieveUpdateAPIView):
    http_method_names = ["get", "patch", "head", "options"]
    serializer_class = s.CaseOutputSerializer

    def get_object(self) -> Case:
        return selectors.case_get(user=self.request.user, case_id=self.kwargs["pk"])

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = self.get_object()
        audit_record(actor=request.user, action=AuditAction.CASE_VIEWED, target=case, case_id=case.pk)
        return Response(s.CaseOutputSerializer(case).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = self.get_object()
        payload = s.CaseUpdateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        case = services.case_update(actor=request.user, case=case, data=dict(payload.validated_data))
        return Response(s.CaseOutputSerializer(selectors.case_get(user=request.user, case_id=case.pk)).data)


@extend_schema_view(
    get=extend_schema(responses={200: s.TeamMemberSerializer(many=True), **ERROR_RESPONSES}),
    post=extend_schema(
        request=s.TeamMemberInputSerializer,
        responses={200: s.TeamMemberSerializer, 201: s.TeamMemberSerializer, **ERROR_RESPONSES},
    ),
)
class CaseTeamView(AuditedListMixin, generics.ListCreateAPIView):
    serializer_class = s.TeamMemberSerializer
    list_audit_action = AuditAction.TEAM_VIEWED

    def get_case(self) -> Case:
        if not hasattr(self, "_case"):
            self._case = selectors.case_get(user=self.request.user, case_id=self.kwargs["pk"])
        return self._case

    def audit_case_id(self) -> Any:
        return self.get_case().pk

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Case.objects.none()
        return selectors.case_team(case=self.get_case())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = self.get_case()
        payload = s.TeamMemberInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        added = services.team_member_set(actor=request.user, case=case, **payload.validated_data)
        member = {"user": payload.validated_data["user"], "role": payload.validated_data["role"]}
        return Response(
            s.TeamMemberSerializer(member).data, status=status.HTTP_201_CREATED if added else status.HTTP_200_OK
        )


@extend_schema(responses={204: None, **ERROR_RESPONSES})
class CaseTeamMemberView(APIView):
    def delete(self, request: Request, pk: Any, user_id: int) -> Response:
        case = selectors.case_get(user=request.user, case_id=pk)
        services.team_member_remove(actor=request.user, case=case, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- leads


@extend_schema_view(
    get=extend_schema(responses={200: s.LeadOutputSerializer(many=True), **ERROR_RESPONSES}),
    post=extend_schema(request=s.LeadInputSerializer, responses={201: s.LeadWithHitsSerializer, **ERROR_RESPONSES}),
)
class LeadListCreateView(AuditedListMixin, generics.ListCreateAPIView):
    filterset_class = LeadFilter
    list_audit_action = AuditAction.LEAD_LISTED

    def get_queryset(self) -> Any:
        return selectors.lead_list(user=self.request.user)

    def get_serializer_class(self) -> Any:
        return s.LeadInputSerializer if self.request.method == "POST" else s.LeadOutputSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = s.LeadInputSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        lead, hits = services.lead_create(
            actor=request.user, case=payload.validated_data["case"], **payload.to_service_kwargs()
        )
        lead = selectors.lead_get(user=request.user, lead_id=lead.pk)
        return Response(s.LeadWithHitsSerializer(lead, context={"hits": hits}).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(responses={200: s.LeadOutputSerializer, **ERROR_RESPONSES}),
    patch=extend_schema(request=s.LeadUpdateSerializer, responses={200: s.LeadWithHitsSerializer, **ERROR_RESPONSES}),
)
class LeadDetailView(generics.RetrieveUpdateAPIView):
    http_method_names = ["get", "patch", "head", "options"]
    serializer_class = s.LeadOutputSerializer

    def get_object(self) -> Lead:
        return selectors.lead_get(user=self.request.user, lead_id=self.kwargs["pk"])

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        lead = self.get_object()
        audit_record(actor=request.user, action=AuditAction.LEAD_VIEWED, target=lead, case_id=lead.case_id)
        return Response(s.LeadOutputSerializer(lead).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        lead = self.get_object()
        payload = s.LeadUpdateSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        lead, hits = services.lead_update(actor=request.user, lead=lead, **payload.to_service_kwargs())
        lead = selectors.lead_get(user=request.user, lead_id=lead.pk)
        return Response(s.LeadWithHitsSerializer(lead, context={"hits": hits}).data)


@extend_schema(
    request=s.DeconflictionCheckSerializer, responses={200: s.DeconflictionResultSerializer, **ERROR_RESPONSES}
)
class DeconflictionCheckView(APIView):
    def post(self, request: Request) -> Response:
        payload = s.DeconflictionCheckSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        hits = services.deconfliction_check(
            actor=request.user, identifiers=[dict(i) for i in payload.validated_data["identifiers"]]
        )
        return Response({"hits": s.DeconflictionHitSerializer(hits, many=True).data})


# ---------------------------------------------------------------- evidence and custody


@extend_schema_view(
    get=extend_schema(responses={200: s.EvidenceOutputSerializer(many=True), **ERROR_RESPONSES}),
    post=extend_schema(
        request={"application/json": s.EvidenceCreateSerializer, "multipart/form-data": s.EvidenceCreateSerializer},
        responses={201: s.EvidenceOutputSerializer, 413: ErrorSerializer, **ERROR_RESPONSES},
    ),
)
class EvidenceListCreateView(AuditedListMixin, generics.ListCreateAPIView):
    filterset_class = EvidenceFilter
    list_audit_action = AuditAction.EVIDENCE_LISTED
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self) -> Any:
        return selectors.evidence_list(user=self.request.user)

    def get_serializer_class(self) -> Any:
        return s.EvidenceCreateSerializer if self.request.method == "POST" else s.EvidenceOutputSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = s.EvidenceCreateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        item = services.evidence_create(actor=request.user, upload=data.pop("content", None), **data)
        return Response(s.EvidenceOutputSerializer(item).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(responses={200: s.EvidenceOutputSerializer, **ERROR_RESPONSES}),
    patch=extend_schema(
        request=s.EvidenceUpdateSerializer, responses={200: s.EvidenceOutputSerializer, **ERROR_RESPONSES}
    ),
)
class EvidenceDetailView(generics.RetrieveUpdateAPIView):
    http_method_names = ["get", "patch", "head", "options"]
    serializer_class = s.EvidenceOutputSerializer

    def get_object(self) -> EvidenceItem:
        return selectors.evidence_get(user=self.request.user, evidence_id=self.kwargs["pk"])

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        item = self.get_object()
        audit_record(actor=request.user, action=AuditAction.EVIDENCE_VIEWED, target=item, case_id=item.case_id)
        return Response(s.EvidenceOutputSerializer(item).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        item = self.get_object()
        payload = s.EvidenceUpdateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        item = services.evidence_update(actor=request.user, item=item, data=dict(payload.validated_data))
        return Response(s.EvidenceOutputSerializer(selectors.evidence_get(user=request.user, evidence_id=item.pk)).data)


@extend_schema(
    responses={
        (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The stored bytes."),
        **ERROR_RESPONSES,
    }
)
class EvidenceContentView(APIView):
    def get(self, request: Request, pk: Any) -> FileResponse:
        item = selectors.evidence_get(user=request.user, evidence_id=pk)
        handle = services.evidence_content_open(item=item)
        audit_record(
            actor=request.user,
            action=AuditAction.EVIDENCE_DOWNLOADED,
            target=item,
            case_id=item.case_id,
            changes={"sha256": item.sha256, "size_bytes": item.size_bytes},
        )
        response = FileResponse(handle, content_type="application/octet-stream")
        response["Content-Disposition"] = uploads.attachment_disposition(services.evidence_download_name(item=item))
        response["ETag"] = f'"{item.sha256}"'
        response["Digest"] = "sha-256=" + base64.b64encode(bytes.fromhex(item.sha256)).decode()
        response["Cache-Control"] = "no-store"
        return response


@extend_schema_view(
    get=extend_schema(responses={200: s.CustodyEventSerializer(many=True), **ERROR_RESPONSES}),
    post=extend_schema(request=s.CustodyInputSerializer, responses={201: s.CustodyEventSerializer, **ERROR_RESPONSES}),
)
class CustodyListCreateView(AuditedListMixin, generics.ListCreateAPIView):
    list_audit_action = AuditAction.CUSTODY_LISTED
    serializer_class = s.CustodyEventSerializer

    def get_item(self) -> EvidenceItem:
        if not hasattr(self, "_item"):
            self._item = selectors.evidence_get(user=self.request.user, evidence_id=self.kwargs["pk"])
        return self._item

    def audit_case_id(self) -> Any:
        return self.get_item().case_id

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return CustodyEvent.objects.none()
        return selectors.custody_list(evidence=self.get_item())

    def get_serializer_class(self) -> Any:
        return s.CustodyInputSerializer if self.request.method == "POST" else s.CustodyEventSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        item = self.get_item()
        payload = s.CustodyInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        event = services.custody_record(actor=request.user, item=item, **payload.validated_data)
        return Response(s.CustodyEventSerializer(event).data, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses={200: s.CustodyEventSerializer, **ERROR_RESPONSES})
class EvidenceVerifyView(APIView):
    def post(self, request: Request, pk: Any) -> Response:
        refuse_input(request, output=s.CustodyEventSerializer)
        item = selectors.evidence_get(user=request.user, evidence_id=pk)
        event: CustodyEvent = services.evidence_verify(actor=request.user, item=item)
        return Response(s.CustodyEventSerializer(event).data)


# ---------------------------------------------------------------- handoffs and packets


@extend_schema_view(
    get=extend_schema(responses={200: s.HandoffOutputSerializer(many=True), **ERROR_RESPONSES}),
    post=extend_schema(
        request=s.HandoffCreateSerializer, responses={201: s.HandoffOutputSerializer, **ERROR_RESPONSES}
    ),
)
class HandoffListCreateView(AuditedListMixin, generics.ListCreateAPIView):
    filterset_class = HandoffFilter
    list_audit_action = AuditAction.HANDOFF_LISTED

    def get_queryset(self) -> Any:
        return selectors.handoff_list(user=self.request.user)

    def get_serializer_class(self) -> Any:
        return s.HandoffCreateSerializer if self.request.method == "POST" else s.HandoffOutputSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = s.HandoffCreateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        handoff = services.handoff_create(actor=request.user, **payload.validated_data)
        handoff = selectors.handoff_get(user=request.user, handoff_id=handoff.pk)
        return Response(s.HandoffOutputSerializer(handoff).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(responses={200: s.HandoffOutputSerializer, **ERROR_RESPONSES}),
    patch=extend_schema(
        request=s.HandoffUpdateSerializer, responses={200: s.HandoffOutputSerializer, **ERROR_RESPONSES}
    ),
)
class HandoffDetailView(generics.RetrieveUpdateAPIView):
    http_method_names = ["get", "patch", "head", "options"]
    serializer_class = s.HandoffOutputSerializer

    def get_object(self) -> Handoff:
        return selectors.handoff_get(user=self.request.user, handoff_id=self.kwargs["pk"])

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        handoff = self.get_object()
        audit_record(actor=request.user, action=AuditAction.HANDOFF_VIEWED, target=handoff, case_id=handoff.case_id)
        return Response(s.HandoffOutputSerializer(handoff).data)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        handoff = self.get_object()
        payload = s.HandoffUpdateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        handoff = services.handoff_update(actor=request.user, handoff=handoff, data=dict(payload.validated_data))
        return Response(s.HandoffOutputSerializer(selectors.handoff_get(user=request.user, handoff_id=handoff.pk)).data)


class HandoffActionView(APIView):
    """POST one workflow step on a handoff in scope; answers with the handoff as it now is."""

    input_serializer: type[s.HandoffNoteSerializer] = s.HandoffNoteSerializer

    def act(self, actor: Any, handoff: Handoff, data: dict[str, Any]) -> Handoff:
        raise NotImplementedError

    def post(self, request: Request, pk: Any) -> Response:
        handoff = selectors.handoff_get(user=request.user, handoff_id=pk)
        payload = self.input_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        handoff = self.act(request.user, handoff, dict(payload.validated_data))
        return Response(s.HandoffOutputSerializer(selectors.handoff_get(user=request.user, handoff_id=handoff.pk)).data)


@extend_schema(request=s.HandoffNoteSerializer, responses={200: s.HandoffOutputSerializer, **ERROR_RESPONSES})
class HandoffSubmitView(HandoffActionView):
    def act(self, actor: Any, handoff: Handoff, data: dict[str, Any]) -> Handoff:
        return services.handoff_submit(actor=actor, handoff=handoff, **data)


@extend_schema(request=s.HandoffReviewSerializer, responses={200: s.HandoffOutputSerializer, **ERROR_RESPONSES})
class HandoffReviewView(HandoffActionView):
    input_serializer = s.HandoffReviewSerializer

    def act(self, actor: Any, handoff: Handoff, data: dict[str, Any]) -> Handoff:
        return services.handoff_review(actor=actor, handoff=handoff, **data)


@extend_schema(request=s.HandoffNoteSerializer, responses={200: s.HandoffOutputSerializer, **ERROR_RESPONSES})
class HandoffAcknowledgeView(HandoffActionView):
    def act(self, actor: Any, handoff: Handoff, data: dict[str, Any]) -> Handoff:
        return services.handoff_acknowledge(actor=actor, handoff=handoff, **data)


@extend_schema(request=s.HandoffDecisionSerializer, responses={200: s.HandoffOutputSerializer, **ERROR_RESPONSES})
class HandoffDecisionView(HandoffActionView):
    input_serializer = s.HandoffDecisionSerializer

    def act(self, actor: Any, handoff: Handoff, data: dict[str, Any]) -> Handoff:
        return services.handoff_decide(actor=actor, handoff=handoff, **data)


class PacketRequestThrottle(UserRateThrottle):
    """Packet builds are expensive: PACKET_REQUEST_RATE per user unless the settings give the
    `packets` scope a rate."""

    scope = "packets"

    def get_rate(self) -> str:
        return self.THROTTLE_RATES.get(self.scope) or PACKET_REQUEST_RATE


@extend_schema_view(
    get=extend_schema(responses={200: s.PacketOutputSerializer(many=True), **ERROR_RESPONSES}),
    post=extend_schema(
        request=None, responses={202: s.PacketAcceptedSerializer, 429: ErrorSerializer, **ERROR_RESPONSES}
    ),
)
class HandoffPacketsView(generics.ListCreateAPIView):
    """GET: the packets of the handoff the caller may see; POST: queue a new one (202 at once)."""

    serializer_class = s.PacketOutputSerializer

    def get_throttles(self) -> list[BaseThrottle]:
        return [PacketRequestThrottle()] if self.request.method == "POST" else super().get_throttles()

    def get_handoff(self) -> Handoff:
        if not hasattr(self, "_handoff"):
            self._handoff = selectors.handoff_get(
                user=self.request.user, handoff_id=self.kwargs["pk"], with_items=False
            )
        return self._handoff

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return ExportPacket.objects.none()
        return selectors.packet_list(user=self.request.user).filter(handoff=self.get_handoff())

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        refuse_input(request, output=s.PacketAcceptedSerializer)
        packet = services.packet_request(actor=request.user, handoff=self.get_handoff())
        packet.refresh_from_db(fields=["status"])
        status_url = request.build_absolute_uri(reverse("packet-detail", kwargs={"pk": packet.pk}))
        return Response(
            {"id": str(packet.pk), "status": packet.status, "status_url": status_url},
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": status_url},
        )


@extend_schema(responses={200: s.PacketOutputSerializer, **ERROR_RESPONSES})
class PacketDetailView(generics.RetrieveAPIView):
    serializer_class = s.PacketOutputSerializer

    def get_object(self) -> ExportPacket:
        return selectors.packet_get(user=self.request.user, packet_id=self.kwargs["pk"])


@extend_schema(
    responses={
        (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The packet ZIP."),
        **ERROR_RESPONSES,
    }
)
class PacketDownloadView(APIView):
    def get(self, request: Request, pk: Any) -> FileResponse:
        packet = selectors.packet_get(user=request.user, packet_id=pk)
        handle = services.packet_open(actor=request.user, packet=packet)
        response = FileResponse(handle, content_type="application/zip")
        response["Content-Disposition"] = uploads.attachment_disposition(packet.file_name, f"{packet.pk}.zip")
        response["ETag"] = f'"{packet.sha256}"'
        response["Digest"] = "sha-256=" + base64.b64encode(bytes.fromhex(packet.sha256)).decode()
        response["Cache-Control"] = "no-store"
        return response
