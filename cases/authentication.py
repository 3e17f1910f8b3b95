"""`Authorization: Token <key>` against hashed, expiring, revocable AuthToken rows; and the
password backend that applies the lockout policy to session (admin) logins."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import OuterRef
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import APIException, AuthenticationFailed

from cases import selectors
from cases.models import AuthToken, Role
from cases.tokens import token_digest

TOKEN_INVALID = "Invalid or expired token."  # noqa: S105


class ExpiringTokenAuthentication(TokenAuthentication):
    keyword = "Token"

    def authenticate_credentials(self, key: str) -> tuple[Any, AuthToken]:
        token = (
            AuthToken.objects.select_related("user", "user__profile")
            .annotate(
                user_is_prosecutor=selectors.holds_role(OuterRef("user_id"), (Role.PROSECUTOR,)),
                user_does_casework=selectors.holds_role(OuterRef("user_id"), selectors.CASEWORK_ROLES),
            )
            .filter(digest=token_digest(key))
            .first()
        )
        if token is None or token.revoked_at is not None or token.expires_at <= timezone.now():
            raise AuthenticationFailed(TOKEN_INVALID, code="invalid_token")
        if not token.user.is_active:
            raise AuthenticationFailed(TOKEN_INVALID, code="invalid_token")
        # Read by the scope selectors (cases.selectors._has_role) instead of a query of their own.
        token.user._caseapi_is_prosecutor = token.user_is_prosecutor
        token.user._caseapi_does_casework = token.user_does_casework
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
