"""Audit API: events (scoped), signed checkpoints, the verifier key, inclusion and
consistency proofs, and verification. Reading the audit log is itself audited; any attempt to
change it through the API is refused (405) and recorded."""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import selectors, services, signing
from audit.api.filters import AuditEventFilter
from audit.api.serializers import (
    AuditEventSerializer,
    CheckpointSerializer,
    ConsistencyProofSerializer,
    InclusionProofSerializer,
    VerifyResultSerializer,
)
from audit.models import AuditAction
from caseapi.api import ERROR_RESPONSES, AuditedListMixin, ErrorSerializer, refuse_input
from cases.models import Role
from cases.selectors import user_roles

NOT_AUDITOR = "Only auditors can do this."
# A tree size, as its query parameters declare it (the server refuses 0 and below).
POSITIVE_INT = {"type": "integer", "minimum": 1}
TEXT_RESPONSE = {
    (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="Signed-note text."),
    401: OpenApiResponse(ErrorSerializer),
    404: OpenApiResponse(ErrorSerializer),
}


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


class TamperRecordingMixin:
    """A write method the audit API does not allow is answered 405 and recorded."""

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.user and request.user.is_authenticated:
            services.audit_record(
                action=AuditAction.AUDIT_TAMPER_ATTEMPT,
                actor=request.user,
                changes={"method": request.method, "path": request.path},
            )
        return super().http_method_not_allowed(request, *args, **kwargs)


def _require_auditor(request: Request) -> None:
    if Role.AUDITOR not in user_roles(request.user):
        raise PermissionDenied(NOT_AUDITOR)


@extend_schema_view(get=extend_schema(responses={200: AuditEventSerializer(many=True), **ERROR_RESPONSES}))
class AuditEventListView(TamperRecordingMixin, AuditedListMixin, generics.ListAPIView):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    list_audit_action = AuditAction.AUDIT_LISTED

    def get_queryset(self) -> Any:
        return selectors.audit_event_list(user=self.request.user)


@extend_schema(responses=TEXT_RESPONSE)
class LatestCheckpointView(TamperRecordingMixin, APIView):
    def get(self, request: Request) -> HttpResponse:
        checkpoint = selectors.checkpoint_latest()
        return HttpResponse(checkpoint.signed_note, content_type="text/plain; charset=utf-8")


@extend_schema(responses=TEXT_RESPONSE)
class VerifierKeyView(TamperRecordingMixin, APIView):
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(signing.verifier().text() + "\n", content_type="text/plain; charset=utf-8")


@extend_schema(request=None, responses={200: CheckpointSerializer, 201: CheckpointSerializer, **ERROR_RESPONSES})
class CheckpointCreateView(TamperRecordingMixin, APIView):
    def post(self, request: Request) -> Response:
        refuse_input(request, output=CheckpointSerializer)
        _require_auditor(request)
        result = services.checkpoint_create(actor=request.user)
        return Response(
            CheckpointSerializer(result.checkpoint).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class _TreeSizeQuery(serializers.Serializer):
    tree_size = serializers.IntegerField(min_value=1, required=False)


@extend_schema(
    parameters=[OpenApiParameter("tree_size", POSITIVE_INT, description="Default: the latest checkpoint's size.")],
    responses={200: InclusionProofSerializer, **ERROR_RESPONSES},
)
class InclusionProofView(TamperRecordingMixin, APIView):
    def get(self, request: Request, seq: int) -> Response:
        query = _TreeSizeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        event = selectors.audit_event_by_seq(user=request.user, seq=seq)
        proof = selectors.inclusion_proof(event=event, tree_size=query.validated_data.get("tree_size"))
        services.audit_record(
            action=AuditAction.AUDIT_PROOF_READ,
            actor=request.user,
            target=event,
            case_id=event.case_id,
            changes={"seq": seq, "tree_size": proof.tree_size},
        )
        return Response(InclusionProofSerializer(proof).data)


class _ConsistencyQuery(serializers.Serializer):
    # `from` is a Python keyword: the field is renamed below.
    to = serializers.IntegerField(min_value=1)

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField(min_value=1)
        return fields


@extend_schema(
    parameters=[
        OpenApiParameter("from", POSITIVE_INT, required=True, description="The older tree size."),
        OpenApiParameter("to", POSITIVE_INT, required=True, description="The newer tree size, at least `from`."),
    ],
    responses={200: ConsistencyProofSerializer, **ERROR_RESPONSES},
)
class ConsistencyProofView(TamperRecordingMixin, APIView):
    def get(self, request: Request) -> Response:
        query = _ConsistencyQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        old, new = query.validated_data["from"], query.validated_data["to"]
        if old > new:
            raise ValidationError({"from": ["`from` must not be larger than `to`."]})
        return Response(ConsistencyProofSerializer(selectors.consistency_proof(old_size=old, new_size=new)).data)


@extend_schema(request=None, responses={200: VerifyResultSerializer, **ERROR_RESPONSES})
class VerifyView(TamperRecordingMixin, APIView):
    def post(self, request: Request) -> Response:
        refuse_input(request, output=VerifyResultSerializer)
        _require_auditor(request)
        result = services.audit_verify(actor=request.user)
        return Response(VerifyResultSerializer(result).data)
