"""The case scope's grants, written once as SQL (selectors._grant_sql), hold exactly the rows
of the grant tables as the ORM reads them (selectors._grant_tables), for every user of the
world and every case permission: direct grants, group grants, both, and none."""

from __future__ import annotations

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
        probed = set(model.objects.filter(selectors._grant_probe(user, model, perm)).values_list("id", flat=True))
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
