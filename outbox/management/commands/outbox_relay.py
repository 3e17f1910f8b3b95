"""`manage.py outbox_relay`: the long-running relay of the task outbox. It needs the database
only, so it keeps trying while the broker is down and publishes the backlog as soon as the
broker is back. Several may run at once (rows are locked while they are published)."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from outbox import services
from outbox.selectors import outbox_backlog

PURGE_EVERY = 3600.0


class Command(BaseCommand):
    help = "Publish pending outbox rows to the Celery broker, every --interval seconds."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes")
        parser.add_argument("--batch", type=int, default=500, help="rows per pass at most")
        parser.add_argument(
            "--once", action="store_true", help="publish what is pending and exit (an error if rows remain)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self._once(options["batch"])
            return
        stop = False

        def request_stop(signum: int, frame: Any) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        next_purge = time.monotonic()
        while not stop:
            close_old_connections()
            try:
                result = services.outbox_relay(limit=options["batch"])
                if time.monotonic() >= next_purge:
                    services.outbox_purge()
                    next_purge = time.monotonic() + PURGE_EVERY
            except DatabaseError as exc:  # the database restarts too; try again next pass
                self.stderr.write(f"outbox relay: database error: {exc.__class__.__name__}: {exc}")
                result = None
            if result is None or result.broker_down or result.sent < options["batch"]:
                time.sleep(options["interval"])

    def _once(self, batch: int) -> None:
        sent = failed = 0
        while True:
            result = services.outbox_relay(limit=batch)
            sent, failed = sent + result.sent, failed + result.failed
            if result.broker_down or result.sent < batch:
                break
        backlog = outbox_backlog()
        summary = f"sent {sent}, failed {failed}, pending {backlog.pending}"
        if backlog.pending:
            raise CommandError(summary)
        self.stdout.write(summary)
