"""Authentication: hashed expiring tokens, revocation, lockout after failed logins, Argon2."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

import caseapi.settings as production_settings
from audit.models import AuditAction, AuditEvent
from caseapi.exceptions import Locked
from cases import services
from cases.models import AuthToken, Profile, Role
from tests.factories import TEST_PASSWORD, AgencyFactory, UserFactory

LOGIN_URL = "/api/auth/token/"


def login(api: APIClient, username: str, password: str) -> Any:
    return api.post(LOGIN_URL, {"username": username, "password": password})


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def fail_logins(api: APIClient, username: str, times: int) -> None:
    for _ in range(times):
        assert login(api, username, "wrong password").json()["code"] == "invalid_credentials"


def shift_clock(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    later = timezone.now() + delta
    monkeypatch.setattr(timezone, "now", lambda: later)


# ---------------------------------------------------------------- the token lookup


def _issued(username: str) -> str:
    return services.auth_login(username=username, password=TEST_PASSWORD).key


def test_the_token_lookup_loads_what_the_orm_would(world):
    """selectors.token_get reads token, user and profile in one query of fixed SQL text: every
    field as the ORM reads it (encrypted profile fields decrypted, times aware), the profile
    and the roles loaded, so scope needs no query of its own."""
    from cases import selectors
    from cases.tokens import token_digest

    world.investigator.groups.add(*world.supervisor.groups.all())
    key = _issued(world.investigator.username)
    with CaptureQueriesContext(connection) as queries:
        token = selectors.token_get(token_digest(key))
        user = token.user
        profile, roles = user.profile, selectors.user_roles(user)
        assert selectors.does_casework(user)
    assert len(queries) == 1
    expected = AuthToken.objects.select_related("user", "user__profile").get(digest=token_digest(key))
    for model_field in AuthToken._meta.concrete_fields:
        assert getattr(token, model_field.attname) == getattr(expected, model_field.attname), model_field.name
    for model_field in type(user)._meta.concrete_fields:
        assert getattr(user, model_field.attname) == getattr(expected.user, model_field.attname), model_field.name
    for model_field in Profile._meta.concrete_fields:
        assert getattr(profile, model_field.attname) == getattr(expected.user.profile, model_field.attname)
    assert profile.phone == "+15555550100"  # encrypted at rest, read through the field
    assert roles == frozenset(expected.user.groups.values_list("name", flat=True))
    assert {Role.INVESTIGATOR, Role.SUPERVISOR} <= roles
    assert not token._state.adding and token._state.db == "default"


def test_the_token_lookup_of_a_user_without_profile_or_role(world, api):
    from cases import selectors
    from cases.tokens import token_digest

    key = _issued(world.investigator.username)
    world.investigator.groups.clear()
    Profile.objects.filter(user=world.investigator).delete()
    token = selectors.token_get(token_digest(key))
    assert selectors.user_roles(token.user) == frozenset()
    with pytest.raises(Profile.DoesNotExist):
        token.user.profile  # noqa: B018
    assert not selectors.does_casework(token.user)
    assert token_client(key).get("/api/cases/").json()["results"] == []


def test_the_token_lookup_of_an_unknown_digest_is_none(world):
    from cases import selectors

    assert selectors.token_get("0" * 64) is None


# ---------------------------------------------------------------- tokens


def test_login_returns_a_token_and_its_expiry(world, api, settings):
    before = timezone.now()
    r = login(api, "lena_lead", TEST_PASSWORD)
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"token", "expires_at"}
    token = AuthToken.objects.get(user=world.lead)
    assert before + settings.AUTH_TOKEN_TTL <= token.expires_at <= timezone.now() + settings.AUTH_TOKEN_TTL
    assert token_client(body["token"]).get("/api/me/").status_code == 200


def test_token_is_stored_only_as_its_sha256_digest(world, api):
    key = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    token = AuthToken.objects.get(user=world.lead)
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    for row in AuthToken.objects.values():
        assert all(key not in str(value) for value in row.values())


def test_tampered_token_is_refused(world, api):
    key = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    r = token_client(tampered).get("/api/me/")
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


def test_the_digest_itself_is_not_a_usable_token(world, api):
    login(api, "lena_lead", TEST_PASSWORD)
    digest = AuthToken.objects.get(user=world.lead).digest
    assert token_client(digest).get("/api/me/").status_code == 401


def test_expired_token_gets_401(world, api):
    key = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    AuthToken.objects.filter(user=world.lead).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = token_client(key).get("/api/me/")
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"


def test_token_expires_after_its_ttl(world, api, settings, monkeypatch):
    key = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    shift_clock(monkeypatch, settings.AUTH_TOKEN_TTL + timedelta(seconds=1))
    assert token_client(key).get("/api/me/").status_code == 401


def test_logout_revokes_the_token_and_is_audited(world, api):
    key = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    client = token_client(key)
    assert client.post("/api/auth/logout/").status_code == 204
    token = AuthToken.objects.get(user=world.lead)
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_REVOKED)
    assert event.actor_id == world.lead.pk
    assert event.target_type == "cases.authtoken"
    assert event.target_id == str(token.pk)
    assert client.get("/api/me/").status_code == 401
    assert client.post("/api/auth/logout/").status_code == 401
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_REVOKED).count() == 1


def test_logout_revokes_only_the_token_in_use(world, api):
    first = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    second = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    assert token_client(first).post("/api/auth/logout/").status_code == 204
    assert token_client(first).get("/api/me/").status_code == 401
    assert token_client(second).get("/api/me/").status_code == 200


def test_deactivated_users_token_gets_401(world, api):
    key = login(api, "lena_lead", TEST_PASSWORD).json()["token"]
    services.user_set_active(actor=world.admin, user=world.lead, active=False)
    assert token_client(key).get("/api/me/").status_code == 401
    r = login(api, "lena_lead", TEST_PASSWORD)
    assert r.json()["code"] == "invalid_credentials"
    assert AuthToken.objects.filter(user=world.lead).count() == 1


def test_missing_or_malformed_authorization_gets_401(world, api):
    assert api.get("/api/me/").status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token")
    assert client.get("/api/me/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Token two parts")
    assert client.get("/api/me/").status_code == 401


def test_login_with_missing_fields_is_400(world, api):
    r = api.post(LOGIN_URL, {"username": "lena_lead"})
    assert r.status_code == 400
    assert "password" in r.json()
    assert not AuthToken.objects.exists()


# ---------------------------------------------------------------- audit of both outcomes


def test_successful_login_is_audited(world, api):
    login(api, "lena_lead", TEST_PASSWORD)
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_SUCCEEDED)
    assert event.actor_id == world.lead.pk
    assert event.actor_name == "lena_lead"
    assert event.agency_id == world.agency_a.pk
    assert AuditEvent.objects.filter(action=AuditAction.TOKEN_ISSUED, actor=world.lead).count() == 1


def test_bad_password_is_refused_and_audited(world, api):
    r = login(api, "lena_lead", "wrong password")
    assert r.json() == {"detail": services.LOGIN_INVALID, "code": "invalid_credentials"}
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert event.actor_id == world.lead.pk
    assert (event.changes["reason"], event.changes["failed_logins"]) == ("bad_password", 1)
    assert not AuthToken.objects.exists()


def test_unknown_username_is_audited_with_the_typed_name(world, api):
    r = login(api, "nobody_here", "whatever")
    assert r.json() == {"detail": services.LOGIN_INVALID, "code": "invalid_credentials"}
    event = AuditEvent.objects.get(action=AuditAction.LOGIN_FAILED)
    assert event.actor_id is None
    assert event.actor_name == "nobody_here"
    assert event.changes["reason"] == "unknown_or_inactive_user"


def test_bad_credentials_are_401_not_403(world, api):
    """403 means "authenticated but not allowed" in this API (and "locked" at login)."""
    assert login(api, "lena_lead", "wrong password").status_code == 401
    assert login(api, "nobody_here", "whatever").status_code == 401


# ---------------------------------------------------------------- lockout


def test_five_failures_lock_the_account_even_for_the_right_password(world, api, settings):
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT)
    profile = Profile.objects.get(user=world.lead)
    assert profile.locked_until is not None
    locked = AuditEvent.objects.get(action=AuditAction.ACCOUNT_LOCKED)
    assert locked.actor_id == world.lead.pk
    assert locked.target_id == str(world.lead.pk)
    r = login(api, "lena_lead", TEST_PASSWORD)
    assert r.status_code == 403
    assert r.json()["code"] == "account_locked"
    assert not AuthToken.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, changes__reason="account_locked").count() == 1


def test_four_failures_do_not_lock(world, api, settings):
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT - 1)
    assert login(api, "lena_lead", TEST_PASSWORD).status_code == 200
    assert not AuditEvent.objects.filter(action=AuditAction.ACCOUNT_LOCKED).exists()


def test_a_success_resets_the_failure_count(world, api, settings):
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT - 1)
    assert login(api, "lena_lead", TEST_PASSWORD).status_code == 200
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT - 1)
    assert login(api, "lena_lead", TEST_PASSWORD).status_code == 200


def test_failures_outside_the_window_do_not_accumulate(world, api, settings):
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT - 1)
    Profile.objects.filter(user=world.lead).update(
        failed_window_started_at=timezone.now() - settings.LOGIN_FAILURE_WINDOW - timedelta(minutes=1)
    )
    fail_logins(api, "lena_lead", 1)
    profile = Profile.objects.get(user=world.lead)
    assert profile.failed_logins == 1
    assert profile.locked_until is None
    assert login(api, "lena_lead", TEST_PASSWORD).status_code == 200


def test_failures_spread_by_the_clock_past_the_window_do_not_lock(world, api, settings, monkeypatch):
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT - 1)
    shift_clock(monkeypatch, settings.LOGIN_FAILURE_WINDOW + timedelta(seconds=1))
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT - 1)
    assert login(api, "lena_lead", TEST_PASSWORD).status_code == 200


def test_the_lock_expires_after_the_cooloff(world, api, settings, monkeypatch):
    settings.LOGIN_LOCKOUT_COOLOFF = timedelta(minutes=10)
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=9))
    assert login(api, "lena_lead", TEST_PASSWORD).json()["code"] == "account_locked"
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(minutes=11))
    r = login(api, "lena_lead", TEST_PASSWORD)
    assert r.status_code == 200, r.content
    profile = Profile.objects.get(user=world.lead)
    assert (profile.failed_logins, profile.locked_until) == (0, None)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted_and_lock_once(settings):
    agency = AgencyFactory(code="RACEA", name="Race Auth")
    user = UserFactory(agency=agency, role=Role.INVESTIGATOR)
    attempts = settings.LOGIN_FAILURE_LIMIT + 3
    barrier = threading.Barrier(attempts)
    outcomes: list[str] = []

    def guess() -> None:
        try:
            barrier.wait(timeout=20)
            services.auth_login(username=user.username, password="wrong password")
        except (AuthenticationFailed, Locked) as exc:
            outcomes.append(exc.default_code if isinstance(exc, Locked) else "invalid_credentials")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["account_locked"] * 3 + ["invalid_credentials"] * settings.LOGIN_FAILURE_LIMIT
    profile = Profile.objects.get(user=user)
    assert profile.failed_logins == settings.LOGIN_FAILURE_LIMIT
    assert profile.locked_until is not None
    assert AuditEvent.objects.filter(action=AuditAction.ACCOUNT_LOCKED, actor=user).count() == 1
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, actor=user).count() == attempts


def test_agency_admin_unlocks_the_account(world, api, settings):
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT)
    services.account_unlock(user=world.lead, actor=world.admin)
    event = AuditEvent.objects.get(action=AuditAction.ACCOUNT_UNLOCKED)
    assert event.actor_id == world.admin.pk
    assert event.target_id == str(world.lead.pk)
    assert event.changes["failed_logins"] == [settings.LOGIN_FAILURE_LIMIT, 0]
    assert event.changes["locked_until"][1] is None
    assert login(api, "lena_lead", TEST_PASSWORD).status_code == 200


def test_admin_of_another_agency_cannot_unlock(world, api, settings):
    other_admin = UserFactory(agency=world.agency_b, role=Role.AGENCY_ADMIN)
    fail_logins(api, "lena_lead", settings.LOGIN_FAILURE_LIMIT)
    with pytest.raises(PermissionDenied):
        services.account_unlock(user=world.lead, actor=other_admin)
    with pytest.raises(PermissionDenied):
        services.account_unlock(user=world.lead, actor=world.supervisor)
    assert login(api, "lena_lead", TEST_PASSWORD).json()["code"] == "account_locked"
    assert not AuditEvent.objects.filter(action=AuditAction.ACCOUNT_UNLOCKED).exists()


def test_login_attempts_are_throttled(world, api, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    for _ in range(3):
        assert login(api, "lena_lead", TEST_PASSWORD).status_code == 200
    assert login(api, "lena_lead", TEST_PASSWORD).status_code == 429


# ---------------------------------------------------------------- password hashing and me


def test_production_settings_hash_passwords_with_argon2(settings):
    assert production_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    settings.PASSWORD_HASHERS = production_settings.PASSWORD_HASHERS
    assert make_password("a long enough passphrase").startswith("argon2$")


def test_me_shows_agency_and_roles(world, as_user):
    r = as_user(world.supervisor).get("/api/me/")
    assert r.status_code == 200
    body = r.json()
    assert body["username"] == "sam_super"
    assert body["agency"] == {
        "id": world.agency_a.pk,
        "code": "MCSO",
        "name": "Metro County Sheriff",
        "kind": "law_enforcement",
    }
    assert body["roles"] == ["supervisor"]
    assert as_user(world.prosecutor).get("/api/me/").json()["agency"]["code"] == "SAO"
