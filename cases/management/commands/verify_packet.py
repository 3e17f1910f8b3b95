"""`manage.py verify_packet PACKET.zip [--public-key KEY]`: run the packet verifier (the same
program as the packet's verify_packet.py) and exit non-zero when any check fails."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import signing
from cases.packets import verify_packet


class Command(BaseCommand):
    help = (
        "Verify an export packet: safe ZIP paths, every file against the signed manifest, every evidence "
        "hash, every audit event's inclusion proof against the signed checkpoint. One line per check."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("packet", help="the packet ZIP file")
        parser.add_argument(
            "--public-key",
            help="the agency's verifier key text (<name>+<hash>+<key>) or a file holding it; "
            "default: this deployment's own audit verifier key",
        )

    def handle(self, *args: Any, packet: str, public_key: str | None, **options: Any) -> None:
        if public_key:
            try:
                key_text = verify_packet.read_key_argument(public_key)
            except OSError as exc:
                raise CommandError(f"cannot read the public key file: {exc.strerror}") from exc
        else:
            key_text = signing.verifier().text()
            self.stdout.write(f"Using this deployment's verifier key {key_text}")
        if not verify_packet.verify(packet, key_text, emit=self.stdout.write):
            raise CommandError("the packet did not verify", returncode=1)
