"""DRF authentication of machine clients by signed request (intercept.signing), and the
principal they act as. A machine client is not a user: it has no token, no session, no
roles, no case permissions; `request.auth` is its IngestSource.

The raw body is read here, capped at INGEST_MAX_BODY_BYTES (413 beyond it, before any
byte is parsed), because the signature covers the exact bytes. The view reads it back from
`raw_body(request)`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from caseapi.exceptions import PayloadTooLarge
from intercept import services
from intercept.models import IngestSource

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
BODY_TOO_LARGE = "The request body is larger than {limit} bytes."
_BODY_ATTR = "_intercept_raw_body"
READ_CHUNK = 1024 * 1024


def max_body_bytes() -> int:
    return int(getattr(settings, "INGEST_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))


class SourcePrincipal:
    """What `request.user` is for a machine client: authenticated, never staff, no perms."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, source: IngestSource) -> None:
        self.source = source
        self.username = source.actor_name

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


def _read_body(request: HttpRequest) -> bytes:
    limit = max_body_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(BODY_TOO_LARGE.format(limit=limit))
    chunks, size = [], 0
    while True:
        chunk = request.read(READ_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(BODY_TOO_LARGE.format(limit=limit))
        chunks.append(chunk)
    return b"".join(chunks)


def raw_body(request: Request) -> bytes:
    return getattr(request._request, _BODY_ATTR)


class SignedSourceAuthentication(BaseAuthentication):
    """`X-Source-Id`, `X-Timestamp`, `X-Signature: sha256=<hex>`; every refusal is a 401,
    audited by intercept.services.ingest_authenticate."""

    def authenticate(self, request: Request) -> tuple[SourcePrincipal, IngestSource]:
        django_request = request._request
        body = _read_body(django_request)
        setattr(django_request, _BODY_ATTR, body)
        headers = django_request.headers
        try:
            source = services.ingest_authenticate(
                source_id=headers.get("X-Source-Id", "").strip(),
                timestamp=headers.get("X-Timestamp", "").strip(),
                signature=headers.get("X-Signature", "").strip(),
                body=body,
            )
        except services.IngestAuthError as exc:
            raise AuthenticationFailed(exc.detail, code=exc.reason) from None
        return SourcePrincipal(source), source

    def authenticate_header(self, request: Request) -> str:
        return 'HMAC-SHA256 realm="ingest"'


class IsIngestSource(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, IngestSource)


class SignedSourceScheme(OpenApiAuthenticationExtension):
    target_class = "intercept.authentication.SignedSourceAuthentication"
    name = "ingestSignature"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Signature",
            "description": (
                "Machine clients: X-Source-Id (the source's id), X-Timestamp (Unix seconds, within 5 minutes) and "
                'X-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>. Each signature is '
                "accepted once."
            ),
        }
