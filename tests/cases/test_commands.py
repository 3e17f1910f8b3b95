"""Operator commands: add_agency, add_user and seed_demo (idempotence, errors, audit, demo data)."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditAction, AuditEvent
from cases.management.commands import add_agency, add_user
from cases.management.commands.seed_demo import DEMO_OPERATION_TITLE, PEOPLE, REFUSE_WITHOUT_DEBUG
from cases.models import (
    Agency,
    AgencyKind,
    Case,
    CaseKind,
    CustodyEvent,
    EvidenceItem,
    Identifier,
    Lead,
    LeadStatus,
    Role,
)
from cases.services import AGENCY_KIND_CONFLICT
from tests.factories import AgencyFactory, UserFactory

User = get_user_model()
PASSWORD = "violet-harbor-lantern-42"

pytestmark = pytest.mark.django_db


def run(*args: Any, **options: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def demo_password(username: str) -> str:
    return next(p.password for p in PEOPLE if p.username == username)


def roles_of(user: Any) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


# ---------------------------------------------------------------- add_agency


def test_add_agency_creates_agency_once_and_audits_it_once():
    out, _ = run("add_agency", "rcpd", "River City Police", kind="law_enforcement")
    again, _ = run("add_agency", "RCPD", "River City Police", kind="law_enforcement")

    agency = Agency.objects.get(code="RCPD")
    assert (agency.name, agency.kind, agency.supervisors.name) == (
        "River City Police",
        AgencyKind.LAW_ENFORCEMENT,
        "RCPD supervisors",
    )
    assert "Created agency RCPD" in out
    assert "already exists" in again
    created = events(AuditAction.AGENCY_CREATED)
    assert len(created) == 1
    assert created[0].changes == {
        "code": [None, "RCPD"],
        "name": [None, "River City Police"],
        "kind": [None, "law_enforcement"],
    }
    assert AuditEvent.objects.count() == 1


def test_add_agency_with_a_new_name_renames_and_audits_the_change():
    run("add_agency", "RCPD", "River City Police", kind="law_enforcement")

    out, _ = run("add_agency", "RCPD", "River City Police Department", kind="law_enforcement")

    assert Agency.objects.get(code="RCPD").name == "River City Police Department"
    assert "Updated agency RCPD" in out
    [updated] = events(AuditAction.AGENCY_UPDATED)
    assert updated.changes == {"name": ["River City Police", "River City Police Department"]}


def test_add_agency_refuses_an_unknown_kind():
    with pytest.raises(CommandError, match="invalid choice: 'police'"):
        run("add_agency", "RCPD", "River City Police", kind="police")
    assert not Agency.objects.exists()


@pytest.mark.parametrize("code", ["1BAD", "A", "TOO-LONG-CODE", "MC SO"])
def test_add_agency_refuses_a_badly_formed_code(code):
    with pytest.raises(CommandError, match=r"^code: An agency code is 2-10 upper-case letters or digits"):
        run("add_agency", code, "Somewhere", kind="law_enforcement")
    assert not Agency.objects.exists()
    assert not Group.objects.filter(name__endswith="supervisors").exists()
    assert not AuditEvent.objects.exists()


def test_add_agency_with_an_overlong_code_is_a_validation_error_not_a_database_error():
    """Fails on PostgreSQL until fixed: agency_ensure creates the `<CODE> supervisors` group
    (name max 150) before it validates the code, so a 200-character code is a DataError there
    instead of the code-format message. SQLite does not enforce varchar lengths."""
    with pytest.raises(CommandError, match="An agency code is 2-10"):
        run("add_agency", "A" * 200, "Somewhere", kind="law_enforcement")
    assert not Agency.objects.exists()


def test_add_agency_refuses_another_kind_for_an_existing_code():
    run("add_agency", "RCPD", "River City Police", kind="law_enforcement")

    with pytest.raises(CommandError) as exc:
        run("add_agency", "RCPD", "River City Police", kind="prosecutor")

    assert str(exc.value) == AGENCY_KIND_CONFLICT.format(code="RCPD", kind="law_enforcement")
    assert Agency.objects.get(code="RCPD").kind == AgencyKind.LAW_ENFORCEMENT


def test_add_agency_error_from_the_shell_is_one_stderr_line_and_exit_status_1(monkeypatch):
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)
    err = io.StringIO()
    command = add_agency.Command(stderr=err)

    with pytest.raises(SystemExit) as exc:
        command.run_from_argv(["manage.py", "add_agency", "1BAD", "Somewhere", "--kind", "prosecutor"])

    assert exc.value.code == 1
    assert err.getvalue().strip().splitlines() == [
        "CommandError: code: An agency code is 2-10 upper-case letters or digits, starting with a letter."
    ]


# ---------------------------------------------------------------- add_user


@pytest.fixture
def rcpd() -> Agency:
    return AgencyFactory(code="RCPD", name="River City Police")


def test_add_user_creates_user_in_agency_with_role(rcpd):
    out, err = run(
        "add_user",
        "ann",
        agency="rcpd",
        role="investigator",
        password=PASSWORD,
        first_name="Ann",
        last_name="Lee",
        email="ann@example.org",
        title="Detective",
        phone="+15555550123",
    )

    user = User.objects.get(username="ann")
    assert roles_of(user) == {Role.INVESTIGATOR}
    assert user.check_password(PASSWORD)
    assert (user.first_name, user.last_name, user.email) == ("Ann", "Lee", "ann@example.org")
    assert (user.profile.agency, user.profile.title, user.profile.phone) == (rcpd, "Detective", "+15555550123")
    assert out.strip() == "Created user ann in RCPD as investigator."
    assert PASSWORD not in out + err
    [created] = events(AuditAction.USER_CREATED)
    assert created.changes == {"username": [None, "ann"], "agency": [None, "RCPD"], "role": [None, "investigator"]}


def test_add_user_as_supervisor_joins_the_agency_supervisors_group(rcpd):
    run("add_user", "sam", agency="RCPD", role="supervisor", password=PASSWORD)

    assert roles_of(User.objects.get(username="sam")) == {Role.SUPERVISOR, "RCPD supervisors"}


def test_add_user_again_with_same_values_changes_nothing(rcpd):
    run("add_user", "ann", agency="RCPD", role="investigator", password=PASSWORD)
    user = User.objects.get(username="ann")
    audit_count = AuditEvent.objects.count()

    out, _ = run("add_user", "ann", agency="RCPD", role="investigator", password=PASSWORD)

    assert out.strip() == "User ann already exists in RCPD as investigator; nothing changed."
    assert AuditEvent.objects.count() == audit_count
    assert User.objects.get(username="ann").password == user.password
    assert roles_of(user) == {Role.INVESTIGATOR}


def test_add_user_with_another_role_changes_the_role(rcpd):
    run("add_user", "ann", agency="RCPD", role="investigator", password=PASSWORD)
    before = AuditEvent.objects.latest("id").pk

    out, _ = run("add_user", "ann", agency="RCPD", role="supervisor", password=PASSWORD)

    user = User.objects.get(username="ann")
    assert roles_of(user) == {Role.SUPERVISOR, "RCPD supervisors"}
    assert out.strip() == "Updated user ann: role investigator -> supervisor."
    new = list(AuditEvent.objects.filter(pk__gt=before))
    assert [(e.action, e.changes) for e in new] == [
        (AuditAction.USER_ROLE_CHANGED, {"roles": [["investigator"], ["supervisor"]]})
    ]


def test_add_user_with_another_password_changes_it_without_printing_it(rcpd):
    run("add_user", "ann", agency="RCPD", role="investigator", password=PASSWORD)

    out, err = run("add_user", "ann", agency="RCPD", role="investigator", password="copper-meadow-falcon-17")

    assert User.objects.get(username="ann").check_password("copper-meadow-falcon-17")
    assert out.strip() == "Updated user ann: password changed."
    assert "copper-meadow-falcon-17" not in out + err
    assert len(events(AuditAction.USER_PASSWORD_CHANGED)) == 1


def test_add_user_with_another_agency_moves_the_user(rcpd):
    AgencyFactory(code="MCSO")
    run("add_user", "ann", agency="RCPD", role="investigator", password=PASSWORD)

    out, _ = run("add_user", "ann", agency="MCSO", role="investigator", password=PASSWORD)

    assert User.objects.get(username="ann").profile.agency.code == "MCSO"
    assert out.strip() == "Updated user ann: agency RCPD -> MCSO."


def test_add_user_says_details_of_an_existing_user_are_kept(rcpd):
    run("add_user", "ann", agency="RCPD", role="investigator", password=PASSWORD, title="Detective")

    _, err = run("add_user", "ann", agency="RCPD", role="investigator", password=PASSWORD, title="Sergeant")

    assert User.objects.get(username="ann").profile.title == "Detective"
    assert err.strip() == "--title is applied only when a user is created; kept 'Detective'."


def test_add_user_with_unknown_agency_fails_and_creates_nobody(rcpd):
    with pytest.raises(CommandError, match=r"^Unknown agency code 'NOPE'; .* \(known: RCPD\)\.$"):
        run("add_user", "ann", agency="NOPE", role="investigator", password=PASSWORD)
    assert not User.objects.filter(username="ann").exists()


def test_add_user_refuses_an_unknown_role(rcpd):
    with pytest.raises(CommandError, match="invalid choice: 'sheriff'"):
        run("add_user", "ann", agency="RCPD", role="sheriff", password=PASSWORD)
    assert not User.objects.filter(username="ann").exists()


def test_add_user_refuses_an_invalid_username(rcpd):
    with pytest.raises(CommandError, match=r"^username: Enter a valid username"):
        run("add_user", "ann lee!", agency="RCPD", role="investigator", password=PASSWORD)
    assert not User.objects.exists()


def test_add_user_reads_the_password_from_piped_stdin(rcpd, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))

    out, _ = run("add_user", "ann", agency="RCPD", role="auditor")

    user = User.objects.get(username="ann")
    assert user.check_password(PASSWORD)
    assert roles_of(user) == {Role.AUDITOR}
    assert PASSWORD not in out


def test_add_user_refuses_an_empty_piped_password(rcpd, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))

    with pytest.raises(CommandError, match=f"^{add_user.PASSWORD_EMPTY}$"):
        run("add_user", "ann", agency="RCPD", role="auditor")
    assert not User.objects.exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_add_user_prompts_twice_on_a_terminal(rcpd, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    prompts: list[str] = []
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(answers))

    run("add_user", "ann", agency="RCPD", role="investigator")

    assert prompts == ["Password: ", "Password (again): "]
    assert User.objects.get(username="ann").check_password(PASSWORD)


def test_add_user_refuses_two_different_passwords_at_the_prompt(rcpd, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    with pytest.raises(CommandError, match=f"^{add_user.PASSWORD_MISMATCH}$"):
        run("add_user", "ann", agency="RCPD", role="investigator")
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw", "too short"),
        ("qwerty123456", "too common"),
        ("847261938475", "entirely numeric"),
        ("annabel.lee.rcpd", "too similar"),
    ],
)
def test_add_user_rejects_a_weak_password_with_the_reason(rcpd, password, reason):
    with pytest.raises(CommandError, match=f"^Password rejected: .*{reason}") as exc:
        run("add_user", "annabel.lee.rcpd", agency="RCPD", role="investigator", password=password)
    assert password not in str(exc.value)
    assert not User.objects.exists()


def test_add_user_rejects_a_weak_password_for_an_existing_user(rcpd):
    UserFactory(username="ann", agency=rcpd, role=Role.INVESTIGATOR)
    hashed = User.objects.get(username="ann").password

    with pytest.raises(CommandError, match="too short"):
        run("add_user", "ann", agency="RCPD", role="investigator", password="short-pw")
    assert User.objects.get(username="ann").password == hashed


# ---------------------------------------------------------------- seed_demo


@pytest.fixture
def seeded(settings: Any) -> str:
    settings.DEBUG = True
    out, _ = run("seed_demo")
    return out


def test_seed_demo_creates_two_agencies_with_a_user_for_every_role(seeded):
    assert {(a.code, a.name, a.kind) for a in Agency.objects.all()} == {
        ("MCSO", "Metro County Sheriff's Office", AgencyKind.LAW_ENFORCEMENT),
        ("SAO", "State Attorney's Office", AgencyKind.PROSECUTOR),
    }
    for code in ("MCSO", "SAO"):
        members = User.objects.filter(profile__agency__code=code)
        roles = set(Group.objects.filter(user__in=members, name__in=Role.values).values_list("name", flat=True))
        assert roles == set(Role.values), code
    for role in Role.values:
        assert User.objects.get(username=f"mcso_{role}").groups.filter(name=role).exists()
        assert User.objects.get(username=f"sao_{role}").groups.filter(name=role).exists()
    assert User.objects.get(username="mcso_investigator2").groups.filter(name=Role.INVESTIGATOR).exists()
    assert User.objects.filter(profile__isnull=False).count() == 11


def test_seed_demo_prints_working_credentials_for_every_demo_user(seeded, api):
    for person in PEOPLE:
        user = User.objects.get(username=person.username)
        assert user.check_password(person.password)
        row = f"{person.username}  "
        line = next(line for line in seeded.splitlines() if line.strip().startswith(row))
        assert line.split() == [person.username, person.role, person.agency, person.password]

    r = api.post("/api/auth/token/", {"username": "mcso_supervisor", "password": demo_password("mcso_supervisor")})
    assert r.status_code == 200, r.content


def test_seed_demo_passwords_pass_django_password_validators(seeded):
    for person in PEOPLE:
        assert person.password.startswith("demo-")
        validate_password(person.password, user=User.objects.get(username=person.username))


def test_seed_demo_creates_the_operation_with_an_investigation_and_leads(seeded):
    operation = Case.objects.get(agency__code="MCSO", kind=CaseKind.OPERATION, title=DEMO_OPERATION_TITLE)
    assert operation.lead_investigator.username == "mcso_investigator"
    assert operation.summary
    [child] = Case.objects.filter(parent=operation)
    assert child.kind == CaseKind.INVESTIGATION
    leads = Lead.objects.filter(case__in=[operation, child])
    assert leads.count() >= 5
    assert len(set(leads.values_list("priority", flat=True))) >= 4
    [assigned] = leads.filter(status=LeadStatus.ASSIGNED)
    assert assigned.assignee.username == "mcso_investigator2"
    assert set(leads.values_list("source", flat=True)) >= {"intercept_bot", "tip", "ad_analysis"}


def test_seed_demo_identifiers_are_normalized_and_shared_across_cases(seeded):
    kinds = set(Identifier.objects.values_list("kind", flat=True))
    assert kinds == {"phone", "email", "handle", "payment_handle"}
    phone = Identifier.objects.get(value_index=Identifier.index_of("phone", "+13055550142"))
    assert phone.leads.values("case").distinct().count() == 2
    assert Identifier.objects.filter(value_index=Identifier.index_of("email", "night.owl77@example.com")).exists()
    assert all(i.value.startswith("+1") for i in Identifier.objects.filter(kind="phone"))


def test_seed_demo_evidence_has_stored_content_a_reference_and_a_custody_chain(seeded):
    items = EvidenceItem.objects.filter(case__agency__code="MCSO", transcript_snapshot__isnull=True)
    [stored] = [i for i in items if i.is_stored]
    assert any(i.external_uri for i in items)
    with storages["evidence"].open(stored.content_name, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == stored.sha256
    chain = list(CustodyEvent.objects.filter(evidence=stored).order_by("occurred_at", "created_at"))
    assert [e.action for e in chain] == [
        "collected",
        "received",
        "checked_out",
        "checked_in",
        "transferred",
        "verified",
    ]
    assert chain[-1].details["match"] is True


def test_seed_demo_makes_every_change_through_audited_services(seeded):
    counts = Counter(AuditEvent.objects.values_list("action", flat=True))
    assert counts[AuditAction.AGENCY_CREATED] == 2
    assert counts[AuditAction.USER_CREATED] == 11
    assert counts[AuditAction.CASE_CREATED] == Case.objects.count()
    assert counts[AuditAction.LEAD_CREATED] == Lead.objects.count()
    assert counts[AuditAction.EVIDENCE_CREATED] == EvidenceItem.objects.count()
    assert counts[AuditAction.CUSTODY_RECORDED] == 4
    assert counts[AuditAction.EVIDENCE_VERIFIED] == 1


def test_seed_demo_run_twice_adds_no_domain_data_and_still_prints_credentials(seeded, settings):
    def sizes() -> dict[str, int]:
        models = (Agency, User, Case, Lead, Identifier, EvidenceItem, CustodyEvent)
        return {m.__name__: m.objects.count() for m in models}

    before = sizes()
    audit_before = AuditEvent.objects.count()

    out, _ = run("seed_demo")

    assert sizes() == before
    assert AuditEvent.objects.count() == audit_before
    assert "already exists" in out
    assert demo_password("mcso_investigator") in out


def test_seed_demo_run_again_resets_a_changed_demo_password(seeded):
    user = User.objects.get(username="sao_prosecutor")
    user.set_password("someone-changed-this-99")
    user.save()

    run("seed_demo")

    user.refresh_from_db()
    assert user.check_password(demo_password("sao_prosecutor"))


def test_seed_demo_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError) as exc:
        run("seed_demo")

    assert str(exc.value) == REFUSE_WITHOUT_DEBUG
    assert not Agency.objects.exists()
    assert not User.objects.exists()


def test_seed_demo_runs_without_debug_when_forced(settings):
    settings.DEBUG = False

    run("seed_demo", force=True)

    assert Case.objects.filter(title=DEMO_OPERATION_TITLE).count() == 1
