"""Shared API pieces: the error body's schema, and the error responses every view declares."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit.services import audit_record


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class FieldErrorsSerializer(serializers.Serializer):
    """`{"field": ["message", ...]}` for each invalid field (schema: free-form object)."""

    non_field_errors = serializers.ListField(child=serializers.CharField(), required=False)


ERROR_RESPONSES = {
    400: OpenApiResponse(FieldErrorsSerializer, description="Invalid input: field errors."),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(ErrorSerializer, description="In scope but not allowed."),
    404: OpenApiResponse(ErrorSerializer, description="Not found, or outside the caller's scope."),
    409: OpenApiResponse(ErrorSerializer, description="Invalid state change."),
}


class AuditedListMixin:
    """Records one read event per list request, with the query that was asked."""

    list_audit_action: Any

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().list(request, *args, **kwargs)
        audit_record(
            actor=request.user,
            action=self.list_audit_action,
            case_id=self.audit_case_id(),
            changes={"query": {k: request.query_params.getlist(k) for k in request.query_params}},
        )
        return response

    def audit_case_id(self) -> Any:
        return None
