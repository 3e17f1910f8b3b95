"""Load-and-soak test on PostgreSQL: 16 clients mix reads, writes, signed ingest and packet
builds against gunicorn, a real Celery worker on Redis and the audit sequencer, for minutes.

The clients (threads of this process, one keep-alive connection each; the server does far
more work per request than they do, and this process's CPU share is printed to show it):

- investigators (most clients): case list, lead list, lead detail, evidence list and
  conversation list reads; lead creates (shared and own handles, so identifiers collide),
  PATCHes of their own leads, evidence references and custody events on their own items;
- an auditor: agency-wide and per-case audit event lists, the latest checkpoint, and now and
  then a full verification over the API (which must answer ok);
- intercept bots (one ingest source each): signed batches of ads, recaptures, conversations
  and second pushes from `intercept.simulation` (new data for every chunk, buyers shared);
- packet clerks: a fresh small case per round (a lead, a stored transcript, a reference),
  a handoff drafted and submitted by the case lead, approved by the supervisor (the second
  person), acknowledged by the prosecutor, who requests a packet, polls it, downloads it and
  accepts. Only the HTTP API is used: how the build gets to the worker is the server's
  business (an outbox relay is started too when the deployment has `outbox_relay`).

Every write answered 2xx is recorded with what came back (ids, values); afterwards:

- soak_5xx: answers >= 500 (goal 0);
- soak_unexpected: other answers than the one each call expects, transport errors, ingest
  items rejected, an audit verification answering not ok (goal 0);
- soak_server_log_errors: tracebacks, ERROR or CRITICAL lines and worker timeouts in the logs
  of gunicorn, the Celery worker, the sequencer (and the relay) (goal 0);
- soak_lost_writes: acknowledged writes missing from the database or not as acknowledged
  (the last PATCH of each lead is its stored value, custody events, evidence hashes, ingested
  conversations with at least the messages acknowledged, ads, cases, handoffs accepted);
- soak_unaudited_writes: acknowledged creates (and every lead PATCH) without their audit event;
- soak_packets_ok_ratio: packets requested that ended ready, were built exactly once (one
  build start, one `packet.built` event, attempts 1), downloaded with the SHA-256 the status
  gave, and pass the packet's own standalone verifier (goal 1);
- soak_seal_catchup_seconds: once the load stops, until the sequencer has sealed everything;
- soak_audit_verifies: `manage.py verify_audit` passes afterwards (goal 1);
- soak_rss_growth_max: for each gunicorn worker, the Celery worker (main and pool child), the
  sequencer (and the relay), RSS is sampled every few seconds; growth is the median RSS of the
  last quarter of the load over the median of the second quarter (the first quarter is
  warm-up: imports, caches, allocator arenas filling). A leak proportional to the work would
  grow the last quarter by as much as the middle half added; 1.10 leaves room for allocator
  noise without letting a steady leak through (goal <= 1.10). Workers are not recycled
  (GUNICORN_MAX_REQUESTS=0), so a leak cannot hide behind restarts; soak_process_restarts
  counts any worker process replaced during the load (goal 0);
- soak_requests_per_second: every HTTP answer over the load's wall time (a request is often
  heavy: an ingest batch of 15 conversations, a lead with deconfliction); a floor that only
  catches a collapse on a 2-core machine shared with other work (goal >= 3);
- soak_throughput_q4_over_q2: answers in the last quarter of the load over those in the
  second, as tables and the audit log grow (goal >= 0.8; on a shared machine, the neighbours'
  load moves it too, and --quick's 5 s quarters say little).

A figure that misses prints the requests, log lines and records behind it.

    python bench/soak.py [--quick] [--minutes 5] [--clients 16] [--broker redis://127.0.0.1:6379/14]
        [--db-prefix caseapi_bench_soak] [--keep-logs DIR]

--quick runs the load for 20 s (the whole run stays under a minute on an idle machine);
the default is 5 minutes. The broker's Redis database is emptied first: give the soak its own.
It sets itself up: a throwaway PostgreSQL database, a temporary folder for evidence, packets
and checkpoints, removed afterwards (with --keep-logs the server, worker and sequencer logs
are copied there first).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (  # noqa: E402
    ROOT,
    background_logged,
    base_env,
    celery_worker,
    child_pids,
    command_line,
    django_script,
    figure,
    gunicorn,
    manage,
    postgres_database,
    rss_kib,
    write_signing_key,
)
from intercept import signing, simulation  # noqa: E402

PASSWORD = "soak-password-long-enough-1"  # noqa: S105 - a throwaway database's users
DEFAULT_BROKER = "redis://127.0.0.1:6379/14"
PACKET_POLL_SECONDS = 0.5
PACKET_TIMEOUT_SECONDS = 300.0
REQUEST_TIMEOUT_SECONDS = 120.0
IDLE_RECONNECT_SECONDS = 3.0  # below gunicorn's keep-alive (5 s): never send on a socket it is closing
SAMPLES_KEPT = 20
RSS_GROWTH_GOAL = 1.10
THROUGHPUT_FLOOR = 3.0
THROUGHPUT_DRIFT_GOAL = 0.8
SERVER_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b|WORKER TIMEOUT")
CHAT = b"buyer: how much for an hour\nbot: 200\nbuyer: ok, where do we meet\n" * 40

SEED = r"""
from audit.sealing import seal_pending
from audit.services import checkpoint_create
from cases import services
from cases.models import Role, TeamRole
from cases.services import auth_login
from django.test import override_settings
from intercept import services as intercept
password = os.environ["SOAK_PASSWORD"]
# The server only sees the tokens issued here: a fast hasher spares ~40 Argon2 hashes.
override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]).enable()
agency, _ = services.agency_ensure(code="SOAK", name="Soak County Sheriff", kind="law_enforcement")
office, _ = services.agency_ensure(code="SOAKSA", name="Soak State Attorney", kind="prosecutor")

def person(username, agency, role, first, last):
    user, _ = services.user_ensure(username=username, agency=agency, role=role, password=password,
                                   first_name=first, last_name=last)
    return user, auth_login(username=username, password=password).key

investigators = [person(f"soak-inv{n}", agency, Role.INVESTIGATOR, "Ines", f"Vestigator{n}")
                 for n in range(int(os.environ["SOAK_INVESTIGATORS"]))]
supervisor = person("soak-sup", agency, Role.SUPERVISOR, "Sue", "Pervisor")
auditor = person("soak-aud", agency, Role.AUDITOR, "Otto", "Ditor")
prosecutor = person("soak-pros", office, Role.PROSECUTOR, "Pia", "Secutor")
owner = investigators[0][0]
op = services.case_create(actor=owner, title="Soak operation", kind="operation", summary="Seeded by bench/soak.py.")
for user, _ in investigators[1:]:
    services.team_member_set(actor=owner, case=op, user=user, role=TeamRole.INVESTIGATOR)
leads = [
    str(services.lead_create(actor=owner, case=op, display_name=f"Seeded buyer {n}",
                             identifiers=[{"kind": "handle", "value": f"@soak_seed_{n}"}])[0].pk)
    for n in range(20)
]
sources = []
for n in range(int(os.environ["SOAK_BOTS"])):
    issued = intercept.ingest_source_create(actor=None, name=f"soak-bot-{n}", case=op)
    sources.append({"id": str(issued.source.pk), "secret": issued.secret})
seal_pending()
checkpoint_create()
from django.core.management import get_commands
print(json.dumps({
    "has_relay": "outbox_relay" in get_commands(),
    "case": str(op.pk),
    "leads": leads,
    "investigators": [{"id": user.pk, "token": key} for user, key in investigators],
    "supervisor": supervisor[1],
    "auditor": auditor[1],
    "prosecutor": {"id": prosecutor[0].pk, "token": prosecutor[1]},
    "sources": sources,
}))
"""

CHECK = r"""
from collections import Counter
from django.db.models import Count
from audit.models import AuditAction, AuditEvent
from cases.models import Case, CustodyEvent, EvidenceItem, ExportPacket, Handoff, Lead
from intercept.models import Ad, Conversation
ledger = json.loads(open(os.environ["SOAK_LEDGER"]).read())
lost, unaudited = [], []

def chunks(values, size=5000):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i:i + size]

def rows(model, ids, *fields):
    found = {}
    for part in chunks(ids):
        for row in model.objects.filter(pk__in=part).values("pk", *fields):
            found[str(row["pk"])] = row
    return found

def events(action, ids):
    counts = Counter()
    for part in chunks(ids):
        for row in (AuditEvent.objects.filter(action=action, target_id__in=part)
                    .values("target_id").annotate(n=Count("id"))):
            counts[row["target_id"]] = row["n"]
    return counts

def present(kind, model, ids, action):
    found = rows(model, ids)
    lost.extend(f"{kind} {i}: missing" for i in ids if i not in found)
    audited = events(action, ids)
    unaudited.extend(f"{kind} {i}: no {action} event" for i in ids if not audited[i])

present("case", Case, ledger["cases"], AuditAction.CASE_CREATED)
present("lead", Lead, list(ledger["leads"]), AuditAction.LEAD_CREATED)
present("evidence", EvidenceItem, list(ledger["evidence"]), AuditAction.EVIDENCE_CREATED)
present("custody event", CustodyEvent, ledger["custody"], AuditAction.CUSTODY_RECORDED)
present("handoff", Handoff, list(ledger["handoffs"]), AuditAction.HANDOFF_CREATED)
present("packet", ExportPacket, list(ledger["packets"]), AuditAction.PACKET_REQUESTED)

stored = rows(Lead, list(ledger["leads"]), "notes")
updates = events(AuditAction.LEAD_UPDATED, list(ledger["leads"]))
for pk, want in ledger["leads"].items():
    if want["patches"] and pk in stored and stored[pk]["notes"] != want["notes"]:
        lost.append(f"lead {pk}: notes {stored[pk]['notes']!r}, last acknowledged PATCH set {want['notes']!r}")
    if updates[pk] < want["patches"]:
        unaudited.append(f"lead {pk}: {want['patches']} PATCHes acknowledged, {updates[pk]} lead.updated events")
stored = rows(EvidenceItem, list(ledger["evidence"]), "sha256")
for pk, sha256 in ledger["evidence"].items():
    if pk in stored and stored[pk]["sha256"] != sha256:
        lost.append(f"evidence {pk}: sha256 {stored[pk]['sha256']}, acknowledged {sha256}")
stored = rows(Handoff, list(ledger["handoffs"]), "status")
for pk, status in ledger["handoffs"].items():
    if pk in stored and stored[pk]["status"] != status:
        lost.append(f"handoff {pk}: status {stored[pk]['status']}, acknowledged {status}")

for source, acked in ledger["conversations"].items():
    found = {}
    for part in chunks(acked):
        for row in (Conversation.objects.filter(source_id=source, external_id__in=part)
                    .annotate(stored=Count("messages")).values("external_id", "message_count", "stored")):
            found[row["external_id"]] = row
    for external_id, messages in acked.items():
        row = found.get(external_id)
        if row is None:
            lost.append(f"conversation {external_id} of source {source}: missing")
        elif min(row["message_count"], row["stored"]) < messages:
            lost.append(f"conversation {external_id}: {row['stored']} messages stored, {messages} acknowledged")
for source, acked in ledger["ads"].items():
    found = set()
    for part in chunks(acked):
        sites = {site for site, _ in part}
        ext = {e for _, e in part}
        found.update(Ad.objects.filter(source_id=source, site__in=sites, external_id__in=ext)
                     .values_list("site", "external_id"))
    lost.extend(f"ad {site}:{e} of source {source}: missing" for site, e in acked if (site, e) not in found)

packets = {}
stored = rows(ExportPacket, list(ledger["packets"]), "status", "attempts", "sha256")
started = events(AuditAction.PACKET_BUILD_STARTED, list(ledger["packets"]))
built = events(AuditAction.PACKET_BUILT, list(ledger["packets"]))
for pk in ledger["packets"]:
    row = stored.get(pk)
    packets[pk] = {
        "status": row and row["status"], "attempts": row and row["attempts"], "sha256": row and row["sha256"],
        "build_started_events": started[pk], "built_events": built[pk],
    }
print(json.dumps({"lost": lost, "unaudited": unaudited, "packets": packets,
                  "audit_events": AuditEvent.objects.count()}))
"""


# ---------------------------------------------------------------- what the clients record


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stats:
    """Every call's outcome, by operation; shared by the client threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    five_xx: int = 0
    unexpected: int = 0
    transport_errors: int = 0
    samples: list[str] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # monotonic time each answer (or error) came

    def record(self, op: str, status: int | None, seconds: float, expected: bool, detail: str) -> None:
        with self.lock:
            self.latencies[op].append(seconds)
            self.finished.append(time.monotonic())
            self.statuses[op][status if status is not None else "transport error"] += 1
            if status is None:
                self.transport_errors += 1
            elif status >= 500:
                self.five_xx += 1
            elif not expected:
                self.unexpected += 1
            if (status is None or status >= 500 or not expected) and len(self.samples) < SAMPLES_KEPT:
                self.samples.append(detail)

    def problem(self, detail: str) -> None:
        """Something wrong inside a 2xx answer (a rejected ingest item, a failed verification)."""
        with self.lock:
            self.unexpected += 1
            if len(self.samples) < SAMPLES_KEPT:
                self.samples.append(detail)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())


@dataclass
class Ledger:
    """What the server acknowledged (2xx) to one client: ids, and the values it should hold."""

    cases: list[str] = field(default_factory=list)
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> last PATCHed notes, PATCH count
    evidence: dict[str, str] = field(default_factory=dict)  # id -> sha256
    custody: list[str] = field(default_factory=list)
    handoffs: dict[str, str] = field(default_factory=dict)  # id -> last acknowledged status
    packets: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> what the client saw
    conversations: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    ads: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))

    def merge(self, other: Ledger) -> None:
        self.cases += other.cases
        self.leads.update(other.leads)
        self.evidence.update(other.evidence)
        self.custody += other.custody
        self.handoffs.update(other.handoffs)
        self.packets.update(other.packets)
        for source, acked in other.conversations.items():
            for external_id, messages in acked.items():
                mine = self.conversations[source]
                mine[external_id] = max(mine.get(external_id, 0), messages)
        for source, ads in other.ads.items():
            self.ads[source] |= ads

    def as_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "leads": self.leads,
            "evidence": self.evidence,
            "custody": self.custody,
            "handoffs": self.handoffs,
            "packets": self.packets,
            "conversations": self.conversations,
            "ads": {source: sorted(ads) for source, ads in self.ads.items()},
        }

    def counts(self) -> dict[str, int]:
        """Acknowledged writes by kind (conversations and ads: distinct items)."""
        return {
            "cases": len(self.cases),
            "leads": len(self.leads),
            "lead patches": sum(lead["patches"] for lead in self.leads.values()),
            "evidence": len(self.evidence),
            "custody events": len(self.custody),
            "handoffs": len(self.handoffs),
            "packets": len(self.packets),
            "conversations": sum(len(v) for v in self.conversations.values()),
            "ads": sum(len(v) for v in self.ads.values()),
        }


class Connection:
    """One client's keep-alive connection to gunicorn; every call is timed and recorded."""

    def __init__(self, port: int, stats: Stats) -> None:
        self.port, self.stats = port, stats
        self.conn: http.client.HTTPConnection | None = None
        self.last_used = 0.0

    def call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        payload: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> Answer | None:
        """The answer, or None after a transport error. An answer outside `expect` is recorded
        as unexpected (5xx separately) and still returned."""
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Token {token}"
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if self.conn is None or time.monotonic() - self.last_used > IDLE_RECONNECT_SECONDS:
            self.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        began = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            answer = Answer(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            self.stats.record(op, None, time.perf_counter() - began, False, f"{method} {path}: {exc!r}")
            return None
        finally:
            self.last_used = time.monotonic()
        if answer.headers.get("connection", "").lower() == "close":
            self.close()
        ok = answer.status in expect
        detail = f"{method} {path} -> {answer.status} {answer.body[:300]!r}"
        if not ok and body is not None and len(body) < 2000:
            detail += f" (request body {body[:500]!r})"
        self.stats.record(op, answer.status, time.perf_counter() - began, ok, detail)
        return answer

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ---------------------------------------------------------------- the clients


@dataclass
class World:
    """What the seed made: tokens, the operation, ingest sources."""

    case: str
    leads: list[str]
    investigators: list[dict[str, Any]]
    supervisor: str
    auditor: str
    prosecutor: dict[str, Any]
    sources: list[dict[str, str]]
    has_relay: bool  # the deployment has `manage.py outbox_relay` (a transactional task outbox)


class Client:
    """One simulated user: `step()` does one thing (a request, a batch, a packet round)."""

    role = "client"

    def __init__(self, index: int, port: int, world: World, stats: Stats, workdir: Path) -> None:
        self.index, self.world, self.stats, self.workdir = index, world, stats, workdir
        self.http = Connection(port, stats)
        self.rng = random.Random(index)  # noqa: S311 - a load mix, not security
        self.ledger = Ledger()
        self.steps = 0

    def step(self) -> None:
        raise NotImplementedError

    def run(self, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            try:
                self.step()
            except Exception as exc:  # an answer of the wrong shape: recorded, and the client goes on
                self.stats.problem(f"{self.role} client {self.index}: {exc!r}")
            self.steps += 1
        self.http.close()


class Investigator(Client):
    """Reads of the operation and writes of their own leads, evidence and custody."""

    role = "investigator"
    MIX = (
        ("case_list", 8),
        ("lead_list", 14),
        ("lead_detail", 14),
        ("evidence_list", 12),
        ("conversation_list", 4),
        ("lead_create", 8),
        ("lead_patch", 12),
        ("evidence_create", 8),
        ("custody_create", 8),
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.token = self.world.investigators[self.index]["token"]
        self.own_leads: list[str] = []
        self.own_evidence: list[str] = []
        self.ops, self.weights = zip(*self.MIX, strict=True)

    def step(self) -> None:
        op = self.rng.choices(self.ops, self.weights)[0]
        if op == "lead_patch" and not self.own_leads:
            op = "lead_create"
        if op == "custody_create" and not self.own_evidence:
            op = "evidence_create"
        getattr(self, op)()

    def get(self, op: str, path: str) -> None:
        self.http.call(op, "GET", path, token=self.token)

    def case_list(self) -> None:
        self.get("case_list", "/api/cases/")

    def lead_list(self) -> None:
        self.get("lead_list", f"/api/leads/?case={self.world.case}")

    def lead_detail(self) -> None:
        self.get("lead_detail", f"/api/leads/{self.rng.choice(self.world.leads + self.own_leads)}/")

    def evidence_list(self) -> None:
        self.get("evidence_list", f"/api/evidence/?case={self.world.case}")

    def conversation_list(self) -> None:
        self.get("conversation_list", f"/api/conversations/?case={self.world.case}")

    def lead_create(self) -> None:
        n = self.steps
        identifiers = [{"kind": "handle", "value": f"@soak_c{self.index}_{n}"}]
        if self.rng.random() < 0.3:  # a buyer other investigators have met too
            identifiers.append({"kind": "handle", "value": f"@soak_shared_{self.rng.randrange(50)}"})
        body = {
            "case": self.world.case,
            "display_name": f"Buyer {self.index}-{n}",
            "source": "investigator",
            "identifiers": identifiers,
            "signals": {"payment_discussed": self.rng.random() < 0.5},
            "notes": "created by the soak",
        }
        answer = self.http.call("lead_create", "POST", "/api/leads/", token=self.token, payload=body, expect=(201,))
        if answer is not None and answer.status == 201:
            pk = answer.json()["id"]
            self.own_leads.append(pk)
            self.ledger.leads[pk] = {"notes": "created by the soak", "patches": 0}

    def lead_patch(self) -> None:
        pk = self.rng.choice(self.own_leads)
        notes = f"edit {self.steps} by client {self.index}: {uuid.uuid4().hex}"
        body = {"notes": notes, "priority_override": self.rng.randrange(101)}
        answer = self.http.call("lead_patch", "PATCH", f"/api/leads/{pk}/", token=self.token, payload=body)
        if answer is not None and answer.status == 200:
            self.ledger.leads[pk] = {"notes": notes, "patches": self.ledger.leads[pk]["patches"] + 1}

    def evidence_create(self) -> None:
        content = f"soak evidence {self.index}-{self.steps}-{uuid.uuid4().hex}".encode()
        sha256 = hashlib.sha256(content).hexdigest()
        body: dict[str, Any] = {
            "case": self.world.case,
            "kind": self.rng.choice(["document", "subpoena_return", "recording", "screenshot"]),
            "description": "A reference recorded by the soak.",
            "external_uri": f"https://evidence.example/soak/{sha256[:16]}",
            "sha256": sha256,
            "size_bytes": len(content),
        }
        if self.own_leads and self.rng.random() < 0.5:
            body["lead"] = self.rng.choice(self.own_leads)
        answer = self.http.call(
            "evidence_create", "POST", "/api/evidence/", token=self.token, payload=body, expect=(201,)
        )
        if answer is not None and answer.status == 201:
            pk = answer.json()["id"]
            self.own_evidence.append(pk)
            self.ledger.evidence[pk] = sha256

    def custody_create(self) -> None:
        pk = self.rng.choice(self.own_evidence)
        body = {
            "action": self.rng.choice(["transferred", "checked_out", "checked_in", "received"]),
            "from_party": f"soak-inv{self.index}",
            "to_party": "Property room",
            "location": "Evidence locker 3",
            "note": f"step {self.steps}",
        }
        answer = self.http.call(
            "custody_create", "POST", f"/api/evidence/{pk}/custody/", token=self.token, payload=body, expect=(201,)
        )
        if answer is not None and answer.status == 201:
            self.ledger.custody.append(answer.json()["id"])


class Auditor(Client):
    """Reads of the audit log; now and then a full verification over the API."""

    role = "auditor"
    THINK_SECONDS = 0.2
    MIX = (("audit_events", 40), ("audit_events_case", 25), ("audit_events_action", 15), ("checkpoint", 15))
    VERIFY_EVERY = 50

    def step(self) -> None:
        token = self.world.auditor
        if self.steps % self.VERIFY_EVERY == 3:
            answer = self.http.call("audit_verify", "POST", "/api/audit/verify/", token=token)
            if answer is not None and answer.status == 200 and not answer.json().get("ok"):
                self.stats.problem(f"POST /api/audit/verify/ answered {answer.body[:300]!r}")
        else:
            op = self.rng.choices(*zip(*self.MIX, strict=True))[0]
            path = {
                "audit_events": "/api/audit/events/",
                "audit_events_case": f"/api/audit/events/?case={self.world.case}",
                "audit_events_action": "/api/audit/events/?action=lead.created",
                "checkpoint": "/api/audit/checkpoints/latest/",
            }[op]
            self.http.call(op, "GET", path, token=token)
        time.sleep(self.THINK_SECONDS)


class Bot(Client):
    """An intercept bot pushing signed batches: ads, recaptures, conversations, second pushes."""

    role = "bot"
    THINK_SECONDS = 0.2
    ADS_PER_BATCH = 40
    CONVERSATIONS_PER_BATCH = 15

    def __init__(self, *args: Any, bot: int) -> None:
        super().__init__(*args)
        self.source = self.world.sources[bot]
        self.seed_base = 1_000_000 * (bot + 1)
        self.chunk = 0
        self.queue: list[tuple[str, list[dict[str, Any]]]] = []

    def _refill(self) -> None:
        """The next chunk of simulated data as batches: ads and first pushes of conversations
        alternating (the decoy ads the conversations answered come first), then recaptures and
        second pushes."""
        plan = simulation.Plan(
            ads=60, conversations=30, days=30, seed=self.seed_base + self.chunk, end=datetime.now(UTC)
        )
        self.chunk += 1
        data = simulation.generate(plan)
        ads = [("ads", batch) for batch in simulation.batches(data.ads, self.ADS_PER_BATCH)]
        firsts = [
            ("conversations", batch) for batch in simulation.batches(data.conversations, self.CONVERSATIONS_PER_BATCH)
        ]
        for n in range(max(len(ads), len(firsts))):
            self.queue += ads[n : n + 1] + firsts[n : n + 1]
        self.queue += [("ads", batch) for batch in simulation.batches(data.recaptures, self.ADS_PER_BATCH) if batch]
        self.queue += [
            ("conversations", batch)
            for batch in simulation.batches(data.updates, self.CONVERSATIONS_PER_BATCH)
            if batch
        ]

    def step(self) -> None:
        if not self.queue:
            self._refill()
        kind, items = self.queue.pop(0)
        body = json.dumps({"items": items}).encode()
        headers = {
            "Content-Type": "application/json",
            **signing.signed_headers(self.source["id"], self.source["secret"], body),
        }
        answer = self.http.call(f"ingest_{kind}", "POST", f"/api/ingest/{kind}/", body=body, headers=headers)
        if answer is not None and answer.status == 200:
            for result in answer.json()["results"]:
                item = items[result["index"]]
                if result["status"] == "rejected":
                    self.stats.problem(f"ingest {kind} item {item['external_id']} rejected: {result['errors']}")
                elif kind == "ads":
                    self.ledger.ads[self.source["id"]].add((item["site"], item["external_id"]))
                else:
                    acked = self.ledger.conversations[self.source["id"]]
                    acked[item["external_id"]] = max(acked.get(item["external_id"], 0), len(item["messages"]))
        time.sleep(self.THINK_SECONDS)


def _multipart(fields: dict[str, str], name: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: text/plain\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class PacketClerk(Client):
    """One round per step: a small case, its handoff through the two-person review, a packet
    built by the worker, downloaded and accepted. A round started before the end finishes."""

    role = "packets"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.lead_token = self.world.investigators[self.index]["token"]

    def _post(self, op: str, path: str, token: str, payload: Any, expect: int = 200) -> dict[str, Any] | None:
        answer = self.http.call(op, "POST", path, token=token, payload=payload, expect=(expect,))
        return answer.json() if answer is not None and answer.status == expect else None

    def step(self) -> None:
        world, token, n = self.world, self.lead_token, self.steps
        case = self._post(
            "case_create",
            "/api/cases/",
            token,
            {"title": f"Soak sting {self.index}-{n}", "kind": "investigation", "summary": "One buyer, one night."},
            201,
        )
        if case is None:
            return
        self.ledger.cases.append(case["id"])
        lead = self._post(
            "lead_create",
            "/api/leads/",
            token,
            {
                "case": case["id"],
                "display_name": f"Buyer of sting {self.index}-{n}",
                "identifiers": [{"kind": "handle", "value": f"@soak_sting_{self.index}_{n}"}],
                "signals": {"payment_discussed": True, "meeting_arranged": True},
            },
            201,
        )
        if lead is None:
            return
        self.ledger.leads[lead["id"]] = {"notes": "", "patches": 0}
        body, content_type = _multipart(
            {"case": case["id"], "lead": lead["id"], "kind": "chat_transcript", "description": "The chat."},
            "content",
            "chat.txt",
            CHAT,
        )
        answer = self.http.call(
            "evidence_upload",
            "POST",
            "/api/evidence/",
            token=token,
            body=body,
            headers={"Content-Type": content_type},
            expect=(201,),
        )
        if answer is None or answer.status != 201:
            return
        stored = answer.json()
        self.ledger.evidence[stored["id"]] = hashlib.sha256(CHAT).hexdigest()
        reference_bytes = f"subpoena return {self.index}-{n}".encode()
        reference = self._post(
            "evidence_create",
            "/api/evidence/",
            token,
            {
                "case": case["id"],
                "kind": "subpoena_return",
                "external_uri": f"https://evidence.example/subpoena/{self.index}-{n}",
                "sha256": hashlib.sha256(reference_bytes).hexdigest(),
                "size_bytes": len(reference_bytes),
            },
            201,
        )
        if reference is None:
            return
        self.ledger.evidence[reference["id"]] = hashlib.sha256(reference_bytes).hexdigest()
        handoff = self._post(
            "handoff_create",
            "/api/handoffs/",
            token,
            {
                "case": case["id"],
                "prosecutor": world.prosecutor["id"],
                "leads": [lead["id"]],
                "evidence": [stored["id"], reference["id"]],
                "charges": [{"statute": "Fla. Stat. 796.07(2)(f)", "text": "Soliciting"}],
                "narrative": "The buyer answered the decoy ad and came to the meeting point.",
            },
            201,
        )
        if handoff is None:
            return
        pk = handoff["id"]
        self.ledger.handoffs[pk] = "draft"
        steps = (
            ("handoff_submit", "submit", token, {"note": "Ready."}, "pending_review"),
            ("handoff_review", "review", world.supervisor, {"approve": True, "note": "Approved."}, "sent"),
            ("handoff_acknowledge", "acknowledge", world.prosecutor["token"], {}, "acknowledged"),
        )
        for op, action, actor, payload, status in steps:
            if self._post(op, f"/api/handoffs/{pk}/{action}/", actor, payload) is None:
                return
            self.ledger.handoffs[pk] = status
        self._packet(pk)
        if self._post(
            "handoff_decision", f"/api/handoffs/{pk}/decision/", world.prosecutor["token"], {"decision": "accepted"}
        ):
            self.ledger.handoffs[pk] = "accepted"

    def _packet(self, handoff: str) -> None:
        token = self.world.prosecutor["token"]
        accepted = self._post("packet_request", f"/api/handoffs/{handoff}/packets/", token, None, 202)
        if accepted is None:
            return
        pk = accepted["id"]
        seen: dict[str, Any] = {"status": accepted["status"], "downloaded_sha256": None, "file": None}
        self.ledger.packets[pk] = seen
        deadline = time.monotonic() + PACKET_TIMEOUT_SECONDS
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            answer = self.http.call("packet_status", "GET", f"/api/packets/{pk}/", token=token)
            if answer is not None and answer.status == 200:
                status = answer.json()
                seen["status"] = status["status"]
                if status["status"] in ("ready", "failed"):
                    break
            time.sleep(PACKET_POLL_SECONDS)
        else:
            self.stats.problem(f"packet {pk} not finished after {PACKET_TIMEOUT_SECONDS:.0f} s: {status}")
            return
        if status["status"] != "ready":
            self.stats.problem(f"packet {pk} failed: {status.get('error')!r}")
            return
        answer = self.http.call("packet_download", "GET", f"/api/packets/{pk}/download/", token=token)
        if answer is None or answer.status != 200:
            return
        digest = hashlib.sha256(answer.body).hexdigest()
        path = self.workdir / f"{pk}.zip"
        path.write_bytes(answer.body)
        seen.update(downloaded_sha256=digest, status_sha256=status["sha256"], etag=answer.headers.get("etag"))
        seen["file"] = str(path)


# ---------------------------------------------------------------- resident memory


class MemorySampler(threading.Thread):
    """Samples VmRSS of the server's processes every `every` seconds: each gunicorn worker (the
    master's children), the Celery worker and its pool children, the sequencer and the relay."""

    def __init__(self, every: float, roots: dict[str, int], gunicorn_master: int) -> None:
        super().__init__(daemon=True)
        self.every, self.roots, self.master = every, roots, gunicorn_master
        self.samples: dict[int, tuple[str, list[tuple[float, int]]]] = {}
        self.stopped = threading.Event()

    def processes(self) -> Iterator[tuple[str, int]]:
        for pid in child_pids(self.master):
            yield "gunicorn worker", pid
        for label, pid in self.roots.items():
            yield label, pid
            if label == "celery worker":
                for child in child_pids(pid):
                    yield "celery pool child", child

    def run(self) -> None:
        while not self.stopped.is_set():
            now = time.monotonic()
            for label, pid in self.processes():
                kib = rss_kib(pid)
                if kib is not None:
                    self.samples.setdefault(pid, (label, []))[1].append((now, kib))
            self.stopped.wait(self.every)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)

    def growth(self, start: float, end: float, finished: list[float]) -> list[dict[str, Any]]:
        """Per process alive through the load: median RSS of the last quarter / of the second,
        and that difference per 1,000 answers given between the two quarters' middles."""
        quarter = (end - start) / 4
        between = sum(1 for t in finished if start + 1.5 * quarter <= t < start + 3.5 * quarter)
        rows = []
        for pid, (label, samples) in sorted(self.samples.items()):
            second = [kib for t, kib in samples if start + quarter <= t < start + 2 * quarter]
            last = [kib for t, kib in samples if start + 3 * quarter <= t <= end]
            first_seen = samples[0][0]
            row = {"pid": pid, "label": label, "first_seen": first_seen - start, "samples": len(samples)}
            if second and last:
                row.update(
                    q2_mib=statistics.median(second) / 1024,
                    q4_mib=statistics.median(last) / 1024,
                    peak_mib=max(kib for _, kib in samples) / 1024,
                )
                row["ratio"] = row["q4_mib"] / row["q2_mib"]
                row["kib_per_1k"] = (row["q4_mib"] - row["q2_mib"]) * 1024 * 1000 / between if between else 0.0
            rows.append(row)
        return rows


# ---------------------------------------------------------------- the run


@dataclass
class Options:
    seconds: float
    clients: int = 16
    broker: str = DEFAULT_BROKER
    db_prefix: str = "caseapi_bench_soak"
    sample_every: float = 2.0
    workers: int = 3
    threads: int = 4
    keep_logs: str | None = None
    database: str | None = None  # an existing, migrated, empty database instead of a throwaway one
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))


@dataclass
class Report:
    seconds: float
    requests: int
    acknowledged: dict[str, int]
    audit_events: int
    five_xx: int
    unexpected: int
    transport_errors: int
    samples: list[str]
    server_errors: list[str]
    lost: list[str]
    unaudited: list[str]
    packets_requested: int
    packets_ok: int
    packet_problems: list[str]
    catchup_seconds: float
    audit_ok: bool
    audit_output: str
    memory: list[dict[str, Any]]
    restarts: list[str]
    generator_cpu: float
    operations: dict[str, dict[str, Any]]
    quarters: list[int]

    @property
    def throughput_drift(self) -> float:
        """Answers in the last quarter of the load over answers in the second."""
        return self.quarters[3] / self.quarters[1] if self.quarters[1] else 0.0

    @property
    def rss_growth_max(self) -> float:
        ratios = [row["ratio"] for row in self.memory if "ratio" in row]
        return max(ratios) if ratios else float("nan")

    @property
    def packets_ok_ratio(self) -> float:
        return self.packets_ok / self.packets_requested if self.packets_requested else 0.0

    def figures(self) -> list[str]:
        return [
            figure("soak_5xx", self.five_xx, "<=", 0),
            figure("soak_unexpected", self.unexpected + self.transport_errors, "<=", 0),
            figure("soak_server_log_errors", len(self.server_errors), "<=", 0),
            figure("soak_lost_writes", len(self.lost), "<=", 0),
            figure("soak_unaudited_writes", len(self.unaudited), "<=", 0),
            figure("soak_packets_ok_ratio", self.packets_ok_ratio, ">=", 1),
            figure("soak_seal_catchup_seconds", self.catchup_seconds, "<=", 30),
            figure("soak_audit_verifies", 1 if self.audit_ok else 0, ">=", 1),
            figure("soak_rss_growth_max", self.rss_growth_max, "<=", RSS_GROWTH_GOAL),
            figure("soak_process_restarts", len(self.restarts), "<=", 0),
            figure("soak_requests_per_second", self.requests / self.seconds, ">=", THROUGHPUT_FLOOR),
            figure("soak_throughput_q4_over_q2", self.throughput_drift, ">=", THROUGHPUT_DRIFT_GOAL),
        ]


def roles(clients: int) -> list[str]:
    """Of 16 clients: 2 packet clerks, 2 bots, 1 auditor, 11 investigators."""
    clerks = bots = max(1, clients // 8)
    rest = clients - clerks - bots - 1
    if rest < 1:
        raise SystemExit("--clients: at least 4")
    return ["packets"] * clerks + ["bot"] * bots + ["auditor"] + ["investigator"] * rest


def _unsealed(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM audit_auditevent WHERE seq IS NULL").fetchone()[0]


def _wait_sealed(url: str, timeout: float) -> float:
    began = time.monotonic()
    while _unsealed(url):
        if time.monotonic() - began > timeout:
            break
        time.sleep(0.2)
    return time.monotonic() - began


def _gunicorn_master() -> int:
    for pid in child_pids(os.getpid()):
        if "gunicorn" in command_line(pid):
            return pid
    raise RuntimeError("no gunicorn master among this process's children")


def _log_file(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/{pid}/fd/1")
    return None


def _verify_packets(ledger: Ledger, checked: dict[str, dict[str, Any]], key: str) -> tuple[int, list[str]]:
    spec = importlib.util.spec_from_file_location("packet_verifier", ROOT / "cases" / "packets" / "verify_packet.py")
    verify_packet = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = verify_packet  # its dataclasses look their module up
    spec.loader.exec_module(verify_packet)
    ok, problems = 0, []
    for pk, seen in sorted(ledger.packets.items()):
        row = checked.get(pk, {})
        why = []
        if row.get("status") != "ready":
            why.append(f"status {row.get('status')}")
        if row.get("attempts") != 1 or row.get("build_started_events") != 1 or row.get("built_events") != 1:
            why.append(
                f"attempts {row.get('attempts')}, {row.get('build_started_events')} build starts, "
                f"{row.get('built_events')} built events"
            )
        if seen.get("file") is None:
            why.append(f"not downloaded (client saw {seen.get('status')})")
        else:
            digest = seen["downloaded_sha256"]
            if not (digest == seen["status_sha256"] == row.get("sha256")) or seen.get("etag") != f'"{digest}"':
                why.append(f"sha256 {digest}, status {seen['status_sha256']}, stored {row.get('sha256')}")
            lines: list[str] = []
            if not verify_packet.verify(seen["file"], key, emit=lines.append):
                why.append("verifier: " + "; ".join(line for line in lines if line.startswith("FAIL"))[:500])
        if why:
            problems.append(f"packet {pk}: " + ", ".join(why))
        else:
            ok += 1
    return ok, problems


def _make_clients(layout: list[str], port: int, world: World, stats: Stats, workdir: Path) -> list[Client]:
    clients: list[Client] = []
    bots = 0
    for index, role in enumerate(layout):
        args = (index, port, world, stats, workdir)
        if role == "packets":
            clients.append(PacketClerk(*args))
        elif role == "bot":
            clients.append(Bot(*args, bot=bots))
            bots += 1
        elif role == "auditor":
            clients.append(Auditor(*args))
        else:
            clients.append(Investigator(*args))
    return clients


def _server_errors(logs: dict[str, str | None], keep: str | None) -> list[str]:
    """Lines of the server side's logs that name an error (a traceback by its exception line);
    the logs are copied to `keep` first."""
    found = []
    for name, path in logs.items():
        if not path or not Path(path).exists():
            continue
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(keep, f"{name.replace(' ', '-')}.log"))
        lines = Path(path).read_text(errors="replace").splitlines()
        for n, line in enumerate(lines):
            if line.startswith("Traceback"):
                raised = next((later for later in lines[n + 1 :] if later and not later[0].isspace()), "?")
                found.append(f"{name} log: traceback, {raised.strip()[:300]}")
            elif SERVER_ERROR.search(line):
                found.append(f"{name} log: {line.strip()[:300]}")
    return found


@dataclass
class Load:
    """What the load phase leaves for the checks."""

    seconds: float
    stats: Stats
    clients: list[Client]
    memory: list[dict[str, Any]]
    restarts: list[str]
    generator_cpu: float
    catchup: float
    server_errors: list[str]
    verifier_key: str
    quarters: list[int]  # answers in each quarter of the nominal load window


def _load(options: Options, env: dict[str, str], url: str, world: World, workdir: Path) -> Load:
    """Start the sequencer, (the relay,) the worker and gunicorn; drive the clients; wait for
    the sequencer to seal everything; stop the server side."""
    log = options.log
    layout = roles(options.clients)
    began = time.monotonic()
    with contextlib.ExitStack() as servers:
        procs = {
            "sequencer": servers.enter_context(
                background_logged(env, "manage.py", "audit_sequencer", "--interval", "0.2", "--checkpoint-every", "10")
            )
        }
        if world.has_relay:
            procs["outbox relay"] = servers.enter_context(background_logged(env, "manage.py", "outbox_relay"))
        procs["celery worker"] = servers.enter_context(celery_worker(env, concurrency=1))
        roots = {label: proc.pid for label, proc in procs.items()}
        port = servers.enter_context(gunicorn(env, workers=options.workers, threads=options.threads))
        master = _gunicorn_master()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/audit/checkpoints/key/", headers={"Authorization": f"Token {world.auditor}"})
        verifier_key = conn.getresponse().read().decode().strip()
        conn.close()

        stats = Stats()
        clients = _make_clients(layout, port, world, stats, workdir)
        log(f"servers up in {time.monotonic() - began:.1f} s")
        log(
            f"{options.clients} clients ({', '.join(f'{n} {r}' for r, n in Counter(layout).items())}) for "
            f"{options.seconds:.0f} s against gunicorn {options.workers}x{options.threads}, a Celery worker on "
            f"{options.broker}, the sequencer{' and the outbox relay' if 'outbox relay' in roots else ''}"
        )
        sampler = MemorySampler(options.sample_every, roots, master)
        sampler.start()
        time.sleep(min(options.sample_every, 1.0))
        initial = set(sampler.samples)
        cpu_before = os.times()
        start = time.monotonic()
        threads = [threading.Thread(target=c.run, args=(start + options.seconds,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        end = time.monotonic()
        cpu_after = os.times()
        sampler.stop()
        used = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
        log(f"load done in {end - start:.1f} s ({stats.requests} requests); waiting for the sequencer")
        catchup = _wait_sealed(url, timeout=120)
        restarts = [
            f"{label} {pid} started {samples[0][0] - start:.1f} s into the load"
            for pid, (label, samples) in sorted(sampler.samples.items())
            if pid not in initial
        ]
        restarts += [
            f"{label} {pid} gone {samples[-1][0] - start:.1f} s into the load"
            for pid, (label, samples) in sorted(sampler.samples.items())
            if rss_kib(pid) is None
        ]
        restarts += [f"{label} {proc.pid} exited: {proc.returncode}" for label, proc in procs.items() if proc.poll()]
        logs = {label: getattr(proc, "log_path", None) for label, proc in procs.items()}
        logs["gunicorn"] = _log_file(master)
        server_errors = _server_errors(logs, options.keep_logs)
    return Load(
        seconds=end - start,
        stats=stats,
        clients=clients,
        memory=sampler.growth(start, start + options.seconds, stats.finished),
        restarts=restarts,
        generator_cpu=used / (end - start),
        catchup=catchup,
        server_errors=server_errors,
        verifier_key=verifier_key,
        quarters=[
            sum(
                1
                for t in stats.finished
                if start + q * options.seconds / 4 <= t < start + (q + 1) * options.seconds / 4
            )
            for q in range(4)
        ],
    )


def run(options: Options) -> Report:
    """Set everything up, drive the load for `options.seconds`, check, tear down."""
    import redis

    log = options.log
    layout = roles(options.clients)
    redis.Redis.from_url(options.broker, socket_connect_timeout=5).flushdb()
    with (
        tempfile.TemporaryDirectory(prefix="bench-soak-") as var_dir,
        contextlib.nullcontext(options.database) if options.database else postgres_database(options.db_prefix) as url,
    ):
        write_signing_key(var_dir)
        downloads = Path(var_dir, "downloads")
        downloads.mkdir()
        env = base_env(
            url,
            var_dir,
            CELERY_BROKER_URL=options.broker,
            AUDIT_SEAL_ON_COMMIT="0",
            PACKET_THROTTLE_RATE="100000/min",
            GUNICORN_MAX_REQUESTS="0",
            SOAK_PASSWORD=PASSWORD,
            SOAK_INVESTIGATORS=str(options.clients),
            SOAK_BOTS=str(layout.count("bot")),
        )
        began = time.monotonic()
        if not options.database:
            manage(env, "migrate", "--no-input", "-v0")
            log(f"database migrated in {time.monotonic() - began:.1f} s")
            began = time.monotonic()
        world = World(**django_script(env, SEED))
        log(f"seeded in {time.monotonic() - began:.1f} s")
        load = _load(options, env, url, world, downloads)

        began = time.monotonic()
        ledger = Ledger()
        for client in load.clients:
            ledger.merge(client.ledger)
        ledger_path = Path(var_dir, "ledger.json")
        ledger_path.write_text(json.dumps(ledger.as_json()))
        checked = django_script({**env, "SOAK_LEDGER": str(ledger_path)}, CHECK)
        try:
            audit_output, audit_ok = manage(env, "verify_audit"), True
        except subprocess.CalledProcessError as exc:
            audit_output, audit_ok = (exc.stdout or "") + (exc.stderr or ""), False
        packets_ok, packet_problems = _verify_packets(ledger, checked["packets"], load.verifier_key)
        log(f"checked in {time.monotonic() - began:.1f} s")

    stats = load.stats
    operations = {
        op: {
            "count": len(lat),
            "p50_ms": statistics.median(lat) * 1000,
            "p99_ms": sorted(lat)[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000,
            "statuses": dict(stats.statuses[op]),
        }
        for op, lat in sorted(stats.latencies.items())
    }
    return Report(
        seconds=load.seconds,
        requests=stats.requests,
        acknowledged=ledger.counts(),
        audit_events=checked["audit_events"],
        five_xx=stats.five_xx,
        unexpected=stats.unexpected,
        transport_errors=stats.transport_errors,
        samples=stats.samples,
        server_errors=load.server_errors,
        lost=checked["lost"],
        unaudited=checked["unaudited"],
        packets_requested=len(ledger.packets),
        packets_ok=packets_ok,
        packet_problems=packet_problems,
        catchup_seconds=load.catchup,
        audit_ok=audit_ok,
        audit_output=audit_output.strip(),
        memory=load.memory,
        restarts=load.restarts,
        generator_cpu=load.generator_cpu,
        operations=operations,
        quarters=load.quarters,
    )


def print_report(report: Report, log: Callable[[str], None]) -> None:
    log(f"{'operation':<22}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    for op, row in report.operations.items():
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(row["statuses"].items(), key=str))
        log(f"{op:<22}{row['count']:>7}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}  {statuses}")
    log(
        f"{report.requests} requests in {report.seconds:.1f} s; {sum(report.acknowledged.values())} acknowledged "
        f"writes ({', '.join(f'{n} {kind}' for kind, n in report.acknowledged.items())}); "
        f"{report.audit_events} audit events; this process used {report.generator_cpu:.2f} CPU cores"
    )
    log(f"answers per quarter of the load: {' '.join(map(str, report.quarters))}")
    log(f"{'process':<20}{'pid':>8}{'samples':>8}{'Q2 MiB':>9}{'Q4 MiB':>9}{'peak':>8}{'Q4/Q2':>8}{'KiB/1k req':>12}")
    for row in report.memory:
        if "ratio" in row:
            log(
                f"{row['label']:<20}{row['pid']:>8}{row['samples']:>8}{row['q2_mib']:>9.1f}{row['q4_mib']:>9.1f}"
                f"{row['peak_mib']:>8.1f}{row['ratio']:>8.3f}{row['kib_per_1k']:>12.1f}"
            )
        else:
            log(f"{row['label']:<20}{row['pid']:>8}{row['samples']:>8}  (not alive through the load)")
    log(f"packets: {report.packets_ok} of {report.packets_requested} requested built once, downloaded and verified")
    log(f"verify_audit: {report.audit_output.splitlines()[-1] if report.audit_output else ''}")
    for title, rows in (
        ("unexpected answers", report.samples),
        ("server log errors", report.server_errors),
        ("lost writes", report.lost),
        ("unaudited writes", report.unaudited),
        ("packet problems", report.packet_problems),
        ("processes replaced", report.restarts),
    ):
        if rows:
            log(f"{title} ({len(rows)}):")
            for row in rows[:SAMPLES_KEPT]:
                log(f"  {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 20 s load (under a minute in all)")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of the load")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="Redis URL for Celery; its database is emptied")
    parser.add_argument("--db-prefix", default="caseapi_bench_soak", help="name prefix of the throwaway database")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--sample-every", type=float, default=None, help="seconds between RSS samples")
    parser.add_argument("--keep-logs", help="copy the gunicorn and Celery logs to this folder")
    args = parser.parse_args()
    seconds = 20.0 if args.quick else args.minutes * 60
    report = run(
        Options(
            seconds=seconds,
            clients=args.clients,
            broker=args.broker,
            db_prefix=args.db_prefix,
            workers=args.workers,
            threads=args.threads,
            sample_every=args.sample_every or (1.0 if args.quick else 2.0),
            keep_logs=args.keep_logs,
        )
    )
    print_report(report, lambda line: print(line, flush=True))
    report.figures()


if __name__ == "__main__":
    main()
