"""Scoped reads of intercept data. Conversations, ads and analytics are authorized through
their operation case with one subquery (cases.selectors.case_scope), never per row; out of
scope reads as not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce, TruncWeek
from django.http import Http404
from django.utils import timezone

from cases import selectors as case_selectors
from cases.models import (
    Case,
    CaseKind,
    Handoff,
    HandoffStatus,
    Identifier,
    IdentifierKind,
    Lead,
    LeadIdentifier,
    LeadStatus,
)
from intercept.models import Ad, AdPhone, Conversation, IngestSource, Message, TranscriptSnapshot

NOT_AN_OPERATION = "Analytics are per operation; case {number} is an investigation."
RANGE_ORDER = "until cannot be earlier than since."
OPEN_LEAD_STATUSES = (LeadStatus.NEW, LeadStatus.TRIAGED, LeadStatus.ASSIGNED, LeadStatus.INVESTIGATING)
TOP_LEADS = 20


def _get_or_404(qs: QuerySet, pk: Any) -> Any:
    try:
        return qs.get(pk=pk)
    except (qs.model.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404 from exc


# ---------------------------------------------------------------- conversations and ads


def conversation_list(*, user: AbstractBaseUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(case_selectors.in_scope("case_id", user)).select_related(
        "source", "case", "lead"
    )


def conversation_get(*, user: AbstractBaseUser, conversation_id: uuid.UUID | str) -> Conversation:
    """One conversation in scope, with its messages (in order) and snapshots prefetched."""
    qs = conversation_list(user=user).prefetch_related(
        Prefetch("messages", queryset=Message.objects.order_by("seq")),
        Prefetch("snapshots", queryset=TranscriptSnapshot.objects.select_related("evidence").order_by("number")),
    )
    return _get_or_404(qs, conversation_id)


def phone_identifiers(raw: str) -> QuerySet[Identifier]:
    """The phone Identifier rows a typed number could mean (any format)."""
    return case_selectors.identifier_matches(raw, IdentifierKind.PHONE)


def conversations_with_phone(qs: QuerySet[Conversation], raw: str) -> QuerySet[Conversation]:
    """Conversations whose buyer (lead) carries the phone `raw`, typed in any format."""
    links = LeadIdentifier.objects.filter(lead_id=OuterRef("lead_id"), identifier__in=phone_identifiers(raw))
    return qs.filter(Exists(links))


def ad_list(*, user: AbstractBaseUser) -> QuerySet[Ad]:
    return (
        Ad.objects.filter(case_selectors.in_scope("case_id", user))
        .select_related("case", "source")
        .prefetch_related("identifiers")
    )


def ads_with_phone(qs: QuerySet[Ad], raw: str) -> QuerySet[Ad]:
    return qs.filter(Exists(AdPhone.objects.filter(ad_id=OuterRef("pk"), identifier__in=phone_identifiers(raw))))


def ads_sharing_numbers(*, user: AbstractBaseUser, conversation: Conversation, limit: int = 50) -> list[Ad]:
    """Ads in the caller's scope listing any phone number of the conversation's buyer."""
    phones = LeadIdentifier.objects.filter(lead_id=conversation.lead_id, identifier__kind="phone").values(
        "identifier_id"
    )
    return list(
        ad_list(user=user)
        .filter(Exists(AdPhone.objects.filter(ad_id=OuterRef("pk"), identifier_id__in=phones)))
        .order_by("-first_seen_at", "id")[:limit]
    )


def answered_ad(*, conversation: Conversation) -> Ad | None:
    """The ad the buyer answered, if it was captured for the same operation."""
    if not conversation.ad_site:
        return None
    return (
        Ad.objects.filter(
            case_id=conversation.case_id, site=conversation.ad_site, external_id=conversation.ad_external_id
        )
        .select_related("source")
        .prefetch_related("identifiers")
        .first()
    )


def ingest_sources(*, agency_id: int | None) -> QuerySet[IngestSource]:
    qs = IngestSource.objects.select_related("agency", "case", "created_by")
    return qs if agency_id is None else qs.filter(agency_id=agency_id)


# ---------------------------------------------------------------- analytics


@dataclass(frozen=True)
class Period:
    """A closed range of days, [since 00:00, until 24:00) in the current time zone."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.since, time.min))

    @property
    def end(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.until + timedelta(days=1), time.min))


def default_period(today: date | None = None, days: int = 60) -> Period:
    today = today or timezone.localdate()
    return Period(since=today - timedelta(days=days - 1), until=today)


def operation_for_analytics(*, user: AbstractBaseUser, case_id: uuid.UUID | str) -> Case:
    case = case_selectors.case_get(user=user, case_id=case_id)
    if case.kind != CaseKind.OPERATION:
        raise ValidationError({"case": [NOT_AN_OPERATION.format(number=case.number)]})
    return case


def operations_in_scope(*, user: AbstractBaseUser) -> QuerySet[Case]:
    return case_selectors.case_list(user=user).filter(kind=CaseKind.OPERATION).order_by("-created_at", "id")


def _week(value: Any) -> str:
    return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()


def analytics_summary(*, user: AbstractBaseUser, case: Case, period: Period) -> dict[str, Any]:
    """The numbers of one operation (already checked to be in the caller's scope) over
    `period`. Weeks start on Monday and are named by that day. Ads count by posting time (or
    capture time when the site gave none); conversations by their first message (or receipt);
    buyers are the leads of the conversations in the period, repeat buyers those with two or
    more; leads count by status among the leads first seen in the period; handoffs of the
    operation and of its child investigations in the caller's scope, by status. A fixed number
    of queries whatever the size of the operation."""
    start, end = period.start, period.end
    ad_time = Coalesce("posted_at", "first_seen_at")
    ads_by_week = (
        Ad.objects.filter(case=case)
        .annotate(at=ad_time)
        .filter(at__gte=start, at__lt=end)
        .annotate(week=TruncWeek("at"))
        .values("week", "site")
        .annotate(count=Count("id"))
        .order_by("week", "site")
    )
    conversation_time = Coalesce("first_message_at", "created_at")
    conversations = (
        Conversation.objects.filter(case=case).annotate(at=conversation_time).filter(at__gte=start, at__lt=end)
    )
    conversations_by_week = (
        conversations.annotate(week=TruncWeek("at")).values("week").annotate(count=Count("id")).order_by("week")
    )
    per_buyer = conversations.values("lead_id").annotate(n=Count("id")).values_list("n", flat=True)
    counts = list(per_buyer)
    deterrence = Conversation.objects.filter(
        case=case, deterrence_sent_at__gte=start, deterrence_sent_at__lt=end
    ).count()
    lead_rows = (
        Lead.objects.filter(case=case, first_seen_at__gte=start, first_seen_at__lt=end)
        .values("status")
        .annotate(count=Count("id"))
        .order_by()
    )
    leads_by_status = {status: 0 for status in LeadStatus.values}
    for row in lead_rows:
        leads_by_status[row["status"]] = row["count"]
    scope = case_selectors.case_ids_for(user)
    handoff_rows = (
        Handoff.objects.filter(Q(case=case) | Q(case__parent=case), case_id__in=scope)
        .values("status")
        .annotate(count=Count("id"))
        .order_by()
    )
    handoffs = {status: 0 for status in HandoffStatus.values}
    for row in handoff_rows:
        handoffs[row["status"]] = row["count"]
    return {
        "case": {"id": str(case.pk), "number": case.number, "title": case.title},
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "ads_per_site_per_week": [
            {"week": _week(row["week"]), "site": row["site"], "count": row["count"]} for row in ads_by_week
        ],
        "conversations_per_week": [
            {"week": _week(row["week"]), "count": row["count"]} for row in conversations_by_week
        ],
        "buyers": {"unique": len(counts), "repeat": sum(1 for n in counts if n >= 2)},
        "deterrence_sent": deterrence,
        "leads_by_status": leads_by_status,
        "handoff_outcomes": handoffs,
    }


def top_open_leads(*, case: Case, limit: int = TOP_LEADS) -> list[Lead]:
    """The operation's highest-priority open leads, with how many conversations each had."""
    return list(
        Lead.objects.filter(case=case, status__in=OPEN_LEAD_STATUSES)
        .annotate(conversation_count=Count("conversations"))
        .select_related("assignee")
        .order_by(F("priority").desc(), "-last_seen_at", "id")[:limit]
    )
