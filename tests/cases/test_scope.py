"""The case scope's grants, written once as SQL (selectors._grant_sql), hold exactly the rows
of the grant tables as the ORM reads them (selectors._grant_tables), for every user of the
world and every case permission: direct grants, group grants, both, and none."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cases import selectors
from cases.models import Case
from cases.permissions import CasePerm
from tests.factories import CaseFactory
from tests.test_authorization_matrix import PERSONAS

USERS = [persona for persona in PERSONAS if persona != "anonymous"]


def _orm_grants(user: Any, perm: CasePerm) -> set[Any]:
    direct, via_group = selectors._grant_tables(user, perm)
    return set(direct.union(via_group).values_list("content_object_id", flat=True))


def _sql_grants(user: Any, perm: CasePerm) -> set[Any]:
    return set(Case.objects.filter(id__in=selectors._grant_sql(user, perm)).values_list("id", flat=True))


@pytest.mark.parametrize("perm", list(CasePerm))
@pytest.mark.parametrize("who", USERS)
def test_the_sql_grants_are_the_rows_of_the_grant_tables(world, who, perm):
    CaseFactory(actor=world.outsider, title="Second river case")  # grants of other users and cases around
    user = getattr(world, who)
    assert _sql_grants(user, perm) == _orm_grants(user, perm)


def test_a_supervisor_sees_the_cases_of_the_agency_through_the_group_grant(world):
    """The group branch on its own: the supervisor holds no direct grant on the case."""
    from cases.models import CaseUserObjectPermission

    assert not CaseUserObjectPermission.objects.filter(user=world.supervisor, content_object=world.case).exists()
    assert world.case.pk in _sql_grants(world.supervisor, CasePerm.VIEW)
    assert world.other_case.pk not in _sql_grants(world.supervisor, CasePerm.VIEW)
    assert set(selectors.case_ids_for(world.supervisor).values_list("id", flat=True)) == {world.case.pk}


def test_a_user_without_a_casework_role_gets_no_case_scope_whatever_grants_remain(world):
    assert _sql_grants(world.viewer, CasePerm.VIEW) == {world.case.pk}
    world.viewer.groups.clear()
    world.viewer._caseapi_roles = None
    assert list(selectors.case_ids_for(world.viewer)) == []


@pytest.mark.parametrize("perm", list(CasePerm))
@pytest.mark.parametrize("who", USERS)
def test_the_one_row_probe_admits_exactly_the_rows_of_granted_cases(world, who, perm):
    """selectors._grant_probe, the check a detail read makes on its one row, admits the same
    rows as the grant tables: leads and evidence of every case of the world."""
    from cases.models import EvidenceItem, Lead
    from tests.factories import EvidenceFactory, LeadFactory

    second = CaseFactory(actor=world.outsider, title="Second river case")
    for case in (world.case, world.other_case, second):
        LeadFactory(case=case)
        EvidenceFactory(case=case)
    user = getattr(world, who)
    granted = _orm_grants(user, perm)
    for model in (Lead, EvidenceItem):
        probed = set(model.objects.filter(selectors._grant_probe(user, perm)).values_list("id", flat=True))
        assert probed == set(model.objects.filter(case_id__in=granted).values_list("id", flat=True))
        assert model.objects.exists()


@pytest.mark.parametrize("keys", [False, True], ids=["semi-join", "index keys"])
@pytest.mark.parametrize("perm", list(CasePerm))
@pytest.mark.parametrize("who", USERS)
def test_both_forms_of_the_list_scope_admit_exactly_the_rows_of_granted_cases(world, who, perm, keys):
    """selectors.in_scope, as a semi-join and as index keys (`= ANY(ARRAY(...))` on
    PostgreSQL), admits the evidence of the granted cases and nothing else, also when the
    keys-first page nests the query under other table names (one row a page, every page)."""
    from caseapi.pagination import page_rows
    from cases.models import EvidenceItem
    from tests.factories import EvidenceFactory

    second = CaseFactory(actor=world.outsider, title="Second river case")
    for case in (world.case, world.other_case, second):
        EvidenceFactory(case=case)
        EvidenceFactory(case=case)
    user = getattr(world, who)
    expected = set(EvidenceItem.objects.filter(case_id__in=_orm_grants(user, perm)).values_list("id", flat=True))
    scoped = EvidenceItem.objects.filter(selectors.in_scope("case_id", user, perm, keys=keys))
    assert set(scoped.values_list("id", flat=True)) == expected
    rows = scoped.select_related("case").order_by("-created_at", "id")
    paged = [item.pk for number in range(len(expected) + 1) for item in page_rows(rows, number, number + 1)]
    assert paged == list(rows.values_list("id", flat=True))
    assert set(paged) == expected
    assert EvidenceItem.objects.count() >= 6


PHONE = "+12025550143"


@pytest.fixture
def phone_on_every_case(world: Any) -> list[Any]:
    """A lead carrying the same phone on each case of the world and on a case of another
    investigator's, so a search for it finds leads both in and out of every user's scope."""
    from cases.services import lead_create
    from tests.factories import LeadFactory

    second = CaseFactory(actor=world.outsider, title="Second river case")
    for case in (world.case, world.other_case, second):
        LeadFactory(case=case)  # a lead without the phone on each case
    leads = []
    for case, actor in ((world.case, world.lead), (world.other_case, world.outsider), (second, world.outsider)):
        lead, _ = lead_create(actor=actor, case=case, identifiers=[{"kind": "phone", "value": PHONE}])
        leads.append(lead)
    return leads


@pytest.mark.parametrize("who", USERS)
def test_a_search_admits_exactly_the_leads_the_lead_list_admits(world, who, phone_on_every_case):
    """selectors.lead_search (the leads found from the identifier, probed lead by lead) holds
    the rows of lead_list narrowed to the identifier, for every persona, prosecutors' handoffs
    included; also page by page, where the keys-first page nests the probe under other table
    names."""
    from caseapi.pagination import page_rows

    user = getattr(world, who)
    in_order = list(
        selectors.lead_list(user=user)
        .filter(id__in=selectors.identifier_lead_ids("(202) 555-0143"))
        .values_list("id", flat=True)
    )
    expected = set(in_order)
    searched = selectors.lead_search(user=user, term="(202) 555-0143")
    assert {lead.pk for lead in searched} == expected
    paged = [lead.pk for number in range(len(expected) + 1) for lead in page_rows(searched, number, number + 1)]
    assert paged == in_order
    assert searched.count() == len(expected)
    if who == "lead":
        assert expected == {phone_on_every_case[0].pk}  # in scope: the lead's own case only


def test_the_api_search_starts_from_the_identifier_and_probes_each_lead(world, phone_on_every_case):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import client_for

    client = client_for(world.supervisor)
    with CaptureQueriesContext(connection) as queries:
        body = client.get("/api/leads/", {"identifier": "202.555.0143", "page_size": 1}).json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [str(phone_on_every_case[0].pk)]
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and (' FROM "cases_lead" ' in q["sql"] or " FROM cases_lead l " in q["sql"])
    ]
    assert reads and all("EXISTS (SELECT 1 FROM cases_caseuserobjectpermission" in sql for sql in reads)
    assert not any("UNION ALL" in sql for sql in reads)  # no join with the grants


def test_a_search_over_a_narrowed_list_stays_a_filter_of_it(world, phone_on_every_case):
    """LeadFilter starts a search from lead_search only over lead_list itself; over a
    queryset narrowed since (or any other), the identifier narrows it like any filter."""
    from django.http import QueryDict

    from cases.api.filters import LeadFilter
    from cases.models import Lead

    request = type("Request", (), {"user": world.supervisor})()
    whole = selectors.lead_list(user=world.supervisor)
    nothing = whole.filter(status="no-such-status")
    assert selectors.is_lead_list_of(whole, world.supervisor)
    assert not selectors.is_lead_list_of(nothing, world.supervisor)
    assert not selectors.is_lead_list_of(whole, world.lead)
    assert not selectors.is_lead_list_of(Lead.objects.all(), world.supervisor)
    query = QueryDict(f"identifier={PHONE}")
    assert list(LeadFilter(query, queryset=nothing, request=request).qs) == []
    assert [lead.pk for lead in LeadFilter(query, queryset=whole, request=request).qs] == [phone_on_every_case[0].pk]


@pytest.mark.parametrize("who", USERS)
def test_the_case_count_from_the_grants_is_the_count_of_the_case_list(world, who):
    """selectors.case_count counts the distinct granted case ids: a case granted both directly
    and through a group counts once, a grant of another permission or to a group the user is
    not in does not count."""
    from cases import services

    second = CaseFactory(actor=world.supervisor, title="Supervisor's own case")  # direct and group grant
    CaseFactory(actor=world.outsider, title="Second river case")
    services.team_member_set(actor=world.supervisor, case=second, user=world.viewer, role="viewer")
    user = getattr(world, who)
    assert selectors.case_count(user=user) == selectors.case_list(user=user).count()
    if who == "supervisor":
        assert selectors.case_count(user=user) == 2


def test_the_whole_case_list_is_counted_from_the_grants_and_a_filtered_one_from_its_rows(world):
    """The case list as its selector returns it counts the grants without reading the case table;
    a list narrowed by a filter is counted by its own rows, so `count` is always the number of
    rows the pages hold."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import client_for

    CaseFactory(actor=world.supervisor, title="Supervisor's own case")
    client = client_for(world.supervisor)

    def counted(params: dict[str, str]) -> tuple[int, int, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            body = client.get("/api/cases/", params).json()
        counts = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT COUNT")]
        return body["count"], len(body["results"]), counts

    count, rows, counts = counted({"page_size": "1", "q": ""})
    assert (count, rows) == (2, 1)
    assert len(counts) == 1 and not re.search(r"\bcases_case\b", counts[0])
    count, rows, counts = counted({"status": "closed"})
    assert (count, rows) == (0, 0)
    count, rows, counts = counted({"q": "Supervisor's own"})
    assert (count, rows) == (1, 1)
    assert len(counts) == 1 and re.search(r"\bcases_case\b", counts[0])


def test_a_filter_set_given_no_value_returns_the_very_queryset_it_was_given(world):
    """What a selector attached to its queryset (the case list's count) survives a filter set
    that narrows nothing, and only then."""
    from django.http import QueryDict

    from cases.api.filters import CaseFilter

    whole = selectors.case_list(user=world.supervisor)
    assert CaseFilter(QueryDict("q=&status="), queryset=whole).qs is whole
    narrowed = CaseFilter(QueryDict("status=open"), queryset=whole).qs
    assert narrowed is not whole and not hasattr(narrowed, "known_count")
    assert not hasattr(whole.filter(status="open"), "known_count")
