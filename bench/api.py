"""Benchmark of the read API at regional scale: gunicorn driven by 16 concurrent HTTP clients.

For each data size (bench/seed.py scales; default 0.01, 0.1 and 1) it starts what production
runs, side by side: gunicorn (production settings: DEBUG off, persistent connections with
health checks, a statement timeout, gunicorn.conf.py; 2 workers x 8 threads for 2 cores, see
docs/performance.md), the audit sequencer and a Celery worker on Redis. Then
for two personas, `bench-investigator` (on 20 cases) and `bench-supervisor` (an agency of
2,000 cases at scale 1), it measures requests/s and p50/p99 latency of

    case list          GET /api/cases/
    lead list by case  GET /api/leads/?case=<id>
    lead detail        GET /api/leads/<id>/
    evidence list      GET /api/evidence/
    identifier search  GET /api/leads/?identifier=(212) 201-0123   (typed as a person would)
    audit of a case    GET /api/audit/events/?case=<id>

and each against the same rows served by a bare DRF view (bench/bare.py: no authentication,
no permissions, no audit, no filter backends; same serializer, pagination and related-object
loading), in the same run, the arms (real, bare, each data size) taking turns, the order
reversed every other round (8 rounds of 2 s arms). It prints, each measured in this run:

- real / bare requests/s per endpoint and persona, the median over the rounds of each real arm
  against the bare arm next to it, with the middle half of the rounds' ratios (goal: lists
  >= 0.7, detail >= 0.8);
- p99 at the largest scale / p99 at the smallest, per list endpoint and persona (goal <= 1.5);

and plots p99 per endpoint against data size to bench/results/api-p99.png, with every figure
in bench/results/api.json. Requests rotate over 10 targets (cases, leads, identifiers) per
persona; the real and the bare answer of each target are compared first (same rows, same
JSON), so both arms serve the same data.

Databases: without --reuse each scale is seeded into a throwaway database, dropped at the
end. With --reuse, `<prefix>_s<scale>` databases are seeded once and kept (bench/seed.py marks
them complete), later runs measure at once. Either way a migrated `<prefix>_template` is kept
to copy the schema from (made again when a migration changes).

    python bench/api.py [--quick] [--reuse] [--scales 0.01,0.1,1] [--seconds S] [--rounds R]
                        [--endpoints case_list,lead_detail,...] [--clients 16] [--workers 2]
                        [--threads 8] [--db-prefix P] [--broker URL] [--overheads]

--quick: scales 0.01 and 0.02 (seeded side by side), half-second arms, one round; it shows
that the benchmark runs, its figures say little.

--overheads: afterwards, at the largest scale, what each part of the real lead detail's own
work costs under the same load (bench/bare.py `bench-bare/with/<part>/`): the bare view, the
bare view plus one more round trip, plus the token lookup, plus the read's audit event, and
the real endpoint, in turns; for each, requests/s and the whole machine's CPU time per request
(/proc/stat: gunicorn, PostgreSQL, the sequencer, the load generator), and its extra over the
bare view's. Information, no figure.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import seed as seeder  # noqa: E402
from bench.support import (  # noqa: E402
    ROOT,
    LoadResult,
    background,
    base_env,
    django_script,
    drive,
    figure,
    gunicorn,
    manage,
)

ENDPOINTS = {
    # name: (label, kind)
    "case_list": ("case list", "list"),
    "lead_list": ("lead list by case", "list"),
    "lead_detail": ("lead detail", "detail"),
    "evidence_list": ("evidence list", "list"),
    "identifier_search": ("identifier search", "list"),
    "case_audit": ("audit of a case", "list"),
}
PERSONAS = {"investigator": seeder.INVESTIGATOR, "supervisor": seeder.SUPERVISOR}
GOALS = {"list": 0.7, "detail": 0.8}
GROWTH_GOAL = 1.5
TARGETS = 10

SETUP = r"""
from django.contrib.auth import get_user_model
from cases import selectors
from cases.models import Case, LeadIdentifier
from cases.services import auth_login
User = get_user_model()
n = int(os.environ["BENCH_TARGETS"])
out = {}
investigator_cases = set()
for key, username in (("investigator", "bench-investigator"), ("supervisor", "bench-supervisor")):
    user = User.objects.select_related("profile").get(username=username)
    token = auth_login(username=username, password=os.environ["BENCH_PASSWORD"]).key
    scope = list(selectors.case_list(user=user).order_by("number").values_list("id", flat=True))
    if key == "investigator":
        investigator_cases = set(scope)
        bare_scope = f"lead/{user.pk}"
        picked = scope[: 2 * n]
    else:
        bare_scope = f"agency/{user.profile.agency_id}"
        others = [c for c in scope if c not in investigator_cases]
        others = others if len(others) >= 2 * n else scope
        step = max(1, len(others) // (2 * n))
        picked = others[::step][: 2 * n]
    # Lists and the audit list read one half of the cases; lead detail (which records
    # lead.viewed on its case) reads the other, so the audit lists do not grow while measured.
    list_cases, detail_cases = picked[:n], picked[n:]
    leads = [str(Case.objects.get(pk=c).leads.order_by("-priority", "-created_at", "id").first().pk)
             for c in detail_cases]
    identifiers = []
    for case_id in list_cases:
        links = LeadIdentifier.objects.filter(lead__case_id=case_id, identifier__kind="phone").select_related("identifier")
        for link in links.order_by("id")[:50]:
            if LeadIdentifier.objects.filter(identifier_id=link.identifier_id).count() == 1:
                v = link.identifier.value
                identifiers.append([f"({v[2:5]}) {v[5:8]}-{v[8:]}", link.identifier_id])
                break
    out[key] = {"token": token, "user_id": user.pk, "scope_size": len(scope), "bare_scope": bare_scope,
                "list_cases": [str(c) for c in list_cases], "leads": leads, "identifiers": identifiers}
print(json.dumps(out))
"""

PING = r"""
import time
from caseapi.celery import app
deadline = time.monotonic() + 60
replies = []
while time.monotonic() < deadline and not replies:
    replies = app.control.ping(timeout=1.0)
print(json.dumps({"workers": [name for reply in replies for name in reply]}))
"""

LAG = r"""
from audit.sealing import sealing_lag
from audit.models import AuditEvent
print(json.dumps({"lag": sealing_lag().total_seconds(), "unsealed": AuditEvent.objects.filter(seq__isnull=True).count()}))
"""


def paths(endpoint: str, t: dict[str, Any], i: int) -> tuple[str, str]:
    """(real path, bare path) of request number `i` for persona targets `t`."""
    case = t["list_cases"][i % len(t["list_cases"])]
    if endpoint == "case_list":
        return "/api/cases/", f"/bench-bare/cases/{t['bare_scope']}/"
    if endpoint == "lead_list":
        return f"/api/leads/?case={case}", f"/bench-bare/cases/{case}/leads/"
    if endpoint == "lead_detail":
        lead = t["leads"][i % len(t["leads"])]
        return f"/api/leads/{lead}/", f"/bench-bare/leads/{lead}/"
    if endpoint == "evidence_list":
        return "/api/evidence/", f"/bench-bare/evidence/{t['bare_scope']}/"
    if endpoint == "identifier_search":
        typed, identifier_id = t["identifiers"][i % len(t["identifiers"])]
        return f"/api/leads/?identifier={quote(typed)}", f"/bench-bare/identifiers/{identifier_id}/leads/"
    if endpoint == "case_audit":
        return f"/api/audit/events/?case={case}", f"/bench-bare/cases/{case}/audit/"
    raise ValueError(endpoint)


def get(port: int, path: str, token: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path, headers={"Authorization": f"Token {token}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, json.loads(body) if body.startswith((b"{", b"[")) else body[:300]


def check_same_rows(port: int, targets: dict[str, Any], every: bool) -> dict[str, dict[str, int]]:
    """Every target (or the first and the last) answered alike by the real and the bare
    endpoint; returns row counts."""
    counts: dict[str, dict[str, int]] = {}
    for endpoint in ENDPOINTS:
        for persona, t in targets.items():
            n = len(t["leads"]) if endpoint == "lead_detail" else len(t["list_cases"])
            for i in range(n) if every else (0, n - 1):
                real, bare = paths(endpoint, t, i)
                status_real, body_real = get(port, real, t["token"])
                status_bare, body_bare = get(port, bare, t["token"])
                if status_real != 200 or status_bare != 200:
                    raise SystemExit(
                        f"{endpoint}/{persona}: {real} -> {status_real} {body_real!r:.300}, {bare} -> {status_bare}"
                    )
                if endpoint != "lead_detail":  # `next` links name the path asked: compare the rows
                    body_real = {k: body_real[k] for k in ("count", "results")}
                    body_bare = {k: body_bare[k] for k in ("count", "results")}
                if body_real != body_bare:
                    raise SystemExit(f"{endpoint}/{persona}: {real} and {bare} answer differently")
                if i == 0:
                    counts.setdefault(endpoint, {})[persona] = body_real.get("count", 1)
                if endpoint != "lead_detail" and body_real.get("count", 0) == 0:
                    raise SystemExit(f"{endpoint}/{persona}: {real} has no rows")
    return counts


def measure(
    port: int, endpoint: str, t: dict[str, Any], arm: int, clients: int, seconds: float
) -> tuple[LoadResult, float]:
    """One arm (0 real, 1 bare) for `seconds`; returns the result and the share of one core
    the load generator (this process) used meanwhile."""
    headers = {"Authorization": f"Token {t['token']}"}

    def request(client: int, i: int) -> tuple[str, str, dict[str, str], None]:
        return "GET", paths(endpoint, t, i * clients + client)[arm], headers, None

    cpu = time.process_time()
    result = drive(port, clients, seconds, request)
    return result, (time.process_time() - cpu) / result.seconds


def summary(results: list[LoadResult]) -> dict[str, float]:
    pooled = LoadResult(latencies=[x for r in results for x in r.latencies])
    return {
        "rps": statistics.median(r.rate for r in results),
        "p50_ms": pooled.p50 * 1000,
        "p99_ms": pooled.percentile(99) * 1000,
        "requests": sum(r.requests for r in results),
    }


def scale_tag(scale: float) -> str:
    return "s" + f"{scale:g}".replace(".", "_")


def database_name(scale: float, args: argparse.Namespace) -> str:
    """`<prefix>_s<scale>`, kept with --reuse; otherwise suffixed with this process id and dropped."""
    return f"{args.db_prefix}_{scale_tag(scale)}" + ("" if args.reuse else f"_{os.getpid()}")


STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f} s] {message}", flush=True)


class Server:
    """One deployment per data size: gunicorn, the audit sequencer and a Celery worker (on its
    own queue) over that size's database. Its processes stop when `stack` closes."""

    def __init__(self, args: argparse.Namespace, scale: float, found: dict[str, Any]):
        name = database_name(scale, args)
        self.scale, self.counts, self.seed_seconds = scale, found["counts"], found["seconds"]
        self.node = f"bench-{scale_tag(scale)}"
        self.env = base_env(
            f"{seeder.server_url()}/{name}",
            str(seeder.var_dir_for(name)),
            DJANGO_SETTINGS_MODULE="bench.bare_settings",
            CELERY_BROKER_URL=args.broker,
            BENCH_CELERY_QUEUE=self.node,
            BENCH_TARGETS=str(TARGETS),
            BENCH_PASSWORD=seeder.PASSWORD,
            # Steady state: no worker recycling during the run. At gunicorn.conf.py's 20,000
            # requests a worker, each deployment recycled both workers within a run, and each
            # restart (importing Django: a second or two of a core) landed in whichever arm
            # was being measured, taking a quarter off that one figure.
            GUNICORN_MAX_REQUESTS="0",
        )
        self.stack = contextlib.ExitStack()
        self.results: dict[str, dict[str, Any]] = {}
        self.generator_cpu = 0.0
        try:
            if found.get("schema") != seeder.schema_fingerprint():  # seeded before the latest migrations
                manage(self.env, "migrate", "--no-input", "-v0")
            self.stack.enter_context(background(self.env, "manage.py", "audit_sequencer"))
            worker = ["-m", "celery", "-A", "caseapi", "worker", "-Q", self.node, "-n", f"{self.node}@%h"]
            self.stack.enter_context(background(self.env, *worker, "--concurrency", "1", "--loglevel", "WARNING"))
            self.port = self.stack.enter_context(gunicorn(self.env, workers=args.workers, threads=args.threads))
            self.targets = django_script(self.env, SETUP)
            self.rows = check_same_rows(self.port, self.targets, every=not args.quick)
        except BaseException:
            self.stack.close()
            raise


def start_servers(stack: contextlib.ExitStack, args: argparse.Namespace, founds: dict[float, Any]) -> list[Server]:
    """The deployments of every data size, started side by side; all stopped if one fails."""
    with ThreadPoolExecutor(max_workers=len(founds)) as pool:
        futures = [pool.submit(Server, args, scale, found) for scale, found in founds.items()]
    servers, failure = [], None
    for future in futures:
        try:
            servers.append(future.result())
        except BaseException as exc:  # noqa: BLE001 - re-raised once the others are registered
            failure = failure or exc
    for server in servers:
        stack.push(server.stack.__exit__)
    if failure is not None:
        raise failure
    return servers


def run(args: argparse.Namespace, servers: list[Server]) -> None:
    """Each endpoint and persona: every data size and both arms in turn, round after round
    (the order reversed every other round), so drift of a shared machine hits all alike."""
    for endpoint, (label, _kind) in ENDPOINTS.items():
        for persona in PERSONAS:
            runs: dict[tuple[int, int], list[LoadResult]] = {}
            for n, server in enumerate(servers):
                for arm in (0, 1):
                    if args.warmup:
                        measure(server.port, endpoint, server.targets[persona], arm, args.clients, args.warmup)
                    runs[(n, arm)] = []
            order = [(n, arm) for n in range(len(servers)) for arm in (0, 1)]
            for r in range(args.rounds):
                for n, arm in order if r % 2 == 0 else order[::-1]:
                    server = servers[n]
                    result, cpu = measure(
                        server.port, endpoint, server.targets[persona], arm, args.clients, args.seconds
                    )
                    server.generator_cpu = max(server.generator_cpu, cpu)
                    if result.errors:
                        raise SystemExit(f"{endpoint}/{persona}: {result.errors} errors of {result.requests}")
                    runs[(n, arm)].append(result)
            for n, server in enumerate(servers):
                real, bare = summary(runs[(n, 0)]), summary(runs[(n, 1)])
                ratios = paired_ratios(runs[(n, 0)], runs[(n, 1)])
                entry = {"real": real, "bare": bare, **ratios}
                server.results.setdefault(endpoint, {})[persona] = entry
                low, high = entry["ratio_middle_half"]
                print(
                    f"  {label:<18} {persona:<12} {server.scale:<5g} {real['rps']:7.1f}/s p50 {real['p50_ms']:6.1f} "
                    f"p99 {real['p99_ms']:6.1f} ms | bare {bare['rps']:7.1f}/s p50 {bare['p50_ms']:6.1f} "
                    f"p99 {bare['p99_ms']:6.1f} ms | ratio {entry['ratio']:.2f} ({low:.2f}-{high:.2f})",
                    flush=True,
                )


OVERHEAD_ARMS = {
    # arm: what it adds to the bare lead detail
    "bare": "nothing (the bare view)",
    "query": "one more round trip (SELECT 1)",
    "token": "the token lookup (authentication)",
    "audit": "the read's audit event (INSERT, commit)",
    "real": "everything (the real endpoint)",
}


def machine_busy_ticks() -> int:
    """CPU time the whole machine has spent busy since boot, in clock ticks (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return user + nice + system + irq + softirq


def overheads(args: argparse.Namespace, server: Server, persona: str = "supervisor") -> dict[str, Any]:
    """What each part of the real lead detail's work costs under load (see --overheads)."""
    t = server.targets[persona]
    headers = {"Authorization": f"Token {t['token']}"}
    tick_ms = 1000 / os.sysconf("SC_CLK_TCK")

    def path(arm: str, i: int) -> str:
        lead = t["leads"][i % len(t["leads"])]
        if arm == "real":
            return f"/api/leads/{lead}/"
        if arm == "bare":
            return f"/bench-bare/leads/{lead}/"
        return f"/bench-bare/with/{arm}/{t['user_id']}/leads/{lead}/"

    def arm_run(arm: str, seconds: float) -> tuple[LoadResult, int]:
        before = machine_busy_ticks()
        result = drive(
            server.port, args.clients, seconds, lambda c, i: ("GET", path(arm, i * args.clients + c), headers, None)
        )
        if result.errors:
            raise SystemExit(f"overheads/{arm}: {result.errors} errors of {result.requests}")
        return result, machine_busy_ticks() - before

    arms = list(OVERHEAD_ARMS)
    for arm in arms:
        if args.warmup:
            arm_run(arm, args.warmup)
    runs: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    for r in range(args.rounds):
        for arm in arms if r % 2 == 0 else arms[::-1]:
            result, ticks = arm_run(arm, args.seconds)
            runs[arm].append((result.rate, ticks * tick_ms / result.requests))
    table = {
        arm: {
            "rps": statistics.median(rate for rate, _ in runs[arm]),
            "cpu_ms": statistics.median(cpu for _, cpu in runs[arm]),
            "rounds": [[round(rate, 1), round(cpu, 3)] for rate, cpu in runs[arm]],
        }
        for arm in arms
    }
    bare = table["bare"]["cpu_ms"]
    for arm in arms:
        table[arm]["extra_cpu_ms"] = table[arm]["cpu_ms"] - bare
        table[arm]["ratio"] = table[arm]["rps"] / table["bare"]["rps"]
    parts = table["token"]["extra_cpu_ms"] + table["audit"]["extra_cpu_ms"]
    report = {"scale": server.scale, "persona": persona, "arms": table, "token_and_audit_cpu_ms": parts}
    say(f"overheads of the lead detail at scale {server.scale:g} ({persona}), machine CPU per request:")
    for arm in arms:
        e = table[arm]
        print(
            f"  {arm:<6} {e['rps']:7.1f}/s  {e['cpu_ms']:5.2f} ms  extra {e['extra_cpu_ms']:+5.2f} ms  "
            f"ratio {e['ratio']:.2f}  ({OVERHEAD_ARMS[arm]})",
            flush=True,
        )
    print(
        f"  token lookup + audit event: {parts:+.2f} ms; the real endpoint: {table['real']['extra_cpu_ms']:+.2f} ms",
        flush=True,
    )
    return report


def paired_ratios(real: list[LoadResult], bare: list[LoadResult]) -> dict[str, Any]:
    """The ratio of each round's real arm to the bare arm measured next to it (the same round,
    the same data size), and their median: drift of a shared machine (a checkpoint, another
    process) moves both arms of a pair alike, so many short pairs give a steadier ratio than two
    long ones. Also the middle half of the rounds' ratios (quartiles), to show the spread."""
    rounds = [r.rate / b.rate for r, b in zip(real, bare, strict=True)]
    if len(rounds) >= 2:
        q1, _, q3 = statistics.quantiles(rounds, n=4, method="inclusive")
    else:
        q1 = q3 = rounds[0]
    return {
        "ratio": statistics.median(rounds),
        "ratio_rounds": [round(x, 4) for x in rounds],
        "ratio_middle_half": [q1, q3],
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = next(
        int(line.split()[1]) // 1024 // 1024
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    pg = subprocess.run(
        ["psql", *seeder.pg_args(), "-d", "postgres", "-Atc", "SHOW server_version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    modified = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return {
        "commit": commit,
        "modified_files": sorted(line[3:] for line in modified.stdout.splitlines()),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": memory,
        "postgresql": pg,
        "python": platform.python_version(),
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted(report["scales"], key=float)
    sizes = [report["scales"][s]["counts"]["leads"] for s in scales]
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.2), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for side, (arm, title) in enumerate((("real", "caseapi endpoints"), ("bare", "bare DRF baseline (same rows)"))):
        ax = axes[side]
        for n, (endpoint, (label, _kind)) in enumerate(ENDPOINTS.items()):
            for persona, style, marker in (("investigator", "-", "o"), ("supervisor", "--", "s")):
                p99 = [report["scales"][s]["endpoints"][endpoint][persona][arm]["p99_ms"] for s in scales]
                ax.plot(sizes, p99, style, marker=marker, color=colors[n % len(colors)], label=f"{label}, {persona}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("leads in the database (cases x 100, messages x 10)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("p99 latency, ms")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    config, machine = report["config"], report["machine"]
    fig.suptitle(
        f"p99 latency against data size: {config['clients']} clients, gunicorn {config['workers']} workers x "
        f"{config['threads']} threads, {machine['cpus']} cores"
    )
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict[str, Any]) -> str:
    """The figures as the Markdown tables of docs/performance.md."""
    scales = sorted(report["scales"], key=float)
    large, small = scales[-1], scales[0]
    lines = [
        f"Scale {large} ({report['scales'][large]['counts']['leads']:,} leads), {report['config']['clients']} clients:",
        "",
        "| endpoint | persona | rows | req/s | p50 ms | p99 ms | bare req/s | bare p50 | bare p99 | ratio "
        "| rounds' middle half | goal |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for endpoint, (label, kind) in ENDPOINTS.items():
        for persona in PERSONAS:
            e = report["scales"][large]["endpoints"][endpoint][persona]
            real, bare = e["real"], e["bare"]
            rows = report["scales"][large]["rows"][endpoint][persona]
            lines.append(
                f"| {label} | {persona} | {rows:,} | {real['rps']:.1f} | {real['p50_ms']:.0f} | {real['p99_ms']:.0f} "
                f"| {bare['rps']:.1f} | {bare['p50_ms']:.0f} | {bare['p99_ms']:.0f} | **{e['ratio']:.2f}** "
                f"| {e['ratio_middle_half'][0]:.2f} to {e['ratio_middle_half'][1]:.2f} "
                f"| >= {GOALS[kind]} {'met' if e['ratio'] >= GOALS[kind] else 'MISSED'} |"
            )
    if len(scales) > 1:
        header = " | ".join(f"p99 ms at {s}" for s in scales)
        lines += [
            "",
            f"p99 of the real endpoints against data size (growth: scale {large} / scale {small}; bare: the same for the"
            " bare views):",
            "",
            f"| endpoint | persona | {header} | growth | bare growth | goal |",
            "| --- | --- | " + " | ".join("---:" for _ in scales) + " | ---: | ---: | --- |",
        ]
        for endpoint, (label, kind) in ENDPOINTS.items():
            for persona in PERSONAS:
                p99 = " | ".join(
                    f"{report['scales'][s]['endpoints'][endpoint][persona]['real']['p99_ms']:.0f}" for s in scales
                )
                if kind == "list":
                    growth = report["growth"][endpoint][persona]
                    bare = report["growth_bare"][endpoint][persona]
                    verdict = f"<= {GROWTH_GOAL} {'met' if growth <= GROWTH_GOAL else 'MISSED'}"
                    lines.append(f"| {label} | {persona} | {p99} | **{growth:.2f}** | {bare:.2f} | {verdict} |")
                else:
                    lines.append(f"| {label} | {persona} | {p99} | | | (detail) |")
    if "overheads" in report:
        o = report["overheads"]
        lines += [
            "",
            f"What each part of the lead detail's own work costs at scale {o['scale']:g} ({o['persona']}), the whole"
            " machine's CPU time per request (--overheads):",
            "",
            "| arm | adds to the bare view | req/s | CPU ms per request | extra over bare | req/s / bare |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for arm, what in OVERHEAD_ARMS.items():
            e = o["arms"][arm]
            lines.append(
                f"| {arm} | {what} | {e['rps']:.1f} | {e['cpu_ms']:.2f} | {e['extra_cpu_ms']:+.2f} | {e['ratio']:.2f} |"
            )
        lines += [
            "",
            f"The token lookup and the audit event together: {o['token_and_audit_cpu_ms']:+.2f} ms; the real endpoint:"
            f" {o['arms']['real']['extra_cpu_ms']:+.2f} ms.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="scales 0.01 and 0.02, short arms: under a minute")
    parser.add_argument("--scales", help="comma-separated seed scales (default 0.01,0.1,1)")
    parser.add_argument("--seconds", type=float, help="length of each measured arm (default 2)")
    parser.add_argument("--rounds", type=int, help="rounds per endpoint and persona (default 8)")
    parser.add_argument(
        "--endpoints", help=f"comma-separated subset of {','.join(ENDPOINTS)} (default all; figures cover only those)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (see docs/performance.md)")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--reuse", action="store_true", help="keep seeded databases <prefix>_s<scale> and reuse them")
    parser.add_argument("--db-prefix", default="caseapi_bench_api", help="prefix of the databases made")
    parser.add_argument(
        "--broker", default=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"), help="Celery broker URL"
    )
    parser.add_argument(
        "--overheads", action="store_true", help="also measure what each part of the lead detail's work costs"
    )
    parser.add_argument(
        "--out", help="folder for api.json and api-p99.png (default bench/results; --quick: a temp dir)"
    )
    args = parser.parse_args()
    # Stopped with SIGTERM (kill, a CI timeout): unwind as on Ctrl-C, so the deployments'
    # gunicorn, sequencer and Celery processes are stopped and throwaway databases dropped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.endpoints:
        wanted = args.endpoints.split(",")
        unknown = sorted(set(wanted) - set(ENDPOINTS))
        if unknown:
            parser.error(f"unknown endpoints: {', '.join(unknown)}")
        for name in list(ENDPOINTS):
            if name not in wanted:
                del ENDPOINTS[name]
    scales = sorted(float(s) for s in (args.scales or ("0.01,0.02" if args.quick else "0.01,0.1,1")).split(","))
    # Many short pairs of arms rather than a few long ones (paired_ratios): 8 rounds of 2 s.
    args.seconds = args.seconds or (0.5 if args.quick else 2.0)
    args.rounds = args.rounds or (1 if args.quick else 8)
    args.warmup = 0.0 if args.quick else 1.0  # --quick: comparing the answers warmed the servers
    started = time.monotonic()
    print(
        f"scales {scales}; {args.clients} clients; gunicorn {args.workers} workers x {args.threads} threads; "
        f"arms of {args.seconds:g} s, {args.rounds} rounds",
        flush=True,
    )
    report: dict[str, Any] = {
        "command": "python bench/api.py " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "config": {k: getattr(args, k) for k in ("clients", "workers", "threads", "seconds", "rounds", "quick")},
        "scales": {},
    }
    template = f"{args.db_prefix}_template"
    seeder.ensure_template(template)
    try:
        if args.quick:  # two small seeds side by side, one process each
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda s: seeder.ensure_seeded(database_name(s, args), s, template=template), scales))
        founds = {}
        for scale in scales:
            founds[scale] = found = seeder.ensure_seeded(database_name(scale, args), scale, template=template)
            counts = found["counts"]
            say(
                f"scale {scale:g}: {counts['cases']} cases, {counts['leads']} leads, {counts['messages']} messages, "
                f"{counts['audit_events']} audit events (seeded in {found['seconds']:.0f} s)"
            )
        with contextlib.ExitStack() as stack:
            servers = start_servers(stack, args, founds)
            say("servers up, tokens issued, real and bare answers compared")
            run(args, servers)
            if args.overheads:
                report["overheads"] = overheads(args, servers[-1])
            pings = django_script(servers[0].env, PING)["workers"]
            for server in servers:
                if not any(name.startswith(server.node + "@") for name in pings):
                    raise SystemExit(f"the Celery worker {server.node} did not answer a ping ({pings})")
                report["scales"][f"{server.scale:g}"] = {
                    "counts": server.counts,
                    "seed_seconds": server.seed_seconds,
                    "scope": {p: server.targets[p]["scope_size"] for p in PERSONAS},
                    "rows": server.rows,
                    "endpoints": server.results,
                    "generator_cpu": server.generator_cpu,
                    "sealing": django_script(server.env, LAG),
                }
        generator = max(server.generator_cpu for server in servers)
        say(
            f"the load generator used at most {generator * 100:.0f}% of one core; Celery workers answered: "
            f"{', '.join(sorted(pings))}; sealing lag after the run: "
            + ", ".join(f"{s}: {r['sealing']['lag']:.1f} s" for s, r in report["scales"].items())
        )
    finally:
        if not args.reuse:
            for scale in scales:
                name = database_name(scale, args)
                subprocess.run(["dropdb", *seeder.pg_args(), "--if-exists", "--force", name], check=False)
                shutil.rmtree(seeder.var_dir_for(name), ignore_errors=True)
    small, large = f"{scales[0]:g}", f"{scales[-1]:g}"
    figures: list[str] = []
    lowest = {"list": (float("inf"), ""), "detail": (float("inf"), "")}
    growth_max = (0.0, "")
    largest = report["scales"][large]["endpoints"]
    for endpoint, (_label, kind) in ENDPOINTS.items():
        for persona in PERSONAS:
            ratio = largest[endpoint][persona]["ratio"]
            figures.append(figure(f"api_{endpoint}_{persona}_ratio", ratio, ">=", GOALS[kind]))
            lowest[kind] = min(lowest[kind], (ratio, f"{endpoint}/{persona}"))
    for endpoint, (_label, kind) in ENDPOINTS.items():
        if kind != "list" or small == large:
            continue
        for persona in PERSONAS:
            growth = (
                largest[endpoint][persona]["real"]["p99_ms"]
                / report["scales"][small]["endpoints"][endpoint][persona]["real"]["p99_ms"]
            )
            report.setdefault("growth", {}).setdefault(endpoint, {})[persona] = growth
            report.setdefault("growth_bare", {}).setdefault(endpoint, {})[persona] = (
                largest[endpoint][persona]["bare"]["p99_ms"]
                / report["scales"][small]["endpoints"][endpoint][persona]["bare"]["p99_ms"]
            )
            figures.append(figure(f"api_{endpoint}_{persona}_p99_growth", growth, "<=", GROWTH_GOAL))
            growth_max = max(growth_max, (growth, f"{endpoint}/{persona}"))
    print(
        f"lowest list ratio: {lowest['list'][1]}; lowest detail ratio: {lowest['detail'][1]}; "
        f"highest p99 growth: {growth_max[1]} (scale {large} / scale {small})",
        flush=True,
    )
    kinds = {kind for _label, kind in ENDPOINTS.values()}  # --endpoints may leave a kind out
    if "list" in kinds:
        figures.append(figure("api_lowest_list_ratio", lowest["list"][0], ">=", GOALS["list"]))
    if "detail" in kinds:
        figures.append(figure("api_lowest_detail_ratio", lowest["detail"][0], ">=", GOALS["detail"]))
    if small != large and "list" in kinds:
        figures.append(figure("api_highest_list_p99_growth", growth_max[0], "<=", GROWTH_GOAL))
    report["figures"] = figures
    print(markdown(report), flush=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    out_dir = (
        Path(args.out)
        if args.out
        else (Path(tempfile.mkdtemp(prefix="bench-api-")) if args.quick else ROOT / "bench" / "results")
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "api.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    if small != large:
        plot(report, out_dir / "api-p99.png")
    print(f"wrote {out_dir / 'api.json'} and {out_dir / 'api-p99.png'} ({report['seconds']:.0f} s in all)", flush=True)


if __name__ == "__main__":
    main()
