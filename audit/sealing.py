"""The sequencer: seals committed, unsealed audit events in batches.

Writers only INSERT events (no shared row is touched, so audited writes never queue behind
each other). One sealer at a time — the lock is the ChainHead row, taken FOR UPDATE — gives
each committed event the next gapless sequence number, its previous hash and entry hash, and
stores every Merkle subtree the batch completes. An event whose transaction is still open is
not visible yet and is sealed by a later batch; a rolled-back one never existed. Seal order
is therefore commit order, not id order.

The database trigger on audit_auditevent allows exactly this UPDATE (chain fields of an
unsealed row) and nothing else.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import chain, tree
from audit.models import AuditEvent, ChainHead

logger = logging.getLogger(__name__)

_SEAL_SQL = (
    "UPDATE audit_auditevent SET seq = %s, prev_hash = %s, entry_hash = %s, sealed_at = %s "
    "WHERE id = %s AND seq IS NULL"
)
_SEAL_ARRAYS_SQL = (
    "UPDATE audit_auditevent AS e SET seq = v.seq, prev_hash = v.prev, entry_hash = v.entry, sealed_at = %s "
    "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[]) AS v(seq, prev, entry, id) "
    "WHERE e.id = v.id AND e.seq IS NULL"
)
_NODE_SQL = 'INSERT INTO audit_treenode (level, "index", hash) VALUES (%s, %s, %s)'
_NODES_ARRAYS_SQL = (
    'INSERT INTO audit_treenode (level, "index", hash) SELECT * FROM unnest(%s::smallint[], %s::bigint[], %s::text[])'
)
_ENTRY_FIELDS = (
    "id",
    "created_at",
    "actor_id",
    "actor_name",
    "agency_id",
    "action",
    "target_type",
    "target_id",
    "case_id",
    "changes",
    "request_id",
    "ip",
    "user_agent",
)


def seal_batch(limit: int | None = None) -> int:
    """Seal up to `limit` pending events in one transaction; returns how many."""
    limit = limit or settings.AUDIT_SEAL_BATCH
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().get(pk=ChainHead.SINGLETON)
        rows = list(AuditEvent.objects.filter(seq__isnull=True).order_by("id").values(*_ENTRY_FIELDS)[:limit])
        if not rows:
            return 0
        compact = tree.CompactRange(head.size, tree.border(head.size))
        prev = head.last_hash
        updates = []
        nodes: list[tuple[int, int, str]] = []
        for row in rows:
            seq = compact.size + 1
            digest = chain.entry_hash(prev, chain.canonical_entry({**row, "seq": seq}))
            updates.append((seq, prev, digest, row["id"]))
            nodes.extend((level, index, h.hex()) for level, index, h in compact.append(tree.leaf_of(digest)))
            prev = digest
        _write_seals(updates, nodes, timezone.now())
        head.size = compact.size
        head.last_hash = prev
        head.save(update_fields=["size", "last_hash", "updated_at"])
        return len(rows)


def _write_seals(updates: list[tuple], nodes: list[tuple[int, int, str]], sealed_at: object) -> None:
    """Seal the batch and store its subtrees: on PostgreSQL one statement each, with the
    values as arrays; row by row elsewhere."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            seqs, prevs, entries, ids = (list(column) for column in zip(*updates, strict=True))
            cursor.execute(_SEAL_ARRAYS_SQL, [sealed_at, seqs, prevs, entries, ids])
            if cursor.rowcount != len(updates):
                raise RuntimeError(f"sealed {cursor.rowcount} of {len(updates)} events; the batch is rolled back")
            if nodes:
                levels, indexes, hashes = (list(column) for column in zip(*nodes, strict=True))
                cursor.execute(_NODES_ARRAYS_SQL, [levels, indexes, hashes])
            return
        cursor.executemany(_SEAL_SQL, [(seq, prev, entry, sealed_at, pk) for seq, prev, entry, pk in updates])
        cursor.executemany(_NODE_SQL, nodes)


def seal_pending(max_batches: int = 1000) -> int:
    """Seal everything committed so far (batch after batch); returns how many were sealed."""
    total = 0
    for _ in range(max_batches):
        sealed = seal_batch()
        total += sealed
        if sealed == 0:
            break
    return total


def sealing_lag() -> timedelta:
    """Age of the oldest unsealed event (zero when everything is sealed)."""
    oldest = AuditEvent.objects.filter(seq__isnull=True).order_by("id").values_list("created_at", flat=True).first()
    return timezone.now() - oldest if oldest else timedelta(0)
