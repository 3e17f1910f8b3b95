"""`manage.py audit_checkpoint`: seal what is committed and sign a checkpoint now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.services import checkpoint_create


class Command(BaseCommand):
    help = "Seal pending audit events and sign a checkpoint over the whole log (printed)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = checkpoint_create(actor=None)
        if not result.created:
            self.stderr.write(f"no new events since the checkpoint at size {result.checkpoint.tree_size}")
        self.stdout.write(result.checkpoint.signed_note, ending="")
