"""Thin views of intercept ingest and analytics: parse, call a selector or a service,
serialize. Ingest routes take signed machine clients only; the read routes take people, and
their querysets come from intercept.selectors (out of scope is 404)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import audit_record
from caseapi.api import ERROR_RESPONSES, AuditedListMixin, ErrorSerializer, refuse_input
from caseapi.throttling import IngestAddressThrottle, IngestSourceThrottle, ThrottleBeforeAuthenticationMixin
from intercept import selectors, services
from intercept.api import serializers as s
from intercept.api.filters import AdFilter, ConversationFilter
from intercept.api.renderers import AnalyticsCSVRenderer
from intercept.authentication import IsIngestSource, SignedSourceAuthentication, raw_body
from intercept.events import InterceptAction
from intercept.models import Conversation

DEFAULT_MAX_ITEMS = 1000
BODY_NOT_JSON = "The body is not valid UTF-8 JSON."
BODY_SHAPE = 'Expected a JSON object {"items": [...]} or a JSON array of items.'
TOO_MANY_ITEMS = "At most {max} items per batch."


def max_items() -> int:
    return int(getattr(settings, "INGEST_MAX_ITEMS", DEFAULT_MAX_ITEMS))


def batch_items(body: bytes) -> list[Any]:
    """The items of a batch body, `{"items": [...]}` or a bare array; ParseError (400) on bad
    JSON, ValidationError (400) on another shape or more than INGEST_MAX_ITEMS items."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # RecursionError: a body nested deeper than the decoder can go (`[[[[...`).
        raise ParseError(BODY_NOT_JSON) from exc
    if isinstance(data, list):
        data = {"items": data}
    if not isinstance(data, dict) or set(data) != {"items"} or not isinstance(data["items"], list):
        raise ValidationError({"non_field_errors": [BODY_SHAPE]})
    if len(data["items"]) > max_items():
        raise ValidationError({"items": [TOO_MANY_ITEMS.format(max=max_items())]})
    return data["items"]


INGEST_RESPONSES = {
    200: s.BatchResultSerializer,
    400: ERROR_RESPONSES[400],
    401: OpenApiResponse(ErrorSerializer, description="Missing, wrong, stale or replayed signature; inactive source."),
    409: OpenApiResponse(ErrorSerializer, description="The source's operation is closed."),
    413: OpenApiResponse(ErrorSerializer, description="The body is larger than INGEST_MAX_BODY_BYTES."),
    429: OpenApiResponse(ErrorSerializer, description="Too many batches; retry after Retry-After seconds."),
}


class IngestSchema(AutoSchema):
    """The batch body is required: drf-spectacular cannot tell for a body that is one of two
    shapes (IngestBodySchema)."""

    def _get_request_body(self, direction: str = "request") -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        if body:
            body["required"] = True
        return body


class _IngestView(ThrottleBeforeAuthenticationMixin, APIView):
    """POST a batch; 200 with one result per item (each accepted or rejected on its own).

    Two throttles (caseapi.throttling): requests per client address before the signature is
    checked (each refused signature costs a lookup and an audit row), and batches per source
    after it."""

    authentication_classes = [SignedSourceAuthentication]
    permission_classes = [IsIngestSource]
    parser_classes: list[Any] = []
    schema = IngestSchema()
    pre_authentication_throttle_classes = [IngestAddressThrottle]
    throttle_classes = [IngestSourceThrottle]
    ingest: Callable[..., list[dict[str, Any]]]

    def post(self, request: Request) -> Response:
        items = batch_items(raw_body(request))
        results = self.ingest(source=request.auth, items=items)
        rejected = sum(1 for r in results if r["status"] == "rejected")
        return Response({"accepted": len(results) - rejected, "rejected": rejected, "results": results})


# The views read the body raw (it is signed), so they name its media type for the schema.
@extend_schema(request={"application/json": s.ConversationBatchBodySerializer}, responses=INGEST_RESPONSES)
class ConversationIngestView(_IngestView):
    ingest = staticmethod(services.conversations_ingest)


@extend_schema(request={"application/json": s.AdBatchBodySerializer}, responses=INGEST_RESPONSES)
class AdIngestView(_IngestView):
    ingest = staticmethod(services.ads_ingest)


# ---------------------------------------------------------------- conversations and ads


@extend_schema_view(get=extend_schema(responses={200: s.ConversationSerializer(many=True), **ERROR_RESPONSES}))
class ConversationListView(AuditedListMixin, generics.ListAPIView):
    serializer_class = s.ConversationSerializer
    filterset_class = ConversationFilter
    list_audit_action = InterceptAction.CONVERSATION_LISTED

    def get_queryset(self) -> Any:
        return selectors.conversation_list(user=self.request.user)


@extend_schema_view(get=extend_schema(responses={200: s.ConversationDetailSerializer, **ERROR_RESPONSES}))
class ConversationDetailView(generics.RetrieveAPIView):
    serializer_class = s.ConversationDetailSerializer

    def get_object(self) -> Conversation:
        return selectors.conversation_get(user=self.request.user, conversation_id=self.kwargs["pk"])

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        conversation = self.get_object()
        audit_record(
            actor=request.user,
            action=InterceptAction.CONVERSATION_VIEWED,
            target=conversation,
            case_id=conversation.case_id,
        )
        context = {
            "answered_ad": selectors.answered_ad(conversation=conversation),
            "ads_sharing_numbers": selectors.ads_sharing_numbers(user=request.user, conversation=conversation),
        }
        return Response(s.ConversationDetailSerializer(conversation, context=context).data)


@extend_schema(
    request=None,
    responses={
        200: OpenApiResponse(s.SnapshotSerializer, description="Nothing new since the latest snapshot: that one."),
        201: OpenApiResponse(s.SnapshotSerializer, description="A new snapshot (evidence item) was taken."),
        **ERROR_RESPONSES,
    },
)
class ConversationSnapshotView(APIView):
    def post(self, request: Request, pk: Any) -> Response:
        refuse_input(request, output=s.SnapshotSerializer)
        conversation = selectors.conversation_get(user=request.user, conversation_id=pk)
        snapshot, created = services.conversation_snapshot(actor=request.user, conversation=conversation)
        data = s.SnapshotSerializer(
            snapshot, context={"previous": {snapshot.previous_id: getattr(snapshot.previous, "evidence_id", None)}}
        ).data
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema_view(get=extend_schema(responses={200: s.AdSerializer(many=True), **ERROR_RESPONSES}))
class AdListView(AuditedListMixin, generics.ListAPIView):
    serializer_class = s.AdSerializer
    filterset_class = AdFilter
    list_audit_action = InterceptAction.AD_LISTED

    def get_queryset(self) -> Any:
        return selectors.ad_list(user=self.request.user)


# ---------------------------------------------------------------- analytics


# Days a period may start and end on: the period's bounds (until + 1 day, the default start
# 59 days before until) must stay inside the calendar.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)


class AnalyticsQuerySerializer(serializers.Serializer):
    case = serializers.UUIDField(help_text="The operation.")
    since = serializers.DateField(
        required=False,
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
        help_text="First day (default: 59 days before until), 1900-01-01 to 9998-12-31.",
    )
    until = serializers.DateField(
        required=False,
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
        help_text="Last day, included (default: today), 1900-01-01 to 9998-12-31.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        default = selectors.default_period(attrs.get("until"))
        period = selectors.Period(since=attrs.get("since", default.since), until=attrs.get("until", default.until))
        if period.until < period.since:
            raise ValidationError({"until": [selectors.RANGE_ORDER]})
        attrs["period"] = period
        return attrs


@extend_schema(
    parameters=[
        AnalyticsQuerySerializer,
        OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="csv: one row per number."),
    ],
    responses={
        (200, "application/json"): s.AnalyticsSummarySerializer,
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="section,week,site,status,value"),
        **ERROR_RESPONSES,
    },
)
class AnalyticsSummaryView(APIView):
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, AnalyticsCSVRenderer]

    def get(self, request: Request) -> Response:
        query = AnalyticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        case = selectors.operation_for_analytics(user=request.user, case_id=query.validated_data["case"])
        period: selectors.Period = query.validated_data["period"]
        summary = selectors.analytics_summary(user=request.user, case=case, period=period)
        audit_record(
            actor=request.user,
            action=InterceptAction.ANALYTICS_VIEWED,
            target=case,
            case_id=case.pk,
            changes={"since": period.since, "until": period.until, "format": request.accepted_renderer.format},
        )
        response = Response(summary)
        if request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="{_csv_name(case.number, period)}"'
        return response


def _csv_name(number: str, period: selectors.Period) -> str:
    return f"analytics-{number}-{period.since.isoformat()}-{period.until.isoformat()}.csv"
