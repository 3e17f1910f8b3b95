"""Production settings: `check --deploy` passes at WARNING level, secrets are required (never
defaulted) outside DEBUG, HTTPS hardening is on, and a server error tells the client nothing."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.note import Signer
from caseapi import crypto, security
from cases import selectors

ROOT = Path(__file__).resolve().parents[2]
HOST = "cases.example.org"
LEAKS = ("Traceback", "RuntimeError", "boom-7f3a", "selectors.py")


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A deployment's environment: DEBUG off, a real secret key and host, an audit signing
    key file, field encryption and blind-index keys, and every other setting at its default
    (overrides of None remove a variable)."""
    key_file = tmp_path / "audit-signing.key"
    if not key_file.exists():
        key_file.write_text(Signer.generate("deploy.test/audit").text() + "\n")
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "SYSTEMROOT") if name in os.environ}
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": HOST,
            "CASEAPI_VAR_DIR": str(tmp_path / "var"),
            "AUDIT_SIGNING_KEY_FILE": str(key_file),
            "FIELD_ENCRYPTION_KEYS": f"k1:{crypto.new_key()}",
            "BLIND_INDEX_KEY": crypto.new_key(),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_the_deploy_check_at_warning_level(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (1 silenced)." in result.stdout


def test_only_the_hsts_preload_warning_is_silenced_and_only_while_preload_is_off(tmp_path):
    result = manage(production_env(tmp_path, SECURE_HSTS_PRELOAD="1"), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_the_deploy_check_fails_when_a_production_default_is_weakened(tmp_path):
    """The check examines the real production settings: turning one default off fails it."""
    result = manage(production_env(tmp_path, SESSION_COOKIE_SECURE="0"), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W012" in result.stderr


@pytest.mark.parametrize(
    "overrides",
    [
        {"SECRET_KEY": None},
        {"SECRET_KEY": ""},
        {"SECRET_KEY": None, "CASEAPI_TESTING": "1"},
    ],
    ids=["unset", "empty", "no variable makes a deployment a test run"],
)
def test_startup_without_a_secret_key_fails_with_a_clear_message(tmp_path, overrides):
    result = manage(production_env(tmp_path, **overrides), "check")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_startup_without_an_audit_signing_key_fails_with_a_clear_message(tmp_path):
    missing = tmp_path / "nowhere" / "audit-signing.key"
    result = manage(production_env(tmp_path, AUDIT_SIGNING_KEY_FILE=str(missing)), "check")
    assert result.returncode != 0
    assert "AUDIT_SIGNING_KEY, or an AUDIT_SIGNING_KEY_FILE that exists, is required when DEBUG is off" in (
        result.stderr
    )
    assert not missing.exists()  # nothing was generated in its place


def test_an_audit_signing_key_in_the_environment_is_enough(tmp_path):
    env = production_env(
        tmp_path,
        AUDIT_SIGNING_KEY=Signer.generate("deploy.test/audit").text(),
        AUDIT_SIGNING_KEY_FILE=str(tmp_path / "absent.key"),
    )
    result = manage(env, "check")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY"])
def test_startup_without_the_field_encryption_keys_fails_with_a_clear_message(tmp_path, missing):
    result = manage(production_env(tmp_path, **{missing: None}), "check")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY are required when DEBUG is off" in result.stderr


def test_startup_with_a_malformed_field_key_says_what_is_wrong(tmp_path):
    result = manage(production_env(tmp_path, FIELD_ENCRYPTION_KEYS="k1:c2hvcnQ"), "check")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS: key 'k1' must be 32 bytes, got 5" in result.stderr


def test_development_still_starts_without_any_secret(tmp_path):
    env = production_env(
        tmp_path,
        DEBUG="1",
        SECRET_KEY=None,
        AUDIT_SIGNING_KEY_FILE=str(tmp_path / "dev.key"),
        FIELD_ENCRYPTION_KEYS=None,
        BLIND_INDEX_KEY=None,
    )
    result = manage(env, "check")
    assert result.returncode == 0, result.stderr


PROBE = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caseapi.settings")
import django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST=%(host)r)
secure = client.get("/healthz", secure=True)
plain = client.get("/api/cases/")
probe = client.get("/healthz")
print(json.dumps({
    "secure_status": secure.status_code,
    "secure_headers": dict(secure.headers),
    "plain_status": plain.status_code,
    "plain_location": plain.get("Location"),
    "probe_status": probe.status_code,
    "settings": {name: getattr(settings, name) for name in (
        "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SECURE_SSL_REDIRECT",
    )},
}))
"""


def test_production_responses_carry_hsts_and_the_security_headers(tmp_path):
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE % {"host": HOST}],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    headers = seen["secure_headers"]
    assert seen["secure_status"] == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"] == security.API_POLICY
    assert (seen["plain_status"], seen["plain_location"]) == (301, f"https://{HOST}/api/cases/")
    assert seen["probe_status"] == 200  # load balancers probe over plain HTTP
    assert seen["settings"] == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
    }


# ---------------------------------------------------------------- a forced error, DEBUG off


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("boom-7f3a: token=abc123 at /srv/caseapi/cases/selectors.py")


def test_a_server_error_in_the_api_is_a_generic_json_500_without_traceback(world, settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setattr(selectors, "case_list", _explode)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(world.lead)
    r = client.get("/api/cases/")
    assert r.status_code == 500
    assert r["Content-Type"] == "application/json"
    assert r.json() == {"detail": security.SERVER_ERROR, "code": security.SERVER_ERROR_CODE}
    body = r.content.decode()
    assert not [leak for leak in LEAKS if leak in body]
    assert r["Cache-Control"] == "no-store"


def test_a_server_error_outside_the_api_is_a_plain_page_without_traceback(db, settings, monkeypatch, client):
    settings.DEBUG = False
    monkeypatch.setattr("caseapi.health.JsonResponse", _explode)
    client.raise_request_exception = False
    r = client.get("/healthz")
    assert r.status_code == 500
    body = r.content.decode()
    assert "Server Error (500)" in body
    assert not [leak for leak in LEAKS if leak in body]


def test_with_debug_on_the_same_error_would_show_its_traceback(world, settings, monkeypatch):
    """The control for the two tests above: the error does reach the response machinery."""
    settings.DEBUG = True
    monkeypatch.setattr(selectors, "case_list", _explode)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(world.lead)
    r = client.get("/api/cases/", HTTP_ACCEPT="text/html")
    assert r.status_code == 500
    assert "boom-7f3a" in r.content.decode()
