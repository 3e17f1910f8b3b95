"""Template context shared by the admin: the system-use notice shown before login."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def system_use_notice(request: HttpRequest) -> dict[str, str]:
    return {"system_use_notice": settings.SYSTEM_USE_NOTICE}
