"""The reads written once as SQL (selectors: token_get, and lead_get for a casework user) give
what the ORM gives: the same instances, field by field (encrypted fields decrypted, times
converted), with the same related objects cached, in the same number of queries; and the
lead read keeps the scope: out of scope, nonexistent and malformed ids are all a 404."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.http import Http404

from cases import selectors
from cases.api.serializers import LeadOutputSerializer
from cases.models import Lead
from cases.services import auth_login
from tests.factories import TEST_PASSWORD, CaseFactory, LeadFactory


def _values(instance: Any) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def _orm_lead(lead_id: Any) -> Lead:
    return selectors._lead_rows(Lead.objects.all()).get(pk=lead_id)


def _assert_same_lead(raw: Lead, orm: Lead) -> None:
    assert type(raw) is Lead and not raw._state.adding and raw._state.db == orm._state.db
    assert _values(raw) == _values(orm)
    assert _values(raw.case) == _values(orm.case)
    assert _values(raw.case.agency) == _values(orm.case.agency)
    assert (raw.assignee and _values(raw.assignee)) == (orm.assignee and _values(orm.assignee))
    assert [_values(i) for i in raw.identifiers.all()] == [_values(i) for i in orm.identifiers.all()]


@pytest.fixture
def leads(world):
    """A lead with an assignee and identifiers of several kinds (two of one), and one with neither."""
    rich = LeadFactory(
        case=world.case,
        actor=world.lead,
        display_name="Night Owl \u00e9t\u00e9",
        assignee=world.teammate,
        identifiers=[
            {"kind": "phone", "value": "(212) 555-0147"},
            {"kind": "phone", "value": "(212) 555-0199"},  # two of a kind: ordered by id within it
            {"kind": "email", "value": "Owl@Example.com"},
            {"kind": "handle", "value": "@night_owl"},
        ],
    )
    bare = LeadFactory(case=world.case, actor=world.lead, display_name="Nobody")
    return rich, bare


@pytest.mark.parametrize("who", ["lead", "teammate", "viewer", "supervisor"])
def test_lead_get_gives_the_instances_the_orm_gives(world, leads, who):
    for lead in leads:
        _assert_same_lead(selectors.lead_get(user=getattr(world, who), lead_id=lead.pk), _orm_lead(lead.pk))


def test_lead_get_takes_a_string_id_as_the_orm_does(world, leads):
    rich, _ = leads
    _assert_same_lead(selectors.lead_get(user=world.lead, lead_id=str(rich.pk)), _orm_lead(rich.pk))


def test_lead_get_reads_in_two_queries_and_the_serializer_reads_nothing_more(world, leads, django_assert_num_queries):
    rich, _ = leads
    user = selectors.token_get(_digest_of(world.lead)).user
    with django_assert_num_queries(2):  # the lead with its case, agency and assignee; its identifiers
        lead = selectors.lead_get(user=user, lead_id=rich.pk)
    with django_assert_num_queries(0):
        data = LeadOutputSerializer(lead).data
    assert data == LeadOutputSerializer(_orm_lead(rich.pk)).data
    assert [i["kind"] for i in data["identifiers"]] == sorted(i["kind"] for i in data["identifiers"])


@pytest.mark.parametrize("who", ["investigator", "outsider", "outsider_supervisor"])
def test_lead_get_out_of_scope_is_a_404(world, leads, who):
    with pytest.raises(Http404):
        selectors.lead_get(user=getattr(world, who), lead_id=leads[0].pk)


def test_lead_get_of_a_lead_of_another_case_is_a_404_for_the_first_cases_team(world):
    elsewhere = LeadFactory(case=world.other_case, actor=world.outsider)
    assert selectors.lead_get(user=world.outsider, lead_id=elsewhere.pk).pk == elsewhere.pk
    for who in ("lead", "teammate", "viewer", "supervisor"):
        with pytest.raises(Http404):
            selectors.lead_get(user=getattr(world, who), lead_id=elsewhere.pk)


NOWHERE = uuid.UUID("7d0c5a8e-3f2b-4c1d-9e8f-0a1b2c3d4e5f")  # no lead has it


@pytest.mark.parametrize(
    "bad",
    [NOWHERE, str(NOWHERE), "not-a-uuid", "", "1' OR '1'='1", 12],
    ids=["uuid", "uuid-text", "word", "empty", "injection", "number"],
)
def test_lead_get_of_a_nonexistent_or_malformed_id_is_a_404(world, leads, bad):
    with pytest.raises(Http404):
        selectors.lead_get(user=world.lead, lead_id=bad)


def test_lead_get_sees_a_case_granted_through_a_group_only(world, leads):
    """The supervisor holds no direct grant on the case: the group branch of the probe admits it."""
    second = CaseFactory(actor=world.lead, title="Second case")
    lead = LeadFactory(case=second, actor=world.lead)
    _assert_same_lead(selectors.lead_get(user=world.supervisor, lead_id=lead.pk), _orm_lead(lead.pk))


def _digest_of(user: Any) -> str:
    from cases.tokens import token_digest

    return token_digest(auth_login(username=user.username, password=TEST_PASSWORD).key)


def test_token_get_gives_the_instances_the_orm_gives(world):
    from cases.models import AuthToken

    token = selectors.token_get(_digest_of(world.supervisor))
    orm = AuthToken.objects.select_related("user", "user__profile").get(pk=token.pk)
    assert _values(token) == _values(orm)
    assert _values(token.user) == _values(orm.user)
    assert _values(token.user.profile) == _values(orm.user.profile)
    assert token.user._caseapi_roles == frozenset(orm.user.groups.values_list("name", flat=True))


def test_token_get_of_an_unknown_digest_is_none(world):
    assert selectors.token_get("0" * 64) is None


# ---------------------------------------------------------------- the identifier search


@pytest.fixture
def shared_phone(world, leads):
    """The phone (212) 555-0147 on three leads of the first case (the rich one of `leads`
    among them, with four identifiers), and on a lead of another agency's case."""
    rich, _ = leads
    shared = [rich]
    for name in ("Second", "Third"):
        shared.append(
            LeadFactory(
                case=world.case,
                actor=world.lead,
                display_name=name,
                identifiers=[{"kind": "phone", "value": "212.555.0147"}, {"kind": "handle", "value": f"@{name}"}],
            )
        )
    LeadFactory(case=world.other_case, actor=world.outsider, identifiers=[{"kind": "phone", "value": "2125550147"}])
    return shared


def _page(rows: Any, bottom: int, top: int) -> list[Any]:
    """The list's known page, as the paginator asks for it (with the list's count)."""
    return rows.known_page(bottom, top, rows.known_count())


def _orm_search(user: Any, term: str, kind: str | None = None) -> list[Lead]:
    """The search's queryset read through the ORM (known_page and known_count aside)."""
    return list(selectors.lead_search(user=user, term=term, kind=kind))


@pytest.mark.parametrize("who", ["lead", "teammate", "viewer", "supervisor", "outsider"])
def test_a_search_gives_the_leads_the_orm_gives_in_its_order_page_by_page(world, shared_phone, who):
    user = getattr(world, who)
    search = selectors.lead_search(user=user, term="(212) 555-0147")
    orm = _orm_search(user, "(212) 555-0147")
    assert search.known_count() == len(orm) == (1 if who == "outsider" else 3)
    for size in (1, 2, 50):
        paged = [lead for bottom in range(0, len(orm), size) for lead in _page(search, bottom, bottom + size)]
        assert [lead.pk for lead in paged] == [lead.pk for lead in orm]
        for raw, expected in zip(paged, orm, strict=True):
            _assert_same_lead(raw, expected)
    assert _page(search, len(orm), len(orm) + 5) == [] and _page(search, 2, 2) == []


def test_a_search_page_takes_three_queries_and_the_serializer_none(world, shared_phone, django_assert_num_queries):
    user = selectors.token_get(_digest_of(world.supervisor)).user
    search = selectors.lead_search(user=user, term="(212) 555-0147")
    with django_assert_num_queries(1):
        assert search.known_count() == 3
    with django_assert_num_queries(2):  # the leads with their case, agency and assignee; their identifiers
        page = search.known_page(0, 50, 3)
    with django_assert_num_queries(0):
        data = LeadOutputSerializer(page, many=True).data
    assert data == LeadOutputSerializer(_orm_search(user, "(212) 555-0147"), many=True).data


def test_a_search_for_handles_matches_both_handle_kinds_and_a_given_kind_only_its_own(world, leads):
    rich, _ = leads
    both = selectors.lead_search(user=world.lead, term="@NIGHT_OWL")
    assert [lead.pk for lead in _page(both, 0, 10)] == [rich.pk] and both.known_count() == 1
    email = selectors.lead_search(user=world.lead, term="@NIGHT_OWL", kind="email")
    assert list(email) == []  # not an email: no lead, and no query for one


def test_a_search_for_a_term_that_means_nothing_reads_nothing(world, leads, django_assert_num_queries):
    with django_assert_num_queries(0):
        found = selectors.lead_search(user=world.lead, term="!!!")
        assert not hasattr(found, "known_page") and found.count() == 0 and list(found) == []


def test_a_search_finds_no_lead_of_a_case_its_user_does_not_hold(world, shared_phone):
    assert selectors.lead_search(user=world.investigator, term="(212) 555-0147").count() == 0
    other = selectors.lead_search(user=world.outsider_supervisor, term="(212) 555-0147")
    assert [lead.case_id for lead in _page(other, 0, 50)] == [world.other_case.pk] and other.known_count() == 1


def test_a_search_reached_through_a_group_grant_only(world, shared_phone):
    """The supervisor holds no direct grant on a second case: the group branch admits its lead."""
    second = CaseFactory(actor=world.lead, title="Second case")
    lead = LeadFactory(case=second, actor=world.lead, identifiers=[{"kind": "phone", "value": "(212) 555-0147"}])
    search = selectors.lead_search(user=world.supervisor, term="(212) 555-0147")
    assert lead.pk in {found.pk for found in _page(search, 0, 50)} and search.known_count() == 4


@pytest.mark.parametrize(
    "bad",
    ["1' OR '1'='1", "%", "_", "'; DROP TABLE cases_lead; --", "\x00"],
    ids=["injection", "percent", "underscore", "statement", "nul"],
)
def test_a_search_term_is_a_parameter_never_sql(world, shared_phone, bad):
    found = selectors.lead_search(user=world.lead, term=bad)
    assert found.count() == 0 and list(found) == []
    if hasattr(found, "known_page"):  # the term means a handle
        assert found.known_count() == 0 and _page(found, 0, 50) == []


def test_the_search_endpoint_answers_as_the_orm_search_with_other_filters_too(world, shared_phone):
    """The search alone is read through known_page; with another filter, through the ORM."""
    from tests.conftest import client_for

    client = client_for(world.lead)
    body = client.get("/api/leads/", {"identifier": "212-555-0147", "page_size": 2}).json()
    orm = _orm_search(world.lead, "212-555-0147")
    assert body["count"] == 3 and [r["id"] for r in body["results"]] == [str(lead.pk) for lead in orm[:2]]
    second = client.get("/api/leads/", {"identifier": "212-555-0147", "page_size": 2, "page": 2}).json()
    assert [r["id"] for r in second["results"]] == [str(orm[2].pk)]
    assert client.get("/api/leads/", {"identifier": "212-555-0147", "page_size": 2, "page": 3}).status_code == 404
    narrowed = client.get("/api/leads/", {"identifier": "212-555-0147", "min_priority": 101}).status_code
    assert narrowed == 400
    named = client.get("/api/leads/", {"identifier": "212-555-0147", "assignee": world.teammate.pk}).json()
    assert [r["id"] for r in named["results"]] == [str(shared_phone[0].pk)]


# ---------------------------------------------------------------- the case list's pages


@pytest.fixture
def cases(world):
    """Beside the world's cases: an operation of the first agency, a case under it, and a
    case led by someone without a profile's agency elsewhere."""
    from cases.models import CaseKind

    operation = CaseFactory(actor=world.lead, title="Operation umbrella", kind=CaseKind.OPERATION)
    child = CaseFactory(actor=world.lead, title="Child case", parent=operation)
    return operation, child


def _assert_same_case(raw: Any, orm: Any) -> None:
    assert type(raw) is type(orm) and not raw._state.adding and raw._state.db == orm._state.db
    assert _values(raw) == _values(orm)
    assert _values(raw.agency) == _values(orm.agency)
    assert _values(raw.lead_investigator) == _values(orm.lead_investigator)
    assert _values(raw.lead_investigator.profile) == _values(orm.lead_investigator.profile)
    assert (raw.parent and _values(raw.parent)) == (orm.parent and _values(orm.parent))


@pytest.mark.parametrize("who", ["lead", "teammate", "viewer", "supervisor", "outsider", "outsider_supervisor"])
def test_a_case_list_page_gives_the_cases_the_orm_gives_in_its_order(world, cases, who):
    from caseapi.pagination import page_rows

    user = getattr(world, who)
    listed = selectors.case_list(user=user)
    orm = list(page_rows(listed, 0, 100))  # the ORM's keys-first page
    assert orm and [case.pk for case in orm] == [case.pk for case in listed]
    for size in (1, 2, 50):
        paged = [case for bottom in range(0, len(orm), size) for case in _page(listed, bottom, bottom + size)]
        assert [case.pk for case in paged] == [case.pk for case in orm]
        for raw, expected in zip(paged, orm, strict=True):
            _assert_same_case(raw, expected)
    assert _page(listed, len(orm), len(orm) + 5) == [] and _page(listed, 1, 1) == []


def test_a_case_list_page_keeps_each_user_to_their_grants(world, cases):
    operation, child = cases
    mine = {case.pk for case in _page(selectors.case_list(user=world.lead), 0, 50)}
    assert mine == {world.case.pk, operation.pk, child.pk}
    theirs = {case.pk for case in _page(selectors.case_list(user=world.outsider_supervisor), 0, 50)}
    assert theirs == {world.other_case.pk}
    assert _page(selectors.case_list(user=world.investigator), 0, 50) == []


def test_a_case_list_page_takes_one_query_and_the_serializer_none(world, cases, django_assert_num_queries):
    from cases.api.serializers import CaseOutputSerializer

    user = selectors.token_get(_digest_of(world.supervisor)).user
    listed = selectors.case_list(user=user)
    with django_assert_num_queries(1):
        page = listed.known_page(0, 50, 4)
    with django_assert_num_queries(0):
        data = CaseOutputSerializer(page, many=True).data
    assert data == CaseOutputSerializer(list(selectors.case_list(user=user)), many=True).data
    assert [row["parent"] for row in data if row["title"] == "Child case"] == [str(cases[0].pk)]


def test_a_case_list_clone_reads_through_the_orm(world, cases):
    """A filter makes a clone, which has neither the known count nor the known page."""
    listed = selectors.case_list(user=world.lead).filter(title__icontains="child")
    assert not hasattr(listed, "known_page") and [case.title for case in listed] == ["Child case"]


def test_the_case_list_of_someone_who_works_no_cases_has_no_known_page(world):
    from cases.models import Role
    from tests.factories import UserFactory

    auditor = UserFactory(username="audrey_auditor", role=Role.AUDITOR)
    assert not hasattr(selectors.case_list(user=auditor), "known_page")
