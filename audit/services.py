"""Recording audit events. Call inside the transaction of the change being described, so a
rolled-back change leaves no event and no committed change lacks one."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from audit import context
from audit.models import AuditAction, AuditEvent


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return str(value.pk)
    return str(value)


def audit_record(
    *,
    action: AuditAction,
    actor: AbstractBaseUser | None,
    actor_name: str | None = None,
    agency_id: Any = None,
    target: Any = None,
    target_type: str = "",
    target_id: str = "",
    case_id: uuid.UUID | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Insert one event. `agency_id` defaults to the actor's agency (profile must be loaded
    or it costs one query); `target` fills target type and id from a model instance."""
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    if agency_id is None and actor is not None:
        profile = getattr(actor, "profile", None)
        agency_id = profile.agency_id if profile is not None else None
    ctx = context.current()
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=(actor_name if actor_name is not None else getattr(actor, "username", ""))[:150],
        agency_id=agency_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        case_id=case_id,
        changes=_jsonable(changes or {}),
        request_id=ctx.request_id,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
    )


def diff(instance: Any, fields: list[str], before: dict[str, Any]) -> dict[str, list[Any]]:
    """`{field: [old, new]}` for each of `fields` whose value differs from `before`."""
    out: dict[str, list[Any]] = {}
    for name in fields:
        new = getattr(instance, name)
        old = before.get(name)
        if old != new:
            out[name] = [_jsonable(old), _jsonable(new)]
    return out


def snapshot(instance: Any, fields: list[str]) -> dict[str, Any]:
    return {name: getattr(instance, name) for name in fields}
