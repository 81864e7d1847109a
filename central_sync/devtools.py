"""Tools for tests, benchmarks and the README demo: a throw-away Mosquitto, station databases
filled with records, and `python -m central_sync.devtools publish` (a publisher in its own process)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from central_sync.config import SyncConfig
from central_sync.outbox import OUTBOX_DDL, Lane, enqueue
from central_sync.schema import InspectionRecord, ItemKind, Identity, ScanRef, Verdict

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A real broker on a free loopback port; `kill()` (SIGKILL) and `start()` again at will."""

    def __init__(self, workdir: Path, extra: str = "", port: int | None = None, anonymous: bool = True) -> None:
        self.workdir, self.port = Path(workdir), port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "mosquitto.conf"
        text = f"{extra}\nlistener {self.port} 127.0.0.1\n"
        if os.geteuid() == 0:
            text += "user root\n"  # else mosquitto drops to `mosquitto`, who cannot read the test's files
        if anonymous:
            text += "allow_anonymous true\n"
        if "persistence" in extra:
            text += f"persistence_location {self.workdir}/\n"
        self.conf.write_text(text)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Mosquitto":
        log = (self.workdir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mosquitto exited with {self.proc.returncode}; see {self.workdir}/mosquitto.log")
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{self.port} within 10 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> "Mosquitto":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def open_station_db(path: Path) -> sqlite3.Connection:
    """A station database as the station store would make it (WAL, outbox table)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OUTBOX_DDL)
    return conn


def make_record(station: str, seq: int, verdict: Verdict = Verdict.CLEAR, scan_sha: str | None = None,
                tag: str | None = None) -> InspectionRecord:
    at = T0 + timedelta(seconds=seq)
    return InspectionRecord(
        id=f"{at:%Y%m%d%H%M%S}-{station}-{seq:09d}-{uuid.uuid4().hex[:6]}", seq=seq, station=station, lane="L1",
        kind=ItemKind.BAGGAGE, started_at=at, decided_at=at + timedelta(milliseconds=180),
        identities=[Identity(kind="rfid", value=tag or f"TAG{seq:08d}", source="rfid0")],
        scan=ScanRef(sha256=scan_sha, size=1, shape=(64, 64)) if scan_sha else None,
        verdict=verdict, reason="detection" if verdict == Verdict.SUSPECT else verdict.value, budget_ms=800.0,
        latencies_ms={"detect": 42.0})


def add_record(conn: sqlite3.Connection, record: InspectionRecord, with_inspection_row: bool = True) -> None:
    """Enqueue as the station does: an alert row for suspect records, the record row, one transaction."""
    body = record.to_json()
    conn.execute("BEGIN")
    if record.verdict == Verdict.SUSPECT:
        enqueue(conn, Lane.ALERT, "alert", record.id, record.seq, body)
    if with_inspection_row or record.verdict != Verdict.SUSPECT:
        enqueue(conn, Lane.RECORD, "inspection", record.id, record.seq, body)
    conn.execute("COMMIT")


def fill(conn: sqlite3.Connection, station: str, first_seq: int, count: int, alert_every: int = 0) -> list[InspectionRecord]:
    """Enqueue `count` records (every `alert_every`-th suspect) in one transaction."""
    records = []
    conn.execute("BEGIN")
    for seq in range(first_seq, first_seq + count):
        suspect = alert_every and seq % alert_every == 0
        rec = make_record(station, seq, Verdict.SUSPECT if suspect else Verdict.CLEAR)
        body = rec.to_json()
        if suspect:
            enqueue(conn, Lane.ALERT, "alert", rec.id, seq, body)
        enqueue(conn, Lane.RECORD, "inspection", rec.id, seq, body)
        records.append(rec)
    conn.execute("COMMIT")
    return records


def outbox_rows(db: Path) -> int:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM outbox WHERE last_error IS NULL OR last_error NOT LIKE 'parked:%'").fetchone()[0]
    finally:
        conn.close()


async def _publish_forever(cfg: SyncConfig, station: str, db: Path, scans: Path) -> None:
    from central_sync.publisher import Publisher

    async with Publisher(cfg, station, db, scans):
        await asyncio.Event().wait()


async def _demo(records: int, workdir: Path) -> None:
    """Broker, hub (SQLite) and one station with a backlog; print what the control room sees."""
    import httpx

    from central_sync.config import BrokerConfig
    from central_sync.hub.api import create_app
    from central_sync.hub.api_auth import ServiceTokens, new_token
    from central_sync.hub.service import Hub
    from central_sync.hub.store import open_store
    from central_sync.publisher import Publisher

    db = workdir / "station.db"
    conn = open_station_db(db)
    fill(conn, "demo-gate", 1, records, alert_every=25)
    conn.close()
    store = open_store(str(workdir / "hub.sqlite3"))
    with Mosquitto(workdir / "broker") as broker:
        print(f"broker 127.0.0.1:{broker.port}, station backlog {outbox_rows(db)} outbox rows")
        async with Hub(BrokerConfig(port=broker.port), store, "hub-demo") as hub, \
                Publisher(SyncConfig(port=broker.port, status_period_s=1.0), "demo-gate", db, workdir) as pub:
            t0 = time.monotonic()
            while await asyncio.to_thread(outbox_rows, db):
                await asyncio.sleep(0.2)
            print(f"drained in {time.monotonic() - t0:.1f} s; publisher counters {pub.stats()['counters']}")
            await asyncio.sleep(1.5)
            token, line = new_token("demo")
            tokens = ServiceTokens({line.split()[1]: "demo"})
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(store, hub.stats, service_tokens=tokens)),
                                         base_url="http://hub", headers={"Authorization": f"Bearer {token}"}) as http:
                for path in ("/api/stations", "/api/alerts?limit=3", "/api/inspections?limit=2&verdict=clear"):
                    print(f"GET {path}\n{json.dumps((await http.get(path)).json(), indent=1)[:1500]}")
    store.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m central_sync.devtools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    pub = sub.add_parser("publish", help="run one station's publisher until killed")
    pub.add_argument("--config", required=True, help="SyncConfig as JSON")
    pub.add_argument("--station", required=True)
    pub.add_argument("--db", type=Path, required=True)
    pub.add_argument("--scans", type=Path, required=True)
    demo = sub.add_parser("demo", help="broker + hub + station with a backlog; show what arrives")
    demo.add_argument("--records", type=int, default=500)
    args = ap.parse_args(argv)
    if args.cmd == "demo":
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(_demo(args.records, Path(tmp)))
        return
    asyncio.run(_publish_forever(SyncConfig.model_validate_json(args.config), args.station, args.db, args.scans))


if __name__ == "__main__":
    main()
