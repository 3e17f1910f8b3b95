"""`Authorization: Token <key>` against hashed, expiring, revocable AuthToken rows."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from cases.models import AuthToken
from cases.tokens import token_digest

TOKEN_INVALID = "Invalid or expired token."  # noqa: S105


class ExpiringTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, AuthToken]:
        token = AuthToken.objects.select_related("user", "user__profile").filter(digest=token_digest(key)).first()
        if token is None or token.revoked_at is not None or token.expires_at <= timezone.now():
            raise AuthenticationFailed(TOKEN_INVALID, code="invalid_token")
        if not token.user.is_active:
            raise AuthenticationFailed(TOKEN_INVALID, code="invalid_token")
        return token.user, token
