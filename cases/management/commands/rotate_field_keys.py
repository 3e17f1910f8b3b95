"""`manage.py rotate_field_keys [--reindex]`: re-encrypt personal data under the current key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from caseapi import crypto
from cases import services


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted column under the first key of FIELD_ENCRYPTION_KEYS, in batches "
        "(one transaction each; safe to run again or to resume). Run it after putting a new key first "
        "in the ring; drop the old key only once it has finished. --reindex also recomputes the "
        "identifiers' blind indexes under the current BLIND_INDEX_KEY (needed after changing that key)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reindex", action="store_true", help="recompute the blind indexes too")
        parser.add_argument("--batch", type=int, default=1000, help="rows per transaction (default 1000)")

    def handle(self, *args: Any, reindex: bool, batch: int, **options: Any) -> None:
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        try:
            changes = services.field_keys_rotate(reindex=reindex, batch=batch)
        except crypto.DecryptionError as exc:
            raise CommandError(f"{exc}. Put every key still in use back in FIELD_ENCRYPTION_KEYS.") from exc
        for column, count in changes["resealed"].items():
            self.stdout.write(f"{column}: {count} re-encrypted under key {changes['key']}")
        for column, count in changes.get("reindexed", {}).items():
            self.stdout.write(f"{column}: {count} recomputed")
        self.stdout.write(self.style.SUCCESS("Done."))
