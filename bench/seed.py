"""Fill a PostgreSQL database with a regional data set for bench/api.py, through bulk paths
(COPY and INSERT ... SELECT over generate_series), keeping the audit log whole.

Scale 1 (--scale multiplies every count; 100 cases and 10 users per agency are the floor, so
that the investigator persona keeps its 20 cases):

    5 agencies, 500 users, 10,000 cases (2,000 per agency, every fifth an operation with an
    ingest source), 1,000,000 leads (100 per case), 2,000,000 identifiers (2 per lead; one
    lead in 20 also carries an identifier of a lead of another agency), 200,000 evidence items
    (references with a SHA-256; 20 per case) with their custody intake event, 500,000
    conversations with 10,000,000 messages (20 each) on the operations.

Every case has a team the way case_create and team_member_set leave it: the lead
investigator holds view/change/manage_team, two more investigators view/change (guardian's
direct-FK rows), and the agency's supervisors group view/change/manage_team. Two personas:
`bench-investigator` (lead on exactly 20 cases of agency BA) and `bench-supervisor` (supervisor
of BA, 2,000 cases at scale 1), password `bench-password-long-enough`.

The audit log: every user, ingest source, case, team member, lead, evidence item and ingest
batch gets the creation event its service records, inserted unsealed in time order; then
audit.sealing seals them, audit.services.checkpoint_create signs a checkpoint, and
`manage.py verify_audit` must pass. Secondary indexes and constraints of the big tables are
dropped for the load and rebuilt exactly as they were (checked). The database is marked
complete (a JSON comment on it) so that bench/api.py --reuse can take it again; the signing key
and checkpoint sink of a named database live in var/bench/<database>/.

It prints a progress bar and ends with `figure seed_minutes <m> goal <=30` at scale 1 ("well
under an hour"; smaller scales get a proportional goal).

    python bench/seed.py --database NAME [--scale 1] [--force] [--template NAME]
    python bench/seed.py --database-url postgres://.../NAME [--scale 0.01]

--template copies the migrated schema from a database kept for that purpose (made, or made
again, when the migrations differ) instead of migrating; bench/api.py uses one.
"""

# ruff: noqa: S608 - the SQL is built from constants of this file; values travel as parameters
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import ROOT, base_env, figure, manage, write_signing_key  # noqa: E402

SEED_VERSION = 2
PASSWORD = "bench-password-long-enough"  # noqa: S105 - a benchmark persona on a throwaway database
INVESTIGATOR = "bench-investigator"
SUPERVISOR = "bench-supervisor"
INVESTIGATOR_CASES = 20
AGENCY_CODES = ["BA", "BB", "BC", "BD", "BE"]
LEADS_PER_CASE = 100
IDENTIFIERS_PER_LEAD = 2
SHARED_EVERY = 20  # one lead in 20 also carries another agency's lead's identifier
EVIDENCE_PER_CASE = 20
OPERATION_EVERY = 5
CONVERSATIONS_PER_CASE = 50  # all on the operations: 250 per operation
MESSAGES_PER_CONVERSATION = 20
BATCH_PER_AUDIT_EVENT = 250  # conversations per ingest.batch_received event
SEAL_BATCH = 20_000
AREA_CODES = [
    "201", "202", "203", "205", "206", "207", "208", "210", "212", "213", "214", "215",
    "216", "217", "303", "305", "312", "313", "404", "415", "503", "512", "602", "617",
    "702", "713", "718", "801", "808", "919",
]  # fmt: skip
TAG = "caseapi-bench-seed"
NAME_POOL = 10_000  # distinct lead names, each encrypted once
BODY_VARIANTS = 16  # ciphertexts per message phrase


@dataclass(frozen=True)
class Plan:
    scale: float
    agencies: int
    users_per_agency: int
    cases_per_agency: int

    @classmethod
    def for_scale(cls, scale: float) -> Plan:
        return cls(
            scale=scale,
            agencies=len(AGENCY_CODES),
            users_per_agency=max(10, round(100 * scale)),
            cases_per_agency=max(INVESTIGATOR_CASES, round(2000 * scale)),
        )

    @property
    def cases(self) -> int:
        return self.agencies * self.cases_per_agency

    @property
    def leads(self) -> int:
        return self.cases * LEADS_PER_CASE

    @property
    def identifiers(self) -> int:
        return self.leads * IDENTIFIERS_PER_LEAD

    @property
    def evidence(self) -> int:
        return self.cases * EVIDENCE_PER_CASE

    @property
    def conversations(self) -> int:
        return self.cases * CONVERSATIONS_PER_CASE

    @property
    def messages(self) -> int:
        return self.conversations * MESSAGES_PER_CONVERSATION

    def counts(self) -> dict[str, int]:
        return {
            "agencies": self.agencies,
            "users": self.agencies * self.users_per_agency,
            "cases": self.cases,
            "leads": self.leads,
            "identifiers": self.identifiers,
            "evidence": self.evidence,
            "conversations": self.conversations,
            "messages": self.messages,
        }


# ---------------------------------------------------------------- progress


class Progress:
    """A textual progress bar over weighted stages: redrawn in place on a terminal, one line
    per tenth otherwise."""

    def __init__(self, stages: dict[str, float]) -> None:
        self.weights = stages
        self.total = sum(stages.values())
        self.done = 0.0
        self.stage = ""
        self.stage_fraction = 0.0
        self.started = time.monotonic()
        self.stage_started = self.started
        self.tty = sys.stdout.isatty()
        self.last_tenth = -1
        self.timings: dict[str, float] = {}

    def begin(self, stage: str) -> None:
        self.stage, self.stage_fraction, self.stage_started = stage, 0.0, time.monotonic()
        self.draw()

    def update(self, fraction: float) -> None:
        self.stage_fraction = min(1.0, fraction)
        self.draw()

    def end(self) -> None:
        self.timings[self.stage] = time.monotonic() - self.stage_started
        self.done += self.weights[self.stage]
        self.stage_fraction = 0.0
        self.draw(finished_stage=True)

    def draw(self, finished_stage: bool = False) -> None:
        fraction = (self.done + self.weights.get(self.stage, 0) * self.stage_fraction) / self.total
        elapsed = time.monotonic() - self.started
        filled = int(fraction * 30)
        line = f"[{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}% {elapsed:6.0f} s  {self.stage:<28}"
        if self.tty:
            print("\r" + line, end="\n" if finished_stage and self.done >= self.total else "", flush=True)
        elif finished_stage:
            print(f"{line} done in {self.timings[self.stage]:.1f} s", flush=True)


# ---------------------------------------------------------------- SQL helpers


def _sql_ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _iso(expr: str) -> str:
    """SQL for Python's datetime.isoformat() of a UTC timestamptz (what audit changes hold)."""
    return f"to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def _rand(n: str, salt: int) -> str:
    """A deterministic pseudo-random 0..999 from integer expression `n`."""
    return f"mod(abs(hashint8(({n})::bigint * 64 + {salt})), 1000)"


def _uuid(kind: str, n: str) -> str:
    return f"md5('{TAG}:{kind}:' || ({n}))::uuid"


class Deferred:
    """The secondary indexes, unique and foreign-key constraints of some tables: dropped for a
    bulk load, rebuilt afterwards from their saved definitions, and checked to be identical."""

    def __init__(self, cur: Any, tables: list[str], keep: tuple[str, ...] = ()) -> None:
        self.cur, self.tables, self.keep = cur, tables, keep
        cur.execute(
            "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
            [tables],
        )
        self.constraints = [row for row in cur.fetchall() if row[1] not in keep]
        cur.execute(
            "SELECT i.indrelid::regclass::text, c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
            "AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')) ORDER BY c.relname",
            [tables],
        )
        self.indexes = [row for row in cur.fetchall() if row[1] not in keep]
        self.before = self.snapshot()

    def snapshot(self) -> list[tuple]:
        self.cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) UNION ALL SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE tablename = ANY(%s) ORDER BY 1, 2",
            [self.tables, self.tables],
        )
        return self.cur.fetchall()

    def drop(self) -> None:
        for table, name, _kind, _definition in self.constraints:
            self.cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for _table, name, _definition in self.indexes:
            self.cur.execute(f'DROP INDEX "{name}"')

    def restore(self, progress: Progress | None = None) -> None:
        steps = len(self.indexes) + len(self.constraints)
        done = 0
        for _table, _name, definition in self.indexes:
            self.cur.execute(definition)
            done += 1
            if progress:
                progress.update(done / steps)
        for table, name, _kind, definition in sorted(self.constraints, key=lambda c: c[2] != "u"):
            self.cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            done += 1
            if progress:
                progress.update(done / steps)
        after = self.snapshot()
        if sorted(after) != sorted(self.before):
            raise RuntimeError(f"schema of {self.tables} differs after the load: {set(self.before) ^ set(after)}")


# ---------------------------------------------------------------- the seed


STAGES = {
    "people and cases": 2,
    "identifiers": 6,
    "leads and links": 14,
    "evidence and custody": 3,
    "conversations": 4,
    "messages": 40,
    "domain indexes": 25,
    "audit events": 14,
    "sealing": 20,
    "audit indexes": 4,
    "checkpoint, vacuum, verify": 14,
}


def seed(plan: Plan) -> dict[str, Any]:  # noqa: PLR0915 - one linear script, stage by stage
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, Permission
    from django.db import connection

    from audit import sealing
    from audit.services import checkpoint_create
    from caseapi import crypto
    from cases import identifiers as ident
    from cases import services
    from cases.models import AgencyKind, Role
    from cases.permissions import SUPERVISOR_GROUP_PERMS, TEAM_ROLE_PERMS, CasePerm
    from intercept import signing

    progress = Progress(STAGES)
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    t_people = now - dt.timedelta(days=400)
    t_first = now - dt.timedelta(days=365)
    t_end = now - dt.timedelta(hours=1)
    connection.ensure_connection()
    cur = connection.connection.cursor()
    for setting in (
        "statement_timeout = 0",
        "synchronous_commit = off",
        "maintenance_work_mem = '1GB'",
        "work_mem = '256MB'",
        "temp_buffers = '256MB'",
    ):
        cur.execute(f"SET {setting}")
    C, L, M = plan.cases, plan.leads, plan.conversations  # noqa: N806 - the plan's sizes
    params = {"C": C, "L": L, "LPC": LEADS_PER_CASE, "t_end": t_end, "tag": TAG}

    # -- people and cases (small: built in Python, loaded with COPY) -------------------------
    progress.begin("people and cases")
    system = services.system_user()
    agencies = [
        services.agency_ensure(code=code, name=f"Bench Region Agency {code}", kind=AgencyKind.LAW_ENFORCEMENT)[0]
        for code in AGENCY_CODES
    ]
    role_groups = {name: Group.objects.get_or_create(name=name)[0].pk for name in Role.values}
    perms = {
        p.codename: p.pk for p in Permission.objects.filter(content_type__app_label="cases", content_type__model="case")
    }
    persona_hash = make_password(PASSWORD)
    cur.execute("SELECT coalesce(max(id), 0) FROM auth_user")
    next_user = cur.fetchone()[0] + 1
    users: list[tuple] = []  # (id, agency index, username, role)
    for a, agency in enumerate(agencies):
        for u in range(plan.users_per_agency):
            role = {0: Role.SUPERVISOR, 1: Role.AUDITOR, 2: Role.AGENCY_ADMIN}.get(u, Role.INVESTIGATOR)
            username = f"{agency.code.lower()}-{role.replace('_', '-')}-{u:03d}"
            if a == 0 and u == 0:
                username = SUPERVISOR
            if a == 0 and u == 3:
                username = INVESTIGATOR
            users.append((next_user, a, username, str(role)))
            next_user += 1
    with cur.copy(
        "COPY auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, "
        "is_active, date_joined) FROM STDIN"
    ) as copy:
        for uid, a, username, _role in users:
            hashed = persona_hash if username in (INVESTIGATOR, SUPERVISOR) else make_password(None)
            first, last = f"Agent{uid}", AGENCY_CODES[a].title()
            copy.write_row(
                (uid, hashed, False, username, first, last, f"{username}@bench.example", True, True, t_people)
            )
    cur.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), (SELECT max(id) FROM auth_user))")
    with cur.copy("COPY cases_profile (user_id, agency_id, title, phone, failed_logins) FROM STDIN") as copy:
        for uid, a, _username, role in users:
            copy.write_row((uid, agencies[a].pk, role.replace("_", " ").title(), f"+1202555{uid % 10000:04d}", 0))
    with cur.copy("COPY auth_user_groups (user_id, group_id) FROM STDIN") as copy:
        for uid, a, _username, role in users:
            copy.write_row((uid, role_groups[role]))
            if role == Role.SUPERVISOR:
                copy.write_row((uid, agencies[a].supervisors_id))

    investigators = {a: [u for u in users if u[1] == a and u[3] == Role.INVESTIGATOR] for a in range(len(agencies))}
    cases: list[dict[str, Any]] = []
    counters: dict[tuple[int, int], int] = {}
    span = (now - dt.timedelta(days=5)) - t_first
    for c in range(C):
        a, k = divmod(c, plan.cases_per_agency)
        pool = [u for u in investigators[a] if u[2] != INVESTIGATOR]
        lead = investigators[0][0] if a == 0 and k < INVESTIGATOR_CASES else pool[k % len(pool)]
        if a == 0 and k < INVESTIGATOR_CASES:
            assert lead[2] == INVESTIGATOR
        members = [pool[(k + 1) % len(pool)], pool[(k + 2) % len(pool)]]
        members = [m for m in members if m[0] != lead[0]][:2]
        created = t_first + span * ((k + 0.5) / plan.cases_per_agency) + dt.timedelta(minutes=7 * a)
        year = created.year
        counters[(a, year)] = counters.get((a, year), 0) + 1
        is_op = k % OPERATION_EVERY == 0
        status = ["active"] * 4 + ["open"] * 4 + ["pending_prosecution", "closed"]
        cases.append(
            {
                "c": c,
                "a": a,
                "id": None,
                "number": f"{agencies[a].code}-{year}-{counters[(a, year)]:05d}",
                "title": f"{'Operation' if is_op else 'Investigation'} {agencies[a].code} {k + 1}",
                "kind": "operation" if is_op else "investigation",
                "status": status[k % 10],
                "priority": ["low", "normal", "high", "urgent"][(k * 7) % 4],
                "lead": lead,
                "members": members,
                "created": created,
                "is_op": is_op,
            }
        )
    cur.execute(
        "CREATE TEMP TABLE bench_case (c int PRIMARY KEY, id uuid, agency_id bigint, agency_code text, "
        "lead_user_id int, lead_username text, created_at timestamptz, is_op bool, number text, title text, "
        "kind text, priority text, source_id uuid, source_name text, op_index int)"
    )
    cur.execute(f"SELECT c, {_uuid('case', 'c')}::text FROM generate_series(0, %s) c", [C - 1])
    for c, case_id in cur.fetchall():
        cases[c]["id"] = case_id
    op_index = 0
    with cur.copy(
        "COPY bench_case (c, id, agency_id, agency_code, lead_user_id, lead_username, created_at, is_op, number, "
        "title, kind, priority, op_index) FROM STDIN"
    ) as copy:
        for case in cases:
            agency = agencies[case["a"]]
            copy.write_row(
                (
                    case["c"],
                    case["id"],
                    agency.pk,
                    agency.code,
                    case["lead"][0],
                    case["lead"][2],
                    case["created"],
                    case["is_op"],
                    case["number"],
                    case["title"],
                    case["kind"],
                    case["priority"],
                    op_index if case["is_op"] else None,
                )
            )
            op_index += 1 if case["is_op"] else 0
    operations = op_index
    with cur.copy(
        "COPY cases_case (id, number, agency_id, title, kind, status, priority, summary, lead_investigator_id, "
        "created_by_id, created_at, updated_at, closed_at) FROM STDIN"
    ) as copy:
        for case in cases:
            closed = case["created"] + dt.timedelta(days=3) if case["status"] == "closed" else None
            copy.write_row(
                (
                    case["id"],
                    case["number"],
                    agencies[case["a"]].pk,
                    case["title"],
                    case["kind"],
                    case["status"],
                    case["priority"],
                    f"Benchmark {case['kind']} opened by {case['lead'][2]}.",
                    case["lead"][0],
                    case["lead"][0],
                    case["created"],
                    case["created"],
                    closed,
                )
            )
    with cur.copy("COPY cases_casenumbercounter (agency_id, year, last_value) FROM STDIN") as copy:
        for (a, year), last in counters.items():
            copy.write_row((agencies[a].pk, year, last))
    with cur.copy("COPY cases_caseuserobjectpermission (content_object_id, permission_id, user_id) FROM STDIN") as copy:
        for case in cases:
            for perm in TEAM_ROLE_PERMS["lead"]:
                copy.write_row((case["id"], perms[perm.value], case["lead"][0]))
            for member in case["members"]:
                for perm in TEAM_ROLE_PERMS["investigator"]:
                    copy.write_row((case["id"], perms[perm.value], member[0]))
    with cur.copy(
        "COPY cases_casegroupobjectpermission (content_object_id, permission_id, group_id) FROM STDIN"
    ) as copy:
        for case in cases:
            for perm in SUPERVISOR_GROUP_PERMS:
                copy.write_row((case["id"], perms[perm.value], agencies[case["a"]].supervisors_id))
    assert CasePerm.MANAGE_TEAM in TEAM_ROLE_PERMS["lead"]
    with cur.copy(
        "COPY intercept_ingestsource (id, name, agency_id, case_id, is_active, secret_encrypted, "
        "previous_secret_encrypted, created_at, updated_at) FROM STDIN"
    ) as copy:
        for case in cases:
            if case["is_op"]:
                case["source"] = f"bot-{case['number'].lower()}"
                created = case["created"] + dt.timedelta(minutes=1)
                secret = signing.encrypt_secret(signing.new_secret())
                copy.write_row(
                    (
                        _uuid_py("source", case["c"]),
                        case["source"],
                        agencies[case["a"]].pk,
                        case["id"],
                        True,
                        secret,
                        "",
                        created,
                        created,
                    )
                )
    cur.execute(
        "UPDATE bench_case bc SET source_id = s.id, source_name = s.name FROM intercept_ingestsource s "
        "WHERE s.case_id = bc.id"
    )
    cur.execute("CREATE TEMP TABLE bench_user (id int PRIMARY KEY, agency int, username text, role text)")
    with cur.copy("COPY bench_user (id, agency, username, role) FROM STDIN") as copy:
        for row in users:
            copy.write_row(row)
    cur.execute("ANALYZE bench_case")
    cur.execute("ANALYZE bench_user")
    # Phone prefixes (+1 NPA NXX) that cases.identifiers accepts, checked here one by one.
    prefixes: list[str] = []
    wanted = max(60, plan.identifiers // 10_000 + 1)
    for exchange in range(201, 1000):
        for area in AREA_CODES:
            prefix = f"+1{area}{exchange}"
            if exchange % 100 == 11 or exchange == 555 or len(prefixes) >= wanted:
                continue
            if all(ident.normalize("phone", prefix + line) == prefix + line for line in ("0100", "9876")):
                prefixes.append(prefix)
    cur.execute("CREATE TEMP TABLE bench_prefix (p int PRIMARY KEY, prefix text)")
    with cur.copy("COPY bench_prefix (p, prefix) FROM STDIN") as copy:
        for p, prefix in enumerate(prefixes):
            copy.write_row((p, prefix))
    assert plan.identifiers < len(prefixes) * 10_000
    progress.end()

    big = [
        "cases_identifier",
        "cases_lead",
        "cases_leadidentifier",
        "cases_evidenceitem",
        "cases_custodyevent",
        "intercept_conversation",
        "intercept_message",
    ]
    deferred = Deferred(cur, big)
    deferred.drop()

    # -- identifiers: normalized values, unique (kind, value) by construction ------------------
    # Built in Python: each value is encrypted and its blind index computed here (what
    # Identifier.of does), then loaded with COPY. A lead's first identifier (even i) is a phone
    # (8 in 10) or an email, and is also its conversations' buyer: that buyer's sealed JSON goes
    # to bench_buyer for the conversations below. The second is a handle, an email or a payment
    # handle.
    progress.begin("identifiers")
    chunks = _chunks(plan.identifiers, 250_000)
    cur.execute("CREATE TEMP TABLE bench_buyer (identifier_id bigint PRIMARY KEY, buyer text)")
    for number, (lo, hi) in enumerate(chunks):
        buyers = []
        with cur.copy("COPY cases_identifier (id, kind, value, value_index, created_at) FROM STDIN") as copy:
            for i in range(lo, hi):
                kind, value = _identifier(i, prefixes)
                copy.write_row(
                    (
                        i + 1,
                        kind,
                        crypto.encrypt(value, "cases_identifier.value"),
                        crypto.blind_index(kind, value),
                        t_first,
                    )
                )
                if i % 2 == 0:
                    buyers.append((i + 1, crypto.encrypt(json.dumps({kind: value}), "intercept_conversation.buyer")))
        with cur.copy("COPY bench_buyer (identifier_id, buyer) FROM STDIN") as copy:
            for row in buyers:
                copy.write_row(row)
        progress.update((number + 1) / len(chunks))
    cur.execute("SELECT setval(pg_get_serial_sequence('cases_identifier', 'id'), %s)", [plan.identifiers])
    cur.execute("ANALYZE bench_buyer")
    progress.end()

    # -- leads and their identifier links ----------------------------------------------------
    progress.begin("leads and links")
    weights = services.PRIORITY_WEIGHTS
    signals = {name: _rand("n", salt) for salt, name in enumerate(weights, 1)}
    thresholds = {"minor_age_mentioned": 50, "payment_discussed": 400, "meeting_arranged": 250, "repeat_contact": 200}
    factors = " || ".join(
        f"CASE WHEN {signals[name]} < {thresholds[name]} THEN "
        f"jsonb_build_array(jsonb_build_object('factor', '{name}', 'weight', {weight})) ELSE '[]'::jsonb END"
        for name, weight in weights.items()
    )
    score = "least(100, " + " + ".join(
        f"CASE WHEN {signals[name]} < {thresholds[name]} THEN {weight} ELSE 0 END" for name, weight in weights.items()
    ) + ")"  # fmt: skip
    status = (
        f"CASE WHEN {_rand('n', 11)} < 300 THEN 'new' WHEN {_rand('n', 11)} < 550 THEN 'triaged' "
        f"WHEN {_rand('n', 11)} < 700 THEN 'assigned' WHEN {_rand('n', 11)} < 850 THEN 'investigating' "
        f"WHEN {_rand('n', 11)} < 900 THEN 'referred' ELSE 'closed_no_action' END"
    )
    source = (
        f"CASE WHEN bc.is_op THEN 'intercept_bot' WHEN {_rand('n', 12)} < 500 THEN 'tip' "
        f"WHEN {_rand('n', 12)} < 800 THEN 'ad_analysis' ELSE 'investigator' END"
    )
    lead_created = "bc.created_at + (%(t_end)s - bc.created_at) * (((n / %(C)s) + 1)::float8 / (%(LPC)s + 1))"
    # Lead names: "Buyer <k>", k < NAME_POOL, each sealed once in Python (encrypting a million
    # names one by one would cost the load more than the data set gains).
    names = [crypto.encrypt(f"Buyer {k}", "cases_lead.display_name") for k in range(NAME_POOL)]
    for number, (lo, hi) in enumerate(chunks := _chunks(L, 100_000)):
        cur.execute("DROP TABLE IF EXISTS bench_chunk")
        cur.execute(
            "CREATE TEMP TABLE bench_chunk AS SELECT n, "
            f"{_uuid('lead', 'n')} AS id, bc.id AS case_id, {status} AS status, {source} AS source, "
            f"{score} AS score, {factors} AS factors, "
            + ", ".join(f"{signals[name]} < {thresholds[name]} AS {name}" for name in weights)
            + f", CASE WHEN bc.is_op THEN {system.pk} ELSE bc.lead_user_id END AS created_by, "
            f"bc.lead_user_id, {lead_created} AS created_at "
            "FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) n JOIN bench_case bc ON bc.c = mod(n, %(C)s)",
            {**params, "lo": lo, "hi": hi},
        )
        cur.execute(
            "INSERT INTO cases_lead (id, case_id, display_name, source, status, assignee_id, minor_age_mentioned, "
            "payment_discussed, meeting_arranged, repeat_contact, priority_score, priority_factors, priority, "
            "first_seen_at, last_seen_at, notes, created_by_id, created_at, updated_at) "
            f"SELECT id, case_id, (%(names)s::text[])[1 + mod(n, {NAME_POOL})], source, status, "
            "CASE WHEN status IN ('assigned', 'investigating') THEN lead_user_id END, minor_age_mentioned, "
            "payment_discussed, meeting_arranged, repeat_contact, score, factors, score, "
            f"created_at - mod({_rand('n', 13)}, 72) * interval '1 hour', created_at, '', created_by, created_at, "
            "created_at FROM bench_chunk",
            {"names": names},
        )
        cur.execute(
            "INSERT INTO cases_leadidentifier (lead_id, identifier_id, added_by_id, added_at) "
            "SELECT id, 2 * n + 1 + x, created_by, created_at FROM bench_chunk, (VALUES (0), (1)) v(x) "
            "UNION ALL SELECT id, 2 * mod(n + %(L)s / 2 + %(C)s / 2, %(L)s) + 1, created_by, created_at "
            f"FROM bench_chunk WHERE mod(n, {SHARED_EVERY}) = 7",
            params,
        )
        progress.update((number + 1) / len(chunks))
    cur.execute("DROP TABLE bench_chunk")
    progress.end()

    # -- evidence items (references) and their intake custody event ---------------------------
    progress.begin("evidence and custody")
    kinds = ["screenshot", "ad_capture", "subpoena_return", "device_extraction", "recording", "document", "other"]
    media = ["image/png", "text/html", "application/pdf", "application/octet-stream", "audio/mpeg", "application/pdf"]
    cur.execute(
        "INSERT INTO cases_evidenceitem (id, case_id, lead_id, kind, description, content_name, original_filename, "
        "external_uri, sha256, size_bytes, media_type, collected_at, collected_by_id, status, withdrawn_reason, "
        "created_by_id, created_at, updated_at) "
        f"SELECT {_uuid('evidence', 'e')}, bc.id, "
        f"CASE WHEN mod(e / %(C)s, 5) <> 4 THEN {_uuid('lead', 'mod(e, %(C)s) + %(C)s * mod((e / %(C)s) * 5, %(LPC)s)')} END, "
        f"(%(kinds)s::text[])[1 + mod(e, {len(kinds)})], 'Evidence ' || e || ' of ' || bc.number, '', '', "
        f"'evidence-system://' || lower(bc.agency_code) || '/' || {_uuid('evidence', 'e')}, "
        f"encode(sha256(convert_to('{TAG}:evidence:' || e, 'UTF8')), 'hex'), 1000 + {_rand('e', 21)} * 5000, "
        f"(%(media)s::text[])[1 + mod(e, {len(media)})], t.at - interval '1 hour', bc.lead_user_id, 'active', '', "
        "bc.lead_user_id, t.at, t.at "
        "FROM generate_series(0, %(E)s - 1) e JOIN bench_case bc ON bc.c = mod(e, %(C)s), "
        "LATERAL (SELECT bc.created_at + (%(t_end)s - bc.created_at) * "
        "(((e / %(C)s) + 0.5)::float8 / (%(EPC)s + 1)) AS at) t",
        {**params, "E": plan.evidence, "EPC": EVIDENCE_PER_CASE, "kinds": kinds, "media": media},
    )
    progress.update(0.6)
    cur.execute(
        "INSERT INTO cases_custodyevent (id, evidence_id, action, actor_id, from_party, to_party, location, "
        "occurred_at, note, details, created_at) "
        f"SELECT {_uuid('custody', 'ev.id::text')}, ev.id, 'collected', ev.collected_by_id, '', bc.lead_username, "
        "'', ev.collected_at, 'Intake', jsonb_build_object('sha256', ev.sha256, 'size_bytes', ev.size_bytes), "
        "ev.created_at FROM cases_evidenceitem ev JOIN bench_case bc ON bc.id = ev.case_id"
    )
    progress.end()

    # -- conversations on the operations, and their messages ---------------------------------
    progress.begin("conversations")
    cur.execute(
        "INSERT INTO intercept_conversation (id, source_id, case_id, lead_id, external_id, platform, bot, ad_site, "
        "ad_external_id, buyer, minor_age_mentioned, payment_discussed, meeting_requested, closed, message_count, "
        "first_message_at, last_message_at, snapshot_messages, created_at, updated_at) "
        f"SELECT {_uuid('conversation', 'm')}, bc.source_id, bc.id, {_uuid('lead', 'bc.c + %(C)s * mod(m / %(O)s, %(LPC)s)')}, "
        "'conv-' || m, (ARRAY['sms', 'whatsapp', 'site-chat'])[1 + mod(m, 3)], 'decoy-' || mod(m, 4), "
        "(ARRAY['site-a', 'site-b', 'site-c', 'site-d'])[1 + mod(m, 4)], 'ad-' || (m / 3), "
        "bb.buyer, "
        f"{_rand('m', 31)} < 30, {_rand('m', 32)} < 400, {_rand('m', 33)} < 300, false, %(MPC)s, "
        "t.at, t.at + (%(MPC)s - 1) * interval '3 minutes', 0, t.at + %(MPC)s * interval '3 minutes', "
        "t.at + %(MPC)s * interval '3 minutes' "
        "FROM generate_series(0, %(M)s - 1) m JOIN bench_case bc ON bc.op_index = mod(m, %(O)s) "
        "JOIN bench_buyer bb ON bb.identifier_id = 2 * (bc.c + %(C)s * mod(m / %(O)s, %(LPC)s)) + 1, "
        "LATERAL (SELECT least(%(t_end)s - interval '2 hours', bc.created_at + (%(t_end)s - bc.created_at) * "
        "((mod(m / %(O)s, %(LPC)s) + 1)::float8 / (%(LPC)s + 1)) - interval '30 minutes' "
        "+ ((m / %(O)s) / %(LPC)s) * interval '2 days') AS at) t",
        {**params, "M": M, "O": operations, "MPC": MESSAGES_PER_CONVERSATION},
    )
    cur.execute("DROP TABLE bench_buyer")
    progress.end()
    progress.begin("messages")
    # The bodies are a few phrases: each sealed BODY_VARIANTS times in Python (fresh nonces),
    # a variant picked per message, so the table holds ciphertext of realistic size and mix.
    inbound = [
        "hey is this still available",
        "how much for an hour",
        "can we meet tonight",
        "where are you located",
        "is cash ok",
        "what time works for you",
        "i am nearby now",
        "can you send the address",
    ]
    outbound = [
        "hi yes",
        "depends what you are looking for",
        "what area are you in",
        "when are you free",
        "text me when you are close",
        "are you alone",
        "ok see you soon",
    ]
    inbound = [crypto.encrypt(text, "intercept_message.body") for text in inbound for _ in range(BODY_VARIANTS)]
    outbound = [crypto.encrypt(text, "intercept_message.body") for text in outbound for _ in range(BODY_VARIANTS)]
    bounds = _uuid_bounds(32)
    h = "hashtext(cv.external_id)"
    for number, (lo, hi) in enumerate(bounds):
        cur.execute(
            "INSERT INTO intercept_message (conversation_id, seq, external_id, direction, sent_at, body, created_at) "
            "SELECT cv.id, s, cv.external_id || '-m' || s, CASE WHEN mod(s, 2) = 1 THEN 'inbound' ELSE 'outbound' END, "
            "cv.first_message_at + (s - 1) * interval '3 minutes', "
            f"CASE WHEN mod(s, 2) = 1 THEN (%(inbound)s::text[])[1 + mod(s + {_rand(h, 41)}, {len(inbound)})] "
            f"ELSE (%(outbound)s::text[])[1 + mod(s + {_rand(h, 42)}, {len(outbound)})] END, cv.created_at "
            "FROM intercept_conversation cv, generate_series(1, cv.message_count) s "
            "WHERE cv.id >= %(lo)s::uuid AND (%(hi)s::uuid IS NULL OR cv.id < %(hi)s::uuid) ORDER BY cv.id, s",
            {"inbound": inbound, "outbound": outbound, "lo": lo, "hi": hi},
        )
        progress.update((number + 1) / len(bounds))
    progress.end()

    progress.begin("domain indexes")
    deferred.restore(progress)
    for table in big + ["cases_case", "auth_user", "cases_caseuserobjectpermission", "cases_casegroupobjectpermission"]:
        cur.execute(f"ANALYZE {table}")
    progress.end()

    # -- the audit log: creation events, unsealed, in time order -------------------------------
    progress.begin("audit events")
    audit_deferred = Deferred(cur, ["audit_auditevent"], keep=("audit_unsealed_idx",))
    audit_deferred.drop()
    cur.execute(
        "CREATE TEMP TABLE bench_lead_idents AS SELECT li.lead_id, "
        "jsonb_agg(i.kind || ':' || left(i.value_index, 16) ORDER BY (i.kind || ':' || left(i.value_index, 16)) "
        'COLLATE "C") AS idents '
        "FROM cases_leadidentifier li JOIN cases_identifier i ON i.id = li.identifier_id GROUP BY li.lead_id"
    )
    cur.execute("ALTER TABLE bench_lead_idents ADD PRIMARY KEY (lead_id)")
    cur.execute("ANALYZE bench_lead_idents")
    progress.update(0.15)
    lead_changes = (
        "jsonb_build_object('display_name', 'changed', 'source', "
        "jsonb_build_array(null, l.source), 'status', jsonb_build_array(null, l.status), "
        f"'first_seen_at', jsonb_build_array(null, {_iso('l.first_seen_at')}), "
        f"'last_seen_at', jsonb_build_array(null, {_iso('l.last_seen_at')}), "
        "'identifiers', jsonb_build_array('[]'::jsonb, coalesce(li.idents, '[]'::jsonb)))"
        " || CASE WHEN l.assignee_id IS NOT NULL THEN jsonb_build_object('assignee_id', "
        "jsonb_build_array(null, l.assignee_id)) ELSE '{}'::jsonb END"
        " || CASE WHEN l.priority <> 0 THEN jsonb_build_object('priority', jsonb_build_array(null, l.priority)) "
        "ELSE '{}'::jsonb END"
        + "".join(
            f" || CASE WHEN l.{name} THEN jsonb_build_object('{name}', jsonb_build_array(null, true)) "
            "ELSE '{}'::jsonb END"
            for name in weights
        )
    )
    evidence_changes = (
        "jsonb_build_object('kind', jsonb_build_array(null, ev.kind), 'sha256', jsonb_build_array(null, ev.sha256), "
        "'size_bytes', jsonb_build_array(null, ev.size_bytes), 'external_uri', jsonb_build_array(null, "
        "ev.external_uri), 'lead', jsonb_build_array(null, ev.lead_id::text), 'original_filename', "
        "jsonb_build_array(null, null))"
    )
    sources = [
        # users (the command line creates them: no actor)
        "SELECT %(t_people)s::timestamptz AS created_at, 0 AS ord, NULL::int AS actor_id, '' AS actor_name, "
        "a.id AS agency_id, 'user.created' AS action, 'auth.user' AS target_type, bu.id::text AS target_id, "
        "NULL::uuid AS case_id, jsonb_build_object('username', jsonb_build_array(null, bu.username), "
        "'agency', jsonb_build_array(null, a.code), 'role', jsonb_build_array(null, bu.role)) AS changes "
        "FROM bench_user bu JOIN cases_agency a ON a.code = (%(codes)s::text[])[bu.agency + 1] "
        "WHERE %(t_people)s::timestamptz >= %(lo)s AND %(t_people)s::timestamptz < %(hi)s",
        # cases, as case_create records them
        "SELECT bc.created_at, 1, bc.lead_user_id, bc.lead_username, bc.agency_id, 'case.created', 'cases.case', "
        "bc.id::text, bc.id, jsonb_build_object('number', jsonb_build_array(null, bc.number), 'title', "
        "jsonb_build_array(null, bc.title), 'kind', jsonb_build_array(null, bc.kind), 'priority', "
        "jsonb_build_array(null, bc.priority), 'parent', jsonb_build_array(null, null), 'team', "
        "jsonb_build_array(null, jsonb_build_object(bc.lead_username, 'lead'))) "
        "FROM bench_case bc WHERE bc.created_at >= %(lo)s AND bc.created_at < %(hi)s",
        # the two investigators added to each team (team_member_set)
        "SELECT bc.created_at + interval '1 second', 2, bc.lead_user_id, bc.lead_username, bc.agency_id, "
        "'team.member_set', 'cases.case', bc.id::text, bc.id, jsonb_build_object('member', bu.username, "
        "'member_id', bu.id, 'role', jsonb_build_array(null, 'investigator')) "
        "FROM bench_case bc JOIN cases_caseuserobjectpermission p ON p.content_object_id = bc.id "
        "AND p.user_id <> bc.lead_user_id AND p.permission_id = %(view)s JOIN bench_user bu ON bu.id = p.user_id "
        "WHERE bc.created_at >= %(lo)s AND bc.created_at < %(hi)s",
        # ingest sources of the operations (the command line: no actor)
        "SELECT s.created_at, 3, NULL, '', s.agency_id, 'ingest.source_created', 'intercept.ingestsource', "
        "s.id::text, s.case_id, jsonb_build_object('name', jsonb_build_array(null, s.name), 'case', "
        "jsonb_build_array(null, bc.number), 'is_active', jsonb_build_array(null, true)) "
        "FROM intercept_ingestsource s JOIN bench_case bc ON bc.id = s.case_id "
        "WHERE s.created_at >= %(lo)s AND s.created_at < %(hi)s",
        # leads: by their case's lead investigator, or by the operation's bot
        "SELECT l.created_at, 4, CASE WHEN bc.is_op THEN NULL ELSE bc.lead_user_id END, "
        "CASE WHEN bc.is_op THEN 'source:' || bc.source_name ELSE bc.lead_username END, bc.agency_id, "
        f"'lead.created', 'cases.lead', l.id::text, l.case_id, {lead_changes} "
        "FROM cases_lead l JOIN bench_case bc ON bc.id = l.case_id LEFT JOIN bench_lead_idents li "
        "ON li.lead_id = l.id WHERE l.created_at >= %(lo)s AND l.created_at < %(hi)s",
        # evidence intake
        "SELECT ev.created_at, 5, bc.lead_user_id, bc.lead_username, bc.agency_id, 'evidence.created', "
        f"'cases.evidenceitem', ev.id::text, ev.case_id, {evidence_changes} "
        "FROM cases_evidenceitem ev JOIN bench_case bc ON bc.id = ev.case_id "
        "WHERE ev.created_at >= %(lo)s AND ev.created_at < %(hi)s",
        # ingest batches of conversations, 250 a batch per source
        "SELECT b.created_at, 6, NULL, 'source:' || s.name, s.agency_id, 'ingest.batch_received', "
        "'intercept.ingestsource', s.id::text, s.case_id, jsonb_build_object('kind', 'conversations', 'items', "
        "b.items, 'created', b.created, 'updated', '{}'::jsonb, 'unchanged', 0, 'messages_added', b.messages, "
        "'rejected', '{}'::jsonb) FROM bench_batch b JOIN intercept_ingestsource s ON s.id = b.source_id "
        "WHERE b.created_at >= %(lo)s AND b.created_at < %(hi)s",
    ]
    cur.execute(
        "CREATE TEMP TABLE bench_batch AS SELECT source_id, max(created_at) AS created_at, count(*) AS items, "
        "sum(message_count) AS messages, jsonb_agg(id::text ORDER BY created_at, id) AS created FROM "
        f"(SELECT *, (row_number() OVER (PARTITION BY source_id ORDER BY created_at, id) - 1) / {BATCH_PER_AUDIT_EVENT}"
        " AS batch FROM intercept_conversation) c GROUP BY source_id, batch"
    )
    progress.update(0.25)
    windows = 24
    edges = [t_people] + [t_first + (now - t_first) * (w / windows) for w in range(1, windows)] + [now]
    cur.execute(
        "SELECT id FROM auth_permission WHERE codename = 'view_case' AND content_type_id = "
        "(SELECT id FROM django_content_type WHERE app_label = 'cases' AND model = 'case')"
    )
    view_perm = cur.fetchone()[0]
    for w, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        cur.execute(
            "INSERT INTO audit_auditevent (created_at, actor_id, actor_name, agency_id, action, target_type, target_id, "
            "case_id, changes, request_id, ip, user_agent, prev_hash, entry_hash) "
            "SELECT created_at, actor_id, actor_name, agency_id, action, target_type, target_id, case_id, changes, "
            "'', NULL, '', '', '' FROM (" + " UNION ALL ".join(sources) + ") e ORDER BY created_at, ord, target_id",
            {"lo": lo, "hi": hi, "t_people": t_people, "codes": AGENCY_CODES, "view": view_perm},
        )
        progress.update(0.25 + 0.75 * (w + 1) / windows)
    cur.execute("SELECT count(*) FROM audit_auditevent WHERE seq IS NULL")
    unsealed = cur.fetchone()[0]
    progress.end()

    # -- sealing by the sequencer's own code ---------------------------------------------------
    progress.begin("sealing")
    sealed = 0
    while True:
        n = sealing.seal_batch(limit=SEAL_BATCH)
        if n == 0:
            break
        sealed += n
        progress.update(sealed / max(unsealed, 1))
    progress.end()
    progress.begin("audit indexes")
    audit_deferred.restore(progress)
    progress.end()

    progress.begin("checkpoint, vacuum, verify")
    checkpoint = checkpoint_create().checkpoint
    progress.update(0.1)
    cur.execute(
        "SELECT relname FROM pg_stat_user_tables WHERE schemaname = 'public' AND n_live_tup + n_dead_tup > 0 "
        "ORDER BY relname"
    )
    tables = [row[0] for row in cur.fetchall()]
    for number, table in enumerate(tables):
        cur.execute(f'VACUUM (ANALYZE) "{table}"')
        progress.update(0.1 + 0.6 * (number + 1) / len(tables))
    if plan.scale >= 0.1:  # write the load out now rather than during the first measurements
        cur.execute("CHECKPOINT")
    verify_started = time.monotonic()
    # In a process of its own, with the statement timeout lifted: at scale 1 each of its
    # per-core chunks (about 600,000 events) can take longer than the 30 s a request gets.
    verified = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"],
        cwd=ROOT,
        env={**os.environ, "DB_STATEMENT_TIMEOUT_MS": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    verify_seconds = time.monotonic() - verify_started
    if verified.returncode != 0:
        raise SystemExit(f"verify_audit failed after seeding:\n{verified.stdout}{verified.stderr[-3000:]}")
    progress.end()
    cur.execute("SELECT count(*) FROM audit_auditevent")
    events = cur.fetchone()[0]
    return {
        "version": SEED_VERSION,
        "scale": plan.scale,
        "plan": asdict(plan),
        "counts": {**plan.counts(), "operations": operations, "audit_events": events},
        "checkpoint": checkpoint.tree_size,
        "verify": verified.stdout.strip(),
        "verify_seconds": round(verify_seconds, 1),
        "seconds": round(time.monotonic() - started, 1),
        "stages": {k: round(v, 1) for k, v in progress.timings.items()},
        "seeded_at": now.isoformat(),
        "schema": schema_fingerprint(),
    }


def _identifier(i: int, prefixes: list[str]) -> tuple[str, str]:
    """Identifier i (0-based): its kind and normalized value, unique by construction."""
    half = (i // 2) % 10
    if i % 2 == 0:
        kind = "phone" if half < 8 else "email"
    else:
        kind = "handle" if half < 4 else "email" if half < 7 else "payment_handle"
    if kind == "phone":
        return kind, f"{prefixes[i % len(prefixes)]}{(i // len(prefixes)) % 10000:04d}"
    if kind == "email":
        return kind, f"buyer{i}@example.{('com', 'net', 'org')[i % 3]}"
    return kind, f"buyer_{i}" if kind == "handle" else f"pay-{i}"


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(total, lo + size)) for lo in range(0, total, size)] or [(0, 0)]


def _uuid_bounds(parts: int) -> list[tuple[str, str | None]]:
    """`parts` ranges covering the whole UUID space, as (low, high or None) text bounds."""
    step = 2**128 // parts
    edges = [f"{i * step:032x}" for i in range(parts)]
    fmt = [f"{e[:8]}-{e[8:12]}-{e[12:16]}-{e[16:20]}-{e[20:]}" for e in edges]
    return [(fmt[i], fmt[i + 1] if i + 1 < parts else None) for i in range(parts)]


def _uuid_py(kind: str, n: int) -> str:
    import hashlib
    import uuid

    return str(uuid.UUID(hashlib.md5(f"{TAG}:{kind}:{n}".encode()).hexdigest()))  # noqa: S324 - ids, not security


# ---------------------------------------------------------------- databases and markers


def pg_args() -> list[str]:
    return ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]


def server_url() -> str:
    return os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def _comment(name: str) -> dict[str, Any] | None:
    out = subprocess.run(
        ["psql", *pg_args(), "-d", "postgres", "-Atc",
         f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        data = json.loads(out) if out else None
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _set_comment(name: str, data: dict[str, Any]) -> None:
    text = json.dumps(data).replace("'", "''")
    subprocess.run(
        ["psql", *pg_args(), "-d", "postgres", "-qc", f"COMMENT ON DATABASE \"{name}\" IS '{text}'"], check=True
    )


def marker(name: str) -> dict[str, Any] | None:
    """The completion marker of database `name` (None when missing, unfinished or older)."""
    data = _comment(name)
    return data if data is not None and data.get("version") == SEED_VERSION else None


def var_dir_for(name: str) -> Path:
    """Signing key and checkpoint sink of a seeded database (var/ is not committed)."""
    return ROOT / "var" / "bench" / name


def schema_fingerprint() -> str:
    """Of every migration file: a template made from other migrations is not used."""
    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_template(template: str) -> None:
    """Database `template` migrated to the current migrations (made again when stale)."""
    fingerprint = schema_fingerprint()
    if (_comment(template) or {}).get("schema") == fingerprint:
        return
    subprocess.run(["dropdb", *pg_args(), "--if-exists", "--force", template], check=True)
    subprocess.run(["createdb", *pg_args(), template], check=True)
    with_key = var_dir_for(template)
    with_key.mkdir(parents=True, exist_ok=True)
    write_signing_key(str(with_key))
    manage(base_env(f"{server_url()}/{template}", str(with_key)), "migrate", "--no-input", "-v0")
    _set_comment(template, {"schema": fingerprint})


def create_migrated(name: str, template: str | None) -> bool:
    """Create database `name`, as a copy of the migrated `template` when one is named (made
    first if missing or stale). Returns whether the copy is already migrated."""
    subprocess.run(["dropdb", *pg_args(), "--if-exists", "--force", name], check=True)
    if template is None:
        subprocess.run(["createdb", *pg_args(), name], check=True)
        return False
    ensure_template(template)
    subprocess.run(["createdb", *pg_args(), "-T", template, name], check=True)
    return True


def ensure_seeded(name: str, scale: float, template: str | None = None) -> dict[str, Any]:
    """Seed database `name` at `scale` unless it already holds a complete seed of that scale;
    returns its marker."""
    found = marker(name)
    if found is not None and found.get("scale") == scale:
        print(f"{name}: complete seed at scale {scale} from {found['seeded_at']}, reused", flush=True)
        return found
    extra = ["--template", template] if template else []
    subprocess.run([sys.executable, __file__, "--database", name, "--scale", str(scale), "--force", *extra], check=True)
    found = marker(name)
    if found is None:
        raise SystemExit(f"{name}: seeding did not complete")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every count (default 1)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--database", help="database name on the local server (created, or replaced)")
    where.add_argument("--database-url", help="an existing, empty database to migrate and fill")
    parser.add_argument("--force", action="store_true", help="reseed even if a complete seed is there")
    parser.add_argument("--template", help="copy the migrated schema from this database (made if missing)")
    args = parser.parse_args()
    plan = Plan.for_scale(args.scale)
    started = time.monotonic()
    migrated = False
    if args.database:
        name = args.database
        found = marker(name)
        if found is not None and found.get("scale") == args.scale and not args.force:
            print(f"{name} already holds a complete seed at scale {args.scale}; --force to redo it")
            return
        migrated = create_migrated(name, args.template)
        url = f"{server_url()}/{name}"
    else:
        url = args.database_url
        name = url.rsplit("/", 1)[-1].split("?")[0]
    var_dir = var_dir_for(name)
    var_dir.mkdir(parents=True, exist_ok=True)
    for old in (var_dir / "checkpoints").glob("*"):
        old.unlink()
    write_signing_key(str(var_dir))
    env = base_env(url, str(var_dir))
    print(f"seeding {name} at scale {args.scale}: {json.dumps(plan.counts())}", flush=True)
    if not migrated:
        manage(env, "migrate", "--no-input", "-v0")
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "caseapi.settings"
    os.chdir(ROOT)
    result = seed(plan)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["database"] = name
    _set_comment(name, result)
    print(f"seeded {name}: {json.dumps(result['counts'])}", flush=True)
    print(f"stages (s): {json.dumps(result['stages'])}; verify_audit: {result['verify']}", flush=True)
    figure("seed_minutes", result["seconds"] / 60, "<=", 30 if args.scale >= 1 else max(1.0, 30 * args.scale))


if __name__ == "__main__":
    main()
