"""Response headers: no-store on everything under /api/, a Content-Security-Policy on every
response (strict on the API docs page, no inline script on the admin), and the standard
hardening headers."""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

from caseapi import security
from tests.factories import EvidenceFactory

User = get_user_model()


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


class Page(HTMLParser):
    """The resources an HTML page loads: script sources, stylesheets and icons, inline script
    and style bodies, and style attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.inline_scripts: list[str] = []
        self.inline_styles: list[str] = []
        self.style_attributes: list[str] = []
        self._open: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("style"):
            self.style_attributes.append(values["style"] or "")
        if tag == "script":
            if values.get("src"):
                self.scripts.append(values["src"] or "")
            elif values.get("type") != "application/json":  # data, never run
                self._open = "script"
                self.inline_scripts.append("")
        elif tag == "style":
            self._open = "style"
            self.inline_styles.append("")
        elif tag == "link" and values.get("href"):
            self.links.append(values["href"] or "")

    def handle_data(self, data: str) -> None:
        if self._open == "script":
            self.inline_scripts[-1] += data
        elif self._open == "style":
            self.inline_styles[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def is_same_origin_path(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


# ---------------------------------------------------------------- no-store on the API


@pytest.fixture
def stored_item(world: Any) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return EvidenceFactory(case=world.case, upload=SimpleUploadedFile("chat.txt", b"buyer: how much\nbot: 200\n"))


def test_every_api_response_with_case_data_is_no_store(world, as_user, stored_item):
    client = as_user(world.lead)
    for path in (
        "/api/cases/",
        f"/api/cases/{world.case.pk}/",
        "/api/evidence/",
        f"/api/evidence/{stored_item.pk}/",
        f"/api/evidence/{stored_item.pk}/content/",
        f"/api/evidence/{stored_item.pk}/custody/",
        "/api/me/",
    ):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r["Cache-Control"] == "no-store", path


def test_api_errors_and_refusals_are_no_store_too(world, as_user):
    assert APIClient().get("/api/cases/").status_code == 401
    for r in (
        APIClient().get("/api/cases/"),
        as_user(world.outsider).get(f"/api/cases/{world.case.pk}/"),
        as_user(world.lead).post("/api/cases/", {"title": ""}),
        as_user(world.lead).get("/api/no-such-endpoint/"),
    ):
        assert r.status_code >= 400
        assert r["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- Content-Security-Policy


def test_json_responses_allow_nothing_to_load_or_run(world, as_user):
    r = as_user(world.lead).get("/api/cases/")
    assert r["Content-Security-Policy"] == security.API_POLICY
    policy = directives(r["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_docs_page_loads_only_same_origin_scripts_and_styles(db, client):
    r = client.get("/api/docs/")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    policy = directives(r["Content-Security-Policy"])
    page = Page(r.content.decode())

    # No inline script at all; every script and stylesheet is served from this origin.
    assert page.inline_scripts == []
    assert page.style_attributes == []
    assert page.scripts and all(is_same_origin_path(src) for src in page.scripts), page.scripts
    assert page.links and all(is_same_origin_path(href) for href in page.links), page.links
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    # The one inline style block is allowed by its hash, and nothing else inline is.
    assert page.inline_styles
    assert policy["style-src"] == ["'self'", *(csp_hash(block) for block in page.inline_styles)]
    everything = " ".join(source for sources in policy.values() for source in sources)
    for loose in ("'unsafe-inline'", "'unsafe-eval'", "http:", "https:", "*"):
        assert loose not in everything.split()


def test_docs_assets_are_local_files_and_the_init_script_is_served_here(db, client):
    page = Page(client.get("/api/docs/").content.decode())
    static = [url for url in page.scripts + page.links if url.startswith(django_settings.STATIC_URL)]
    assert static
    for url in static:
        assert finders.find(url.removeprefix(django_settings.STATIC_URL)), url
    (init_script,) = [src for src in page.scripts if not src.startswith(django_settings.STATIC_URL)]
    r = client.get(init_script)
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/javascript")
    script = r.content.decode()
    assert "SwaggerUIBundle(" in script
    assert '"validatorUrl": null' in script  # no badge fetched from a third-party validator


@pytest.fixture
def staff(db: Any) -> Any:
    return User.objects.create_superuser("root", "root@example.org", "correct horse battery")


@pytest.mark.parametrize("path", ["/admin/login/", "/admin/", "/admin/cases/case/"])
def test_admin_pages_run_no_inline_script_and_load_scripts_from_here_only(staff, client, path):
    if path != "/admin/login/":
        client.force_login(staff)
    r = client.get(path)
    assert r.status_code == 200
    policy = directives(r["Content-Security-Policy"])
    assert r["Content-Security-Policy"] == security.page_policy()
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    page = Page(r.content.decode())
    assert page.inline_scripts == []
    assert page.scripts and all(is_same_origin_path(src) for src in page.scripts)
    assert all(is_same_origin_path(href) for href in page.links)


def test_a_response_that_sets_its_own_policy_keeps_it(rf):
    from django.http import HttpResponse

    mine = "default-src 'none'; img-src 'self'"

    def view(request: Any) -> HttpResponse:
        response = HttpResponse("<p>x</p>")
        response["Content-Security-Policy"] = mine
        return response

    response = security.SecurityHeadersMiddleware(view)(rf.get("/somewhere/"))
    assert response["Content-Security-Policy"] == mine


# ---------------------------------------------------------------- the usual hardening headers


@pytest.mark.parametrize("path", ["/api/cases/", "/healthz", "/admin/login/", "/api/docs/"])
def test_hardening_headers_are_on_every_response(world, as_user, path):
    r = as_user(world.lead).get(path)
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Referrer-Policy"] == "same-origin"
    assert r["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" in r
