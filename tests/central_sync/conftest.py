"""Fixtures: a real Mosquitto per test, a PostgreSQL schema per test, hub processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from central_sync.devtools import Mosquitto, free_port
from central_sync.hub.store import HubStore, open_store

PG_ADMIN = os.environ.get("TEST_PG", "postgresql://127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def broker(tmp_path):
    with Mosquitto(tmp_path / "broker") as b:
        yield b


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HubStore]:
    """A migrated hub store on each backend (a test file may define its own `store`)."""
    url = str(tmp_path / "hub.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    hub = open_store(url)
    hub.migrate()
    yield hub
    hub.close()


@pytest.fixture
def pg_url():
    """A fresh schema in database `test`, dropped afterwards; the URL sets its search_path."""
    schema = f"cs_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at {PG_ADMIN} is unreachable: {exc}")
    admin.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    admin.close()


class HubProc:
    """`edge-hub run` in a child process (so a test can kill -9 it)."""

    def __init__(self, db: str, broker_port: int, logdir: Path, name: str, http: bool = False, gap_period: float = 1.0,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.http_port = free_port() if http else 0
        self.args = [sys.executable, "-m", "central_sync.hub.cli", "run", "--db", db, "--broker-port", str(broker_port),
                     "--http-port", str(self.http_port), "--hub-id", name, "--gap-period", str(gap_period), *extra]
        self.env = {**os.environ, **(env or {})}
        self.log = logdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "HubProc":
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, env=self.env)
        return self

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def started(self) -> bool:
        """It logged `hub.started` (its tables are there, its links are up) and still runs."""
        self.assert_running()
        return self.log.exists() and b"hub.started" in self.log.read_bytes()

    def assert_running(self) -> None:
        """AssertionError naming the exit status and the log's end if the process has exited: a test
        waiting on this hub's work says why it cannot come, instead of running into its time-out."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
            raise AssertionError(f"hub process {self.log.stem} is not running (exit status {code}); its log ends:\n{tail}")


@pytest.fixture
def hubs(tmp_path):
    started: list[HubProc] = []

    def make(db: str, broker_port: int, name: str = "hub-a", **kw) -> HubProc:
        h = HubProc(db, broker_port, tmp_path, name, **kw).start()
        started.append(h)
        return h

    yield make
    for h in started:
        h.signal(signal.SIGCONT)
        h.stop()
