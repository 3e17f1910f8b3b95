"""`Authorization: Token <key>` against hashed, expiring, revocable AuthToken rows; and the
password backend that applies the lockout policy to session (admin) logins."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed

from cases import selectors
from cases.models import AuthToken
from cases.tokens import token_digest

TOKEN_INVALID = "Invalid or expired token."  # noqa: S105


class ExpiringTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, AuthToken]:
        token = selectors.token_get(token_digest(key))
        if token is None or token.revoked_at is not None or token.expires_at <= timezone.now():
            raise AuthenticationFailed(TOKEN_INVALID, code="invalid_token")
        if not token.user.is_active:
            raise AuthenticationFailed(TOKEN_INVALID, code="invalid_token")
        return token.user, token


class LockoutModelBackend(ModelBackend):
    """Django's model backend with caseapi's login policy: every password login (the admin's
    included) goes through services.auth_check, so lockout and auditing apply everywhere."""

    def authenticate(
        self, request: Any, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        from cases.services import auth_check

        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            return auth_check(username=username, password=password, via="session")
        except APIException:
            return None
