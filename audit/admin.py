"""Admin screens for the audit log: read-only for everyone, scoped by `audit_event_list`."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from audit.models import AuditAction, AuditEvent
from audit.selectors import audit_event_list
from cases.admin import ScopedReadOnlyAdmin, register_remaining
from cases.models import Role


@admin.register(AuditEvent)
class AuditEventAdmin(ScopedReadOnlyAdmin):
    """Append-only: no add, change or delete, superusers included. Auditors see their agency's
    events; case leads and supervisors the events of the cases they manage."""

    roles = frozenset({Role.AUDITOR, Role.SUPERVISOR, Role.INVESTIGATOR})
    list_audit_action = AuditAction.AUDIT_LISTED
    list_display = ("id", "created_at", "action", "actor_name", "agency", "target_type", "target_id", "case_id")
    list_select_related = ("agency",)
    list_filter = ("action",)
    search_fields = ("=actor_name", "=target_id", "=request_id")
    ordering = ("-id",)
    show_full_result_count = False

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        """Every column, so fields the chain adds (sequence, hashes) show without a change here."""
        return [field.name for field in AuditEvent._meta.concrete_fields]

    def full_queryset(self, request: HttpRequest) -> QuerySet:
        return AuditEvent.objects.select_related("agency", "actor")

    def scoped_queryset(self, request: HttpRequest) -> QuerySet:
        return audit_event_list(user=request.user).select_related("agency", "actor")


register_remaining("audit")
