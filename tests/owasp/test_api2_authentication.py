"""OWASP API2:2023, broken authentication. tests/cases/test_auth.py covers tokens (hashed,
expiring, revocable), lockout and its audit; tests/intercept/test_auth.py the signed ingest
(HMAC, clock skew, replay, rotation). This module adds: every failed credential reads the
same (no oracle), credentials are taken from one place only, never echoed or logged, session
callers need CSRF, and a signature cannot be reused on another route or by another source."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from cases import services
from cases.models import AuthToken, Case
from cases.tokens import token_digest
from intercept import services as intercept_services
from intercept import signing
from intercept.models import Ad
from tests.conftest import World
from tests.factories import TEST_PASSWORD
from tests.intercept.conftest import Pusher, ad

LOGIN = "/api/auth/token/"


def _issue(user: Any) -> str:
    return services.auth_login(username=user.username, password=TEST_PASSWORD).key


def _with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_every_unusable_token_is_refused_with_one_and_the_same_answer(world: World) -> None:
    """Expired, revoked, of a deactivated user, tampered with, the stored digest itself, or
    never issued: the caller cannot tell which."""
    expired, revoked, deactivated, fine = (
        _issue(world.lead),
        _issue(world.lead),
        _issue(world.viewer),
        _issue(world.lead),
    )
    AuthToken.objects.filter(digest=token_digest(expired)).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.token_revoke(token=AuthToken.objects.get(digest=token_digest(revoked)), actor=world.lead)
    world.viewer.is_active = False
    world.viewer.save(update_fields=["is_active"])
    keys = {
        "expired": expired,
        "revoked": revoked,
        "deactivated": deactivated,
        "tampered": fine[:-1] + ("A" if fine[-1] != "A" else "B"),
        "digest": token_digest(fine),
        "never issued": secrets.token_urlsafe(32),
    }
    answers = {}
    for what, key in keys.items():
        response = _with(key).get("/api/me/")
        answers[what] = (response.status_code, response.content, response.get("WWW-Authenticate"))
    assert set(answers.values()) == {(401, b'{"detail":"Invalid or expired token.","code":"invalid_token"}', "Token")}
    assert _with(fine).get("/api/me/").status_code == 200


def test_a_wrong_password_and_an_unknown_user_read_the_same(world: World) -> None:
    api = APIClient()
    wrong = api.post(LOGIN, {"username": world.lead.username, "password": "not the password"}, format="json")
    unknown = api.post(LOGIN, {"username": "nobody_here", "password": "not the password"}, format="json")
    inactive_user = world.viewer
    inactive_user.is_active = False
    inactive_user.save(update_fields=["is_active"])
    inactive = api.post(LOGIN, {"username": inactive_user.username, "password": TEST_PASSWORD}, format="json")
    assert wrong.status_code == unknown.status_code == inactive.status_code == 401
    assert wrong.content == unknown.content == inactive.content


@pytest.mark.parametrize(
    "how",
    ["query token", "query auth_token", "body token", "X-Auth-Token", "Bearer", "no keyword", "cookie"],
)
def test_a_token_is_taken_from_the_authorization_header_only(world: World, how: str) -> None:
    key = _issue(world.lead)
    client = APIClient()
    if how == "query token":
        response = client.get(f"/api/cases/?token={key}")
    elif how == "query auth_token":
        response = client.get(f"/api/cases/?auth_token={key}")
    elif how == "body token":
        response = client.post("/api/cases/", {"title": "x", "token": key}, format="json")
    elif how == "X-Auth-Token":
        response = client.get("/api/cases/", HTTP_X_AUTH_TOKEN=key)
    elif how == "Bearer":
        response = client.get("/api/cases/", HTTP_AUTHORIZATION=f"Bearer {key}")
    elif how == "no keyword":
        response = client.get("/api/cases/", HTTP_AUTHORIZATION=key)
    else:
        client.cookies["token"] = key
        response = client.get("/api/cases/")
    assert response.status_code == 401, response.content
    assert not Case.objects.filter(title="x").exists()


def test_credentials_are_never_echoed_or_written_to_the_audit_log(world: World) -> None:
    api = APIClient()
    response = api.post(LOGIN, {"username": world.lead.username, "password": TEST_PASSWORD}, format="json")
    key = response.json()["token"]
    api.post(LOGIN, {"username": world.lead.username, "password": "a wrong " + TEST_PASSWORD}, format="json")
    client = _with(key)
    pages = [client.get(path).content for path in ("/api/me/", "/api/users/")]
    client.post("/api/auth/logout/")
    stored = json.dumps(
        list(AuditEvent.objects.values("changes", "actor_name", "user_agent", "target_id")), default=str
    )
    stored += json.dumps(list(AuthToken.objects.values()), default=str)
    for secret in (key, TEST_PASSWORD):
        assert secret not in stored
        assert all(secret.encode() not in page for page in pages)


def test_a_session_caller_needs_a_csrf_token_for_every_write(world: World) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.lead)
    refused = browser.post("/api/cases/", {"title": "Forged"}, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert not Case.objects.filter(title="Forged").exists()
    browser.get("/admin/")  # any page that sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post("/api/cases/", {"title": "Forged"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content


def test_a_signed_batch_cannot_be_replayed_on_the_other_ingest_route(push: Pusher) -> None:
    body = json.dumps({"items": [ad("a1")]}).encode()
    headers = signing.signed_headers(str(push.issued.source.pk), push.issued.secret, body)
    assert push.raw("ads", body, **headers).status_code == 200
    replayed = push.raw("conversations", body, **headers)
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "replayed"


def test_one_sources_secret_does_not_sign_for_another(push: Pusher) -> None:
    other = intercept_services.ingest_source_create(actor=None, name="other-bot", case=push.issued.source.case)
    body = json.dumps({"items": [ad("a1")]}).encode()
    forged = signing.signed_headers(str(other.source.pk), push.issued.secret, body)
    response = push.raw("ads", body, **forged)
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"
    assert not Ad.objects.exists()


def test_a_person_cannot_sign_in_as_a_machine_nor_a_machine_as_a_person(world: World, push: Pusher) -> None:
    key = _issue(world.lead)
    body = json.dumps({"items": [ad("a1")]}).encode()
    as_person = APIClient().post(
        "/api/ingest/ads/", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert as_person.status_code == 401
    headers = {
        f"HTTP_{k.upper().replace('-', '_')}": v
        for k, v in signing.signed_headers(str(push.issued.source.pk), push.issued.secret, b"").items()
    }
    as_machine = APIClient().get("/api/cases/", **headers)
    assert as_machine.status_code == 401
    assert not Ad.objects.exists()
