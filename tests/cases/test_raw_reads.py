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
