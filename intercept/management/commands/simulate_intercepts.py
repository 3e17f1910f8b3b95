"""`manage.py simulate_intercepts --source NAME --ads 32000 --conversations 5000 --days 60
--seed 1 [--url URL]`: synthetic ads and bot conversations (intercept.simulation) for an
ingest source, through the service layer, or through the signed HTTP endpoints of the server
at --url (the secret from --secret or the INGEST_SECRET environment variable). A progress bar
goes to stderr; the totals to stdout."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.utils import timezone

from intercept import services, signing, simulation
from intercept.models import IngestSource

NO_SOURCE = "No ingest source named {name}."
NO_SECRET = "--url needs the source's secret: --secret, or the INGEST_SECRET environment variable."  # noqa: S105 - a message
HTTP_FAILED = "POST {path} answered {status}: {body}"


class Progress:
    """A one-line text progress bar on a stream (carriage returns; a newline at the end)."""

    def __init__(self, stream: OutputWrapper, label: str, total: int, width: int = 30) -> None:
        self.stream, self.label, self.total, self.width = stream, label, total, width
        self.done = 0
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self._draw()

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n
            self._draw()

    def _draw(self) -> None:
        filled = int(self.width * self.done / self.total) if self.total else self.width
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label:<14} [{bar}] {self.done}/{self.total} ({rate:,.0f}/s)", ending="")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("")
        self.stream.flush()


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--source", required=True, help="the ingest source's name")
        parser.add_argument("--ads", type=int, default=32000, help="distinct ads (about 5%% more captures)")
        parser.add_argument("--conversations", type=int, default=5000, help="distinct conversations")
        parser.add_argument("--days", type=int, default=60, help="the period the data spans, ending --end")
        parser.add_argument("--seed", type=int, default=1, help="same seed and end, same data")
        parser.add_argument("--end", help="end of the period, ISO 8601 (default: now)")
        parser.add_argument("--batch", type=int, default=500, help="items per request (at most 1000)")
        parser.add_argument("--url", help="push over HTTP to this server, e.g. http://127.0.0.1:8000")
        parser.add_argument("--secret", help="the source's secret (default: $INGEST_SECRET)")
        parser.add_argument("--source-id", help="with --url: the source's id, when it is not in the local database")
        parser.add_argument("--clients", type=int, default=4, help="with --url: concurrent connections")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["batch"] <= 1000:
            raise CommandError("--batch is 1 to 1000.")
        end = datetime.fromisoformat(options["end"]) if options["end"] else timezone.now()
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
        plan = simulation.Plan(
            ads=options["ads"],
            conversations=options["conversations"],
            days=options["days"],
            seed=options["seed"],
            end=end,
        )
        data = simulation.generate(plan)
        send = self._http_sender(options) if options["url"] else self._service_sender(options["source"])
        started = time.monotonic()
        ads = self._push("ads", data.ads, options, send)
        ads += self._push("ads", data.recaptures, options, send, label="recaptures")
        conversations = self._push("conversations", data.conversations, options, send)
        conversations += self._push("conversations", data.updates, options, send, label="updates")
        seconds = time.monotonic() - started
        self.stdout.write(
            f"ads: {len(data.ads) + len(data.recaptures)} sent ({data.unique_ads} distinct): {self._counts(ads)}\n"
            f"conversations: {len(data.conversations) + len(data.updates)} sent ({len(data.updates)} second pushes), "
            f"{data.messages} messages: {self._counts(conversations)}\n"
            f"in {seconds:.1f} s"
        )

    @staticmethod
    def _counts(counter: Counter) -> str:
        return ", ".join(f"{n} {status}" for status, n in sorted(counter.items())) or "nothing"

    def _push(
        self,
        kind: str,
        items: list[dict[str, Any]],
        options: dict[str, Any],
        send: Callable[[str, list], list],
        label: str = "",
    ) -> Counter:
        counts: Counter = Counter()
        progress = Progress(self.stderr, label or kind, len(items))
        lock = threading.Lock()

        def one(batch: list[dict[str, Any]]) -> None:
            results = send(kind, batch)
            with lock:
                counts.update(r["status"] for r in results)
            progress.advance(len(batch))

        chunks = simulation.batches(items, options["batch"])
        workers = options["clients"] if options["url"] else 1
        try:
            if workers > 1:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    list(pool.map(one, chunks))
            else:
                for chunk in chunks:
                    one(chunk)
        finally:
            progress.close()
        return counts

    def _service_sender(self, name: str) -> Callable[[str, list], list]:
        source = IngestSource.objects.select_related("case", "agency").filter(name=name).first()
        if source is None:
            raise CommandError(NO_SOURCE.format(name=name))
        ingest = {"ads": services.ads_ingest, "conversations": services.conversations_ingest}
        return lambda kind, batch: ingest[kind](source=source, items=batch)

    def _http_sender(self, options: dict[str, Any]) -> Callable[[str, list], list]:
        secret = options["secret"] or os.environ.get("INGEST_SECRET", "")
        if not secret:
            raise CommandError(NO_SECRET)
        source_id = options["source_id"]
        if not source_id:
            source = IngestSource.objects.filter(name=options["source"]).first()
            if source is None:
                raise CommandError(NO_SOURCE.format(name=options["source"]))
            source_id = str(source.pk)
        base = options["url"].rstrip("/")

        def send(kind: str, batch: list) -> list:
            body = json.dumps({"items": batch}).encode()
            path = f"/api/ingest/{kind}/"
            headers = {"Content-Type": "application/json", **signing.signed_headers(source_id, secret, body)}
            request = urllib.request.Request(base + path, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - operator-given URL
                    return json.loads(response.read())["results"]
            except urllib.error.HTTPError as exc:
                raise CommandError(HTTP_FAILED.format(path=path, status=exc.code, body=exc.read()[:300])) from exc

        return send
