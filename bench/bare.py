"""The bare baseline of bench/api.py: each measured endpoint's rows served by a plain DRF generic
view with no authentication, no permission classes, no audit and no filter backends, through
the same serializer class, select_related/prefetch_related and pagination as the real
endpoint. Which rows a persona would see is given in the path (an agency, a lead
investigator, a case, an identifier id) instead of being worked out from permissions.

`bench-bare/with/<part>/...` is the bare lead detail plus exactly one piece of the real
endpoint's own work (bench/api.py --overheads measures what each piece costs under load):

    query  one more statement on the request's connection (SELECT 1): the price of a round trip
    token  the real authentication (the token lookup: token, user, profile and roles in one query)
    audit  the read's audit event (lead.viewed, inserted and committed before the response)

Benchmark only: these routes exist in the URL conf of bench.bare_settings and nowhere else;
caseapi.urls never includes them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django.urls import path
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.serializers import AuditEventSerializer
from audit.models import AuditAction, AuditEvent
from audit.services import audit_record
from caseapi.urls import urlpatterns as production_urlpatterns
from cases.api.serializers import CaseOutputSerializer, EvidenceOutputSerializer, LeadOutputSerializer
from cases.authentication import ExpiringTokenAuthentication
from cases.models import Case, EvidenceItem, Lead, LeadIdentifier


class Bare:
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    filter_backends: list[Any] = []
    throttle_classes: list[Any] = []


def _cases(kwargs: dict[str, Any]) -> QuerySet[Case]:
    """The cases an agency's supervisor sees (`agency_id`), or those one investigator leads."""
    if "agency_id" in kwargs:
        return Case.objects.filter(agency_id=kwargs["agency_id"])
    return Case.objects.filter(lead_investigator_id=kwargs["user_id"])


def _leads() -> QuerySet[Lead]:
    return Lead.objects.select_related("case", "case__agency", "assignee").prefetch_related("identifiers")


class CaseList(Bare, generics.ListAPIView):
    serializer_class = CaseOutputSerializer

    def get_queryset(self) -> QuerySet[Case]:
        return _cases(self.kwargs).select_related("agency", "lead_investigator", "lead_investigator__profile", "parent")


class CaseLeadList(Bare, generics.ListAPIView):
    serializer_class = LeadOutputSerializer

    def get_queryset(self) -> QuerySet[Lead]:
        return _leads().filter(case_id=self.kwargs["case_id"])


class IdentifierLeadList(Bare, generics.ListAPIView):
    serializer_class = LeadOutputSerializer

    def get_queryset(self) -> QuerySet[Lead]:
        links = LeadIdentifier.objects.filter(identifier_id=self.kwargs["identifier_id"])
        return _leads().filter(id__in=links.values("lead_id"))


class LeadDetail(Bare, generics.RetrieveAPIView):
    serializer_class = LeadOutputSerializer

    def get_queryset(self) -> QuerySet[Lead]:
        return _leads()


PARTS = ("query", "token", "audit")
_ACTORS: dict[int, Any] = {}


def _actor(user_id: int) -> Any:
    """The audit part's actor, with the profile audit_record reads, loaded once per process:
    loading the user is the token part's cost, not the audit part's."""
    if user_id not in _ACTORS:
        _ACTORS[user_id] = get_user_model().objects.select_related("profile").get(pk=user_id)
    return _ACTORS[user_id]


class LeadDetailWith(LeadDetail):
    """LeadDetail plus one part of the real endpoint's work (PARTS), done as the real one does it."""

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        part = kwargs["part"]
        if part not in PARTS:
            raise Http404
        lead = self.get_object()
        if part == "query":
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        elif part == "token":
            if ExpiringTokenAuthentication().authenticate(request) is None:
                raise Http404
        else:
            actor = _actor(kwargs["user_id"])
            audit_record(actor=actor, action=AuditAction.LEAD_VIEWED, target=lead, case_id=lead.case_id)
        return Response(self.get_serializer(lead).data)


class EvidenceList(Bare, generics.ListAPIView):
    serializer_class = EvidenceOutputSerializer

    def get_queryset(self) -> QuerySet[EvidenceItem]:
        return EvidenceItem.objects.filter(case_id__in=_cases(self.kwargs).values("id")).select_related(
            "case", "collected_by", "created_by", "withdrawn_by"
        )


class CaseAuditList(Bare, generics.ListAPIView):
    serializer_class = AuditEventSerializer

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.filter(case_id=self.kwargs["case_id"])


urlpatterns = [
    *production_urlpatterns,
    path("bench-bare/cases/agency/<int:agency_id>/", CaseList.as_view()),
    path("bench-bare/cases/lead/<int:user_id>/", CaseList.as_view()),
    path("bench-bare/cases/<uuid:case_id>/leads/", CaseLeadList.as_view()),
    path("bench-bare/cases/<uuid:case_id>/audit/", CaseAuditList.as_view()),
    path("bench-bare/identifiers/<int:identifier_id>/leads/", IdentifierLeadList.as_view()),
    path("bench-bare/leads/<uuid:pk>/", LeadDetail.as_view()),
    path("bench-bare/with/<str:part>/<int:user_id>/leads/<uuid:pk>/", LeadDetailWith.as_view()),
    path("bench-bare/evidence/agency/<int:agency_id>/", EvidenceList.as_view()),
    path("bench-bare/evidence/lead/<int:user_id>/", EvidenceList.as_view()),
]
