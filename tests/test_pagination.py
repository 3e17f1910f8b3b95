"""Pages are read keys first (caseapi.pagination.page_rows): the scoped rows are sorted and
cut in a subquery without joins, and only the page's rows are read with their related rows.
The pages must hold exactly what plain slicing gives, in the same order."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from caseapi.pagination import page_rows
from cases import selectors
from tests.conftest import client_for
from tests.factories import CaseFactory, EvidenceFactory, LeadFactory


@pytest.fixture
def leads(world: Any) -> list[Any]:
    for n in range(7):
        LeadFactory(case=world.case, display_name=f"Buyer {n}", priority=n % 3)
    return list(selectors.lead_list(user=world.lead).filter(case=world.case))


def test_each_page_of_the_api_holds_the_rows_of_plain_slicing_in_order(world, leads):
    client = client_for(world.lead)
    served = []
    for page in (1, 2, 3):
        body = client.get(f"/api/leads/?case={world.case.pk}&page_size=3&page={page}").json()
        assert body["count"] == len(leads)
        served.extend(row["id"] for row in body["results"])
    assert served == [str(lead.pk) for lead in leads]


@pytest.mark.parametrize(("bottom", "top"), [(0, 3), (3, 6), (6, 7), (2, 5), (0, 7)])
def test_page_rows_equals_the_slice_with_related_rows_and_prefetches_loaded(world, leads, bottom, top):
    rows = selectors.lead_list(user=world.lead)
    page = list(page_rows(rows, bottom, top))
    assert [lead.pk for lead in page] == [lead.pk for lead in rows[bottom:top]]
    with CaptureQueriesContext(connection) as queries:
        for lead in page:
            _ = lead.case.agency.code, [i.value for i in lead.identifiers.all()]
    assert len(queries) == 0  # joined and prefetched, not loaded row by row


def test_the_page_query_cuts_the_keys_before_it_joins(world):
    for n in range(3):
        EvidenceFactory(case=world.case, description=f"Item {n}")
    sql = str(page_rows(selectors.evidence_list(user=world.lead), 0, 2).query)
    outer, _, inner = sql.partition(" IN (SELECT ")
    assert inner, sql
    assert "LIMIT 2" in inner and "JOIN" in outer  # the cut inside, the joins outside
    assert "LIMIT" not in outer


def test_a_page_is_scoped_like_the_list_it_comes_from(world):
    mine = EvidenceFactory(case=world.case, description="Mine")
    other_case = CaseFactory(actor=world.outsider, title="Not mine")
    EvidenceFactory(case=other_case, description="Not mine", actor=world.outsider)
    page = list(page_rows(selectors.evidence_list(user=world.lead), 0, 50))
    assert [item.pk for item in page] == [mine.pk]


def test_a_queryset_with_annotations_is_sliced_as_it_is(world):
    rows = selectors.handoff_list(user=world.lead)  # annotated with in_case_scope
    assert rows.query.annotations
    assert str(page_rows(rows, 0, 5).query) == str(rows[0:5].query)
