"""Cases and their teams: numbering (also under concurrency), no delete, the status workflow,
server-owned fields, team management rules, and list filters."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from cases import services
from cases.api.serializers import READ_ONLY_FIELD, UNKNOWN_FIELD
from cases.models import Case, CaseKind, CaseStatus, Role
from tests.factories import AgencyFactory, CaseFactory, UserFactory


def case_url(case: Any) -> str:
    return f"/api/cases/{case.pk}/"


def team_url(case: Any, user: Any = None) -> str:
    return f"/api/cases/{case.pk}/team/" + (f"{user.pk}/" if user is not None else "")


def case_row(case: Any) -> dict[str, Any]:
    return Case.objects.values().get(pk=case.pk)


def team_roles(client: Any, case: Any) -> dict[str, str]:
    r = client.get(team_url(case))
    assert r.status_code == 200, r.content
    return {m["user"]["username"]: m["role"] for m in r.json()["results"]}


# ---------------------------------------------------------------- numbers


def test_case_numbers_are_agency_year_and_a_per_agency_sequence(world, as_user):
    year = timezone.now().year
    assert world.case.number == f"MCSO-{year}-00001"
    assert world.other_case.number == f"RCPD-{year}-00001"
    r = as_user(world.lead).post("/api/cases/", {"title": "Second op", "kind": "operation"})
    assert r.status_code == 201, r.content
    assert re.fullmatch(r"MCSO-\d{4}-\d{5}", r.json()["number"])
    assert r.json()["number"] == f"MCSO-{year}-00002"
    assert CaseFactory(actor=world.outsider).number == f"RCPD-{year}-00002"


def test_client_cannot_choose_the_case_number(world, as_user):
    r = as_user(world.lead).post("/api/cases/", {"title": "Chosen", "number": "MCSO-1999-99999"})
    assert r.status_code == 400
    assert r.json() == {"number": [READ_ONLY_FIELD]}
    assert not Case.objects.filter(number="MCSO-1999-99999").exists()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_case_creation_gives_distinct_gapless_numbers():
    agency = AgencyFactory(code="RACE", name="Race County")
    users = [UserFactory(agency=agency, role=Role.INVESTIGATOR) for _ in range(8)]
    barrier = threading.Barrier(len(users))
    numbers: list[str] = []
    errors: list[BaseException] = []

    def open_case(user: Any) -> None:
        try:
            barrier.wait(timeout=20)
            numbers.append(services.case_create(actor=user, title=f"Race {user.pk}").number)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=open_case, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    year = timezone.now().year
    assert sorted(numbers) == [f"RACE-{year}-{n:05d}" for n in range(1, len(users) + 1)]
    assert Case.objects.filter(agency=agency).count() == len(users)


def test_cases_cannot_be_deleted(world, as_user):
    r = as_user(world.lead).delete(case_url(world.case))
    assert r.status_code == 405
    assert Case.objects.filter(pk=world.case.pk).exists()


# ---------------------------------------------------------------- status workflow


def test_valid_status_transitions_succeed(world, as_user):
    client = as_user(world.lead)
    for status in ("active", "pending_prosecution", "active", "closed"):
        r = client.patch(case_url(world.case), {"status": status})
        assert r.status_code == 200, (status, r.content)
        assert r.json()["status"] == status
    assert r.json()["closed_at"] is not None
    r = client.patch(case_url(world.case), {"status": "open"})
    assert r.status_code == 200
    assert r.json()["closed_at"] is None


INVALID_CASE_TRANSITIONS = [
    ((), "pending_prosecution"),
    (("active",), "open"),
    (("closed",), "active"),
    (("closed",), "pending_prosecution"),
]


def test_invalid_status_transition_is_409(world, as_user):
    client = as_user(world.lead)
    for path, target in INVALID_CASE_TRANSITIONS:
        case = CaseFactory(actor=world.lead)
        for status in path:
            assert client.patch(case_url(case), {"status": status}).status_code == 200
        old = Case.objects.get(pk=case.pk).status
        r = client.patch(case_url(case), {"status": target})
        assert r.status_code == 409, (path, target)
        assert r.json() == {"detail": services.CASE_STATUS_TRANSITION.format(old=old, new=target), "code": "conflict"}
        assert Case.objects.get(pk=case.pk).status == old


def test_unknown_status_is_400(world, as_user):
    r = as_user(world.lead).patch(case_url(world.case), {"status": "archived"})
    assert r.status_code == 400
    assert "status" in r.json()


def test_teammate_cannot_close_the_case(world, as_user):
    r = as_user(world.teammate).patch(case_url(world.case), {"status": "closed"})
    assert r.status_code == 403
    assert Case.objects.get(pk=world.case.pk).status == CaseStatus.OPEN


def test_teammate_can_edit_fields_but_viewer_cannot(world, as_user):
    assert as_user(world.teammate).patch(case_url(world.case), {"summary": "Decoy ads live"}).status_code == 200
    assert as_user(world.viewer).patch(case_url(world.case), {"summary": "Hijacked"}).status_code == 403
    assert as_user(world.outsider).patch(case_url(world.case), {"summary": "Hijacked"}).status_code == 404
    assert Case.objects.get(pk=world.case.pk).summary == "Decoy ads live"


def test_supervisor_of_the_agency_can_close_the_case(world, as_user):
    assert as_user(world.supervisor).patch(case_url(world.case), {"status": "closed"}).status_code == 200


def test_closed_case_refuses_changes_until_reopened(world, as_user):
    lead = as_user(world.lead)
    assert lead.patch(case_url(world.case), {"status": "closed"}).status_code == 200
    r = lead.patch(case_url(world.case), {"title": "Renamed"})
    assert r.status_code == 409
    assert r.json()["detail"] == services.CASE_CLOSED
    r = lead.post(team_url(world.case), {"user": world.investigator.pk, "role": "viewer"})
    assert r.status_code == 409
    r = lead.post("/api/leads/", {"case": str(world.case.pk), "display_name": "Late buyer"})
    assert r.status_code == 409
    r = lead.post(
        "/api/evidence/",
        {
            "case": str(world.case.pk),
            "kind": "document",
            "external_uri": "vault://1",
            "sha256": "a" * 64,
            "size_bytes": 1,
        },
    )
    assert r.status_code == 409
    assert Case.objects.get(pk=world.case.pk).title == "Operation Nightfall"
    assert lead.patch(case_url(world.case), {"status": "open"}).status_code == 200
    r = lead.patch(case_url(world.case), {"title": "Renamed"})
    assert r.status_code == 200
    assert r.json()["title"] == "Renamed"


# ---------------------------------------------------------------- server-owned fields


SERVER_OWNED_CASE_FIELDS = {
    "number": "MCSO-2000-00042",
    "created_at": "2001-01-01T00:00:00Z",
    "updated_at": "2001-01-01T00:00:00Z",
    "closed_at": "2001-01-01T00:00:00Z",
    "agency": 2,
    "id": "00000000-0000-0000-0000-000000000001",
    "kind": "operation",
    "created_by": 1,
}


def test_patching_a_server_owned_field_is_400_and_changes_nothing(world, as_user):
    client = as_user(world.lead)
    before = case_row(world.case)
    for field, value in SERVER_OWNED_CASE_FIELDS.items():
        r = client.patch(case_url(world.case), {field: value, "title": "Sneaky rename"})
        assert r.status_code == 400, field
        assert r.json() == {field: [READ_ONLY_FIELD]}
        assert case_row(world.case) == before


def test_patching_an_unknown_field_is_400(world, as_user):
    r = as_user(world.lead).patch(case_url(world.case), {"owner": "me"})
    assert r.status_code == 400
    assert r.json() == {"owner": [UNKNOWN_FIELD]}


MALFORMED_CASE_PATCHES = [
    {"title": ""},
    {"title": "x" * 201},
    {"priority": "asap"},
    {"lead_investigator": 999999},
    {"lead_investigator": "lena_lead"},
    {"summary": None},
]
MALFORMED_CASE_CREATES = [
    {},
    {"title": "Op", "kind": "sting"},
    {"title": "Op", "parent": "not-a-uuid"},
    {"title": "Op", "parent": "00000000-0000-0000-0000-000000000001"},
    {"title": ["Op"]},
]


def test_malformed_case_patch_is_400(world, as_user):
    client = as_user(world.lead)
    before = case_row(world.case)
    for body in MALFORMED_CASE_PATCHES:
        r = client.patch(case_url(world.case), body)
        assert r.status_code == 400, body
        assert set(r.json()) == set(body)
        assert case_row(world.case) == before


def test_malformed_case_create_is_400(world, as_user):
    client = as_user(world.lead)
    count = Case.objects.count()
    for body in MALFORMED_CASE_CREATES:
        assert client.post("/api/cases/", body).status_code == 400, body
    assert Case.objects.count() == count


def test_parent_must_be_an_operation_of_the_callers_scope(world, as_user):
    client = as_user(world.lead)
    r = client.post("/api/cases/", {"title": "Child", "parent": str(world.case.pk)})
    assert r.status_code == 400
    assert r.json() == {"parent": [services.CASE_PARENT_NOT_OPERATION]}
    assert client.post("/api/cases/", {"title": "Child", "parent": str(world.other_case.pk)}).status_code == 400
    operation = client.post("/api/cases/", {"title": "Umbrella", "kind": "operation"}).json()
    r = client.post("/api/cases/", {"title": "Child", "parent": operation["id"]})
    assert r.status_code == 201
    assert r.json()["parent"] == operation["id"]


def test_only_investigators_and_supervisors_open_cases(world, as_user):
    for user in (world.auditor, world.prosecutor, world.admin):
        r = as_user(user).post("/api/cases/", {"title": "Not mine to open"})
        assert r.status_code == 403
        assert r.json()["detail"] == services.CASE_CREATE_ROLE


def test_lead_investigator_must_hold_the_lead_role(world, as_user):
    client = as_user(world.lead)
    r = client.patch(case_url(world.case), {"lead_investigator": world.teammate.pk})
    assert r.status_code == 400
    assert r.json() == {"lead_investigator": [services.CASE_LEAD_INVESTIGATOR_NOT_LEAD]}
    assert client.post(team_url(world.case), {"user": world.teammate.pk, "role": "lead"}).status_code == 200
    r = client.patch(case_url(world.case), {"lead_investigator": world.teammate.pk})
    assert r.status_code == 200
    assert r.json()["lead_investigator"]["username"] == "tom_team"


# ---------------------------------------------------------------- team


def test_team_add_change_list_and_remove(world, as_user):
    client = as_user(world.lead)
    r = client.post(team_url(world.case), {"user": world.investigator.pk, "role": "viewer"})
    assert r.status_code == 201, r.content
    assert r.json()["role"] == "viewer"
    assert r.json()["user"]["username"] == "ivy_noteam"
    assert as_user(world.investigator).get(case_url(world.case)).status_code == 200
    r = client.post(team_url(world.case), {"user": world.investigator.pk, "role": "investigator"})
    assert r.status_code == 200
    assert team_roles(client, world.case) == {
        "lena_lead": "lead",
        "tom_team": "investigator",
        "vic_viewer": "viewer",
        "ivy_noteam": "investigator",
    }
    assert client.delete(team_url(world.case, world.investigator)).status_code == 204
    assert "ivy_noteam" not in team_roles(client, world.case)
    assert as_user(world.investigator).get(case_url(world.case)).status_code == 404


def test_setting_the_same_role_again_is_200_and_changes_nothing(world, as_user):
    client = as_user(world.lead)
    r = client.post(team_url(world.case), {"user": world.teammate.pk, "role": "investigator"})
    assert r.status_code == 200
    assert team_roles(client, world.case)["tom_team"] == "investigator"


def test_only_lead_or_supervisor_manages_the_team(world, as_user):
    body = {"user": world.investigator.pk, "role": "viewer"}
    assert as_user(world.teammate).post(team_url(world.case), body).status_code == 403
    assert as_user(world.viewer).post(team_url(world.case), body).status_code == 403
    assert as_user(world.outsider).post(team_url(world.case), body).status_code == 404
    assert as_user(world.teammate).delete(team_url(world.case, world.viewer)).status_code == 403
    assert as_user(world.supervisor).post(team_url(world.case), body).status_code == 201


def test_the_only_lead_cannot_be_removed_or_demoted(world, as_user):
    client = as_user(world.supervisor)
    r = client.delete(team_url(world.case, world.lead))
    assert r.status_code == 409
    assert r.json()["detail"] in (services.TEAM_LEAD_INVESTIGATOR, services.TEAM_LAST_LEAD)
    r = client.post(team_url(world.case), {"user": world.lead.pk, "role": "viewer"})
    assert r.status_code == 409
    assert team_roles(client, world.case)["lena_lead"] == "lead"


def test_the_lead_investigator_cannot_be_removed_even_with_another_lead(world, as_user):
    client = as_user(world.lead)
    assert client.post(team_url(world.case), {"user": world.teammate.pk, "role": "lead"}).status_code == 200
    r = client.delete(team_url(world.case, world.lead))
    assert r.status_code == 409
    assert r.json()["detail"] == services.TEAM_LEAD_INVESTIGATOR
    r = client.post(team_url(world.case), {"user": world.lead.pk, "role": "investigator"})
    assert r.status_code == 409
    assert client.post(team_url(world.case), {"user": world.teammate.pk, "role": "investigator"}).status_code == 200
    assert client.post(team_url(world.case), {"user": world.teammate.pk, "role": "lead"}).status_code == 200
    assert client.delete(team_url(world.case, world.teammate)).status_code == 204


def test_after_handing_over_the_old_lead_can_step_down(world, as_user):
    client = as_user(world.lead)
    assert client.post(team_url(world.case), {"user": world.teammate.pk, "role": "lead"}).status_code == 200
    assert client.patch(case_url(world.case), {"lead_investigator": world.teammate.pk}).status_code == 200
    assert client.post(team_url(world.case), {"user": world.lead.pk, "role": "investigator"}).status_code == 200
    new_lead = as_user(world.teammate)
    r = new_lead.delete(team_url(world.case, world.teammate))
    assert r.status_code == 409


def test_removing_a_non_member_is_404(world, as_user):
    client = as_user(world.lead)
    r = client.delete(team_url(world.case, world.investigator))
    assert r.status_code == 404
    assert r.json()["detail"] == services.TEAM_NOT_MEMBER
    assert client.delete(f"/api/cases/{world.case.pk}/team/99999999999999999999/").status_code == 404


def test_non_manager_cannot_probe_team_membership(world, as_user):
    client = as_user(world.teammate)
    assert client.delete(team_url(world.case, world.investigator)).status_code == 403
    assert client.delete(team_url(world.case, world.viewer)).status_code == 403


def test_malformed_team_input_is_400(world, as_user):
    client = as_user(world.lead)
    bodies = [
        {"user": 999999, "role": "viewer"},
        {"user": "abc", "role": "viewer"},
        {"role": "viewer"},
        {"user": world.investigator.pk, "role": "owner"},
        {"user": world.investigator.pk},
        {"user": world.investigator.pk, "role": "viewer", "permissions": ["manage_team"]},
    ]
    for body in bodies:
        assert client.post(team_url(world.case), body).status_code == 400, body
    assert "ivy_noteam" not in team_roles(client, world.case)


def test_inactive_user_cannot_join_a_team(world, as_user):
    services.user_set_active(actor=world.admin, user=world.investigator, active=False)
    r = as_user(world.lead).post(team_url(world.case), {"user": world.investigator.pk, "role": "viewer"})
    assert r.status_code == 400
    assert r.json() == {"user": [services.TEAM_USER_INACTIVE]}


def test_member_of_another_agency_can_be_invited_and_then_sees_the_case(world, as_user):
    outsider = as_user(world.outsider)
    assert outsider.get(case_url(world.case)).status_code == 404
    r = as_user(world.lead).post(team_url(world.case), {"user": world.outsider.pk, "role": "viewer"})
    assert r.status_code == 201
    assert r.json()["agency"] == "RCPD"
    assert outsider.get(case_url(world.case)).status_code == 200
    assert str(world.case.pk) in {c["id"] for c in outsider.get("/api/cases/").json()["results"]}
    assert outsider.patch(case_url(world.case), {"title": "x"}).status_code == 403
    assert as_user(world.outsider_supervisor).get(case_url(world.case)).status_code == 404


# ---------------------------------------------------------------- filters


def test_case_list_filters(world, as_user):
    client = as_user(world.lead)
    operation = CaseFactory(actor=world.lead, title="Harbor sweep", kind=CaseKind.OPERATION, priority="high")
    closed = CaseFactory(actor=world.lead, title="Old tip")
    services.case_update(actor=world.lead, case=closed, data={"status": CaseStatus.CLOSED})

    def ids(query: str) -> set[str]:
        r = client.get(f"/api/cases/?{query}")
        assert r.status_code == 200, r.content
        return {c["id"] for c in r.json()["results"]}

    all_mine = {str(world.case.pk), str(operation.pk), str(closed.pk)}
    assert ids("") == all_mine
    assert ids("status=closed") == {str(closed.pk)}
    assert ids("status=open") == {str(world.case.pk), str(operation.pk)}
    assert ids("kind=operation") == {str(operation.pk)}
    assert ids("priority=high") == {str(operation.pk)}
    assert ids("q=nightfall") == {str(world.case.pk)}
    assert ids(f"q={operation.number}") == {str(operation.pk)}
    assert ids(f"q={world.other_case.number}") == set()
    assert ids("q=River") == set()


def test_bad_case_filter_value_is_400(world, as_user):
    client = as_user(world.lead)
    for query in ("status=archived", "kind=sting", "priority=asap", "q=" + "x" * 201):
        assert client.get(f"/api/cases/?{query}").status_code == 400, query
