"""Benchmark of the audit log on PostgreSQL, 8 concurrent HTTP clients against gunicorn.

Prints, each measured in this run:
- audited write throughput / the same writes with audit recording off (goal >= 0.8);
- audited read throughput / unaudited (goal >= 0.7);
- verification speed / raw hashlib SHA-256 over the same bytes (goal >= 0.3). "The same bytes"
  are every byte string verification hashes: each entry's prev_hash || canonical JSON (the
  chain), each leaf's 0x00 || entry hash and each subtree's 0x01 || left || right (the tree,
  which verification recomputes too). The ratio against the chain's bytes alone is printed as
  a reference line;
- p99 sealing lag (event created -> sealed by the sequencer) during the audited writes.

The arms alternate (audited, unaudited, audited, ...) and the median of the rounds is taken,
so drift of this noisy machine hits both alike.

    python bench/audit.py [--quick] [--seconds S] [--rounds R] [--clients N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (  # noqa: E402
    background,
    base_env,
    django_script,
    drive,
    figure,
    gunicorn,
    manage,
    postgres_database,
    write_signing_key,
)

SEED = r"""
from cases import services
from cases.models import Role, TeamRole
from cases.services import auth_login
agency, _ = services.agency_ensure(code="BNCH", name="Bench County", kind="law_enforcement")
users = []
for n in range(int(os.environ["BENCH_CLIENTS"])):
    user, _ = services.user_ensure(username=f"bench{n}", agency=agency, role=Role.INVESTIGATOR,
                                   password="bench-password-long-enough")
    users.append(user)
case = services.case_create(actor=users[0], title="Bench operation", kind="operation")
for user in users[1:]:
    services.team_member_set(actor=users[0], case=case, user=user, role=TeamRole.INVESTIGATOR)
clients = []
for n, user in enumerate(users):
    lead, _ = services.lead_create(actor=user, case=case, display_name=f"Buyer {n}")
    key = auth_login(username=user.username, password="bench-password-long-enough").key
    clients.append({"token": key, "lead": str(lead.pk)})
print(json.dumps({"case": str(case.pk), "clients": clients}))
"""

VERIFY = r"""
import hashlib, time
from django.db import connection
from audit import chain, merkle, sealing
from audit.models import AuditEvent
from audit.services import checkpoint_create
from audit.verify import verify_log, _FIELDS
# Grow the log to BENCH_VERIFY_EVENTS events shaped like real ones (a lead edit each).
missing = int(os.environ["BENCH_VERIFY_EVENTS"]) - AuditEvent.objects.count()
if missing > 0:
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO audit_auditevent (created_at, actor_id, actor_name, agency_id, action, target_type, "
            "target_id, case_id, changes, request_id, ip, user_agent, prev_hash, entry_hash) "
            "SELECT now(), a.actor_id, a.actor_name, a.agency_id, 'lead.updated', 'cases.lead', a.target_id, "
            "a.case_id, jsonb_build_object('notes', jsonb_build_array('note ' || g, 'note ' || (g + 1))), "
            "md5(g::text), '127.0.0.1', 'bench-client/1.0', '', '' "
            "FROM generate_series(1, %s) AS g, "
            "(SELECT actor_id, actor_name, agency_id, target_id, case_id FROM audit_auditevent "
            " WHERE action = 'lead.updated' LIMIT 1) AS a",
            [missing],
        )
sealing.seal_pending()
checkpoint_create()
# The rows were just bulk-inserted and sealed (updated) at once; autovacuum keeps a log that
# grows event by event tidy, so vacuum as it would before timing the verification.
with connection.cursor() as c:
    c.execute("VACUUM ANALYZE audit_auditevent")
    c.execute("VACUUM ANALYZE audit_treenode")
rows = list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values(*_FIELDS))
# The byte strings verification hashes: the chain's entries, then the tree's leaves and the
# subtrees of each level (pairs of the level below; an odd last node waits for a later level).
blobs = [bytes.fromhex(r["prev_hash"]) + chain.canonical_entry(r) for r in rows]
tree_inputs = [merkle.LEAF_PREFIX + bytes.fromhex(r["entry_hash"]) for r in rows]
level = [hashlib.sha256(b).digest() for b in tree_inputs]
while len(level) > 1:
    pairs = [merkle.NODE_PREFIX + left + right for left, right in zip(level[0::2], level[1::2])]
    tree_inputs.extend(pairs)
    level = [hashlib.sha256(b).digest() for b in pairs]
del rows, level


def raw(inputs):
    t = time.perf_counter()
    for b in inputs:
        hashlib.sha256(b).digest()
    return time.perf_counter() - t


best = {"raw_chain": float("inf"), "raw_tree": float("inf"), "verify": float("inf")}
for _ in range(3):
    best["raw_chain"] = min(best["raw_chain"], raw(blobs))
    best["raw_tree"] = min(best["raw_tree"], raw(tree_inputs))
    t = time.perf_counter()
    result = verify_log()
    best["verify"] = min(best["verify"], time.perf_counter() - t)
    assert result.ok, result.problems
print(json.dumps({
    "events": len(blobs), "bytes": sum(map(len, blobs)), "tree_hashes": len(tree_inputs),
    "tree_bytes": sum(map(len, tree_inputs)), **best,
}))
"""

LAG = r"""
from django.db import connection
with connection.cursor() as c:
    c.execute("SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM sealed_at - created_at)), "
              "count(*) FROM audit_auditevent WHERE action = 'lead.updated' AND sealed_at IS NOT NULL")
    p99, n = c.fetchone()
print(json.dumps({"p99": float(p99 or 0), "n": n}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run, under a minute")
    parser.add_argument("--seconds", type=float, default=None, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--verify-events", type=int, default=None, help="size of the log verified")
    args = parser.parse_args()
    args.verify_events = args.verify_events or (50_000 if args.quick else 500_000)
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    rounds = args.rounds or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="bench-audit-") as var_dir, postgres_database("caseapi_bench_audit") as url:
        write_signing_key(var_dir)
        env = base_env(url, var_dir, AUDIT_SEAL_ON_COMMIT="0", BENCH_CLIENTS=str(args.clients))
        manage(env, "migrate", "--no-input", "-v0")
        seeded = django_script(env, SEED)
        clients = seeded["clients"]

        def write(client: int, i: int) -> tuple[str, str, dict[str, str], bytes]:
            c = clients[client]
            body = json.dumps({"notes": f"note {i} from client {client}"}).encode()
            headers = {"Authorization": f"Token {c['token']}", "Content-Type": "application/json"}
            return "PATCH", f"/api/leads/{c['lead']}/", headers, body

        def read(client: int, i: int) -> tuple[str, str, dict[str, str], None]:
            return "GET", f"/api/cases/{seeded['case']}/", {"Authorization": f"Token {clients[client]['token']}"}, None

        rates: dict[str, list[float]] = {"write_on": [], "write_off": [], "read_on": [], "read_off": []}
        with background(env, "manage.py", "audit_sequencer", "--interval", "0.05", "--checkpoint-every", "3600"):
            for _ in range(rounds):
                for recording in ("1", "0"):
                    with gunicorn({**env, "AUDIT_RECORDING": recording}) as port:
                        drive(port, args.clients, 1.0, read)  # warm up
                        suffix = "on" if recording == "1" else "off"
                        w = drive(port, args.clients, seconds, write)
                        r = drive(port, args.clients, seconds, read)
                        if w.errors or r.errors:
                            raise SystemExit(f"errors during the run: writes {w.errors}, reads {r.errors}")
                        rates[f"write_{suffix}"].append(w.rate)
                        rates[f"read_{suffix}"].append(r.rate)
                        print(
                            f"round audit={'on ' if recording == '1' else 'off'} writes {w.rate:7.1f}/s "
                            f"(p50 {w.p50 * 1000:.1f} ms, p99 {w.percentile(99) * 1000:.1f} ms)  "
                            f"reads {r.rate:7.1f}/s (p50 {r.p50 * 1000:.1f} ms, p99 {r.percentile(99) * 1000:.1f} ms)",
                            flush=True,
                        )
        lag = django_script(env, LAG)
        verify = django_script({**env, "BENCH_VERIFY_EVENTS": str(args.verify_events)}, VERIFY)

    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"verify: {verify['events']} events ({verify['bytes'] / 1e6:.1f} MB) and {verify['tree_hashes']} tree "
        f"hashes ({verify['tree_bytes'] / 1e6:.1f} MB); verify_log {verify['verify']:.3f} s, raw hashlib "
        f"{verify['raw_chain']:.3f} s for the chain + {verify['raw_tree']:.3f} s for the tree",
        flush=True,
    )
    print(f"reference: chain bytes only / verify_log {verify['raw_chain'] / verify['verify']:.3f}", flush=True)
    print(f"sealing lag measured over {lag['n']} audited writes", flush=True)
    figure("audited_write_ratio", med["write_on"] / med["write_off"], ">=", 0.8)
    figure("audited_read_ratio", med["read_on"] / med["read_off"], ">=", 0.7)
    figure("verify_speed_ratio", (verify["raw_chain"] + verify["raw_tree"]) / verify["verify"], ">=", 0.3)
    figure("sealing_lag_p99_ms", lag["p99"] * 1000, "<=", 1000)


if __name__ == "__main__":
    main()
