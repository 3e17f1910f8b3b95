"""The Django admin: scoped through the selectors, view-only, audited actions, system-use notice."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.exceptions import PermissionDenied as APIPermissionDenied

from audit.models import AuditAction, AuditEvent
from cases import services
from cases.models import (
    AuthToken,
    Case,
    CustodyAction,
    CustodyEvent,
    DeconflictionHit,
    EvidenceItem,
    Lead,
    Profile,
    Role,
    TeamRole,
)
from intercept.models import IngestSource
from tests.factories import TEST_PASSWORD, CaseFactory, EvidenceFactory, LeadFactory, UserFactory

User = get_user_model()

STRONG_PASSWORD = "plum-orchard-47-quartz"
PHONE = "(202) 555-0143"


@pytest.fixture
def root(db: Any) -> Any:
    """A superuser made the usual way (`createsuperuser`): no profile, no role."""
    return User.objects.create_superuser("root", "root@example.org", TEST_PASSWORD)


@pytest.fixture
def rich(world: Any) -> Any:
    """`world` plus a lead with an identifier, evidence with custody, a deconfliction hit
    (the outsider records the same phone on their case) and a token for the lead."""
    world.lead_obj = LeadFactory(
        case=world.case, display_name="Buyer Alpha", identifiers=[{"kind": "phone", "value": PHONE}]
    )
    world.evidence = EvidenceFactory(case=world.case, lead=world.lead_obj, description="Chat log with buyer alpha")
    world.custody = services.custody_record(
        actor=world.lead, item=world.evidence, action=CustodyAction.TRANSFERRED, to_party="Property room"
    )
    world.other_lead = LeadFactory(
        case=world.other_case, display_name="Buyer River", identifiers=[{"kind": "phone", "value": PHONE}]
    )
    world.token = services.auth_login(username=world.lead.username, password=TEST_PASSWORD).token
    return world


def url(model: Any, view: str, *args: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def logged_in(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


def lock(user: Any) -> Profile:
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        with pytest.raises(AuthenticationFailed):
            services.auth_login(username=user.username, password="wrong password")
    profile = Profile.objects.get(user=user)
    assert profile.locked_until is not None
    return profile


def run_action(client: Any, model: Any, action: str, pks: list[Any]) -> tuple[Any, list[str]]:
    response = client.post(
        url(model, "changelist"), {"action": action, "index": "0", "_selected_action": [str(pk) for pk in pks]}
    )
    return response, [str(m) for m in get_messages(response.wsgi_request)]


# ---------------------------------------------------------------- login


def test_login_page_shows_the_system_use_notice_above_the_form(client, db):
    response = client.get(reverse("admin:login"))
    body = response.content.decode()
    assert response.status_code == 200
    assert settings.SYSTEM_USE_NOTICE in body
    assert body.index(settings.SYSTEM_USE_NOTICE) < body.index('id="login-form"')


def test_admin_login_refuses_a_locked_account_BUG(client, world):
    """Known bug (settings.AUTHENTICATION_BACKENDS): the admin's session login goes through
    ModelBackend, which knows nothing of the lockout, so a locked account logs in here."""
    lock(world.investigator)
    client.post(
        reverse("admin:login"), {"username": world.investigator.username, "password": TEST_PASSWORD, "next": "/admin/"}
    )
    assert "_auth_user_id" not in client.session


# ---------------------------------------------------------------- scope


@pytest.mark.parametrize(
    ("persona", "sees_case", "sees_other"),
    [("lead", True, False), ("outsider", False, True), ("root", True, True)],
)
def test_case_changelist_shows_only_cases_in_scope(client, world, root, persona, sees_case, sees_other):
    user = root if persona == "root" else getattr(world, persona)
    response = logged_in(client, user).get(url(world.case, "changelist"))
    body = response.content.decode()
    assert response.status_code == 200
    assert (world.case.title in body) is sees_case
    assert (world.other_case.title in body) is sees_other


def test_case_outside_scope_has_no_change_page(client, world):
    response = logged_in(client, world.lead).get(url(world.case, "change", world.other_case.pk))
    assert response.status_code in (302, 404)
    assert world.other_case.title not in response.content.decode()
    followed = client.get(url(world.case, "change", world.other_case.pk), follow=True)
    assert world.other_case.title not in followed.content.decode()


def test_global_view_permission_does_not_widen_case_scope(client, world):
    for codename in ("view_case", "view_lead", "view_evidenceitem", "view_auditevent"):
        world.lead.user_permissions.add(Permission.objects.get(codename=codename))
    lead = User.objects.get(pk=world.lead.pk)
    other = LeadFactory(case=world.other_case, display_name="Buyer Hidden")
    logged_in(client, lead)
    assert world.other_case.title not in client.get(url(world.case, "changelist")).content.decode()
    assert "Buyer Hidden" not in client.get(url(other, "changelist")).content.decode()
    assert client.get(url(other, "change", other.pk)).status_code == 302


def test_global_permission_does_not_open_a_screen_for_a_role_without_case_access(client, world):
    world.auditor.user_permissions.add(Permission.objects.get(codename="view_case"))
    logged_in(client, User.objects.get(pk=world.auditor.pk))
    assert client.get(url(world.case, "changelist")).status_code == 403
    assert client.get(url(world.case, "change", world.case.pk)).status_code == 403


def test_auditor_and_agency_admin_see_no_case_content_screens(client, world):
    for user in (world.auditor, world.admin):
        logged_in(client, user)
        index = client.get(reverse("admin:index")).content.decode()
        assert url(world.case, "changelist") not in index
        assert url(EvidenceItem, "changelist") not in index
        assert client.get(url(EvidenceItem, "changelist")).status_code == 403


def test_team_member_sees_leads_evidence_and_custody_of_their_case_only(client, rich):
    logged_in(client, rich.teammate)
    assert "Buyer Alpha" in client.get(url(rich.lead_obj, "changelist")).content.decode()
    assert "Buyer River" not in client.get(url(rich.lead_obj, "changelist")).content.decode()
    assert client.get(url(rich.other_lead, "change", rich.other_lead.pk)).status_code == 302
    custody = client.get(url(CustodyEvent, "changelist")).content.decode()
    assert "Property room" in custody
    evidence = client.get(url(EvidenceItem, "changelist")).content.decode()
    assert rich.evidence.sha256[:16] in evidence
    logged_in(client, rich.outsider)
    assert "Property room" not in client.get(url(CustodyEvent, "changelist")).content.decode()
    assert rich.evidence.sha256[:16] not in client.get(url(EvidenceItem, "changelist")).content.decode()


def test_identifier_page_lists_only_leads_in_scope(client, rich):
    identifier = rich.lead_obj.identifiers.get()
    body = logged_in(client, rich.outsider).get(url(identifier, "change", identifier.pk)).content.decode()
    assert "Buyer River" in body
    assert "Buyer Alpha" not in body
    assert rich.case.number not in body


def test_deconfliction_hit_never_shows_the_other_sides_case(client, rich):
    hit = DeconflictionHit.objects.get(requested_by=rich.outsider)
    assert hit.matched_case_id == rich.case.pk
    requesting = logged_in(client, rich.outsider_supervisor).get(url(hit, "change", hit.pk)).content.decode()
    assert "MCSO" in requesting
    assert rich.case.title not in requesting
    assert rich.case.number not in requesting
    matched = logged_in(client, rich.supervisor).get(url(hit, "change", hit.pk)).content.decode()
    assert rich.case.number in matched
    assert rich.other_case.number not in matched
    assert logged_in(client, rich.investigator).get(url(hit, "change", hit.pk)).status_code == 302


def test_audit_changelist_is_scoped_by_the_audit_selector(client, world):
    body = logged_in(client, world.auditor).get(url(AuditEvent, "changelist")).content.decode()
    assert str(world.case.pk) in body
    assert str(world.other_case.pk) not in body


def test_agency_admin_sees_only_people_of_their_agency(client, world):
    users = logged_in(client, world.admin).get(url(User, "changelist")).content.decode()
    assert world.investigator.username in users
    assert world.outsider.username not in users
    profiles = client.get(url(Profile, "changelist")).content.decode()
    assert world.investigator.username in profiles
    assert world.outsider.username not in profiles
    assert client.get(url(User, "change", world.outsider.pk)).status_code == 302


def test_investigator_sees_only_themselves_among_people(client, world):
    body = logged_in(client, world.investigator).get(url(User, "changelist")).content.decode()
    assert world.investigator.username in body
    assert world.teammate.username not in body
    assert client.get(url(User, "change", world.teammate.pk)).status_code == 302


def test_user_page_shows_the_profile_with_lock_state(client, world):
    lock(world.investigator)
    body = logged_in(client, world.admin).get(url(User, "change", world.investigator.pk)).content.decode()
    assert "MCSO — Metro County Sheriff" in body
    assert "Detective" in body
    assert "+15555550100" in body
    assert "locked until" in body


# ---------------------------------------------------------------- case page


def test_case_page_shows_team_leads_and_evidence(client, rich):
    body = logged_in(client, rich.lead).get(url(rich.case, "change", rich.case.pk)).content.decode()
    for member in (rich.lead, rich.teammate, rich.viewer):
        assert member.username in body
    assert TeamRole.VIEWER in body
    assert "Buyer Alpha" in body
    assert "Chat log with buyer alpha" in body
    assert rich.evidence.sha256[:16] in body


def test_case_page_is_view_only_and_records_a_case_viewed_event(client, world):
    logged_in(client, world.lead)
    response = client.post(url(world.case, "change", world.case.pk), {"title": "Renamed"})
    assert response.status_code == 403
    world.case.refresh_from_db()
    assert world.case.title == "Operation Nightfall"
    client.get(url(world.case, "change", world.case.pk))
    event = AuditEvent.objects.filter(action=AuditAction.CASE_VIEWED).get()
    assert (event.actor_id, event.case_id, event.changes) == (world.lead.pk, world.case.pk, {"via": "admin"})


def add_case_rows(world: Any) -> None:
    lead = LeadFactory(case=world.case, assignee=world.teammate)
    EvidenceFactory(case=world.case, lead=lead)


def test_case_page_queries_do_not_grow_with_team_leads_and_evidence(client, world):
    logged_in(client, world.lead)
    add_case_rows(world)
    page = url(world.case, "change", world.case.pk)
    client.get(page)
    with CaptureQueriesContext(connection) as few:
        assert client.get(page).status_code == 200
    for _ in range(4):
        add_case_rows(world)
    services.team_member_set(actor=world.lead, case=world.case, user=world.investigator, role=TeamRole.VIEWER)
    with CaptureQueriesContext(connection) as many:
        assert client.get(page).status_code == 200
    # session, user, roles, the case (scoped, parent visibility inside), profile (agency of
    # the audit event), the case.viewed insert, team (permission rows, users), leads,
    # evidence, created_by: the same set whatever the row counts.
    assert len(few) <= 12, [q["sql"] for q in few.captured_queries]
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


@pytest.mark.parametrize("model", [Case, Lead, EvidenceItem, CustodyEvent, AuditEvent])
def test_changelist_queries_do_not_grow_with_rows(client, world, model):
    logged_in(client, world.lead)
    add_case_rows(world)
    client.get(url(model, "changelist"))
    with CaptureQueriesContext(connection) as few:
        assert client.get(url(model, "changelist")).status_code == 200
    for _ in range(4):
        add_case_rows(world)
        CaseFactory(actor=world.lead)
    with CaptureQueriesContext(connection) as many:
        assert client.get(url(model, "changelist")).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_superuser_reads_case_object_permissions_but_cannot_change_them(client, world, root):
    permissions = url(world.case, "permissions", world.case.pk)
    body = logged_in(client, root).get(permissions).content.decode()
    assert world.lead.username in body
    assert "MCSO supervisors" in body
    assert client.post(permissions, {"user": world.outsider.username, "submit_manage_user": "1"}).status_code == 403
    manage = reverse("admin:cases_case_permissions_manage_user", args=[world.case.pk, world.outsider.pk])
    assert client.post(manage, {"permissions": ["view_case"]}).status_code == 403
    assert not world.case.user_permissions.filter(user=world.outsider).exists()
    assert permissions in client.get(url(world.case, "change", world.case.pk)).content.decode()
    assert logged_in(client, world.lead).get(permissions).status_code == 403
    assert permissions not in client.get(url(world.case, "change", world.case.pk)).content.decode()


# ---------------------------------------------------------------- read-only and no deletion


@pytest.mark.parametrize("which", ["custody", "audit"])
def test_custody_and_audit_events_refuse_add_change_and_delete_even_for_a_superuser(client, rich, root, which):
    obj = rich.custody if which == "custody" else AuditEvent.objects.order_by("id").first()
    field, before = ("note", obj.note) if which == "custody" else ("action", obj.action)
    logged_in(client, root)
    assert client.get(url(obj, "change", obj.pk)).status_code == 200
    assert client.get(url(obj, "add")).status_code == 403
    assert client.post(url(obj, "add"), {field: "forged"}).status_code == 403
    assert client.post(url(obj, "change", obj.pk), {field: "forged"}).status_code == 403
    assert client.get(url(obj, "delete", obj.pk)).status_code == 403
    assert client.post(url(obj, "delete", obj.pk), {"post": "yes"}).status_code == 403
    obj.refresh_from_db()
    assert getattr(obj, field) == before


def test_no_admin_offers_delete_or_add_except_the_user_add_form(rich, root):
    request = RequestFactory().get("/admin/")
    request.user = root
    for model, model_admin in admin.site._registry.items():
        assert "delete_selected" not in model_admin.get_actions(request), model
        assert not model_admin.has_delete_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert model_admin.has_add_permission(request) is (model in (User, IngestSource)), model


DOMAIN_MODELS = {
    "cases.agency",
    "cases.profile",
    "cases.authtoken",
    "cases.case",
    "cases.casenumbercounter",
    "cases.caseuserobjectpermission",
    "cases.casegroupobjectpermission",
    "cases.lead",
    "cases.identifier",
    "cases.leadidentifier",
    "cases.deconflictionhit",
    "cases.evidenceitem",
    "cases.custodyevent",
    "audit.auditevent",
}


def test_delete_page_is_forbidden_for_every_model_even_for_a_superuser(client, rich, root):
    logged_in(client, root)
    checked = set()
    for model in admin.site._registry:
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            continue
        assert client.get(url(model, "delete", obj.pk)).status_code == 403, model
        assert client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403, model
        assert model._default_manager.filter(pk=obj.pk).exists(), model
        checked.add(model._meta.label_lower)
    assert DOMAIN_MODELS - checked == set()


def test_every_model_of_cases_and_audit_is_registered():
    for label in ("cases", "audit"):
        for model in apps.get_app_config(label).get_models():
            assert admin.site.is_registered(model), model


def test_every_changelist_and_change_page_answers_200_for_a_superuser(client, rich, root):
    logged_in(client, root)
    for model in admin.site._registry:
        assert client.get(url(model, "changelist")).status_code == 200, model
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            assert client.get(url(model, "change", obj.pk)).status_code == 200, model


@pytest.mark.parametrize("persona", ["lead", "admin", "auditor", "prosecutor", "outsider_supervisor"])
def test_every_changelist_answers_200_or_403_for_each_role(client, rich, persona):
    logged_in(client, getattr(rich, persona))
    for model, model_admin in admin.site._registry.items():
        status = client.get(url(model, "changelist")).status_code
        assert status in (200, 403), model
        request = RequestFactory().get("/admin/")
        request.user = getattr(rich, persona)
        assert (status == 200) is model_admin.has_module_permission(request), model


# ---------------------------------------------------------------- account actions


def test_unlock_action_clears_the_lock_and_is_audited(client, world):
    profile = lock(world.investigator)
    locked_until = profile.locked_until
    response, notes = run_action(logged_in(client, world.admin), User, "unlock_accounts", [world.investigator.pk])
    assert response.status_code == 302
    assert notes == [f"Unlocked: {world.investigator.username}."]
    profile.refresh_from_db()
    assert (profile.failed_logins, profile.locked_until) == (0, None)
    event = AuditEvent.objects.get(action=AuditAction.ACCOUNT_UNLOCKED)
    assert (event.actor_id, event.target_id, event.agency_id) == (
        world.admin.pk,
        str(world.investigator.pk),
        world.agency_a.pk,
    )
    assert event.changes == {
        "failed_logins": [settings.LOGIN_FAILURE_LIMIT, 0],
        "locked_until": [locked_until.isoformat(), None],
    }


def test_unlock_action_works_from_the_profile_screen_too(client, world):
    profile = lock(world.investigator)
    run_action(logged_in(client, world.admin), Profile, "unlock_accounts", [profile.pk])
    profile.refresh_from_db()
    assert profile.locked_until is None
    assert AuditEvent.objects.filter(action=AuditAction.ACCOUNT_UNLOCKED).count() == 1


def test_agency_admin_of_another_agency_cannot_unlock(client, world):
    other_admin = UserFactory(username="bea_badmin", agency=world.agency_b, role=Role.AGENCY_ADMIN)
    profile = lock(world.investigator)
    response, notes = run_action(logged_in(client, other_admin), User, "unlock_accounts", [world.investigator.pk])
    assert response.status_code == 302
    assert notes == ["1 selected account(s) outside your scope: nothing was done to them."]
    profile.refresh_from_db()
    assert profile.locked_until is not None
    assert not AuditEvent.objects.filter(action=AuditAction.ACCOUNT_UNLOCKED).exists()


def test_investigator_is_not_offered_account_actions(client, world):
    profile = lock(world.teammate)
    logged_in(client, world.investigator)
    assert "unlock_accounts" not in client.get(url(User, "changelist")).content.decode()
    response, notes = run_action(client, User, "unlock_accounts", [world.investigator.pk, world.teammate.pk])
    assert response.status_code in (200, 302)
    profile.refresh_from_db()
    assert profile.locked_until is not None


def test_refused_rows_become_messages_and_the_others_go_through(client, world, root):
    profile = lock(world.investigator)
    nobody = User.objects.create_user("no_profile", password=TEST_PASSWORD, is_staff=True)
    response, notes = run_action(logged_in(client, root), User, "unlock_accounts", [nobody.pk, world.investigator.pk])
    assert response.status_code == 302
    assert "no_profile was not unlocked: has no agency profile" in notes
    assert f"Unlocked: {world.investigator.username}." in notes
    profile.refresh_from_db()
    assert profile.locked_until is None


def test_deactivate_and_reactivate_are_audited(client, world):
    logged_in(client, world.admin)
    run_action(client, User, "deactivate_accounts", [world.teammate.pk])
    world.teammate.refresh_from_db()
    assert world.teammate.is_active is False
    run_action(client, User, "reactivate_accounts", [world.teammate.pk])
    world.teammate.refresh_from_db()
    assert world.teammate.is_active is True
    events = AuditEvent.objects.filter(action=AuditAction.USER_UPDATED, target_id=str(world.teammate.pk))
    assert [e.changes for e in events.order_by("id")] == [{"is_active": [True, False]}, {"is_active": [False, True]}]
    assert {e.actor_id for e in events} == {world.admin.pk}


def test_agency_admin_cannot_deactivate_themselves(client, world):
    _, notes = run_action(logged_in(client, world.admin), User, "deactivate_accounts", [world.admin.pk])
    assert notes == [f"{world.admin.username} was not deactivated: you cannot deactivate your own account"]
    world.admin.refresh_from_db()
    assert world.admin.is_active is True


def test_revoke_token_action_is_audited(client, world):
    token = services.auth_login(username=world.investigator.username, password=TEST_PASSWORD).token
    foreign = services.auth_login(username=world.outsider.username, password=TEST_PASSWORD).token
    logged_in(client, world.admin)
    assert token.prefix in client.get(url(AuthToken, "changelist")).content.decode()
    run_action(client, AuthToken, "revoke_tokens", [token.pk, foreign.pk])
    token.refresh_from_db()
    foreign.refresh_from_db()
    assert token.revoked_at is not None
    assert foreign.revoked_at is None
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_REVOKED)
    assert (event.actor_id, event.target_id) == (world.admin.pk, str(token.pk))
    assert event.changes == {"revoked_at": [None, token.revoked_at.isoformat()], "owner": token.user.username}


def test_token_revocation_is_recorded_under_the_token_owners_agency_BUG(client, world, root):
    """Known bug (cases/services.py, token_revoke): the event's agency defaults to the actor's,
    so a revocation by a superuser (no profile) is invisible to the owner's agency auditor."""
    token = services.auth_login(username=world.investigator.username, password=TEST_PASSWORD).token
    run_action(logged_in(client, root), AuthToken, "revoke_tokens", [token.pk])
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_REVOKED)
    assert event.agency_id == world.agency_a.pk


def test_token_revoke_service_refuses_someone_elses_token_BUG(world):
    """Known bug (cases/services.py, token_revoke): no permission check; only the admin's scope
    keeps a stranger from revoking another agency's tokens."""
    token = services.auth_login(username=world.investigator.username, password=TEST_PASSWORD).token
    with pytest.raises(APIPermissionDenied):
        services.token_revoke(token=token, actor=world.outsider)


# ---------------------------------------------------------------- adding a user


def add_user_form(**overrides: Any) -> dict[str, Any]:
    return {
        "username": "nina_new",
        "password1": STRONG_PASSWORD,
        "password2": STRONG_PASSWORD,
        "first_name": "Nina",
        "last_name": "Novak",
        "email": "nina@example.org",
        "role": Role.SUPERVISOR,
        "title": "Sergeant",
        "phone": "+15555550123",
        **overrides,
    }


def test_agency_admin_adds_a_user_of_their_agency_with_a_role(client, world):
    response = logged_in(client, world.admin).post(url(User, "add"), add_user_form(agency=world.agency_b.pk))
    assert response.status_code == 302, response.content.decode()
    user = User.objects.get(username="nina_new")
    assert user.profile.agency == world.agency_a
    assert (user.profile.title, user.profile.phone, user.is_staff) == ("Sergeant", "+15555550123", True)
    assert set(user.groups.values_list("name", flat=True)) == {Role.SUPERVISOR, "MCSO supervisors"}
    assert user.check_password(STRONG_PASSWORD)
    event = AuditEvent.objects.get(action=AuditAction.USER_CREATED, target_id=str(user.pk))
    assert event.actor_id == world.admin.pk
    assert event.changes == {"username": [None, "nina_new"], "agency": [None, "MCSO"], "role": [None, "supervisor"]}


def test_superuser_chooses_the_agency_of_a_new_user(client, world, root):
    form = add_user_form(agency=world.agency_b.pk, role=Role.INVESTIGATOR)
    assert logged_in(client, root).post(url(User, "add"), form).status_code == 302
    assert User.objects.get(username="nina_new").profile.agency == world.agency_b


def test_add_user_refuses_a_weak_password_or_a_taken_username(client, world):
    logged_in(client, world.admin)
    weak = client.post(url(User, "add"), add_user_form(password1="password123", password2="password123"))
    assert weak.status_code == 200
    assert "This password is too common." in weak.content.decode()
    taken = client.post(url(User, "add"), add_user_form(username=world.outsider.username.upper()))
    assert taken.status_code == 200
    assert "A user with that username already exists." in taken.content.decode()
    assert not User.objects.filter(username="nina_new").exists()
    world.outsider.refresh_from_db()
    assert world.outsider.profile.agency == world.agency_b
    assert not AuditEvent.objects.filter(action=AuditAction.USER_CREATED, actor=world.admin).exists()


def test_only_superusers_and_agency_admins_can_add_users(client, world):
    assert logged_in(client, world.supervisor).get(url(User, "add")).status_code == 403
    response = client.post(url(User, "add"), add_user_form())
    assert response.status_code == 403
    assert not User.objects.filter(username="nina_new").exists()


def test_a_new_user_can_open_the_admin_with_their_role(client, world):
    logged_in(client, world.admin).post(url(User, "add"), add_user_form(role=Role.INVESTIGATOR))
    newcomer = User.objects.get(username="nina_new")
    case = CaseFactory(actor=newcomer, title="Newcomer case")
    body = logged_in(client, newcomer).get(url(case, "changelist")).content.decode()
    assert "Newcomer case" in body
    assert world.case.title not in body
