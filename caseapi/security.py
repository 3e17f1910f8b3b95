"""Response hardening that Django's SecurityMiddleware does not cover: a Content-Security-Policy
on every response, `Cache-Control: no-store` on everything under /api/ (case data must not
stay in a browser, proxy or shared cache), a 500 page that says nothing about the error, and
the API's JSON error shape for a 404 under /api/ that no view answered.

Three policies, chosen per response:

- the API docs page (Swagger UI from drf-spectacular's sidecar, no CDN): scripts and styles
  from this origin only, plus the hash of the one inline <style> block of its template; its
  init script comes from the same URL (`?script`), so no inline script is allowed;
- every other HTML page (the admin, the browsable API, error pages): scripts from this origin
  only; styles from this origin and inline (the admin templates and the operation dashboard
  carry inline <style> blocks and style attributes);
- anything else (JSON, CSV, downloads): nothing may load or run at all.

A response that already carries a Content-Security-Policy keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from functools import cache
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import get_template
from django.views import defaults

API_PREFIX = "/api/"
DOCS_URL_NAME = "docs"
DOCS_TEMPLATE = "drf_spectacular/swagger_ui.html"
SERVER_ERROR = "A server error occurred. It has been logged; try again later or report it."
SERVER_ERROR_CODE = "server_error"
_STYLE_BLOCK = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE)

API_POLICY = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _policy(directives: dict[str, list[str]]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def _static_sources() -> list[str]:
    """'self', plus the origin of STATIC_URL when static files are served from elsewhere."""
    parts = urlsplit(settings.STATIC_URL or "")
    if parts.scheme and parts.netloc:
        return ["'self'", f"{parts.scheme}://{parts.netloc}"]
    return ["'self'"]


@cache
def _inline_style_hashes(template_name: str) -> tuple[str, ...]:
    """CSP hash sources of the <style> blocks of a template (they hold no template tags)."""
    source = get_template(template_name).template.source
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
        for block in _STYLE_BLOCK.findall(source)
    )


@cache
def page_policy() -> str:
    static = _static_sources()
    return _policy(
        {
            "default-src": ["'none'"],
            "script-src": static,
            "style-src": [*static, "'unsafe-inline'"],
            "img-src": [*static, "data:"],
            "font-src": static,
            "connect-src": ["'self'"],
            "base-uri": ["'self'"],
            "form-action": ["'self'"],
            "frame-ancestors": ["'none'"],
        }
    )


@cache
def docs_policy() -> str:
    static = _static_sources()
    return _policy(
        {
            "default-src": ["'none'"],
            "script-src": static,
            "style-src": [*static, *_inline_style_hashes(DOCS_TEMPLATE)],
            "img-src": [*static, "data:"],
            "connect-src": ["'self'"],
            "base-uri": ["'none'"],
            "form-action": ["'self'"],
            "frame-ancestors": ["'none'"],
        }
    )


def policy_for(request: HttpRequest, response: HttpResponse) -> str:
    if not response.get("Content-Type", "").startswith("text/html"):
        return API_POLICY
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name == DOCS_URL_NAME and not match.namespace:
        return docs_policy()
    return page_policy()


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy (unless the response has one) and, under /api/,
    `Cache-Control: no-store`, replacing any caching a view allowed."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy_for(request, response)
        if request.path_info.startswith(API_PREFIX):
            response["Cache-Control"] = "no-store"
        return response


NOT_FOUND = "Not found."
NOT_FOUND_CODE = "not_found"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: the API's error shape under /api/ (a path no route takes, or an id its
    converter refuses, such as `/api/cases/not-a-uuid/`), Django's page elsewhere."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"detail": NOT_FOUND, "code": NOT_FOUND_CODE}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the API's error shape under /api/, Django's plain page elsewhere. Neither
    names the exception; the traceback goes to the `django.request` log only."""
    if request.path_info.startswith(API_PREFIX):
        return JsonResponse({"detail": SERVER_ERROR, "code": SERVER_ERROR_CODE}, status=500)
    return defaults.server_error(request)
