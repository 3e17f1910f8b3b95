"""A wide scope's page found by walking the list's order (selectors.walked_page, and the case
list's walked page) holds exactly the rows of the keys-first page, for every user, page by
page; where the scope's rows lie deeper than the walk goes, the page is read by keys after all.
The walk's bounds are made tiny here so that a handful of rows is a "wide" scope."""

from __future__ import annotations

from typing import Any

import pytest

from caseapi.pagination import page_rows
from cases import selectors
from tests.factories import CaseFactory, EvidenceFactory

USERS = ["lead", "teammate", "viewer", "supervisor", "investigator", "outsider", "outsider_supervisor"]


@pytest.fixture
def short_walks(monkeypatch):
    """Walk one row per row of the page's end: tried wherever the scope holds more than twice that."""
    monkeypatch.setattr(selectors, "WALK_ROWS_PER_ROW", 1)
    monkeypatch.setattr(selectors, "WALK_MIN_ROWS", 1)


@pytest.fixture
def evidence(world):
    """Items of the first case, then of the other agency's case, then of the first case again:
    the other agency's items lie under the first case's newest ones."""
    first = [EvidenceFactory(case=world.case, actor=world.lead) for _ in range(3)]
    other = [EvidenceFactory(case=world.other_case, actor=world.outsider) for _ in range(4)]
    newest = [EvidenceFactory(case=world.case, actor=world.lead) for _ in range(3)]
    return first, other, newest


def _ids(rows: Any) -> list[Any]:
    return [row.pk for row in rows]


def _same_rows(found: list[Any], expected: list[Any]) -> None:
    """The same rows, each with the related rows select_related read with it."""
    assert _ids(found) == _ids(expected)
    for got, want in zip(found, expected, strict=True):
        assert set(want._state.fields_cache) <= set(got._state.fields_cache)
        for name, related in want._state.fields_cache.items():
            assert getattr(got._state.fields_cache[name], "pk", None) == getattr(related, "pk", None)


@pytest.mark.parametrize("who", USERS)
def test_a_walked_evidence_page_holds_the_keys_first_pages_rows(world, evidence, short_walks, who):
    items = selectors.evidence_list(user=getattr(world, who))
    count = items.count()
    for size in (1, 2, 3, 50):
        for bottom in range(0, count + 1, size):
            _same_rows(
                list(items.known_page(bottom, bottom + size, count)), list(page_rows(items, bottom, bottom + size))
            )


def test_a_walk_that_finds_the_page_takes_one_query(world, evidence, short_walks, django_assert_num_queries):
    items = selectors.evidence_list(user=world.lead)
    with django_assert_num_queries(1):
        page = list(items.known_page(0, 1, 6))
    assert _ids(page) == [evidence[2][-1].pk]


def test_a_walk_that_does_not_reach_the_page_is_read_by_keys(world, evidence, short_walks, django_assert_num_queries):
    """The other agency's newest item lies under three of the first case's: a walk of one row
    finds none of theirs, and their page is read by its keys."""
    items = selectors.evidence_list(user=world.outsider_supervisor)
    with django_assert_num_queries(2):  # the walk, then the keys-first page
        page = list(items.known_page(0, 1, 4))
    assert _ids(page) == [evidence[1][-1].pk]


def test_a_narrow_scope_is_read_by_keys_without_a_walk(world, evidence, django_assert_num_queries):
    items = selectors.evidence_list(user=world.lead)  # six items: far under the walk's least
    with django_assert_num_queries(1):
        page = list(items.known_page(0, 50, 6))
    assert _ids(page) == _ids(page_rows(items, 0, 50))


def test_a_prosecutors_evidence_list_is_never_walked(world):
    assert not hasattr(selectors.evidence_list(user=world.prosecutor), "known_page")
    assert not hasattr(selectors.evidence_list(user=world.lead).filter(kind="document"), "known_page")


def test_the_evidence_endpoint_pages_a_walked_scope_as_the_orm_does(world, evidence, short_walks):
    from tests.conftest import client_for

    expected = [str(pk) for pk in _ids(page_rows(selectors.evidence_list(user=world.lead), 0, 50))]
    client = client_for(world.lead)
    got = [
        row["id"]
        for page in range(1, 7)
        for row in client.get("/api/evidence/", {"page_size": 1, "page": page}).json()["results"]
    ]
    assert got == expected and len(got) == 6


@pytest.fixture
def cases(world):
    """Two more cases of the first agency's lead, newer than the other agency's case."""
    return [CaseFactory(actor=world.lead, title=f"Newer {n}") for n in range(3)]


@pytest.mark.parametrize("who", USERS)
def test_a_walked_case_page_holds_the_keys_first_pages_rows(world, cases, short_walks, who):
    listed = selectors.case_list(user=getattr(world, who))
    count = listed.known_count()
    for size in (1, 2, 50):
        for bottom in range(0, count + 1, size):
            _same_rows(listed.known_page(bottom, bottom + size, count), list(page_rows(listed, bottom, bottom + size)))


def test_a_case_page_walked_past_the_scope_is_read_by_keys(world, cases, short_walks, django_assert_num_queries):
    listed = selectors.case_list(user=world.lead)
    with django_assert_num_queries(1):  # the walk finds the newest case
        assert _ids(listed.known_page(0, 1, 4)) == [cases[-1].pk]
    other = selectors.case_list(user=world.outsider_supervisor)
    with django_assert_num_queries(2):  # under the first agency's newer cases: the walk finds none
        assert _ids(other.known_page(0, 1, 3)) == [world.other_case.pk]
