"""Benchmark of export packet builds: a handoff of 1,000 evidence items with 200 MB of natives.

Prints, each measured in this run:
- build throughput (packet MB/s of build_packet, from reading the handoff to the renamed,
  hashed file, saving progress on the packet row as the Celery task does) / Python's zipfile
  writing the same entries (ZipFile.write of the same native files, writestr of the other
  entries, stored) to the same disk (goal >= 0.5);
- the building process's peak memory above its idle size (goal < 150 MB): resident set
  high-water mark (VmHWM, reset through /proc/self/clear_refs before each build) minus the
  resident size once Django and the builder are loaded.

After one warm-up build (a worker builds many packets), each round builds once and then
writes the same entries with zipfile; the figure is the median of the rounds' ratios, so the
drift of a shared machine hits both arms of a round alike. Memory counts every build,
the warm-up too. It sets itself up: a throwaway SQLite database in a temporary folder (or, when
DATABASE_URL names a PostgreSQL server, a throwaway database there), evidence seeded through
the services, the audit log sealed and checkpointed as the sequencer would have done; all of it
is removed afterwards.

    python bench/packet.py [--quick] [--items N] [--mb MB] [--rounds R]

--quick (200 items, 20 MB) only shows that the benchmark runs: at that size the per-item work
(report pages, rows, proofs) outweighs the bytes, so its ratio says nothing about the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def figure(name: str, value: float, op: str, target: float) -> None:
    met = value >= target if op == ">=" else value < target
    print(f"figure {name} {value:.3f} goal {op}{target:g} {'met' if met else 'MISSED'}", flush=True)


# ---------------------------------------------------------------- children (Django loaded)


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caseapi.settings")
    import django

    django.setup()


def child_seed(items: int, total_bytes: int, leads: int) -> dict[str, Any]:
    _django()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from audit.sealing import seal_pending
    from audit.services import checkpoint_create
    from cases import services
    from cases.models import EvidenceKind, Handoff, HandoffEvidence, HandoffLead, HandoffStatus, Role

    agency, _ = services.agency_ensure(code="BNCH", name="Bench County Sheriff", kind="law_enforcement")
    office, _ = services.agency_ensure(code="BSAO", name="Bench State Attorney", kind="prosecutor")
    lead_user, _ = services.user_ensure(
        username="bench_lead", agency=agency, role=Role.INVESTIGATOR, password=None, first_name="Bea", last_name="Lead"
    )
    prosecutor, _ = services.user_ensure(username="bench_pros", agency=office, role=Role.PROSECUTOR, password=None)
    case = services.case_create(actor=lead_user, title="Bench operation", summary="Seeded by bench/packet.py.")
    people = [
        services.lead_create(
            actor=lead_user,
            case=case,
            display_name=f"Buyer {n}",
            payment_discussed=n % 2 == 0,
            identifiers=[{"kind": "handle", "value": f"buyer{n}"}],
        )[0]
        for n in range(leads)
    ]
    size = total_bytes // items
    kinds = list(EvidenceKind)
    for n in range(items):
        services.evidence_create(
            actor=lead_user,
            case=case,
            kind=kinds[n % len(kinds)],
            lead=people[n % len(people)],
            upload=SimpleUploadedFile(f"item-{n:04d}.pdf", b"%PDF-1.7\n" + os.urandom(size - 9), "application/pdf"),
            description=f"Seeded item {n}",
        )
    now = timezone.now()
    handoff = Handoff.objects.create(
        case=case,
        number="H001",
        prosecutor=prosecutor,
        prosecutor_office=office,
        charges=[{"statute": "18 U.S.C. 2422(b)", "text": "Enticement"}],
        narrative="Bench narrative.\n" * 20,
        status=HandoffStatus.SENT,
        created_by=lead_user,
        sent_at=now,
    )
    HandoffLead.objects.bulk_create([HandoffLead(handoff=handoff, lead=lead) for lead in people])
    HandoffEvidence.objects.bulk_create(
        [HandoffEvidence(handoff=handoff, evidence_id=pk) for pk in case.evidence.values_list("pk", flat=True)]
    )
    seal_pending()
    checkpoint_create()
    return {"handoff": str(handoff.pk)}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM)."""
    Path("/proc/self/clear_refs").write_text("5")


def _baseline(packet_path: str, natives: dict[str, str], target: str) -> tuple[float, int]:
    """Python's zipfile writing the same entries: natives from their files, the rest from memory."""
    import zipfile

    with zipfile.ZipFile(packet_path) as zf:
        plan = [
            (info.filename, natives.get(info.filename.split("/")[2]) if "/natives/" in info.filename else None)
            for info in zf.infolist()
        ]
        small = {name: zf.read(name) for name, path in plan if path is None}
    began = time.perf_counter()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as out:
        for name, path in plan:
            if path is None:
                out.writestr(name, small[name])
            else:
                out.write(path, arcname=name)
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - began
    size = os.path.getsize(target)
    os.remove(target)
    return seconds, size


def child_build(handoff_id: str, rounds: int) -> dict[str, Any]:
    _django()
    import gc

    from django.core.files.storage import storages

    from cases.models import EvidenceItem, ExportPacket, Handoff
    from cases.packets import build_packet

    handoff = Handoff.objects.select_related("prosecutor").get(pk=handoff_id)
    evidence = storages["evidence"]
    natives = {
        str(pk): evidence.path(name)
        for pk, name in EvidenceItem.objects.filter(case_id=handoff.case_id).values_list("pk", "content_name")
    }
    gc.collect()
    idle_kb = _status_kb("VmRSS")
    builds, baselines, peaks = [], [], []
    for round_number in range(rounds + 1):
        packet = ExportPacket.objects.create(handoff=handoff, requested_by=handoff.prosecutor)

        def on_progress(percent: int, stage: str, packet: ExportPacket = packet) -> None:
            packet.progress, packet.stage = percent, stage
            packet.save(update_fields=["progress", "stage"])

        gc.collect()
        _reset_peak()
        began = time.perf_counter()
        result = build_packet(packet=packet, on_progress=on_progress)
        seconds = time.perf_counter() - began
        peaks.append(_status_kb("VmHWM") - idle_kb)
        packet_path = storages["packets"].path(result.file_name)
        if round_number > 0:  # round 0 warms the worker up (imports, font metrics, caches)
            builds.append((seconds, result.size_bytes))
            baselines.append(_baseline(packet_path, natives, packet_path + ".baseline"))
        os.remove(packet_path)
    return {
        "idle_mb": idle_kb / 1024,
        "peak_above_idle_mb": max(peaks) / 1024,
        "build": builds,
        "baseline": baselines,
        "packet_bytes": builds[-1][1],
    }


# ---------------------------------------------------------------- parent


def _run_child(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _postgres(url: str, name: str, create: bool) -> str:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="200 items, 20 MB, 3 rounds")
    parser.add_argument("--items", type=int)
    parser.add_argument("--mb", type=int)
    parser.add_argument("--leads", type=int, default=50)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        if kind == "seed":
            print(json.dumps(child_seed(int(rest[0]), int(rest[1]), int(rest[2]))))
        else:
            print(json.dumps(child_build(rest[0], int(rest[1]))))
        return 0

    items = args.items or (200 if args.quick else 1000)
    megabytes = args.mb or (20 if args.quick else 200)
    rounds = args.rounds or (3 if args.quick else 5)
    workdir = Path(tempfile.mkdtemp(prefix="caseapi-bench-packet-"))
    server = os.environ.get("DATABASE_URL", "")
    pg_name = f"caseapi_bench_packet_{os.getpid()}"
    try:
        from audit.note import Signer

        key_file = workdir / "audit-signing.key"
        key_file.write_text(Signer.generate("bench.caseapi/audit").text() + "\n")
        if server.startswith(("postgres://", "postgresql://")):
            database = _postgres(server, pg_name, create=True)
        else:
            database = f"sqlite:///{workdir / 'bench.sqlite3'}"
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "DEBUG": "0",
            "SECRET_KEY": "bench-" + "x" * 44,
            "CASEAPI_VAR_DIR": str(workdir),
            "AUDIT_SIGNING_KEY_FILE": str(key_file),
            "FIELD_ENCRYPTION_KEYS": "bench1:YmVuY2gtZmllbGQtZW5jcnlwdGlvbi1rZXktMDAwMDE",
            "BLIND_INDEX_KEY": "YmVuY2gtYmxpbmQtaW5kZXgta2V5LTAwMDAwMDAwMDE",
            "AUDIT_SEAL_ON_COMMIT": "1",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CELERY_BROKER_URL", None)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        print(f"seeding {items} evidence items, {megabytes} MB of natives ({database.split(':')[0]})", flush=True)
        began = time.perf_counter()
        seeded = _run_child(env, "seed", str(items), str(megabytes * 1024 * 1024), str(args.leads))
        print(f"seeded in {time.perf_counter() - began:.1f} s; building {rounds} times", flush=True)
        measured = _run_child(env, "build", seeded["handoff"], str(rounds))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if server.startswith(("postgres://", "postgresql://")):
            _postgres(server, pg_name, create=False)

    build_rates = [size / seconds / 1e6 for seconds, size in measured["build"]]
    zip_rates = [size / seconds / 1e6 for seconds, size in measured["baseline"]]
    ratios = [build / zipped for build, zipped in zip(build_rates, zip_rates, strict=True)]
    build_rate, zip_rate = statistics.median(build_rates), statistics.median(zip_rates)
    print(f"packet: {measured['packet_bytes'] / 1e6:.1f} MB", flush=True)
    print(f"build_packet: {build_rate:.1f} MB/s (rounds: {', '.join(f'{r:.1f}' for r in build_rates)})")
    print(f"zipfile, same entries: {zip_rate:.1f} MB/s (rounds: {', '.join(f'{r:.1f}' for r in zip_rates)})")
    print(f"builder idle RSS {measured['idle_mb']:.1f} MB, peak above idle {measured['peak_above_idle_mb']:.1f} MB")
    print(f"ratio per round: {', '.join(f'{r:.3f}' for r in ratios)}")
    figure("build_throughput_ratio", statistics.median(ratios), ">=", 0.5)
    figure("worker_peak_memory_mb", measured["peak_above_idle_mb"], "<", 150)
    return 0


if __name__ == "__main__":
    sys.exit(main())
