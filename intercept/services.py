"""Every write of intercept ingest: ingest sources and their secrets, the signature check of
machine clients, batches of conversations and ads, transcript snapshots. Each write and its
audit events happen in one transaction; machine clients are named `source:<name>` in the log
(actor None, the source's agency).

A batch is parsed and checked in plain Python first (outside any transaction). The items that
pass are then written set-based inside one savepoint; if the database refuses anything, that
savepoint is rolled back and every item is written again in a savepoint of its own, so one bad
item never takes the others down and leaves nothing behind. Writes of one operation are
serialized by a transaction-level lock (an advisory lock on PostgreSQL; SQLite's IMMEDIATE
transactions serialize every writer), which keeps "one buyer, one lead" true under concurrent
clients.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from cryptography.fernet import InvalidToken
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, Model
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from audit.models import AuditAction
from audit.services import audit_record, audit_record_many
from caseapi.exceptions import Conflict
from caseapi.fields import is_sealed
from cases import selectors as case_selectors
from cases.models import (
    Case,
    CaseKind,
    CaseStatus,
    CustodyAction,
    CustodyEvent,
    DeconflictionHit,
    EvidenceItem,
    EvidenceKind,
    Identifier,
    IdentifierKind,
    Lead,
    LeadIdentifier,
    LeadSource,
    Role,
)
from cases.permissions import CasePerm
from cases.services import CHANGED, LEAD_SEALED_FIELDS, system_user
from intercept import scoring, signing, transcript
from intercept.events import InterceptAction
from intercept.items import (
    AdIn,
    ConversationIn,
    ItemError,
    Normalizer,
    parse_ad,
    parse_conversation,
)
from intercept.models import (
    Ad,
    AdPhone,
    Conversation,
    IngestSource,
    Message,
    SeenSignature,
    SnapshotReason,
    TranscriptSnapshot,
)

logger = logging.getLogger(__name__)

# Domain error messages (tests assert these constants).
NOT_ALLOWED = "Only the agency's admins (or a superuser) manage its ingest sources."
SOURCE_NAME_INVALID = "A source name is 1-100 letters, digits, '.', '_' or '-'."
SOURCE_NAME_TAKEN = "An ingest source named {name!r} already exists."
SOURCE_CASE_NOT_OPERATION = "An ingest source is bound to an operation case; {number} is an investigation."
SOURCE_CASE_CLOSED = "The operation {number} is closed; it accepts no more data."
OVERLAP_NEGATIVE = "The overlap of the previous secret cannot be negative."
SNAPSHOT_EMPTY = "This conversation has no messages yet; there is nothing to snapshot."
SNAPSHOT_CASE_CLOSED = "This case is closed; reopen it before adding evidence."
BATCH_DUPLICATE = "This external_id already appears at index {index} of this batch."
MESSAGE_CHANGED = "Message {external_id} differs from the one already stored; stored messages never change."
DETERRENCE_KEPT = "deterrence_sent_at differs from the time already stored; the first one is kept."
ITEM_NOT_STORED = "The item could not be stored ({error}); nothing of it was kept. Send it again."

# What a client is told when its signature is refused, by reason (the audit event keeps the
# reason; the unknown source and the bad signature read the same, so ids cannot be probed).
AUTH_INVALID = "Missing or invalid ingest signature."
AUTH_DETAILS: dict[str, str] = {
    "missing_headers": AUTH_INVALID,
    "malformed_headers": AUTH_INVALID,
    "unknown_source": AUTH_INVALID,
    "bad_signature": AUTH_INVALID,
    "inactive_source": "This ingest source is inactive.",
    "timestamp_skew": "X-Timestamp is more than 5 minutes away from the server's clock.",
    "replayed": "This signature was already used; sign every request anew.",
}

SIGNATURE_WINDOW = timedelta(minutes=5)
DEFAULT_OVERLAP = timedelta(hours=24)
PURGE_EVERY_SECONDS = 60.0
MESSAGE_BATCH = 2000
EVIDENCE_LOCATION = "caseapi evidence storage"
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_next_purge = 0.0

LEAD_AUDIT_FIELDS = [
    "display_name",
    "source",
    "status",
    "minor_age_mentioned",
    "payment_discussed",
    "meeting_arranged",
    "repeat_contact",
    "priority_score",
    "priority",
    "first_seen_at",
    "last_seen_at",
]
LEAD_UPDATE_FIELDS = [
    "minor_age_mentioned",
    "payment_discussed",
    "meeting_arranged",
    "repeat_contact",
    "priority_score",
    "priority_factors",
    "priority",
    "first_seen_at",
    "last_seen_at",
    "updated_at",
]
CONVERSATION_UPDATE_FIELDS = [
    "buyer",
    "ad_site",
    "ad_external_id",
    "minor_age_mentioned",
    "payment_discussed",
    "meeting_requested",
    "deterrence_sent_at",
    "closed",
    "closed_at",
    "message_count",
    "first_message_at",
    "last_message_at",
    "snapshot_messages",
    "updated_at",
]
SIGNAL_FIELDS = ("minor_age_mentioned", "payment_discussed", "meeting_requested")


# ---------------------------------------------------------------- ingest sources


@dataclass(frozen=True)
class IssuedSecret:
    """A source and its new secret: the only moment the secret exists in clear text."""

    source: IngestSource
    secret: str


def _require_source_admin(actor: AbstractBaseUser | None, agency_id: int) -> None:
    """The command line (actor None), a superuser, or an agency admin of that agency."""
    if actor is None or actor.is_superuser:
        return
    roles = case_selectors.user_roles(actor)
    if Role.AGENCY_ADMIN not in roles or case_selectors.user_agency_id(actor) != agency_id:
        raise PermissionDenied(NOT_ALLOWED)


@transaction.atomic
def ingest_source_create(*, actor: AbstractBaseUser | None, name: str, case: Case) -> IssuedSecret:
    """A new source bound to `case` (an operation) and its agency, with a fresh secret."""
    name = (name or "").strip()
    if not _SOURCE_NAME.match(name):
        raise ValidationError({"name": [SOURCE_NAME_INVALID]})
    _require_source_admin(actor, case.agency_id)
    if case.kind != CaseKind.OPERATION:
        raise ValidationError({"case": [SOURCE_CASE_NOT_OPERATION.format(number=case.number)]})
    if IngestSource.objects.filter(name=name).exists():
        raise Conflict(SOURCE_NAME_TAKEN.format(name=name))
    secret = signing.new_secret()
    source = IngestSource(
        name=name,
        agency_id=case.agency_id,
        case=case,
        secret_encrypted=signing.encrypt_secret(secret),
        created_by=actor,
    )
    source.save(force_insert=True)
    audit_record(
        action=InterceptAction.SOURCE_CREATED,
        actor=actor,
        agency_id=case.agency_id,
        target=source,
        case_id=case.pk,
        changes={"name": [None, name], "case": [None, case.number], "is_active": [None, True]},
    )
    return IssuedSecret(source=source, secret=secret)


@transaction.atomic
def ingest_source_rotate(
    *, actor: AbstractBaseUser | None, source: IngestSource, overlap: timedelta = DEFAULT_OVERLAP
) -> IssuedSecret:
    """A new secret; the one it replaces keeps verifying until now + `overlap` (zero: at
    once). A secret older than that, from an earlier rotation, stops at once."""
    source = IngestSource.objects.select_for_update().get(pk=source.pk)
    _require_source_admin(actor, source.agency_id)
    if overlap < timedelta(0):
        raise ValidationError({"overlap": [OVERLAP_NEGATIVE]})
    now = timezone.now()
    secret = signing.new_secret()
    old_until = source.previous_valid_until
    source.previous_secret_encrypted = source.secret_encrypted if overlap else ""
    source.previous_valid_until = now + overlap if overlap else None
    source.secret_encrypted = signing.encrypt_secret(secret)
    source.rotated_at = now
    source.save(
        update_fields=[
            "previous_secret_encrypted",
            "previous_valid_until",
            "secret_encrypted",
            "rotated_at",
            "updated_at",
        ]
    )
    audit_record(
        action=InterceptAction.SOURCE_ROTATED,
        actor=actor,
        agency_id=source.agency_id,
        target=source,
        case_id=source.case_id,
        changes={"previous_valid_until": [old_until, source.previous_valid_until]},
    )
    return IssuedSecret(source=source, secret=secret)


@transaction.atomic
def ingest_source_set_active(*, actor: AbstractBaseUser | None, source: IngestSource, active: bool) -> IngestSource:
    source = IngestSource.objects.select_for_update().get(pk=source.pk)
    _require_source_admin(actor, source.agency_id)
    if source.is_active == active:
        return source
    source.is_active = active
    source.save(update_fields=["is_active", "updated_at"])
    audit_record(
        action=InterceptAction.SOURCE_UPDATED,
        actor=actor,
        agency_id=source.agency_id,
        target=source,
        case_id=source.case_id,
        changes={"is_active": [not active, active]},
    )
    return source


# ---------------------------------------------------------------- machine authentication


class IngestAuthError(Exception):
    """A refused signature; `reason` is what the audit event records."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = AUTH_DETAILS[reason]


def _auth_failed(reason: str, source: IngestSource | None, given_id: str) -> IngestAuthError:
    audit_record(
        action=InterceptAction.AUTH_FAILED,
        actor=None,
        actor_name=source.actor_name if source is not None else "source:unknown",
        agency_id=source.agency_id if source is not None else None,
        target=source,
        case_id=source.case_id if source is not None else None,
        changes={"reason": reason, "source_id": given_id[:64]},
    )
    return IngestAuthError(reason)


def _secret_matches(source: IngestSource, timestamp: str, body: bytes, given: str, now: datetime) -> bool:
    candidates = [source.secret_encrypted]
    if source.previous_secret_encrypted and source.previous_valid_until and now <= source.previous_valid_until:
        candidates.append(source.previous_secret_encrypted)
    for encrypted in candidates:
        try:
            secret = signing.decrypt_secret(encrypted)
        except InvalidToken:
            logger.error("ingest source %s: its secret cannot be decrypted with SECRET_KEY", source.pk)
            continue
        if signing.signature_matches(secret, timestamp, body, given):
            return True
    return False


def ingest_authenticate(*, source_id: str, timestamp: str, signature: str, body: bytes) -> IngestSource:
    """The source that signed `body`, or IngestAuthError (already audited, and committed even
    though the request fails). Checked in this order: headers, source, signature (current
    secret, or the previous one within its overlap), active, clock skew, replay."""
    now = timezone.now()
    if not (source_id and timestamp and signature):
        raise _auth_failed("missing_headers", None, source_id)
    given = signature.removeprefix(signing.SIGNATURE_PREFIX)
    try:
        source_uuid = uuid.UUID(source_id)
        stamp = int(timestamp)
    except ValueError:
        raise _auth_failed("malformed_headers", None, source_id) from None
    if not signature.startswith(signing.SIGNATURE_PREFIX) or not _HEX64.match(given) or not timestamp.isdigit():
        raise _auth_failed("malformed_headers", None, source_id)
    source = IngestSource.objects.select_related("case", "agency").filter(pk=source_uuid).first()
    if source is None:
        raise _auth_failed("unknown_source", None, source_id)
    if not _secret_matches(source, timestamp, body, given, now):
        raise _auth_failed("bad_signature", source, source_id)
    if not source.is_active:
        raise _auth_failed("inactive_source", source, source_id)
    if abs(now.timestamp() - stamp) > SIGNATURE_WINDOW.total_seconds():
        raise _auth_failed("timestamp_skew", source, source_id)
    _purge_seen_signatures_now_and_then()
    try:
        with transaction.atomic():
            SeenSignature.objects.create(
                source=source,
                signature=given,
                expires_at=datetime.fromtimestamp(stamp, tz=now.tzinfo) + SIGNATURE_WINDOW,
            )
    except IntegrityError:
        raise _auth_failed("replayed", source, source_id) from None
    return source


def seen_signatures_purge() -> int:
    """Forget signatures whose timestamp can no longer pass the clock-skew check."""
    deleted, _ = SeenSignature.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


def _purge_seen_signatures_now_and_then() -> None:
    global _next_purge
    if time.monotonic() >= _next_purge:
        _next_purge = time.monotonic() + PURGE_EVERY_SECONDS
        seen_signatures_purge()


# ---------------------------------------------------------------- shared plumbing


def _lock(name: str, case: Case) -> None:
    """Serialize writers of `name` ("conversations", "ads") for one operation until the end of
    the transaction. SQLite needs nothing: its IMMEDIATE transactions already serialize."""
    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(hashlib.sha256(f"intercept:{name}:{case.pk}".encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def _identifiers(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Identifier]:
    """Get or create the Identifier rows of `pairs`, found by blind index (values are stored
    encrypted); inserted in digest order, so concurrent batches never wait on each other in a
    cycle."""
    digests = {Identifier.index_of(k, v): (k, v) for k, v in set(pairs)}
    if not digests:
        return {}
    wanted = sorted(digests)
    Identifier.objects.bulk_create([Identifier.of(*digests[d]) for d in wanted], ignore_conflicts=True)
    return {digests[i.value_index]: i for i in Identifier.objects.filter(value_index__in=wanted)}


UPDATE_BATCH = 500


def update_rows(objs: list[Model], fields: list[str]) -> None:
    """Write `fields` of `objs` (one model, primary keys set) back to their rows. On
    PostgreSQL one UPDATE ... FROM (VALUES ...) per 500 rows; elsewhere one UPDATE per row.
    (Django's bulk_update builds a CASE expression per row and field, which costs seconds of
    Python for a few hundred rows.) No signals and no auto_now: callers set updated_at."""
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    if connection.vendor != "postgresql":
        for obj in objs:
            model._default_manager.filter(pk=obj.pk).update(**{f.attname: getattr(obj, f.attname) for f in columns})
        return
    quote = connection.ops.quote_name
    pk = meta.pk
    names = ", ".join(quote(f.column) for f in [pk, *columns])
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
    casts = [f"%s::{f.db_type(connection)}" for f in [pk, *columns]]
    row = "(" + ", ".join(casts) + ")"
    for start in range(0, len(objs), UPDATE_BATCH):
        chunk = objs[start : start + UPDATE_BATCH]
        params: list[Any] = []
        for obj in chunk:
            for f in [pk, *columns]:
                params.append(f.get_db_prep_save(getattr(obj, f.attname), connection))
        sql = (
            f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 - names from the model
            f"FROM (VALUES {', '.join([row] * len(chunk))}) AS v({names}) "
            f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def insert_rows(model: type[Model], fields: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert `rows` (values of `fields`, attnames, in order) into `model`'s table without
    building model instances: PostgreSQL COPY in one stream; elsewhere bulk_create. For the
    largest append-only tables of ingest (chat messages), where Django's per-field insert
    preparation costs more than the database does. Values must already be in their Python
    database types (no save(), no signals, no auto_now: callers pass created_at); encrypted
    fields are sealed here, so COPY writes only their ciphertext."""
    if not rows:
        return
    meta = model._meta
    columns = [meta.get_field(name).column for name in fields]
    sealed = [n for n, name in enumerate(fields) if is_sealed(meta.get_field(name))]
    if sealed and connection.vendor == "postgresql":
        prep = [partial(meta.get_field(fields[n]).get_db_prep_save, connection=connection) for n in sealed]
        rows = [_sealed_row(row, sealed, prep) for row in rows]
    if connection.vendor != "postgresql":
        attnames = [meta.get_field(name).attname for name in fields]
        model._default_manager.bulk_create(
            [model(**dict(zip(attnames, row, strict=True))) for row in rows], batch_size=MESSAGE_BATCH
        )
        return
    quote = connection.ops.quote_name
    sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _sealed_row(row: tuple[Any, ...], positions: list[int], prep: list[Callable[[Any], Any]]) -> tuple[Any, ...]:
    values = list(row)
    for n, seal in zip(positions, prep, strict=True):
        values[n] = seal(values[n])
    return tuple(values)


def _check_case_open(case: Case) -> None:
    if case.status == CaseStatus.CLOSED:
        raise Conflict(SOURCE_CASE_CLOSED.format(number=case.number))


def _rejected(index: int, errors: dict[str, list[str]]) -> dict[str, Any]:
    return {"index": index, "status": "rejected", "errors": errors}


def _discard(storage_names: list[str]) -> None:
    storage = storages["evidence"]
    for name in storage_names:
        try:
            storage.delete(name)
        except OSError:
            logger.exception("could not remove %s after a rolled-back ingest", name)
    storage_names.clear()


Applier = Callable[[list[tuple[int, Any]], list[str]], "Applied"]


@dataclass
class Applied:
    """What one application of items wrote: results by index, and the audit summary."""

    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: Applied) -> None:
        self.results.update(other.results)
        for key, value in other.summary.items():
            if isinstance(value, list):
                self.summary.setdefault(key, []).extend(value)
            elif isinstance(value, dict):
                self.summary.setdefault(key, {}).update(value)
            else:
                self.summary[key] = self.summary.get(key, 0) + value


def _apply_isolated(entries: list[tuple[int, Any]], apply: Applier, stored: list[str]) -> Applied:
    """All entries in one savepoint; on a database (or storage) error, each entry again in a
    savepoint of its own. Files written by a rolled-back savepoint are removed."""
    if not entries:
        return Applied()
    attempt: list[str] = []
    try:
        with transaction.atomic():
            applied = apply(entries, attempt)
        stored.extend(attempt)
        return applied
    except (DatabaseError, OSError) as exc:
        logger.warning("ingest batch fell back to one savepoint per item: %s", exc.__class__.__name__)
        _discard(attempt)
    applied = Applied()
    for index, item in entries:
        one: list[str] = []
        try:
            with transaction.atomic():
                applied.merge(apply([(index, item)], one))
            stored.extend(one)
        except (DatabaseError, OSError) as exc:
            _discard(one)
            logger.warning("ingest item %s rejected: %s", index, exc.__class__.__name__)
            applied.results[index] = _rejected(index, {"item": [ITEM_NOT_STORED.format(error=exc.__class__.__name__)]})
    return applied


def _audit_batch(source: IngestSource, kind: str, total: int, applied: Applied, rejected: dict[str, Any]) -> None:
    audit_record(
        action=InterceptAction.BATCH_RECEIVED,
        actor=None,
        actor_name=source.actor_name,
        agency_id=source.agency_id,
        target=source,
        case_id=source.case_id,
        changes={"kind": kind, "items": total, **applied.summary, "rejected": rejected},
    )


def _parse_batch(
    items: list[Any], parse: Callable[[Any], Any], key: Callable[[Any], Any]
) -> tuple[list[tuple[int, Any]], list[dict[str, Any] | None]]:
    """Parse every item; duplicates (by `key`) after the first are rejected."""
    results: list[dict[str, Any] | None] = [None] * len(items)
    parsed: list[tuple[int, Any]] = []
    first: dict[Any, int] = {}
    for index, raw in enumerate(items):
        try:
            item = parse(raw)
        except ItemError as exc:
            results[index] = _rejected(index, exc.errors)
            continue
        if key(item) in first:
            results[index] = _rejected(index, {"external_id": [BATCH_DUPLICATE.format(index=first[key(item)])]})
            continue
        first[key(item)] = index
        parsed.append((index, item))
    return parsed, results


def _finish(
    source: IngestSource,
    kind: str,
    items: list[Any],
    parsed: list[tuple[int, Any]],
    results: list[dict[str, Any] | None],
    apply: Applier,
) -> list[dict[str, Any]]:
    stored: list[str] = []
    try:
        with transaction.atomic():
            _lock(kind, source.case)
            applied = _apply_isolated(parsed, apply, stored)
            for index, result in applied.results.items():
                results[index] = result
            rejected = {str(r["index"]): sorted(r["errors"]) for r in results if r and r["status"] == "rejected"}
            _audit_batch(source, kind, len(items), applied, rejected)
    except BaseException:
        _discard(stored)
        raise
    return [r for r in results if r is not None]


# ---------------------------------------------------------------- conversations


def conversations_ingest(*, source: IngestSource, items: list[Any]) -> list[dict[str, Any]]:
    """Accept or reject each conversation item on its own; returns one result per index:
    `created`, `updated` or `unchanged` (with the conversation, its lead, the messages added
    and any transcript snapshot taken), or `rejected` with the errors by field path."""
    case = source.case
    _check_case_open(case)
    now = timezone.now()
    normalize = Normalizer()
    parsed, results = _parse_batch(
        items, lambda raw: parse_conversation(raw, now=now, normalize=normalize), lambda item: item.external_id
    )

    def apply(entries: list[tuple[int, Any]], stored: list[str]) -> Applied:
        return _ConversationWriter(source=source, now=now, stored=stored).write(entries)

    return _finish(source, "conversations", items, parsed, results, apply)


@dataclass
class _Snapshotting:
    conversation: Conversation
    lines: list[transcript.TranscriptLine]
    result: dict[str, Any]


class NewMessage(NamedTuple):
    """A message to insert (Message's columns, in insert_rows order)."""

    conversation_id: uuid.UUID
    seq: int
    external_id: str
    direction: str
    sent_at: datetime
    body: str


def _lines(messages: Iterable[Message | NewMessage]) -> list[transcript.TranscriptLine]:
    return [
        transcript.TranscriptLine(
            seq=m.seq, sent_at=m.sent_at, direction=m.direction, external_id=m.external_id, body=m.body
        )
        for m in sorted(messages, key=lambda m: m.seq)
    ]


class _ConversationWriter:
    """One set-based application of parsed conversation items (see the module docstring):
    a fixed number of queries per batch, plus one audit event per lead created or changed,
    per transcript snapshot and per deconfliction hit."""

    def __init__(self, *, source: IngestSource, now: datetime, stored: list[str]) -> None:
        self.source = source
        self.case = source.case
        self.now = now
        self.stored = stored
        self.system = system_user()
        self.before: dict[uuid.UUID, dict[str, Any]] = {}
        self.links_added: dict[uuid.UUID, list[str]] = defaultdict(list)

    # -- reading what is there

    def _leads(
        self, existing: dict[str, Conversation], identifiers: dict[tuple[str, str], Identifier]
    ) -> tuple[dict[uuid.UUID, Lead], dict[uuid.UUID, set[int]], dict[int, list[uuid.UUID]], dict[uuid.UUID, int]]:
        """The operation's leads that hold any of `identifiers` or own an existing conversation
        (locked on PostgreSQL, in id order), what identifiers each holds, which leads hold
        each identifier, and how many conversations each lead has."""
        links = list(
            LeadIdentifier.objects.filter(
                identifier_id__in=[i.pk for i in identifiers.values()], lead__case_id=self.case.pk
            ).values_list("identifier_id", "lead_id")
        )
        lead_ids = {lead_id for _, lead_id in links} | {c.lead_id for c in existing.values()}
        leads: dict[uuid.UUID, Lead] = {}
        lead_identifiers: dict[uuid.UUID, set[int]] = defaultdict(set)
        conversation_counts: dict[uuid.UUID, int] = defaultdict(int)
        if lead_ids:
            locked = Lead.objects.filter(pk__in=lead_ids).order_by("pk")
            if connection.vendor == "postgresql":
                locked = locked.select_for_update()
            leads = {lead.pk: lead for lead in locked}
            for lead_id, identifier_id in LeadIdentifier.objects.filter(lead_id__in=lead_ids).values_list(
                "lead_id", "identifier_id"
            ):
                lead_identifiers[lead_id].add(identifier_id)
            for row in Conversation.objects.filter(lead_id__in=lead_ids).values("lead_id").annotate(n=Count("id")):
                conversation_counts[row["lead_id"]] = row["n"]
        identifier_leads: dict[int, list[uuid.UUID]] = defaultdict(list)
        for identifier_id, lead_id in links:
            identifier_leads[identifier_id].append(lead_id)
        return leads, lead_identifiers, identifier_leads, conversation_counts

    def _find_lead(
        self,
        item: ConversationIn,
        identifiers: dict[tuple[str, str], Identifier],
        identifier_leads: dict[int, list[uuid.UUID]],
        leads: dict[uuid.UUID, Lead],
    ) -> Lead | None:
        """The operation's lead that shares any identifier with the buyer; the oldest if
        several do."""
        candidates = {lead_id for pair in item.identifiers for lead_id in identifier_leads[identifiers[pair].pk]}
        if not candidates:
            return None
        return min((leads[c] for c in candidates), key=lambda lead: (lead.created_at or self.now, str(lead.pk)))

    def _new_lead(self, item: ConversationIn) -> Lead:
        name = item.buyer.get("name") or next(value for _, value in item.identifiers)
        return Lead(
            id=uuid.uuid4(),
            case=self.case,
            display_name=f"Buyer {name}"[:200],
            source=LeadSource.INTERCEPT_BOT,
            created_by=self.system,
        )

    # -- changing it in memory

    def _update_conversation(
        self,
        conversation: Conversation,
        item: ConversationIn,
        fresh: list[Any],
        created: bool,
        changes: dict[str, Any],
        warnings: list[str],
    ) -> list[NewMessage]:
        for name in SIGNAL_FIELDS:
            if getattr(item, name) and not getattr(conversation, name):
                setattr(conversation, name, True)
                changes[name] = [False, True]
        if item.deterrence_sent_at is not None:
            if conversation.deterrence_sent_at is None:
                changes["deterrence_sent_at"] = [None, item.deterrence_sent_at]
                conversation.deterrence_sent_at = item.deterrence_sent_at
            elif conversation.deterrence_sent_at != item.deterrence_sent_at:
                warnings.append(DETERRENCE_KEPT)
        if item.closed and not conversation.closed:
            conversation.closed = True
            conversation.closed_at = self.now
            changes["closed"] = [False, True]
        if not created:
            merged = {**conversation.buyer, **item.buyer}
            if merged != conversation.buyer:
                # The names of what changed, never the values: buyer details are sealed at rest.
                changes["buyer"] = sorted(k for k in merged if merged[k] != conversation.buyer.get(k))
                conversation.buyer = merged
            if item.ad_site and not conversation.ad_site:
                conversation.ad_site, conversation.ad_external_id = item.ad_site, item.ad_external_id
                changes["ad"] = [None, f"{item.ad_site} {item.ad_external_id}"]
        added: list[NewMessage] = []
        seq = conversation.message_count
        for message in fresh:
            seq += 1
            added.append(
                NewMessage(conversation.pk, seq, message.external_id, message.direction, message.sent_at, message.body)
            )
            if conversation.first_message_at is None or message.sent_at < conversation.first_message_at:
                conversation.first_message_at = message.sent_at
            if conversation.last_message_at is None or message.sent_at > conversation.last_message_at:
                conversation.last_message_at = message.sent_at
        if added and not created:
            changes["message_count"] = [conversation.message_count, seq]
        conversation.message_count = seq
        conversation.updated_at = self.now
        if created:
            changes.clear()
        return added

    def _touch_lead(self, lead: Lead, conversation: Conversation, added: list[NewMessage], touched: dict) -> None:
        if lead.pk not in touched and not lead._state.adding:
            self.before[lead.pk] = {name: getattr(lead, name) for name in LEAD_AUDIT_FIELDS}
        touched[lead.pk] = lead
        lead.minor_age_mentioned = lead.minor_age_mentioned or conversation.minor_age_mentioned
        lead.payment_discussed = lead.payment_discussed or conversation.payment_discussed
        lead.meeting_arranged = lead.meeting_arranged or conversation.meeting_requested
        times = [m.sent_at for m in added] or ([] if lead.first_seen_at else [self.now])
        if times:
            earliest, latest = min(times), max(times)
            if lead.first_seen_at is None or earliest < lead.first_seen_at:
                lead.first_seen_at = earliest
            if lead.last_seen_at is None or latest > lead.last_seen_at:
                lead.last_seen_at = latest

    # -- the batch

    def write(self, entries: list[tuple[int, ConversationIn]]) -> Applied:
        applied = Applied(summary={"created": [], "updated": {}, "unchanged": 0, "messages_added": 0})
        existing = {
            c.external_id: c
            for c in Conversation.objects.filter(
                source=self.source, external_id__in=[item.external_id for _, item in entries]
            )
        }
        stored_messages: dict[uuid.UUID, dict[str, Message]] = defaultdict(dict)
        if existing:
            for message in Message.objects.filter(conversation_id__in=[c.pk for c in existing.values()]):
                stored_messages[message.conversation_id][message.external_id] = message
        entries = self._without_conflicts(entries, existing, stored_messages, applied)
        identifiers = _identifiers(pair for _, item in entries for pair in item.identifiers)
        leads, lead_identifiers, identifier_leads, conversation_counts = self._leads(existing, identifiers)
        new_leads: list[Lead] = []
        new_links: list[LeadIdentifier] = []
        newly_linked: list[tuple[Lead, Identifier]] = []
        new_conversations: list[Conversation] = []
        changed_conversations: list[Conversation] = []
        new_messages: list[NewMessage] = []
        touched: dict[uuid.UUID, Lead] = {}
        snapshots: list[_Snapshotting] = []

        for index, item in entries:
            conversation = existing.get(item.external_id)
            created = conversation is None
            stored = stored_messages[conversation.pk] if conversation is not None else {}
            lead_created = False
            if conversation is None:
                lead = self._find_lead(item, identifiers, identifier_leads, leads)
                if lead is None:
                    lead = self._new_lead(item)
                    lead_created = True
                    leads[lead.pk] = lead
                    new_leads.append(lead)
                conversation = Conversation(
                    source=self.source,
                    case=self.case,
                    lead=lead,
                    external_id=item.external_id,
                    platform=item.platform,
                    bot=item.bot,
                    ad_site=item.ad_site,
                    ad_external_id=item.ad_external_id,
                    buyer=dict(item.buyer),
                )
                conversation_counts[lead.pk] += 1
                new_conversations.append(conversation)
            else:
                lead = leads[conversation.lead_id]
            links = 0
            for pair in item.identifiers:
                identifier = identifiers[pair]
                if identifier.pk in lead_identifiers[lead.pk]:
                    continue
                lead_identifiers[lead.pk].add(identifier.pk)
                identifier_leads[identifier.pk].append(lead.pk)
                new_links.append(LeadIdentifier(lead=lead, identifier=identifier, added_by=self.system))
                newly_linked.append((lead, identifier))
                self.links_added[lead.pk].append(identifier.audit_label)
                links += 1
            changes: dict[str, Any] = {}
            warnings = list(item.warnings)
            fresh = [m for m in item.messages if m.external_id not in stored]
            added = self._update_conversation(conversation, item, fresh, created, changes, warnings)
            new_messages += added
            changed = bool(added or changes or links)
            if created or changed:
                self._touch_lead(lead, conversation, added, touched)
            result: dict[str, Any] = {
                "index": index,
                "status": "created" if created else "updated" if changed else "unchanged",
                "id": str(conversation.pk),
                "lead": str(lead.pk),
                "lead_created": lead_created,
                "messages_added": len(added),
                "snapshot": None,
                "warnings": warnings,
            }
            if conversation.closed and conversation.message_count > conversation.snapshot_messages:
                snapshots.append(_Snapshotting(conversation, _lines([*stored.values(), *added]), result))
                if not created and not changed:
                    result["status"] = "updated"
                    changes["snapshot"] = True
            if result["status"] == "created":
                applied.summary["created"].append(str(conversation.pk))
            elif result["status"] == "updated":
                changed_conversations.append(conversation)
                applied.summary["updated"][str(conversation.pk)] = {**changes, "messages_added": len(added)}
            else:
                applied.summary["unchanged"] += 1
            applied.summary["messages_added"] += len(added)
            applied.results[index] = result

        self._score(touched, conversation_counts)
        evidence, custody, snapshot_rows = self._snapshots(snapshots)
        Lead.objects.bulk_create(new_leads)
        LeadIdentifier.objects.bulk_create(new_links)
        Conversation.objects.bulk_create(new_conversations)
        if changed_conversations:
            update_rows(changed_conversations, CONVERSATION_UPDATE_FIELDS)
        insert_rows(Message, [*NewMessage._fields, "created_at"], [(*m, self.now) for m in new_messages])
        new_lead_ids = {lead.pk for lead in new_leads}
        changed_leads = [lead for lead in touched.values() if lead.pk not in new_lead_ids]
        if changed_leads:
            update_rows(changed_leads, LEAD_UPDATE_FIELDS)
        EvidenceItem.objects.bulk_create(evidence)
        CustodyEvent.objects.bulk_create(custody)
        TranscriptSnapshot.objects.bulk_create(snapshot_rows)
        self._audit(new_leads, changed_leads, evidence, snapshot_rows)
        applied.summary["deconfliction_hits"] = _deconflict(self.source, self.system, newly_linked)
        applied.summary["snapshots"] = [str(item.pk) for item in evidence]
        return applied

    @staticmethod
    def _without_conflicts(
        entries: list[tuple[int, ConversationIn]],
        existing: dict[str, Conversation],
        stored_messages: dict[uuid.UUID, dict[str, Message]],
        applied: Applied,
    ) -> list[tuple[int, ConversationIn]]:
        """Reject, before anything is written, items that would change a stored message."""
        kept = []
        for index, item in entries:
            conversation = existing.get(item.external_id)
            stored = stored_messages[conversation.pk] if conversation is not None else {}
            conflicts = {
                f"messages[{n}]": [MESSAGE_CHANGED.format(external_id=m.external_id)]
                for n, m in enumerate(item.messages)
                if m.external_id in stored
                and (stored[m.external_id].direction, stored[m.external_id].sent_at, stored[m.external_id].body)
                != (m.direction, m.sent_at, m.body)
            }
            if conflicts:
                applied.results[index] = _rejected(index, conflicts)
            else:
                kept.append((index, item))
        return kept

    def _score(self, touched: dict[uuid.UUID, Lead], conversation_counts: dict[uuid.UUID, int]) -> None:
        for lead in touched.values():
            count = conversation_counts[lead.pk]
            lead.repeat_contact = count >= 2
            lead.priority_score, lead.priority_factors = scoring.lead_score(
                minor_age_mentioned=lead.minor_age_mentioned,
                payment_discussed=lead.payment_discussed,
                meeting_arranged=lead.meeting_arranged,
                conversations=count,
                last_contact=lead.last_seen_at,
                now=self.now,
            )
            lead.priority = lead.priority_override if lead.priority_override is not None else lead.priority_score
            lead.updated_at = self.now

    def _snapshots(
        self, snapshots: list[_Snapshotting]
    ) -> tuple[list[EvidenceItem], list[CustodyEvent], list[TranscriptSnapshot]]:
        if not snapshots:
            return [], [], []
        previous: dict[uuid.UUID, TranscriptSnapshot] = {}
        earlier = [s.conversation.pk for s in snapshots if s.conversation.snapshot_messages]
        if earlier:
            for snap in (
                TranscriptSnapshot.objects.filter(conversation_id__in=earlier)
                .select_related("evidence")
                .order_by("conversation_id", "number")
            ):
                previous[snap.conversation_id] = snap
        evidence, custody, rows = [], [], []
        for pending in snapshots:
            item, event, row = snapshot_objects(
                source=self.source,
                conversation=pending.conversation,
                lines=pending.lines,
                previous=previous.get(pending.conversation.pk),
                reason=SnapshotReason.CLOSED,
                collector=self.system,
                custody_actor=self.system,
                creator=self.system,
                now=self.now,
                stored=self.stored,
            )
            pending.result["snapshot"] = str(item.pk)
            evidence.append(item)
            custody.append(event)
            rows.append(row)
        return evidence, custody, rows

    def _audit(
        self,
        new_leads: list[Lead],
        changed_leads: list[Lead],
        evidence: list[EvidenceItem],
        snapshot_rows: list[TranscriptSnapshot],
    ) -> None:
        source = self.source
        common = {
            "actor": None,
            "actor_name": source.actor_name,
            "agency_id": source.agency_id,
            "case_id": self.case.pk,
        }
        entries: list[dict[str, Any]] = []
        for lead in new_leads:
            changes = {
                name: CHANGED if name in LEAD_SEALED_FIELDS else [None, getattr(lead, name)]
                for name in LEAD_AUDIT_FIELDS
                if getattr(lead, name) not in (None, "", False)
            }
            changes["identifiers"] = [[], sorted(self.links_added[lead.pk])]
            entries.append({"action": AuditAction.LEAD_CREATED, "target": lead, "changes": changes, **common})
        for lead in changed_leads:
            before = self.before[lead.pk]
            changes = {
                name: CHANGED if name in LEAD_SEALED_FIELDS else [before[name], getattr(lead, name)]
                for name in LEAD_AUDIT_FIELDS
                if before[name] != getattr(lead, name)
            }
            if self.links_added[lead.pk]:
                changes["identifiers_added"] = sorted(self.links_added[lead.pk])
            if changes:
                entries.append({"action": AuditAction.LEAD_UPDATED, "target": lead, "changes": changes, **common})
        for item, row in zip(evidence, snapshot_rows, strict=True):
            entries.append(
                {
                    "action": AuditAction.EVIDENCE_CREATED,
                    "target": item,
                    "changes": _evidence_changes(item, row),
                    **common,
                }
            )
        audit_record_many(entries)


def _evidence_changes(item: EvidenceItem, row: TranscriptSnapshot) -> dict[str, Any]:
    return {
        "kind": [None, item.kind],
        "sha256": [None, item.sha256],
        "size_bytes": [None, item.size_bytes],
        "lead": [None, str(item.lead_id)],
        "conversation": str(row.conversation_id),
        "snapshot": row.number,
        "previous": str(row.previous.evidence_id) if row.previous else None,
    }


def snapshot_objects(
    *,
    source: IngestSource,
    conversation: Conversation,
    lines: list[transcript.TranscriptLine],
    previous: TranscriptSnapshot | None,
    reason: str,
    collector: AbstractBaseUser,
    custody_actor: AbstractBaseUser,
    creator: AbstractBaseUser,
    now: datetime,
    stored: list[str],
) -> tuple[EvidenceItem, CustodyEvent, TranscriptSnapshot]:
    """Render the transcript, store its bytes in the evidence storage (the name goes into
    `stored`, so a rollback can remove it) and build, unsaved, the evidence item, its
    `collected` custody event and the snapshot row. Sets `conversation.snapshot_messages`.
    The bot collected the content (`collector`: the system account); `creator` is whoever
    made the item (the system account on close, the investigator on request)."""
    number = previous.number + 1 if previous else 1
    header = transcript.TranscriptHeader(
        conversation_id=str(conversation.pk),
        operation=source.case.number,
        source=source.name,
        platform=conversation.platform,
        bot=conversation.bot,
        external_id=conversation.external_id,
        ad_site=conversation.ad_site,
        ad_external_id=conversation.ad_external_id,
        buyer=conversation.buyer,
        snapshot=number,
        previous_sha256=previous.evidence.sha256 if previous else "",
    )
    content = transcript.render(header, lines)
    sha256 = hashlib.sha256(content).hexdigest()
    name = storages["evidence"].save(f"{source.agency.code}/{uuid.uuid4().hex}", ContentFile(content))
    stored.append(name)
    description = (
        f"Chat transcript of conversation {conversation.platform}:{conversation.external_id} from ingest source "
        f"{source.name}, snapshot {number} ({len(lines)} messages)"
    )
    if previous is not None:
        description += (
            f"; follows snapshot {previous.number} (evidence {previous.evidence_id}, sha256 {previous.evidence.sha256})"
        )
    item = EvidenceItem(
        id=uuid.uuid4(),
        case_id=conversation.case_id,
        lead_id=conversation.lead_id,
        kind=EvidenceKind.CHAT_TRANSCRIPT,
        description=description + ".",
        content_name=name,
        original_filename=f"transcript-{conversation.pk}-{number}.txt",
        sha256=sha256,
        size_bytes=len(content),
        media_type=transcript.MEDIA_TYPE,
        collected_at=now,
        collected_by=collector,
        created_by=creator,
    )
    event = CustodyEvent(
        evidence=item,
        action=CustodyAction.COLLECTED,
        actor=custody_actor,
        from_party=source.actor_name,
        to_party=EVIDENCE_LOCATION,
        location="intercept ingest",
        occurred_at=now,
        note=(
            f"Transcript snapshot {number} of conversation {conversation.external_id} "
            f"({'the conversation closed' if reason == SnapshotReason.CLOSED else 'requested by an investigator'})."
        ),
        details={
            "sha256": sha256,
            "size_bytes": len(content),
            "conversation": str(conversation.pk),
            "snapshot": number,
            "message_count": len(lines),
        },
    )
    row = TranscriptSnapshot(
        conversation=conversation,
        number=number,
        evidence=item,
        previous=previous,
        message_count=len(lines),
        reason=reason,
        requested_by=creator if reason == SnapshotReason.REQUESTED else None,
    )
    conversation.snapshot_messages = len(lines)
    return item, event, row


def _deconflict(source: IngestSource, system: AbstractBaseUser, linked: list[tuple[Lead, Identifier]]) -> int:
    """Identifiers newly put on the operation's leads that already sit on another agency's
    case: a DeconflictionHit each (per identifier and matched case), audited on both sides
    as the case domain does (deconfliction.hit, deconfliction.notified)."""
    identifier_ids = {identifier.pk for _, identifier in linked}
    if not identifier_ids:
        return 0
    links = (
        LeadIdentifier.objects.filter(identifier_id__in=identifier_ids)
        .exclude(lead__case__agency_id=source.agency_id)
        .select_related("identifier", "lead__case__agency")
        .order_by("identifier_id", "lead__case_id")
    )
    seen: set[tuple[int, uuid.UUID]] = set()
    entries: list[dict[str, Any]] = []
    for link in links:
        matched = link.lead.case
        if (link.identifier_id, matched.pk) in seen:
            continue
        seen.add((link.identifier_id, matched.pk))
        hit = DeconflictionHit.objects.create(
            identifier=link.identifier,
            requested_by=system,
            requesting_agency_id=source.agency_id,
            requesting_case=source.case,
            matched_case=matched,
            matched_agency=matched.agency,
        )
        value = link.identifier.audit_label
        entries.append(
            {
                "action": AuditAction.DECONFLICTION_HIT,
                "actor": None,
                "actor_name": source.actor_name,
                "agency_id": source.agency_id,
                "target": hit,
                "case_id": source.case_id,
                "changes": {"identifier": value, "matched_agency": matched.agency.code},
            }
        )
        entries.append(
            {
                "action": AuditAction.DECONFLICTION_NOTIFIED,
                "actor": None,
                "actor_name": source.actor_name,
                "agency_id": matched.agency_id,
                "target": hit,
                "case_id": matched.pk,
                "changes": {
                    "identifier": value,
                    "requesting_agency_id": source.agency_id,
                    "requested_by": source.actor_name,
                },
            }
        )
    audit_record_many(entries)
    return len(seen)


# ---------------------------------------------------------------- transcript snapshots on request


@transaction.atomic
def _snapshot_locked(*, actor: AbstractBaseUser, conversation: Conversation, stored: list[str]) -> tuple[Any, bool]:
    _lock("conversations", conversation.case)
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("case", "source__agency", "source__case")
        .get(pk=conversation.pk)
    )
    if conversation.case.status == CaseStatus.CLOSED:
        raise Conflict(SNAPSHOT_CASE_CLOSED)
    if conversation.message_count == 0:
        raise Conflict(SNAPSHOT_EMPTY)
    latest = (
        TranscriptSnapshot.objects.filter(conversation=conversation)
        .select_related("evidence")
        .order_by("-number")
        .first()
    )
    if latest is not None and latest.message_count == conversation.message_count:
        return latest, False
    now = timezone.now()
    item, event, row = snapshot_objects(
        source=conversation.source,
        conversation=conversation,
        lines=_lines(conversation.messages.all()),
        previous=latest,
        reason=SnapshotReason.REQUESTED,
        collector=system_user(),
        custody_actor=actor,
        creator=actor,
        now=now,
        stored=stored,
    )
    item.save(force_insert=True)
    event.save()
    row.save()
    conversation.updated_at = now
    conversation.save(update_fields=["snapshot_messages", "updated_at"])
    audit_record(
        action=AuditAction.EVIDENCE_CREATED,
        actor=actor,
        agency_id=conversation.case.agency_id,
        target=item,
        case_id=conversation.case_id,
        changes=_evidence_changes(item, row),
    )
    audit_record(
        action=InterceptAction.SNAPSHOT_TAKEN,
        actor=actor,
        agency_id=conversation.case.agency_id,
        target=conversation,
        case_id=conversation.case_id,
        changes={"snapshot": row.number, "evidence": str(item.pk), "message_count": row.message_count},
    )
    return row, True


def conversation_snapshot(*, actor: AbstractBaseUser, conversation: Conversation) -> tuple[TranscriptSnapshot, bool]:
    """Snapshot the transcript now (change_case on the conversation's case). A conversation
    that has not grown since its latest snapshot returns that one (created False): a
    snapshot is never replaced or duplicated."""
    if not case_selectors.has_case_perm(actor, conversation.case, CasePerm.CHANGE):
        raise PermissionDenied()
    stored: list[str] = []
    try:
        return _snapshot_locked(actor=actor, conversation=conversation, stored=stored)
    except BaseException:
        _discard(stored)
        raise


# ---------------------------------------------------------------- ads

AD_CONTENT_FIELDS = ("url", "title", "posted_at", "city", "region", "phones", "text")


def ads_ingest(*, source: IngestSource, items: list[Any]) -> list[dict[str, Any]]:
    """Accept or reject each ad item on its own; an ad already captured for the operation
    (same site and external id) is `unchanged`, or `updated` when its content changed. Its
    phones become shared Identifier rows linked to the ad (links are never removed)."""
    case = source.case
    _check_case_open(case)
    now = timezone.now()
    normalize = Normalizer()
    parsed, results = _parse_batch(
        items, lambda raw: parse_ad(raw, now=now, normalize=normalize), lambda item: (item.site, item.external_id)
    )

    def apply(entries: list[tuple[int, Any]], stored: list[str]) -> Applied:
        return _write_ads(source, now, entries)

    return _finish(source, "ads", items, parsed, results, apply)


def _write_ads(source: IngestSource, now: datetime, entries: list[tuple[int, AdIn]]) -> Applied:
    applied = Applied(summary={"created": [], "updated": {}, "unchanged": 0})
    wanted = {(item.site, item.external_id) for _, item in entries}
    existing = {
        (ad.site, ad.external_id): ad
        for ad in Ad.objects.filter(
            case_id=source.case_id,
            site__in={site for site, _ in wanted},
            external_id__in={ext for _, ext in wanted},
        )
        if (ad.site, ad.external_id) in wanted
    }
    linked = set(
        AdPhone.objects.filter(ad_id__in=[ad.pk for ad in existing.values()]).values_list("ad_id", "identifier_id")
    )
    identifiers = _identifiers((IdentifierKind.PHONE.value, phone) for _, item in entries for phone in item.phones)
    new_ads: list[Ad] = []
    changed_ads: list[Ad] = []
    new_links: list[AdPhone] = []
    for index, item in entries:
        values = {
            "url": item.url,
            "title": item.title,
            "posted_at": item.posted_at,
            "city": item.city,
            "region": item.region,
            "phones": item.phones_raw,
            "text": item.text,
        }
        ad = existing.get((item.site, item.external_id))
        if ad is None:
            ad = Ad(
                case_id=source.case_id, source=source, site=item.site, external_id=item.external_id, first_seen_at=now
            )
            for name, value in values.items():
                setattr(ad, name, value)
            new_ads.append(ad)
            status = "created"
            applied.summary["created"].append(str(ad.pk))
        else:
            changes = {name: [getattr(ad, name), value] for name, value in values.items() if getattr(ad, name) != value}
            if changes:
                for name, value in values.items():
                    setattr(ad, name, value)
                ad.updated_at = now
                changed_ads.append(ad)
                status = "updated"
                applied.summary["updated"][str(ad.pk)] = changes
            else:
                status = "unchanged"
                applied.summary["unchanged"] += 1
        for phone in item.phones:
            identifier = identifiers[(IdentifierKind.PHONE.value, phone)]
            if (ad.pk, identifier.pk) not in linked:
                linked.add((ad.pk, identifier.pk))
                new_links.append(AdPhone(ad=ad, identifier=identifier))
        applied.results[index] = {
            "index": index,
            "status": status,
            "id": str(ad.pk),
            "phones": item.phones,
            "warnings": item.warnings,
        }
    Ad.objects.bulk_create(new_ads, batch_size=1000)
    if changed_ads:
        update_rows(changed_ads, [*AD_CONTENT_FIELDS, "updated_at"])
    AdPhone.objects.bulk_create(new_links, batch_size=2000)
    return applied


# ---------------------------------------------------------------- keeping priorities current


def leads_rescore(*, case: Case) -> int:
    """Recompute the priority of the operation's bot leads as of now (the recency factor
    fades as days pass); returns how many changed, each audited as lead.updated."""
    now = timezone.now()
    with transaction.atomic():
        _lock("conversations", case)
        leads = list(
            Lead.objects.filter(case=case, source=LeadSource.INTERCEPT_BOT)
            .annotate(conversation_count=Count("conversations"))
            .order_by("pk")
        )
        changed = []
        entries: list[dict[str, Any]] = []
        for lead in leads:
            before = (lead.priority_score, lead.priority_factors, lead.priority)
            score, factors = scoring.lead_score(
                minor_age_mentioned=lead.minor_age_mentioned,
                payment_discussed=lead.payment_discussed,
                meeting_arranged=lead.meeting_arranged,
                conversations=lead.conversation_count,
                last_contact=lead.last_seen_at,
                now=now,
            )
            priority = lead.priority_override if lead.priority_override is not None else score
            if (score, factors, priority) == before:
                continue
            lead.priority_score, lead.priority_factors, lead.priority, lead.updated_at = score, factors, priority, now
            changed.append(lead)
            entries.append(
                {
                    "action": AuditAction.LEAD_UPDATED,
                    "actor": None,
                    "actor_name": "system:rescore",
                    "agency_id": case.agency_id,
                    "target": lead,
                    "case_id": case.pk,
                    "changes": {"priority_score": [before[0], score], "priority": [before[2], priority]},
                }
            )
        if changed:
            update_rows(changed, ["priority_score", "priority_factors", "priority", "updated_at"])
            audit_record_many(entries)
    return len(changed)
