"""Shared pieces of the chaos tests: fast-recovering publisher config, producer, delivery checks."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from central_sync.config import SyncConfig
from central_sync.devtools import fill, open_station_db, outbox_rows
from central_sync.hub.store import HubStore
from central_sync.schema import InspectionRecord, Verdict
from polling import wait_until

REPO = Path(__file__).resolve().parents[2]
FAST = dict(reconnect_min_s=0.1, reconnect_max_s=1.0, ack_timeout_s=4.0, progress_timeout_s=4.0,
            status_period_s=1.0, poll_s=0.02)


def sync_cfg(port: int, **kw) -> SyncConfig:
    return SyncConfig(port=port, **{**FAST, **kw})


class PublisherProc:
    """The station publisher in its own process, so it can be killed with SIGKILL mid-publish."""

    def __init__(self, cfg: SyncConfig, station: str, db: Path, scans: Path, log: Path) -> None:
        self.args = [sys.executable, "-m", "central_sync.devtools", "publish", "--config", cfg.model_dump_json(),
                     "--station", station, "--db", str(db), "--scans", str(scans)]
        self.log, self.proc = log, None

    def start(self) -> "PublisherProc":
        self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        return self

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


class Producer(threading.Thread):
    """Enqueues records in small transactions while chaos happens, like a busy station."""

    def __init__(self, db: Path, station: str, total: int, per_batch: int = 10, pause_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.db, self.station, self.total, self.per_batch, self.pause_s = db, station, total, per_batch, pause_s
        self.records: list[InspectionRecord] = []

    def run(self) -> None:
        conn = open_station_db(self.db)
        seq = 1
        while seq <= self.total:
            n = min(self.per_batch, self.total - seq + 1)
            self.records += fill(conn, self.station, seq, n, alert_every=10)
            seq += n
            time.sleep(self.pause_s)
        conn.close()


def backlog(db: Path, station: str, count: int, alert_every: int = 10) -> list[InspectionRecord]:
    conn = open_station_db(db)
    records = fill(conn, station, 1, count, alert_every=alert_every)
    conn.close()
    return records


def assert_delivered_once(store: HubStore, records: list[InspectionRecord], db: Path) -> None:
    """lost = 0, duplicates = 0, alerts marked, station outbox empty."""
    rows = store.query("SELECT id, station, seq, is_alert FROM records")
    got = [r[0] for r in rows]
    expected = {r.id for r in records}
    lost, extra = expected - set(got), set(got) - expected
    dup_ids = len(got) - len(set(got))
    dup_seqs = len(rows) - len({(r[1], r[2]) for r in rows})
    assert (len(lost), len(extra), dup_ids, dup_seqs) == (0, 0, 0, 0), \
        f"lost {len(lost)}, unexpected {len(extra)}, duplicate ids {dup_ids}, duplicate seqs {dup_seqs}"
    alerts = {r.id for r in records if r.verdict == Verdict.SUSPECT}
    assert {r[0] for r in rows if r[3]} == alerts
    assert outbox_rows(db) == 0


def assert_alerts_first(store: HubStore, records: list[InspectionRecord]) -> None:
    """Every alert of the backlog was committed no later than the first routine record."""
    alerts = {r.id for r in records if r.verdict == Verdict.SUSPECT}
    rows = store.query("SELECT id, committed_at FROM records")
    last_alert = max(at for i, at in rows if i in alerts)
    first_routine = min(at for i, at in rows if i not in alerts)
    assert last_alert <= first_routine, f"last alert committed {last_alert - first_routine:.3f} s after the first routine record"


def wait_drained(db: Path, timeout: float) -> None:
    wait_until(lambda: outbox_rows(db), "the outbox drained", check=lambda rows: rows == 0,
               timeout=timeout, interval=0.2)
