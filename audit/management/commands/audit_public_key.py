"""`manage.py audit_public_key`: print the checkpoint verifier key (signed-note form)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from audit.signing import verifier


class Command(BaseCommand):
    help = "Print the verifier key of audit checkpoints: <name>+<key hash>+<base64 key>."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(verifier().text())
