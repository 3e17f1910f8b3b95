"""Scoped reads of the audit log: auditors see their agency's events; case leads (and the
agency's supervisors, who hold manage_team through their group) see their cases' events."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from cases import selectors as case_selectors
from cases.models import Role
from cases.permissions import CasePerm


def audit_event_list(*, user: AbstractBaseUser) -> QuerySet[AuditEvent]:
    if not user or not user.is_authenticated:
        return AuditEvent.objects.none()
    scope = Q(case_id__in=case_selectors.case_ids_for(user, CasePerm.MANAGE_TEAM))
    agency_id = case_selectors.user_agency_id(user)
    if Role.AUDITOR in case_selectors.user_roles(user) and agency_id is not None:
        scope |= Q(agency_id=agency_id)
    return AuditEvent.objects.filter(scope)
