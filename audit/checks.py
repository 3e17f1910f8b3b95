"""System checks of the audit log's configuration."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def audit_recording_on(app_configs: Any, **kwargs: Any) -> list[Error]:
    if settings.AUDIT_RECORDING:
        return []
    return [
        Error(
            "Audit recording is switched off (AUDIT_RECORDING=0).",
            hint="Only benchmarks run this way; every deployment must record its audit log.",
            id="audit.E001",
        )
    ]
