"""Shared plumbing of the benchmarks: a throwaway PostgreSQL database, Django commands and
scripts in subprocesses, gunicorn on a free loopback port, an HTTP load generator, and the
`figure` lines every benchmark ends with."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def figure(name: str, value: float, op: str, target: float) -> str:
    met = {">=": value >= target, "<=": value <= target, "<": value < target, ">": value > target}[op]
    line = f"figure {name} {value:.3f} goal {op}{target:g} {'met' if met else 'MISSED'}"
    print(line, flush=True)
    return line


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """A fresh database on the local server (or DATABASE_URL's server), dropped afterwards."""
    base = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
    name = f"{prefix}_{os.getpid()}"
    host_args = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"]
    subprocess.run(["dropdb", *host_args, "--if-exists", name], check=True)
    subprocess.run(["createdb", *host_args, name], check=True)
    try:
        yield f"{base}/{name}"
    finally:
        subprocess.run(["dropdb", *host_args, "--if-exists", "--force", name], check=False)


def base_env(database_url: str, var_dir: str, **extra: str) -> dict[str, str]:
    """Production-like settings (DEBUG off) on loopback, without TLS."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "CASEAPI_VAR_DIR": var_dir,
        "AUDIT_SIGNING_KEY_FILE": str(Path(var_dir) / "audit-signing.key"),
        # Fixed bench keys (base64 of 32 ASCII bytes), so a seeded database reads in every run.
        "FIELD_ENCRYPTION_KEYS": "bench1:YmVuY2gtZmllbGQtZW5jcnlwdGlvbi1rZXktMDAwMDE",
        "BLIND_INDEX_KEY": "YmVuY2gtYmxpbmQtaW5kZXgta2V5LTAwMDAwMDAwMDE",
        "LOGIN_THROTTLE_RATE": "100000/min",
        "INGEST_THROTTLE_RATE": "100000/min",
        "INGEST_ADDRESS_THROTTLE_RATE": "100000/min",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return out.stdout


def django_script(env: dict[str, str], code: str) -> object:
    """Run `code` with Django set up in a subprocess; it must print one JSON document last."""
    prelude = (
        "import django, json, os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE','caseapi.settings')\ndjango.setup()\n"
    )
    out = subprocess.run([PYTHON, "-c", prelude + code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_signing_key(var_dir: str) -> None:
    """A signer key file for DEBUG-off processes (they refuse to generate one)."""
    sys.path.insert(0, str(ROOT))
    from audit.note import Signer

    Path(var_dir, "audit-signing.key").write_text(Signer.generate("bench.caseapi/audit").text() + "\n")


@contextlib.contextmanager
def gunicorn(env: dict[str, str], workers: int = 3, threads: int = 4) -> Iterator[int]:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "caseapi.wsgi", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env={
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_ACCESS_LOG": "/dev/null",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited:\n" + Path(log.name).read_text()[-3000:])
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        Path(log.name).unlink(missing_ok=True)


@contextlib.contextmanager
def background(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([PYTHON, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


Request = tuple[str, str, dict[str, str], bytes | None]


def drive(port: int, clients: int, seconds: float, make_request: Callable[[int, int], Request]) -> LoadResult:
    """`clients` threads, each on one keep-alive connection, sending `make_request(client, i)`
    until `seconds` have passed. A non-2xx answer counts as an error."""
    result = LoadResult()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        done, errors, lat = 0, 0, []
        i = 0
        while time.monotonic() < stop_at:
            method, path, headers, body = make_request(index, i)
            i += 1
            start = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            lat.append(time.perf_counter() - start)
            done += 1
            errors += 0 if ok else 1
        with lock:
            result.requests += done
            result.errors += errors
            result.latencies.extend(lat)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - began
    return result


# ---------------------------------------------------------------- processes: a Celery worker, /proc


@contextlib.contextmanager
def celery_worker(env: dict[str, str], concurrency: int = 1) -> Iterator[subprocess.Popen]:
    """A real prefork Celery worker on env's CELERY_BROKER_URL, started and ready (its log says
    "ready."); stopped with a warm shutdown afterwards. The log is kept in a temporary file
    named by the Popen's `log_path` attribute, and removed afterwards."""
    log = tempfile.NamedTemporaryFile(prefix="celery-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "caseapi",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    try:
        deadline = time.monotonic() + 60
        while b"ready." not in Path(log.name).read_bytes():
            if proc.poll() is not None:
                raise RuntimeError("celery worker exited:\n" + Path(log.name).read_text()[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start:\n" + Path(log.name).read_text()[-3000:])
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        Path(log.name).unlink(missing_ok=True)


def child_pids(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux: read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def command_line(pid: int) -> str:
    """The process's command line, arguments joined by spaces ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def rss_kib(pid: int) -> int | None:
    """Resident set size of `pid` in KiB (VmRSS of /proc/<pid>/status); None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@contextlib.contextmanager
def background_logged(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen]:
    """As `background`, with the process's output kept in a temporary file named by the Popen's
    `log_path` attribute (removed afterwards)."""
    log = tempfile.NamedTemporaryFile(prefix="background-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([PYTHON, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log.name  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        Path(log.name).unlink(missing_ok=True)
