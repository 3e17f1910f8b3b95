"""The outbox in the admin: view-only, superusers only (rows name tasks and ids, not case
content, but nobody needs to change them by hand: the relay does)."""

from __future__ import annotations

from django.contrib import admin

from cases.admin import ScopedReadOnlyAdmin
from outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ScopedReadOnlyAdmin):
    """No roles: only superusers open it (ScopedReadOnlyAdmin), and nobody adds, changes or
    deletes a row here."""

    list_display = ("id", "task", "status", "attempts", "created_at", "sent_at", "dedup_key")
    list_filter = ("status", "task")
    search_fields = ("=dedup_key", "=task_id")
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "task",
        "args",
        "kwargs",
        "dedup_key",
        "task_id",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    )
