"""OWASP API6:2023, unrestricted access to sensitive business flows: a handoff reaches a
prosecutor (who then reads its leads and evidence) only after a second person reviewed it.
One user alone never gets a handoff sent, in any order of calls, with any number of tokens,
through a change of role, by reassigning people, or by racing requests. tests/cases/
test_handoffs.py covers the single steps; this module drives whole sequences through the API."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from audit.models import AuditAction, AuditEvent
from cases import services
from cases.models import Handoff, HandoffStatus, HandoffUserObjectPermission, Role, TeamRole
from tests.conftest import World, client_for
from tests.factories import LeadFactory, UserFactory

STEPS = {
    "edit": ("PATCH", "", {"narrative": "Edited again."}),
    "submit": ("POST", "submit/", {}),
    "approve": ("POST", "review/", {"approve": True, "note": "Looks right."}),
    "reject": ("POST", "review/", {"approve": False, "note": "Fix the narrative."}),
}


def _url(handoff: Any, tail: str = "") -> str:
    return f"/api/handoffs/{handoff.pk}/{tail}"


def _step(client: Any, handoff: Any, step: str) -> int:
    method, tail, body = STEPS[step]
    return getattr(client, method.lower())(_url(handoff, tail), body, format="json").status_code


def _draft(client: Any, world: World, lead: Any) -> Handoff:
    body = {"case": str(world.case.pk), "prosecutor": world.prosecutor.pk, "leads": [str(lead.pk)]}
    response = client.post("/api/handoffs/", body, format="json")
    assert response.status_code == 201, response.content
    return Handoff.objects.get(pk=response.json()["id"])


def _never_sent(world: World, handoff: Handoff) -> list[str]:
    """What shows the handoff went out, if anything did."""
    handoff.refresh_from_db()
    shown = []
    if handoff.status not in (HandoffStatus.DRAFT, HandoffStatus.PENDING_REVIEW):
        shown.append(f"status {handoff.status}")
    if handoff.sent_at is not None:
        shown.append("sent_at set")
    if HandoffUserObjectPermission.objects.filter(content_object=handoff).exists():
        shown.append("the prosecutor was granted access")
    if AuditEvent.objects.filter(target_id=str(handoff.pk), action=AuditAction.HANDOFF_APPROVED).exists():
        shown.append("an approval was recorded")
    if client_for(world.prosecutor).get(_url(handoff)).status_code != 404:
        shown.append("the prosecutor can read it")
    return shown


def _state(handoff: Handoff) -> tuple[Any, ...]:
    """Everything about the handoff that a later step could depend on (times left out)."""
    row = Handoff.objects.filter(pk=handoff.pk).values().get()
    kept = {k: v for k, v in row.items() if not k.endswith("_at")}
    return tuple(sorted((k, str(v)) for k, v in kept.items()))


def _explore(
    world: World, client: Any, handoff: Handoff, trail: list[str], seen: set[Any], problems: list[str]
) -> None:
    """Depth-first over every state one user can bring the handoff to: from each state not seen
    before, each step is tried in a savepoint and rolled back. Every sequence of calls, of any
    length, passes only through these states."""
    state = _state(handoff)
    if state in seen:
        return
    seen.add(state)
    if shown := _never_sent(world, handoff):
        problems.append(f"{' -> '.join(trail) or 'drafted'}: {shown}")
    for step in STEPS:
        with transaction.atomic():
            answer = _step(client, handoff, step)
            _explore(world, client, handoff, [*trail, f"{step} ({answer})"], seen, problems)
            transaction.set_rollback(True)


def _one_user_alone(world: World, drafter: Any, actor: Any, lead_item: Any) -> tuple[list[str], int]:
    handoff = _draft(client_for(drafter), world, lead_item)
    seen: set[Any] = set()
    problems: list[str] = []
    _explore(world, client_for(actor), handoff, [], seen, problems)
    return problems, len(seen)


@pytest.fixture
def lead_item(world: World) -> Any:
    return LeadFactory(case=world.case, display_name="Buyer handed off")


def test_every_order_of_calls_by_one_supervisor_alone_leaves_the_handoff_unsent(world: World, lead_item: Any) -> None:
    """The agency's supervisor holds every permission the workflow asks for on the case
    (change, manage_team, supervisor role): they draft, then edit, submit, approve and reject
    in every order, any number of times."""
    problems, states = _one_user_alone(world, world.supervisor, world.supervisor, lead_item)
    assert not problems, "\n".join(problems)
    assert states >= 3  # drafted, edited, pending review: the walk went somewhere


def test_a_draft_by_someone_else_is_still_not_sent_by_one_supervisor_alone(world: World, lead_item: Any) -> None:
    """The lead drafts and stops there; from then on only the supervisor acts, in any order."""
    problems, states = _one_user_alone(world, world.lead, world.supervisor, lead_item)
    assert not problems, "\n".join(problems)
    assert states >= 3


def test_the_walk_would_see_a_handoff_sent_by_two_people(world: World, lead_item: Any) -> None:
    """The walk's own check: with the lead submitting, the supervisor's approval does send."""
    handoff = _draft(client_for(world.lead), world, lead_item)
    assert _step(client_for(world.lead), handoff, "submit") == 200
    assert _step(client_for(world.supervisor), handoff, "approve") == 200
    assert set(_never_sent(world, handoff)) == {
        "status sent",
        "sent_at set",
        "the prosecutor was granted access",
        "an approval was recorded",
        "the prosecutor can read it",
    }


def test_fresh_tokens_of_the_same_user_are_still_the_same_person(world: World, lead_item: Any) -> None:
    handoff = _draft(client_for(world.supervisor), world, lead_item)
    assert _step(client_for(world.supervisor), handoff, "submit") == 200
    for _ in range(3):
        assert _step(client_for(world.supervisor), handoff, "approve") == 403
    session = APIClient()
    session.force_login(world.supervisor)
    assert _step(session, handoff, "approve") == 403
    assert _never_sent(world, handoff) == []


def test_a_second_approval_is_a_conflict_and_is_not_recorded_twice(world: World, lead_item: Any) -> None:
    handoff = _draft(client_for(world.lead), world, lead_item)
    assert _step(client_for(world.lead), handoff, "submit") == 200
    reviewer = client_for(world.supervisor)
    assert _step(reviewer, handoff, "approve") == 200
    assert _step(reviewer, handoff, "approve") == 409
    assert _step(reviewer, handoff, "reject") == 409
    assert AuditEvent.objects.filter(target_id=str(handoff.pk), action=AuditAction.HANDOFF_APPROVED).count() == 1
    assert HandoffUserObjectPermission.objects.filter(content_object=handoff).count() == 1


def test_a_drafter_promoted_to_supervisor_still_cannot_approve_their_own_handoff(world: World, lead_item: Any) -> None:
    lead = client_for(world.lead)
    handoff = _draft(lead, world, lead_item)
    assert _step(lead, handoff, "submit") == 200
    services.user_ensure(username=world.lead.username, agency=world.agency_a, role=Role.SUPERVISOR, password=None)
    assert _step(lead, handoff, "approve") == 403
    assert _step(client_for(world.lead), handoff, "approve") == 403
    assert _never_sent(world, handoff) == []


def test_a_supervisor_demoted_and_promoted_again_is_still_the_drafter(world: World, lead_item: Any) -> None:
    supervisor = client_for(world.supervisor)
    handoff = _draft(supervisor, world, lead_item)
    assert _step(client_for(world.lead), handoff, "submit") == 200
    for role in (Role.INVESTIGATOR, Role.SUPERVISOR):
        services.user_ensure(username=world.supervisor.username, agency=world.agency_a, role=role, password=None)
    assert _step(supervisor, handoff, "approve") == 403
    assert _never_sent(world, handoff) == []


def test_the_drafter_cannot_rewrite_who_drafted_or_submitted(world: World, lead_item: Any) -> None:
    supervisor = client_for(world.supervisor)
    handoff = _draft(supervisor, world, lead_item)
    for field in ("created_by", "submitted_by", "reviewed_by"):
        response = supervisor.patch(_url(handoff), {field: world.lead.pk}, format="json")
        assert response.status_code == 400
    assert _step(client_for(world.lead), handoff, "submit") == 200
    handoff.refresh_from_db()
    assert (handoff.created_by_id, handoff.submitted_by_id) == (world.supervisor.pk, world.lead.pk)
    assert _step(supervisor, handoff, "approve") == 403


def test_reassigning_the_case_and_leaving_the_team_does_not_make_the_drafter_a_reviewer(
    world: World, lead_item: Any
) -> None:
    """The supervisor drafts, then hands the case's lead role around and steps off its team;
    the approval is still refused: who drafted is on the handoff, not read from the team."""
    services.team_member_set(actor=world.lead, case=world.case, user=world.supervisor, role=TeamRole.LEAD)
    supervisor = client_for(world.supervisor)
    handoff = _draft(supervisor, world, lead_item)
    assert _step(client_for(world.lead), handoff, "submit") == 200
    response = supervisor.patch(
        f"/api/cases/{world.case.pk}/", {"lead_investigator": world.supervisor.pk}, format="json"
    )
    assert response.status_code == 200
    response = supervisor.patch(f"/api/cases/{world.case.pk}/", {"lead_investigator": world.lead.pk}, format="json")
    assert response.status_code == 200
    assert supervisor.delete(f"/api/cases/{world.case.pk}/team/{world.supervisor.pk}/").status_code == 204
    assert _step(supervisor, handoff, "approve") == 403
    assert _never_sent(world, handoff) == []


def test_a_second_account_of_the_drafters_own_making_is_impossible_through_the_api(world: World) -> None:
    """Two-person review is only as strong as one person having one account: nobody creates
    users through the API (only agency admins, in the admin)."""
    for persona in ("supervisor", "admin", "lead"):
        client = client_for(getattr(world, persona))
        for path in ("/api/users/", "/api/me/"):
            assert client.post(path, {"username": "sam_again", "password": "x" * 16}, format="json").status_code == 405


def test_a_supervisor_who_edited_the_draft_cannot_approve_it(world: World, lead_item: Any) -> None:
    """A supervisor who rejects a handoff, rewrites the draft (prosecutor, items, narrative) and
    waits for the lead to resubmit may not approve their own content (cases.services.handoff_review
    bars every editor of the handoff, with its drafter and submitter)."""
    lead, supervisor = client_for(world.lead), client_for(world.supervisor)
    handoff = _draft(lead, world, lead_item)
    assert _step(lead, handoff, "submit") == 200
    assert _step(supervisor, handoff, "reject") == 200
    other_prosecutor = UserFactory(username="pete_other", agency=world.agency_p, role=Role.PROSECUTOR)
    response = supervisor.patch(
        _url(handoff), {"prosecutor": other_prosecutor.pk, "narrative": "The supervisor's own account."}, format="json"
    )
    assert response.status_code == 200
    assert _step(lead, handoff, "submit") == 200
    assert _step(supervisor, handoff, "approve") == 403


# ---------------------------------------------------------------- racing


def _race(handoff: Handoff, *calls: tuple[Any, str]) -> list[int]:
    """Send the (client, step) calls at the same moment, each in its own thread and database
    connection; their statuses, in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[int] = [0] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: tuple[Any, str]) -> None:
        try:
            barrier.wait(timeout=20)
            answers[index] = _step(call[0], handoff, call[1])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return answers


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_by_two_reviewers_send_once(world: World, lead_item: Any) -> None:
    second = UserFactory(username="sue_super2", agency=world.agency_a, role=Role.SUPERVISOR)
    for _ in range(3):
        handoff = _draft(client_for(world.lead), world, lead_item)
        assert _step(client_for(world.lead), handoff, "submit") == 200
        first_client, second_client = client_for(world.supervisor), client_for(second)
        answers = _race(handoff, (first_client, "approve"), (second_client, "approve"))
        assert sorted(answers) == [200, 409]
        assert AuditEvent.objects.filter(target_id=str(handoff.pk), action=AuditAction.HANDOFF_APPROVED).count() == 1
        assert HandoffUserObjectPermission.objects.filter(content_object=handoff).count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_racing_submit_and_approve_by_one_supervisor_never_sends(world: World, lead_item: Any) -> None:
    """The lead drafts; the supervisor fires submit and approve at once, from two tokens: the
    approval sees either a draft (409) or the supervisor as submitter (403)."""
    for _ in range(5):
        handoff = _draft(client_for(world.lead), world, lead_item)
        a, b = client_for(world.supervisor), client_for(world.supervisor)
        answers = _race(handoff, (a, "submit"), (b, "approve"))
        assert answers[0] == 200
        assert answers[1] in (403, 409)
        assert _never_sent(world, handoff) == []
