"""`manage.py audit_sequencer`: the long-running sealer (run exactly one per deployment; a
second one only waits on the chain head lock). Seals every `--interval` seconds, at once
when it sealed a full batch."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from audit import sealing
from audit.services import checkpoint_create


class Command(BaseCommand):
    help = "Seal committed audit events continuously and sign a checkpoint every --checkpoint-every seconds."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=0.2, help="seconds between sealing passes")
        parser.add_argument("--checkpoint-every", type=float, default=60.0, help="seconds between checkpoints")
        parser.add_argument("--once", action="store_true", help="seal what is pending, checkpoint, and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = False

        def request_stop(signum: int, frame: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        next_checkpoint = time.monotonic() + options["checkpoint_every"]
        while True:
            close_old_connections()
            sealed = sealing.seal_batch()
            if options["once"]:
                sealing.seal_pending()
                checkpoint_create(actor=None)
                return
            if time.monotonic() >= next_checkpoint:
                checkpoint_create(actor=None)
                next_checkpoint = time.monotonic() + options["checkpoint_every"]
            if stop:
                return
            if sealed < settings.AUDIT_SEAL_BATCH:
                time.sleep(options["interval"])
