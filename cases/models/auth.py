"""API tokens, stored as SHA-256 digests; expiring and revocable."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuthToken(models.Model):
    """Only the digest of a token is kept: a database leak yields no usable token. Tokens are
    256-bit random values, so a fast hash is enough (no guessing is feasible)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="auth_tokens")
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user_id})"
