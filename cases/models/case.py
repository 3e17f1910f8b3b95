"""Cases, their per-agency yearly number counters, and the guardian permission rows that
make up each case's team."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class CaseKind(models.TextChoices):
    OPERATION = "operation", "Operation"
    INVESTIGATION = "investigation", "Investigation"


class CaseStatus(models.TextChoices):
    OPEN = "open"
    ACTIVE = "active"
    PENDING_PROSECUTION = "pending_prosecution"
    CLOSED = "closed"


class CasePriority(models.TextChoices):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TeamRole(models.TextChoices):
    VIEWER = "viewer"
    INVESTIGATOR = "investigator"
    LEAD = "lead"


class Case(models.Model):
    """Number `<AGENCY>-<YEAR>-<NNNNN>` is assigned once by `case_create` and never changes."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=32, unique=True, editable=False)
    agency = models.ForeignKey("cases.Agency", on_delete=models.PROTECT, related_name="cases")
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=CaseKind.choices, default=CaseKind.INVESTIGATION)
    status = models.CharField(max_length=24, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    priority = models.CharField(max_length=10, choices=CasePriority.choices, default=CasePriority.NORMAL)
    summary = models.TextField(blank=True)
    lead_investigator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases_led")
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        permissions = [("manage_team", "Can manage the case team")]
        indexes = [
            models.Index(fields=["agency", "status"], name="case_agency_status_idx"),
            models.Index(fields=["-created_at", "id"], name="case_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"


class CaseNumberCounter(models.Model):
    """One row per agency and year; `case_create` locks it to hand out the next number."""

    agency = models.ForeignKey("cases.Agency", on_delete=models.PROTECT, related_name="+")
    year = models.PositiveIntegerField()
    last_value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agency", "year"], name="case_counter_agency_year_uniq")]

    def __str__(self) -> str:
        return f"{self.agency_id}/{self.year}: {self.last_value}"


class CaseUserObjectPermission(UserObjectPermissionBase):
    """Direct foreign-key guardian rows: team membership of one user on one case."""

    content_object = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="user_permissions")

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "case user permission"
        indexes = [models.Index(fields=["user", "permission", "content_object"], name="case_uperm_lookup_idx")]


class CaseGroupObjectPermission(GroupObjectPermissionBase):
    """Direct foreign-key guardian rows: e.g. the agency's supervisors on each of its cases."""

    content_object = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="group_permissions")

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = "case group permission"
        indexes = [models.Index(fields=["group", "permission", "content_object"], name="case_gperm_lookup_idx")]
