"""`manage.py verify_audit`: recompute the chain and the tree, check every checkpoint; exit 1
and name the first bad sequence number on any failure."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log: chain, Merkle tree, signed checkpoints and their consistency."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_verify(actor=None)
        for problem in result.problems:
            self.stderr.write(f"FAIL {problem}")
        summary = f"checked {result.checked} events; latest checkpoint size {result.checkpoint_size}"
        if not result.ok:
            raise CommandError(f"audit log verification failed: first bad seq {result.first_bad_seq}; {summary}")
        self.stdout.write(f"ok: {summary}")
