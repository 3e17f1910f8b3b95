"""Analytics of an operation over a period, as JSON and CSV, on a small data set whose numbers
are known; scoped like the case; a fixed number of queries however much data there is."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from cases import services as case_services
from cases.models import CaseKind, Handoff, HandoffStatus, LeadStatus
from intercept import selectors, services
from intercept.events import InterceptAction
from tests.conftest import client_for
from tests.factories import CaseFactory
from tests.intercept.conftest import ad, conversation

pytestmark = pytest.mark.django_db

WEEK1 = datetime(2026, 3, 3, 20, 0, tzinfo=UTC)  # Tuesday of the week of Monday 2 March
WEEK2 = datetime(2026, 3, 12, 20, 0, tzinfo=UTC)  # Thursday of the week of Monday 9 March
OUTSIDE = datetime(2026, 4, 20, 20, 0, tzinfo=UTC)
PERIOD = {"since": "2026-03-02", "until": "2026-03-15"}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def handoff(case: Any, world: Any, number: str, status: str) -> Handoff:
    return Handoff.objects.create(
        case=case,
        number=number,
        prosecutor=world.prosecutor,
        prosecutor_office=world.agency_p,
        created_by=case.lead_investigator,
        status=status,
    )


@pytest.fixture
def known(issued, world) -> dict[str, Any]:
    """Ads: nightlist 3 + cityvibe 1 in week 1, nightlist 2 in week 2, one in April. Buyers:
    P in weeks 1 and 2 (a repeat buyer), Q in week 2, R in April; deterrence sent to P (week
    1) and Q. Handoffs: the operation's accepted one, a child investigation's declined one,
    and one on a child investigation the lead cannot see."""
    source = issued.source
    op = source.case
    services.ads_ingest(
        source=source,
        items=[ad(f"n{i}", posted_at=iso(WEEK1 + timedelta(hours=i))) for i in range(3)]
        + [ad("c1", site="cityvibe.example", posted_at=iso(WEEK1))]
        + [ad(f"m{i}", posted_at=iso(WEEK2 + timedelta(hours=i))) for i in range(2)]
        + [ad("late", posted_at=iso(OUTSIDE))],
    )
    results = services.conversations_ingest(
        source=source,
        items=[
            conversation("p1", base=WEEK1, deterrence_sent_at=iso(WEEK1 + timedelta(minutes=5))),
            conversation("p2", base=WEEK2, phone="305.555.0142"),
            conversation("q1", base=WEEK2, phone="786-555-0123", deterrence_sent_at=iso(WEEK2 + timedelta(minutes=9))),
            conversation("r1", base=OUTSIDE, phone="786-555-0199", deterrence_sent_at=iso(OUTSIDE)),
        ],
    )
    case_services.lead_update(actor=world.lead, lead=op.leads.get(pk=results[2]["lead"]), status=LeadStatus.TRIAGED)
    child = CaseFactory(actor=world.lead, title="Buyer P", kind=CaseKind.INVESTIGATION, parent=op)
    hidden_child = CaseFactory(actor=world.investigator, title="Buyer Q", kind=CaseKind.INVESTIGATION, parent=op)
    handoff(op, world, "H001", HandoffStatus.ACCEPTED)
    handoff(child, world, "H001", HandoffStatus.DECLINED)
    handoff(hidden_child, world, "H001", HandoffStatus.RETURNED)
    return {"op": op}


def summary_of(user: Any, op: Any, **params: str) -> Any:
    return client_for(user).get("/api/analytics/summary/", {"case": str(op.pk), **PERIOD, **params})


def test_the_summary_counts_a_known_data_set(known, world):
    op = known["op"]
    response = summary_of(world.lead, op)
    assert response.status_code == 200, response.content
    leads = {status: 0 for status in LeadStatus.values} | {"new": 1, "triaged": 1}
    handoffs = {status: 0 for status in HandoffStatus.values} | {"accepted": 1, "declined": 1}
    assert response.json() == {
        "case": {"id": str(op.pk), "number": op.number, "title": op.title},
        "since": "2026-03-02",
        "until": "2026-03-15",
        "ads_per_site_per_week": [
            {"week": "2026-03-02", "site": "cityvibe.example", "count": 1},
            {"week": "2026-03-02", "site": "nightlist.example", "count": 3},
            {"week": "2026-03-09", "site": "nightlist.example", "count": 2},
        ],
        "conversations_per_week": [{"week": "2026-03-02", "count": 1}, {"week": "2026-03-09", "count": 2}],
        "buyers": {"unique": 2, "repeat": 1},
        "deterrence_sent": 2,
        "leads_by_status": leads,
        "handoff_outcomes": handoffs,
    }
    viewed = AuditEvent.objects.get(action=InterceptAction.ANALYTICS_VIEWED)
    assert (viewed.actor, viewed.case_id) == (world.lead, op.pk)
    assert viewed.changes == {"since": "2026-03-02", "until": "2026-03-15", "format": "json"}


def test_the_summary_as_csv_has_one_row_per_number(known, world):
    response = summary_of(world.supervisor, known["op"], format="csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == (
        f'attachment; filename="analytics-{known["op"].number}-2026-03-02-2026-03-15.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "week", "site", "status", "value"]
    assert rows[1:7] == [
        ["ads", "2026-03-02", "cityvibe.example", "", "1"],
        ["ads", "2026-03-02", "nightlist.example", "", "3"],
        ["ads", "2026-03-09", "nightlist.example", "", "2"],
        ["conversations", "2026-03-02", "", "", "1"],
        ["conversations", "2026-03-09", "", "", "2"],
        ["unique_buyers", "", "", "", "2"],
    ]
    assert ["repeat_buyers", "", "", "", "1"] in rows and ["deterrence_sent", "", "", "", "2"] in rows
    assert ["leads", "", "", "triaged", "1"] in rows and ["handoffs", "", "", "declined", "1"] in rows
    assert len(rows) == 1 + 5 + 3 + len(LeadStatus.values) + len(HandoffStatus.values)


def test_the_summary_is_scoped_like_the_operation(known, world):
    op = known["op"]
    for stranger in (world.outsider, world.investigator, world.auditor, world.prosecutor, world.admin):
        assert summary_of(stranger, op).status_code == 404, stranger
    assert summary_of(world.outsider, op, format="csv").status_code == 404
    assert summary_of(world.viewer, op).status_code == 200


def test_a_bad_question_is_400(known, world):
    client = client_for(world.lead)
    assert client.get("/api/analytics/summary/").status_code == 400
    bad_range = summary_of(world.lead, known["op"], since="2026-03-15", until="2026-03-01")
    assert bad_range.json() == {"until": [selectors.RANGE_ORDER]}
    investigation = client.get("/api/analytics/summary/", {"case": str(world.case.pk)})
    assert investigation.status_code == 400
    assert investigation.json() == {"case": [selectors.NOT_AN_OPERATION.format(number=world.case.number)]}


def test_the_summary_costs_the_same_whatever_the_size_of_the_operation(known, world, issued):
    def count() -> int:
        client = client_for(world.lead)
        with CaptureQueriesContext(connection) as captured:
            assert summary_of_client(client, known["op"]).status_code == 200
        return len(captured.captured_queries)

    small = count()
    services.ads_ingest(
        source=issued.source,
        items=[
            ad(f"x{i}", site=f"site{i % 4}.example", posted_at=iso(WEEK1 + timedelta(days=i % 12))) for i in range(40)
        ],
    )
    services.conversations_ingest(
        source=issued.source,
        items=[
            conversation(f"y{i}", base=WEEK1 + timedelta(days=i % 12), phone=f"+1305555{150 + i:04d}")
            for i in range(30)
        ],
    )
    assert count() == small


def summary_of_client(client: Any, op: Any) -> Any:
    return client.get("/api/analytics/summary/", {"case": str(op.pk), **PERIOD})
