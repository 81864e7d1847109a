"""The hub's database: SQLite (embedded, one machine) or PostgreSQL (psycopg 3), same SQL.

Writes are idempotent: a record is one row per id whatever number of times it arrives; image
chunks are keyed by (sha256, index) and a finished image by its sha256; a TIP outcome by
(station, record id, projection). Each thread gets its own
connection (the ingest worker, the gap checker and the HTTP handlers run on different threads).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Iterator, Protocol, Self, TypeVar, TypeVarTuple, Unpack

import psycopg

from central_sync.errors import HubStoreError

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Cursor(Protocol):
    """The DB-API cursor both backends hand out (sqlite3, psycopg), as far as the hub uses it."""

    @property
    def description(self) -> object: ...
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Self: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...
    def fetchall(self) -> list[Any]: ...

TABLES = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, station TEXT NOT NULL, seq BIGINT NOT NULL, verdict TEXT NOT NULL,
    is_alert INTEGER NOT NULL, kind TEXT NOT NULL, lane TEXT NOT NULL, decided_ts DOUBLE PRECISION NOT NULL,
    identities TEXT NOT NULL, scan_sha256 TEXT, body TEXT NOT NULL, committed_at DOUBLE PRECISION NOT NULL,
    hub TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_station_seq ON records (station, seq);
CREATE INDEX IF NOT EXISTS records_decided ON records (decided_ts);
CREATE INDEX IF NOT EXISTS records_alert ON records (is_alert, decided_ts);
CREATE TABLE IF NOT EXISTS reviews (
    record_id TEXT NOT NULL, station TEXT NOT NULL, officer TEXT NOT NULL, decided_ts DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL, body TEXT NOT NULL, committed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (record_id, officer, decided_ts));
CREATE TABLE IF NOT EXISTS blob_chunks (
    sha256 TEXT NOT NULL, idx INTEGER NOT NULL, count INTEGER NOT NULL, size BIGINT NOT NULL, data {blob} NOT NULL,
    PRIMARY KEY (sha256, idx));
CREATE TABLE IF NOT EXISTS blobs (
    sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, station TEXT NOT NULL, data {blob} NOT NULL,
    committed_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS tip_outcomes (
    station TEXT NOT NULL, record_id TEXT NOT NULL, projection BIGINT NOT NULL, officer TEXT NOT NULL,
    threat TEXT, label TEXT, outcome TEXT NOT NULL, decision_ms DOUBLE PRECISION,
    shown_ts DOUBLE PRECISION NOT NULL, responded_ts DOUBLE PRECISION NOT NULL, body TEXT NOT NULL,
    committed_at DOUBLE PRECISION NOT NULL, hub TEXT NOT NULL,
    PRIMARY KEY (station, record_id, projection));
CREATE INDEX IF NOT EXISTS tip_outcomes_responded ON tip_outcomes (responded_ts);
CREATE TABLE IF NOT EXISTS stations (
    station TEXT PRIMARY KEY, state TEXT NOT NULL, session BIGINT NOT NULL, status TEXT NOT NULL,
    status_at DOUBLE PRECISION NOT NULL, seen_at DOUBLE PRECISION NOT NULL);
"""

RECORD_COLS = ("id", "station", "seq", "verdict", "is_alert", "kind", "lane", "decided_ts", "identities",
               "scan_sha256", "body", "committed_at", "hub")
UPSERT_RECORD = (f"INSERT INTO records ({','.join(RECORD_COLS)}) VALUES ({','.join('?' * len(RECORD_COLS))})"
                 " ON CONFLICT (id) DO UPDATE SET is_alert = excluded.is_alert WHERE excluded.is_alert > records.is_alert")
INSERT_REVIEW = ("INSERT INTO reviews (record_id, station, officer, decided_ts, outcome, body, committed_at)"
                 " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING")
# An update (review, route) carries the whole record: inserted when it overtook the record itself, else it
# replaces the body; the record arriving later keeps the updated body (UPSERT_RECORD leaves it alone).
UPSERT_UPDATED_RECORD = (f"INSERT INTO records ({','.join(RECORD_COLS)}) VALUES ({','.join('?' * len(RECORD_COLS))})"
                         " ON CONFLICT (id) DO UPDATE SET body = excluded.body")
TIP_COLS = ("station", "record_id", "projection", "officer", "threat", "label", "outcome", "decision_ms", "shown_ts",
            "responded_ts", "body", "committed_at", "hub")
INSERT_TIP = (f"INSERT INTO tip_outcomes ({','.join(TIP_COLS)}) VALUES ({','.join('?' * len(TIP_COLS))})"
              " ON CONFLICT DO NOTHING")
INSERT_CHUNK = "INSERT INTO blob_chunks (sha256, idx, count, size, data) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING"
UPSERT_STATION = ("INSERT INTO stations (station, state, session, status, status_at, seen_at) VALUES (?,?,?,?,?,?)"
                  " ON CONFLICT (station) DO UPDATE SET state=excluded.state, session=excluded.session,"
                  " status=excluded.status, status_at=excluded.status_at, seen_at=excluded.seen_at"
                  # a newer session wins; within one, the Last Will (offline, stamped at connect) wins
                  " WHERE excluded.session > stations.session OR (excluded.session = stations.session"
                  " AND stations.state <> 'offline' AND (excluded.state = 'offline' OR excluded.status_at >= stations.status_at))")


@dataclass(frozen=True, slots=True)
class Batch:
    """One transaction's worth of rows (tuples in the column order of the statements above)."""

    records: list[tuple]
    reviews: list[tuple]
    chunks: list[tuple]
    stations: list[tuple]
    updated: list[tuple]  # whole record rows (RECORD_COLS) of records updated by a review or a route
    tips: list[tuple] = field(default_factory=list)  # TIP outcomes, TIP_COLS order


class HubStore:
    """Common SQL; subclasses open connections and name their placeholder and blob type."""

    blob_type = "BLOB"
    url = ""

    def __init__(self) -> None:
        self._local = threading.local()

    # ---- connection handling --------------------------------------------------------------
    def _connect(self) -> Any:
        raise NotImplementedError

    def sql(self, sql: str) -> str:
        """This backend's form of a statement written with `?` placeholders."""
        return sql

    def _transaction(self, conn: Any) -> Any:
        return conn

    def conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def run_in_transaction(self, fn: Callable[[Cursor, Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
        """Run `fn(cursor, *args)` in one transaction; HubStoreError names the database."""
        try:
            conn = self.conn()
            with self._transaction(conn):
                return fn(conn.cursor(), *args)
        except (sqlite3.Error, psycopg.Error) as exc:
            self.close()
            raise HubStoreError(f"hub database {self.url} failed: {exc}") from exc

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self.run_in_transaction(lambda cur: cur.execute(self.sql(sql), args).fetchall())

    # ---- writes ---------------------------------------------------------------------------
    def migrate(self) -> None:
        def ddl(cur: Cursor) -> None:
            for stmt in TABLES.format(blob=self.blob_type).split(";"):
                if stmt.strip():
                    cur.execute(stmt)
        self.run_in_transaction(ddl)

    def commit(self, batch: Batch) -> None:
        """Write one batch in one transaction (idempotent)."""
        def write(cur: Cursor) -> None:
            for sql, rows in ((UPSERT_RECORD, batch.records), (INSERT_REVIEW, batch.reviews),
                              (INSERT_CHUNK, batch.chunks), (UPSERT_STATION, batch.stations),
                              (UPSERT_UPDATED_RECORD, batch.updated), (INSERT_TIP, batch.tips)):
                if rows:
                    cur.executemany(self.sql(sql), rows)
        self.run_in_transaction(write)

    def blob_state(self, sha256: str) -> tuple[bool, int]:
        """(image already stored, chunks held) for one sha256."""
        rows = self.query("SELECT (SELECT count(*) FROM blobs WHERE sha256=?), (SELECT count(*) FROM blob_chunks WHERE sha256=?)",
                          (sha256, sha256))
        return rows[0][0] > 0, rows[0][1]

    def assemble(self, sha256: str, station: str) -> bool:
        """Join the chunks, check the whole-file hash, store the image; False (chunks dropped) on mismatch."""
        def join(cur: Cursor) -> bool:
            cur.execute(self.sql("SELECT data, size FROM blob_chunks WHERE sha256=? ORDER BY idx"), (sha256,))
            parts = cur.fetchall()
            data = b"".join(bytes(p[0]) for p in parts)
            ok = hashlib.sha256(data).hexdigest() == sha256 and len(data) == parts[0][1]
            if ok:
                cur.execute(self.sql("INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)"
                                      " ON CONFLICT DO NOTHING"), (sha256, len(data), station, data, time.time()))
            cur.execute(self.sql("DELETE FROM blob_chunks WHERE sha256=?"), (sha256,))
            return ok
        return self.run_in_transaction(join)

    def drop_chunks(self, sha256: str) -> None:
        self.run_in_transaction(lambda cur: cur.execute(self.sql("DELETE FROM blob_chunks WHERE sha256=?"), (sha256,)))

    # ---- reads ----------------------------------------------------------------------------
    def seqs_after(self, station: str, after: int, limit: int = 200_000) -> list[int]:
        rows = self.query("SELECT DISTINCT seq FROM records WHERE station=? AND seq>? ORDER BY seq LIMIT ?", (station, after, limit))
        return [r[0] for r in rows]

    def stations(self) -> list[tuple]:
        return self.query("SELECT station, state, session, status, status_at, seen_at FROM stations ORDER BY station")

    def station_ids(self) -> list[str]:
        return [r[0] for r in self.query("SELECT station FROM stations")]

    def records(self, where: str, args: tuple, limit: int, offset: int) -> list[tuple]:
        return self.query(f"SELECT body, is_alert, committed_at, hub FROM records {where}"
                          " ORDER BY decided_ts DESC, id DESC LIMIT ? OFFSET ?", (*args, limit, offset))

    def reviews(self, record_id: str) -> list[str]:
        return [r[0] for r in self.query("SELECT body FROM reviews WHERE record_id=? ORDER BY decided_ts", (record_id,))]

    def image(self, sha256: str) -> bytes | None:
        rows = self.query("SELECT data FROM blobs WHERE sha256=?", (sha256,))
        return bytes(rows[0][0]) if rows else None

    def ping(self) -> bool:
        return self.query("SELECT 1")[0][0] == 1


class SqliteStore(HubStore):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn


class PgStore(HubStore):
    blob_type = "BYTEA"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn
        self.url = _without_password(dsn)  # shown in logs and errors

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn, autocommit=True)
        except psycopg.Error as exc:
            raise HubStoreError(f"hub database {self.url} is unreachable: {exc}") from exc

    def sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _transaction(self, conn: psycopg.Connection) -> Any:
        return conn.transaction()


def _without_password(url: str) -> str:
    """The URL with any password replaced by ***, for logs and error messages."""
    url = re.sub(r"^(\w+://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)


def open_store(url: str) -> HubStore:
    """`postgresql://...` opens PostgreSQL; `sqlite:///path` or a plain path opens SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        return PgStore(url)
    return SqliteStore(Path(url.removeprefix("sqlite:///").removeprefix("sqlite://")))


def iter_chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
