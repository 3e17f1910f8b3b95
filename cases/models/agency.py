"""Agencies and the profile that ties a Django user to one agency."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.db import models


class AgencyKind(models.TextChoices):
    LAW_ENFORCEMENT = "law_enforcement", "Law enforcement"
    PROSECUTOR = "prosecutor", "Prosecutor's office"


class Role(models.TextChoices):
    """Roles are Django groups of these exact names."""

    INVESTIGATOR = "investigator"
    SUPERVISOR = "supervisor"
    PROSECUTOR = "prosecutor"
    AUDITOR = "auditor"
    AGENCY_ADMIN = "agency_admin"


agency_code_validator = RegexValidator(
    r"^[A-Z][A-Z0-9]{1,9}$", "An agency code is 2-10 upper-case letters or digits, starting with a letter."
)


class Agency(models.Model):
    """`supervisors` is the per-agency group that holds object permissions on the agency's
    cases; members of the global `supervisor` role group of this agency are put in it."""

    code = models.CharField(max_length=10, unique=True, validators=[agency_code_validator])
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=AgencyKind.choices)
    supervisors = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="supervised_agency")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "agencies"

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class Profile(models.Model):
    """Agency membership and contact details, plus the login-failure counters for lockout."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="profile")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="members")
    title = models.CharField(max_length=120, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    failed_logins = models.PositiveIntegerField(default=0)
    failed_window_started_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.agency.code})"
