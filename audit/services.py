"""Recording audit events. Call inside the transaction of the change being described, so a
rolled-back change leaves no event and no committed change lacks one."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q

from audit import context, note, sealing, signing, tree
from audit.models import AuditAction, AuditEvent, ChainHead, Checkpoint
from audit.sinks import get_sink
from audit.verify import VerifyResult, verify_log

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        # PostgreSQL's jsonb holds neither NUL nor lone surrogates.
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float):
        return repr(value)  # the canonical JSON has no floating-point numbers (audit.chain)
    if value is None or isinstance(value, bool | int):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "pk"):
        return str(value.pk)
    return str(value)


def _event(
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
    ctx: context.RequestContext,
) -> AuditEvent:
    """An unsaved event (see audit_record for the arguments)."""
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
    if agency_id is None and actor is not None:
        profile = getattr(actor, "profile", None)
        agency_id = profile.agency_id if profile is not None else None
    return AuditEvent(
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
) -> AuditEvent | None:
    """Insert one event. `agency_id` defaults to the actor's agency (profile must be loaded
    or it costs one query); `target` fills target type and id from a model instance. Returns
    None only when AUDIT_RECORDING is off (benchmarks; /readyz then fails)."""
    if not settings.AUDIT_RECORDING:
        return None
    event = _event(
        action=action,
        actor=actor,
        actor_name=actor_name,
        agency_id=agency_id,
        target=target,
        target_type=target_type,
        target_id=target_id,
        case_id=case_id,
        changes=changes,
        ctx=context.current(),
    )
    _insert(event)
    if settings.AUDIT_SEAL_ON_COMMIT:
        _schedule_seal()
    return event


_INSERTS: dict[str, tuple[str, list[Any]]] = {}


def _insert(event: AuditEvent) -> None:
    """INSERT one new event: what `event.save()` does for an append-only row, with SQL text
    written once per process. Every audited request inserts an event, and composing and
    compiling the INSERT through the ORM cost more Python than the rest of a small read;
    the values are prepared by the fields themselves (`pre_save`, `get_db_prep_save`), as
    the ORM prepares them."""
    connection = transaction.get_connection()
    cached = _INSERTS.get(connection.vendor)
    if cached is None:
        fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        table = connection.ops.quote_name(AuditEvent._meta.db_table)
        pk = connection.ops.quote_name(AuditEvent._meta.pk.column)
        placeholders = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING {pk}"  # noqa: S608 - names from the model
        _INSERTS[connection.vendor] = cached = (sql, fields)
    sql, fields = cached
    params = [field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = connection.alias


AUDIT_INSERT_BATCH = 1000


def audit_record_many(entries: Iterable[dict[str, Any]]) -> list[AuditEvent]:
    """Insert several events at once (one INSERT per 1,000), in the order given; each entry
    holds audit_record's keyword arguments. For batch writers such as intercept ingest, where
    a row-by-row INSERT per event would cost more than the change it describes."""
    if not settings.AUDIT_RECORDING:
        return []
    ctx = context.current()
    events = [_event(**entry, ctx=ctx) for entry in entries]
    if not events:
        return []
    AuditEvent.objects.bulk_create(events, batch_size=AUDIT_INSERT_BATCH)
    if settings.AUDIT_SEAL_ON_COMMIT:
        _schedule_seal()
    return events


def _seal_after_commit() -> None:
    sealing.seal_pending()


def _schedule_seal() -> None:
    """Seal in-process once the current transaction commits (once per transaction)."""
    conn = transaction.get_connection()
    if conn.in_atomic_block and any(func is _seal_after_commit for _, func, _ in conn.run_on_commit):
        return
    transaction.on_commit(_seal_after_commit, robust=True)


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


@dataclass(frozen=True)
class CheckpointResult:
    checkpoint: Any
    created: bool


def checkpoint_create(*, actor: AbstractBaseUser | None = None) -> CheckpointResult:
    """Seal what is committed, then sign a checkpoint over the whole sealed log, store it
    (append-only) and write it to the external sink. When nothing happened since the latest
    checkpoint, that one is returned; for a person's request, "nothing" ignores earlier
    checkpoint requests, which the next system checkpoint covers. A person's request is
    audited."""
    latest = Checkpoint.objects.order_by("-tree_size").first()
    if latest is not None and actor is not None:
        newer = AuditEvent.objects.filter(Q(seq__isnull=True) | Q(seq__gt=latest.tree_size))
        if not newer.exclude(action=AuditAction.AUDIT_CHECKPOINT_CREATED).exists():
            return CheckpointResult(latest, False)
    sealing.seal_pending()
    signer = signing.signer()
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(pk=ChainHead.SINGLETON)
        existing = Checkpoint.objects.filter(tree_size=head.size).first()
        if existing is not None:
            return CheckpointResult(existing, False)
        root = tree.root_at(head.size)
        body = note.CheckpointBody(origin=settings.AUDIT_LOG_ORIGIN, tree_size=head.size, root_hash=root)
        checkpoint = Checkpoint.objects.create(
            tree_size=head.size, root_hash=root.hex(), signed_note=signer.sign(body.text()), key_name=signer.name
        )
        if actor is not None:
            audit_record(
                action=AuditAction.AUDIT_CHECKPOINT_CREATED,
                actor=actor,
                target=checkpoint,
                changes={"tree_size": head.size, "root_hash": root.hex()},
            )
        transaction.on_commit(lambda: get_sink().write(checkpoint.tree_size, checkpoint.signed_note))
    return CheckpointResult(checkpoint, True)


def audit_verify(*, actor: AbstractBaseUser | None) -> VerifyResult:
    """Recompute and check the whole log (audit.verify); the check itself is recorded."""
    result = verify_log()
    if not result.ok:
        logger.error(
            "audit log verification FAILED at seq %s: %s", result.first_bad_seq, "; ".join(result.problems[:5])
        )
    audit_record(
        action=AuditAction.AUDIT_VERIFIED,
        actor=actor,
        changes={"ok": result.ok, "checked": result.checked, "first_bad_seq": result.first_bad_seq},
    )
    return result
