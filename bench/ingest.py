"""Benchmark of intercept ingest on PostgreSQL: 8 concurrent signed HTTP clients against gunicorn.

The data set is `simulate_intercepts`' (seed 1): 32,000 ads plus recaptures, 5,000 conversations
plus second pushes, over 60 days (--quick: a tenth). Prints, each measured in this run:

- messages/s ingested end to end: every conversation push (first and second) over HTTP with its
  signature check, parsing, buyer leads, transcript evidence for closed conversations, audit
  events; messages stored / wall time of those pushes (goal >= 1,000/s);
- that rate / the rate of an in-process bulk insert of the same rows (goal >= 0.5):
  `ingest_vs_bulk_insert_ratio`: every database row the conversation pushes stored (leads, their
  identifier links, conversations, messages, transcript evidence items, custody events, snapshot
  links, audit events), read back after the run and inserted again as copies into a second
  operation of the same database with Django's bulk_create (batches of 2,000; the transcript
  files are not rewritten). Ingest itself writes chat messages with COPY (intercept.services.
  insert_rows) and the other rows with bulk_create. For reference only, not a goal: the same
  rate against a bulk insert of a subset of those rows (leads, conversations and messages,
  built from the data set and inserted before the HTTP run, on the fresh database);
- the time to ingest the whole data set, ads and conversations (goal <= 600 s; --quick 60 s).

The audit log is sealed by the sequencer process, as in production with a broker.

    python bench/ingest.py [--quick] [--clients 8] [--batch 250] [--workers 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (  # noqa: E402
    background,
    base_env,
    django_script,
    figure,
    gunicorn,
    manage,
    postgres_database,
    write_signing_key,
)
from intercept import signing, simulation  # noqa: E402

SEED = r"""
from cases import services
from cases.models import Role
from intercept import services as intercept
agency, _ = services.agency_ensure(code="BNCH", name="Bench County", kind="law_enforcement")
lead, _ = services.user_ensure(username="bench-lead", agency=agency, role=Role.INVESTIGATOR, password=None)
op = services.case_create(actor=lead, title="Bench operation", kind="operation")
baseline = services.case_create(actor=lead, title="Bulk insert baseline", kind="operation")
issued = intercept.ingest_source_create(actor=None, name="bench-bot", case=op)
base = intercept.ingest_source_create(actor=None, name="bench-baseline", case=baseline)
copies = services.case_create(actor=lead, title="Bulk insert of the stored rows", kind="operation")
copy = intercept.ingest_source_create(actor=None, name="bench-copy", case=copies)
print(json.dumps({"source": str(issued.source.pk), "secret": issued.secret, "baseline": str(base.source.pk),
                  "copy": str(copy.source.pk)}))
"""

BULK = r"""
import time, uuid
from datetime import datetime
from cases.models import Lead
from cases.services import system_user
from intercept import simulation
from intercept.models import Conversation, IngestSource, Message
source = IngestSource.objects.select_related("case").get(pk=os.environ["BENCH_BASELINE"])
plan = simulation.Plan(ads=int(os.environ["BENCH_ADS"]), conversations=int(os.environ["BENCH_CONVERSATIONS"]),
                       days=60, seed=1, end=datetime.fromisoformat(os.environ["BENCH_END"]))
data = simulation.generate(plan)
final = {item["external_id"]: item for item in data.conversations + data.updates}
system = system_user()
leads, conversations, messages = {}, [], []
for item in final.values():
    key = tuple(sorted(item["buyer"].get(k, "") for k in ("phone", "email", "handle")))
    if key not in leads:
        leads[key] = Lead(id=uuid.uuid4(), case=source.case, display_name="Buyer", source="intercept_bot", created_by=system)
    conv = Conversation(source=source, case=source.case, lead=leads[key], external_id=item["external_id"],
                        platform=item["platform"], bot=item["bot"], buyer=item["buyer"],
                        message_count=len(item["messages"]), closed=item["closed"])
    conversations.append(conv)
    for seq, m in enumerate(item["messages"], 1):
        messages.append(Message(conversation=conv, seq=seq, external_id=m["external_id"], direction=m["direction"],
                                sent_at=datetime.fromisoformat(m["sent_at"]), body=m["body"]))
started = time.perf_counter()
Lead.objects.bulk_create(leads.values(), batch_size=2000)
Conversation.objects.bulk_create(conversations, batch_size=2000)
Message.objects.bulk_create(messages, batch_size=2000)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "messages": len(messages), "rows": len(leads) + len(conversations) + len(messages)}))
"""

COPY = r"""
import time, uuid
from audit.models import AuditEvent
from cases.models import CustodyEvent, EvidenceItem, Lead, LeadIdentifier
from intercept.models import Conversation, IngestSource, Message, TranscriptSnapshot
source = IngestSource.objects.select_related("case").get(pk=os.environ["BENCH_SOURCE"])
target = IngestSource.objects.select_related("case").get(pk=os.environ["BENCH_COPY"])
leads = list(Lead.objects.filter(case=source.case))
links = list(LeadIdentifier.objects.filter(lead__case=source.case))
conversations = list(Conversation.objects.filter(source=source))
messages = list(Message.objects.filter(conversation__source=source))
snapshots = list(TranscriptSnapshot.objects.filter(conversation__source=source).order_by("number"))
evidence = list(EvidenceItem.objects.filter(transcript_snapshot__conversation__source=source))
custody = list(CustodyEvent.objects.filter(evidence__transcript_snapshot__conversation__source=source))
events = [e for e in AuditEvent.objects.filter(actor_name="source:bench-bot") if e.changes.get("kind") != "ads"]
lead_ids = {lead.pk: uuid.uuid4() for lead in leads}
conversation_ids = {c.pk: uuid.uuid4() for c in conversations}
evidence_ids = {e.pk: uuid.uuid4() for e in evidence}
for lead in leads:
    lead.pk, lead.case = lead_ids[lead.pk], target.case
for link in links:
    link.pk, link.lead_id = None, lead_ids[link.lead_id]
for c in conversations:
    c.pk, c.lead_id, c.source, c.case = conversation_ids[c.pk], lead_ids[c.lead_id], target, target.case
for m in messages:
    m.pk, m.conversation_id = None, conversation_ids[m.conversation_id]
for e in evidence:
    e.pk, e.case, e.lead_id = evidence_ids[e.pk], target.case, lead_ids[e.lead_id]
for event in custody:
    event.pk, event.evidence_id = uuid.uuid4(), evidence_ids[event.evidence_id]
for snap in snapshots:
    snap.pk, snap.conversation_id, snap.evidence_id = None, conversation_ids[snap.conversation_id], evidence_ids[snap.evidence_id]
    snap.previous_id = None
for event in events:
    event.pk, event.seq, event.prev_hash, event.entry_hash, event.sealed_at = None, None, "", "", None
    event.case_id = target.case_id
rows = [leads, links, conversations, messages, evidence, custody, snapshots, events]
started = time.perf_counter()
for model, objs in ((Lead, leads), (LeadIdentifier, links), (Conversation, conversations), (Message, messages),
                    (EvidenceItem, evidence), (CustodyEvent, custody), (TranscriptSnapshot, snapshots),
                    (AuditEvent, events)):
    model.objects.bulk_create(objs, batch_size=2000)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "messages": len(messages), "rows": sum(map(len, rows)),
                  "tables": {m.__name__: len(o) for m, o in zip((Lead, LeadIdentifier, Conversation, Message,
                  EvidenceItem, CustodyEvent, TranscriptSnapshot, AuditEvent), rows)}}))
"""

COUNTS = r"""
from intercept.models import Ad, Conversation, IngestSource, Message, TranscriptSnapshot
from audit.models import AuditEvent
source = IngestSource.objects.get(pk=os.environ["BENCH_SOURCE"])
print(json.dumps({
    "ads": Ad.objects.filter(source=source).count(),
    "conversations": Conversation.objects.filter(source=source).count(),
    "messages": Message.objects.filter(conversation__source=source).count(),
    "snapshots": TranscriptSnapshot.objects.filter(conversation__source=source).count(),
    "leads": source.case.leads.count(),
    "audit_events": AuditEvent.objects.count(),
}))
"""


def script(env: dict[str, str], code: str) -> object:
    """django_script, with the script's own error on failure."""
    try:
        return django_script(env, code)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"a benchmark script failed:\n{exc.stderr[-3000:]}") from exc


def push_all(
    port: int, kind: str, bodies: list[bytes], clients: int, source: str, secret: str
) -> tuple[float, Counter]:
    """Send every body to /api/ingest/<kind>/ from `clients` threads on keep-alive connections;
    returns the wall time and the item statuses. Any non-200 answer stops the benchmark."""
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    statuses: Counter = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        mine: Counter = Counter()
        while not failures:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            headers = {"Content-Type": "application/json", **signing.signed_headers(source, secret, body)}
            conn.request("POST", f"/api/ingest/{kind}/", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                failures.append(f"{response.status} {payload[:300]!r}")
                break
            mine.update(r["status"] for r in json.loads(payload)["results"])
        with lock:
            statuses.update(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    if failures:
        raise SystemExit(f"{kind}: {failures[0]}")
    return seconds, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data set")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=250, help="items per request")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    args = parser.parse_args()
    ads, conversations = (3200, 500) if args.quick else (32000, 5000)
    end = datetime.now(UTC).replace(microsecond=0)
    data = simulation.generate(simulation.Plan(ads=ads, conversations=conversations, days=60, seed=1, end=end))
    phases = [
        ("ads", "ads", data.ads),
        ("ads", "recaptures", data.recaptures),
        ("conversations", "conversations", data.conversations),
        ("conversations", "second pushes", data.updates),
    ]
    encoded = [
        (kind, label, [json.dumps({"items": chunk}).encode() for chunk in simulation.batches(items, args.batch)], items)
        for kind, label, items in phases
    ]
    print(
        f"data set: {data.unique_ads} ads (+{len(data.recaptures)} recaptures), {conversations} conversations "
        f"(+{len(data.updates)} second pushes), {data.messages} messages; batches of {args.batch}; "
        f"{args.clients} clients; gunicorn {args.workers}x{args.threads}",
        flush=True,
    )

    with (
        tempfile.TemporaryDirectory(prefix="bench-ingest-") as var_dir,
        postgres_database("caseapi_bench_ingest") as url,
    ):
        write_signing_key(var_dir)
        env = base_env(url, var_dir, AUDIT_SEAL_ON_COMMIT="0")
        manage(env, "migrate", "--no-input", "-v0")
        seeded = script(env, SEED)
        bulk = script(
            {
                **env,
                "BENCH_BASELINE": seeded["baseline"],
                "BENCH_ADS": str(ads),
                "BENCH_CONVERSATIONS": str(conversations),
                "BENCH_END": end.isoformat(),
            },
            BULK,
        )
        print(
            f"bulk insert of leads, conversations, messages: {bulk['rows']} rows in {bulk['seconds']:.2f} s",
            flush=True,
        )
        seconds: dict[str, float] = {}
        with (
            background(env, "manage.py", "audit_sequencer", "--interval", "0.2", "--checkpoint-every", "3600"),
            gunicorn(env, workers=args.workers, threads=args.threads) as port,
        ):
            for kind, label, bodies, items in encoded:
                took, statuses = push_all(port, kind, bodies, args.clients, seeded["source"], seeded["secret"])
                seconds[label] = took
                print(
                    f"{label:>14}: {len(items):6d} items in {len(bodies):4d} requests, {took:7.2f} s, "
                    f"{len(items) / took:8.0f} items/s  {dict(sorted(statuses.items()))}",
                    flush=True,
                )
                if statuses.get("rejected"):
                    raise SystemExit(f"{label}: {statuses['rejected']} items rejected")
        counts = script({**env, "BENCH_SOURCE": seeded["source"]}, COUNTS)
        copy = script({**env, "BENCH_SOURCE": seeded["source"], "BENCH_COPY": seeded["copy"]}, COPY)
    print(f"stored: {json.dumps(counts)}", flush=True)
    print(
        f"bulk insert of the stored rows: {copy['rows']} rows in {copy['seconds']:.2f} s {copy['tables']}", flush=True
    )
    if counts["messages"] != data.messages or counts["conversations"] != conversations:
        raise SystemExit(f"stored {counts} but sent {conversations} conversations, {data.messages} messages")

    conversation_seconds = seconds["conversations"] + seconds["second pushes"]
    rate = counts["messages"] / conversation_seconds
    copy_rate = copy["messages"] / copy["seconds"]
    bulk_rate = bulk["messages"] / bulk["seconds"]
    print(
        f"end to end {rate:.0f} messages/s; bulk insert of every stored row {copy_rate:.0f} messages/s; "
        f"of leads, conversations and messages only {bulk_rate:.0f} messages/s",
        flush=True,
    )
    figure("ingest_messages_per_second", rate, ">=", 1000)
    figure("ingest_vs_bulk_insert_ratio", rate / copy_rate, ">=", 0.5)
    print(f"for reference, not a goal: end to end / bulk insert of the subset {rate / bulk_rate:.3f}", flush=True)
    figure("ingest_dataset_seconds", sum(seconds.values()), "<=", 60 if args.quick else 600)


if __name__ == "__main__":
    main()
