"""Fixtures of the fault tests: a private Redis server that a test may stop and start again,
real Celery worker processes on it that a test may kill, packet requests routed through the
outbox, and a way to kill a PostgreSQL backend from outside."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.db import connection, connections

from caseapi.celery import app as celery_app
from tests.conftest import IS_CI, _configure_celery, spawn_celery_worker, wait_for

BUILD_TASK = "cases.tasks.build_export_packet"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PrivateRedis:
    """A redis-server of this test alone, on a spare port, keeping nothing on disk: stopping
    it loses every queued message, the harshest outage."""

    workdir: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/10"

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.exceptions.ConnectionError:
            return False

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, 10, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()  # SIGTERM: redis-server shuts down (saving nothing)
        self.process.wait(timeout=10)
        self.process = None
        assert not self.ping()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        if IS_CI:
            pytest.fail("redis-server is required in CI for the fault tests")
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(workdir=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Worker:
    """A `celery worker` process (prefork, one child) in its own process group."""

    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_children(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                found.append(int(entry.name))
        return found

    def kill_all(self) -> None:
        """SIGKILL to the main process and its pool at once: nothing is acknowledged or
        requeued on the way out, as when a worker host dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


StartWorker = Callable[[str], Worker]


def send_tasks_to(broker_url: str) -> None:
    """This process publishes to `broker_url` instead of running tasks in-process. Every tasks
    module is registered first: reconfiguring the app (_configure_celery) takes it off Celery's
    list of active apps, and a shared task imported after that would never reach it."""
    celery_app.loader.import_default_modules()
    _configure_celery(broker_url=broker_url, task_always_eager=False)


@contextmanager
def tasks_sent_to(broker_url: str) -> Iterator[None]:
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    send_tasks_to(broker_url)
    try:
        yield
    finally:
        _configure_celery(**previous)


@pytest.fixture
def start_worker(settings: Any, tmp_path: Path) -> Iterator[StartWorker]:
    """Starts real workers on the test database (PostgreSQL, transactional tests), the same
    storage folders and audit key; this process sends its tasks to the same broker."""
    started: list[Worker] = []
    previous = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}

    def start(broker_url: str) -> Worker:
        log_path = tmp_path / f"worker-{len(started) + 1}.log"
        process = spawn_celery_worker(settings, tmp_path / "var", broker_url, log_path, new_session=True)
        worker = Worker(process=process, log_path=log_path)
        started.append(worker)
        send_tasks_to(broker_url)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
        _configure_celery(**previous)
        connection.close()


def admin_connection() -> psycopg.Connection:
    """A connection of its own to the test database, outside Django's."""
    db = connections["default"].settings_dict
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
    )


def terminate_backend(pid: int) -> None:
    """pg_terminate_backend from another connection, and wait until the backend is gone."""
    with admin_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} is still there"
            time.sleep(0.05)
