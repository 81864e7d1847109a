"""The publisher's side of the station database: reads outbox rows, retires acked ones, figures.

The publisher owns its own connection (WAL; the station store writes concurrently) and two small
tables of its own, created here: `sync_meta` (session counter) and `sync_blob_progress` (image
chunks the hub has stored, so an interrupted upload resumes). A parked row raises the standing
`sync_parked` alarm in the station store's `alarms` table (where the store made one), renewed at
each park so it names the latest row and reason and how many are parked.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from central_sync.outbox import OUTBOX_DDL, Lane

SYNC_DDL = """
CREATE TABLE IF NOT EXISTS sync_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sync_blob_progress (
    outbox_id   INTEGER PRIMARY KEY,
    chunk_bytes INTEGER NOT NULL,
    done        TEXT NOT NULL DEFAULT ''
);
"""
PARKED = "parked: "
LANE_NAMES = {Lane.ALERT: "alert", Lane.RECORD: "record", Lane.IMAGE: "image"}


@dataclass(frozen=True, slots=True)
class ParkedRow:
    """An outbox row the publisher will not send again (`edge sync parked`), and why."""

    id: int
    lane: str
    kind: str
    record_id: str
    seq: int
    attempts: int
    reason: str


@dataclass(slots=True)
class Row:
    id: int
    lane: Lane
    kind: str
    record_id: str
    seq: int
    payload: bytes
    size: int
    attempts: int


class StationDb:
    """One connection, used only by the publisher's thread."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, timeout=10.0)
        self.conn.execute("PRAGMA busy_timeout=10000")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")  # a lost retire only means a resend
        self.conn.executescript(OUTBOX_DDL + SYNC_DDL)  # IF NOT EXISTS: the station store's migration normally made outbox
        self.alarms = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alarms'").fetchone() \
            is not None  # the store's table (edge/store.py); a bare outbox database (devtools) has none

    def close(self) -> None:
        self.conn.close()

    def fetch(self, lane: Lane, after_id: int, limit: int) -> list[Row]:
        """Unparked rows of one lane after `after_id`, oldest first."""
        cur = self.conn.execute(
            "SELECT id, lane, kind, record_id, seq, payload, size, attempts FROM outbox"
            " WHERE lane=? AND id>? AND (last_error IS NULL OR substr(last_error,1,8)<>?) ORDER BY id LIMIT ?",
            (int(lane), after_id, PARKED, limit))
        return [Row(r[0], Lane(r[1]), r[2], r[3], r[4], bytes(r[5]), r[6], r[7]) for r in cur]

    def oldest_alert(self) -> float:
        """Id of the oldest unparked alert row, or infinity when there is none."""
        row = self.conn.execute(
            "SELECT min(id) FROM outbox WHERE lane=? AND (last_error IS NULL OR substr(last_error,1,8)<>?)",
            (int(Lane.ALERT), PARKED)).fetchone()
        return float("inf") if row[0] is None else row[0]

    def newest_alert(self) -> int:
        """Id of the newest unparked alert row, 0 when there is none."""
        row = self.conn.execute(
            "SELECT max(id) FROM outbox WHERE lane=? AND (last_error IS NULL OR substr(last_error,1,8)<>?)",
            (int(Lane.ALERT), PARKED)).fetchone()
        return row[0] or 0

    def mark_sent(self, ids: list[int], at: float) -> None:
        self._many("UPDATE outbox SET attempts=attempts+1, last_sent_at=? WHERE id=?", [(at, i) for i in ids])

    def retire(self, pairs: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """Delete rows the hub committed (id and record id must both match); the pairs that named no row (unknown
        to this station, or retired already)."""
        unknown = []
        with self._tx():
            for pair in pairs:
                if not self.conn.execute("DELETE FROM outbox WHERE id=? AND record_id=?", pair).rowcount:
                    unknown.append(pair)
            self.conn.executemany("DELETE FROM sync_blob_progress WHERE outbox_id=?", [(i,) for i, _ in pairs])
        return unknown

    def note_error(self, row_id: int, text: str) -> None:
        self._many("UPDATE outbox SET last_error=? WHERE id=?", [(text[:500], row_id)])

    def park(self, row_id: int, record_id: str, reason: str) -> bool:
        """Park the row (never sent again) when it is that record's: an ack naming a row by id alone parks nothing.
        The standing `sync_parked` alarm names it (the officer's screen shows it; the row needs a technician).
        False when no such row is here."""
        with self._tx():
            cur = self.conn.execute("UPDATE outbox SET last_error=? WHERE id=? AND record_id=?",
                                    ((PARKED + reason)[:500], row_id, record_id))
            if cur.rowcount and self.alarms:
                self._alarm_parked(row_id, record_id, reason)
        return cur.rowcount > 0

    def parked(self) -> list[ParkedRow]:
        """The parked rows, oldest first."""
        cur = self.conn.execute("SELECT id, lane, kind, record_id, seq, attempts, last_error FROM outbox"
                                " WHERE substr(last_error,1,8)=? ORDER BY id", (PARKED,))
        return [ParkedRow(r[0], LANE_NAMES.get(Lane(r[1]), str(r[1])), r[2], r[3], r[4], r[5], r[6][len(PARKED):])
                for r in cur]

    def resend_parked(self, ids: set[int]) -> list[tuple[int, int]]:
        """The parked rows of `ids` queued again, in one transaction: each copied to a new row at the end of its lane
        (a running publisher reads it at its next look at the outbox: its read position never goes back) and the
        parked row deleted; (old id, new id) of each. The hub takes a record it holds already as committed. The
        `sync_parked` alarm is cleared when no row stays parked, else renewed to name the newest still parked."""
        moved = []
        with self._tx():
            for row_id in sorted(ids):
                cur = self.conn.execute(
                    "INSERT INTO outbox (lane, kind, record_id, seq, payload, size, created_at) SELECT lane, kind,"
                    " record_id, seq, payload, size, created_at FROM outbox WHERE id=? AND substr(last_error,1,8)=?",
                    (row_id, PARKED))
                if cur.rowcount and cur.lastrowid is not None:
                    moved.append((row_id, cur.lastrowid))
                    self.conn.execute("DELETE FROM outbox WHERE id=?", (row_id,))
                    self.conn.execute("DELETE FROM sync_blob_progress WHERE outbox_id=?", (row_id,))
            if moved and self.alarms:
                left = self.conn.execute("SELECT id, record_id, last_error FROM outbox WHERE substr(last_error,1,8)=?"
                                         " ORDER BY id DESC LIMIT 1", (PARKED,)).fetchone()
                if left is None:
                    self.conn.execute("UPDATE alarms SET cleared_at=? WHERE code='sync_parked' AND cleared_at IS NULL",
                                      (time.time(),))
                else:
                    self._alarm_parked(left[0], left[1], left[2][len(PARKED):])
        return moved

    def _alarm_parked(self, row_id: int, record_id: str, reason: str) -> None:
        at = time.time()
        parked = self.conn.execute("SELECT count(*) FROM outbox WHERE substr(last_error,1,8)=?", (PARKED,)).fetchone()[0]
        message = (f"outbox row {row_id} of record {record_id} is parked and will not be sent to the hub: {reason}"
                   f" ({parked} parked in all)")
        self.conn.execute("UPDATE alarms SET cleared_at=? WHERE code='sync_parked' AND cleared_at IS NULL", (at,))
        self.conn.execute("INSERT INTO alarms (at, code, message) VALUES (?, 'sync_parked', ?)", (at, message[:1000]))

    def next_session(self) -> int:
        """The next session number, on disk before it is used (synchronous=FULL for this commit): under NORMAL a
        power cut could roll it back, and the station reused a number whose Last Will the hub held (the hub
        keeps the newest session's statuses, the Last Will winning within one: it showed the station offline)."""
        self.conn.execute("PRAGMA synchronous=FULL")
        try:
            with self._tx():
                cur = self.conn.execute("SELECT value FROM sync_meta WHERE key='session'").fetchone()
                value = int(cur[0]) + 1 if cur else 1
                self.conn.execute("INSERT OR REPLACE INTO sync_meta (key, value) VALUES ('session', ?)", (str(value),))
        finally:
            self.conn.execute("PRAGMA synchronous=NORMAL")
        return value

    def blob_progress(self, row_id: int, chunk_bytes: int) -> set[int]:
        cur = self.conn.execute("SELECT chunk_bytes, done FROM sync_blob_progress WHERE outbox_id=?", (row_id,)).fetchone()
        if cur is None or cur[0] != chunk_bytes:
            return set()
        return {int(x) for x in cur[1].split(",") if x}

    def save_blob_progress(self, row_id: int, chunk_bytes: int, done: set[int]) -> None:
        text = ",".join(str(i) for i in sorted(done))
        self._many("INSERT OR REPLACE INTO sync_blob_progress (outbox_id, chunk_bytes, done) VALUES (?,?,?)",
                   [(row_id, chunk_bytes, text)])

    def backlog(self) -> dict[str, dict]:
        """Per lane: rows, bytes, oldest/newest seq, oldest enqueue time, parked rows."""
        out = {name: {"rows": 0, "bytes": 0, "oldest_seq": None, "newest_seq": None, "oldest_at": None, "parked": 0}
               for name in LANE_NAMES.values()}
        cur = self.conn.execute(
            "SELECT lane, count(*), coalesce(sum(size),0), min(seq), max(seq), min(created_at),"
            " sum(CASE WHEN substr(last_error,1,8)=? THEN 1 ELSE 0 END) FROM outbox GROUP BY lane", (PARKED,))
        for lane, rows, size, lo, hi, oldest, parked in cur:
            name = LANE_NAMES.get(Lane(lane), str(lane))
            out[name] = {"rows": rows, "bytes": size, "oldest_seq": lo, "newest_seq": hi,
                         "oldest_at": oldest, "parked": parked or 0}
        return out

    def _many(self, sql: str, args: list[tuple]) -> None:
        with self._tx():
            self.conn.executemany(sql, args)

    def _tx(self) -> _Tx:
        return _Tx(self.conn)


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
