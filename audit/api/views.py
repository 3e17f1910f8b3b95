"""Audit API views; reading the audit log is itself audited."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics

from audit import selectors
from audit.api.filters import AuditEventFilter
from audit.api.serializers import AuditEventSerializer
from audit.models import AuditAction
from caseapi.api import ERROR_RESPONSES, AuditedListMixin


@extend_schema_view(get=extend_schema(responses={200: AuditEventSerializer(many=True), **ERROR_RESPONSES}))
class AuditEventListView(AuditedListMixin, generics.ListAPIView):
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    list_audit_action = AuditAction.AUDIT_LISTED

    def get_queryset(self) -> Any:
        return selectors.audit_event_list(user=self.request.user).select_related(None)
