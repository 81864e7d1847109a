"""The hub's database: SQLite (embedded, one machine) or PostgreSQL (psycopg 3), same SQL.

Writes are idempotent and confined to the writing station's rows (see Ownership below): a record is
one row per id whatever number of times it arrives; image chunks are keyed by (sha256, index), an
upload in progress and a finished image by its sha256; a TIP outcome by (station, record id,
projection). Each thread gets its own connection (the ingest worker, the gap checker and the HTTP
handlers run on different threads).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Iterator, Protocol, Self, TypeVar, TypeVarTuple, Unpack

import psycopg
import psycopg.errors
import structlog

from central_sync.errors import HubStoreError
from central_sync.hub.search import INDEX_IDENTITY, INSERT_IDENTITY, normalise, stored_identity_rows
from central_sync.hub import search_reports

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
log = structlog.get_logger("central_sync.hub.store")


class Cursor(Protocol):
    """The DB-API cursor both backends hand out (sqlite3, psycopg), as far as the hub uses it."""

    @property
    def description(self) -> object: ...
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Self: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> object: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...

TABLES = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, station TEXT NOT NULL, seq BIGINT NOT NULL, verdict TEXT NOT NULL,
    is_alert INTEGER NOT NULL, kind TEXT NOT NULL, lane TEXT NOT NULL, decided_ts DOUBLE PRECISION NOT NULL,
    identities TEXT NOT NULL, scan_sha256 TEXT, body TEXT NOT NULL, committed_at DOUBLE PRECISION NOT NULL,
    hub TEXT NOT NULL, body_msg BIGINT NOT NULL DEFAULT 0, risk_bundle BIGINT);
CREATE INDEX IF NOT EXISTS records_station_seq ON records (station, seq);
CREATE INDEX IF NOT EXISTS records_decided ON records (decided_ts);
CREATE INDEX IF NOT EXISTS records_alert ON records (is_alert, decided_ts);
CREATE INDEX IF NOT EXISTS records_committed ON records (committed_at);
CREATE TABLE IF NOT EXISTS reviews (
    record_id TEXT NOT NULL, station TEXT NOT NULL, officer TEXT NOT NULL, decided_ts DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL, body TEXT NOT NULL, committed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (record_id, officer, decided_ts));
CREATE INDEX IF NOT EXISTS reviews_committed ON reviews (committed_at);
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
CREATE TABLE IF NOT EXISTS record_identities (
    record_id TEXT NOT NULL, station TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
    norm TEXT {bytewise} NOT NULL, decided_ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (record_id, kind, value));
CREATE INDEX IF NOT EXISTS record_identities_norm ON record_identities (norm);
CREATE TABLE IF NOT EXISTS blob_uploads (
    sha256 TEXT PRIMARY KEY, station TEXT NOT NULL, count BIGINT NOT NULL, size BIGINT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL, pruned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS gap_prefix (station TEXT PRIMARY KEY, through BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS hub_migrations (
    number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS bundle_acks (
    station TEXT NOT NULL, version BIGINT NOT NULL, sha256 TEXT NOT NULL, outcome TEXT NOT NULL, code TEXT,
    at DOUBLE PRECISION NOT NULL, PRIMARY KEY (station, version, sha256));
"""

# Ownership: every statement a station's message runs names that station, and one that would touch another
# station's row matches nothing in its conflict or NOT EXISTS clause, so RETURNING yields no row. The check
# and the write are one statement, which holds when several hub processes write at once.
RECORD_COLS = ("id", "station", "seq", "verdict", "is_alert", "kind", "lane", "decided_ts", "identities",
               "scan_sha256", "body", "committed_at", "hub", "body_msg", "risk_bundle")
_RECORD_VALUES = f"INSERT INTO records ({','.join(RECORD_COLS)}) VALUES ({','.join('?' * len(RECORD_COLS))})"
# Both refuse (no row returned: "foreign") a record whose id the hub holds under another seq or decision time:
# another record, which a `committed` would have dropped unseen.
_SAME_RECORD = (" WHERE records.station = excluded.station AND records.seq = excluded.seq"
                " AND records.decided_ts = excluded.decided_ts RETURNING id")
UPSERT_RECORD = (_RECORD_VALUES + " ON CONFLICT (id) DO UPDATE SET is_alert = CASE WHEN excluded.is_alert > records.is_alert"
                 " THEN excluded.is_alert ELSE records.is_alert END" + _SAME_RECORD)
# An update (review, route) carries the whole record as it stood: inserted when it overtook the record itself,
# else it replaces the body when it comes from a later message of the station (body_msg, its outbox row id): an
# older update sent again after a newer one was committed (its ack lost) does not take the body back. The record
# arriving later keeps the updated body (UPSERT_RECORD leaves it alone).
_NEWER = "excluded.body_msg >= records.body_msg"
UPSERT_UPDATED_RECORD = (_RECORD_VALUES + f" ON CONFLICT (id) DO UPDATE SET body = CASE WHEN {_NEWER} THEN excluded.body"
                         f" ELSE records.body END, body_msg = CASE WHEN {_NEWER} THEN excluded.body_msg"
                         f" ELSE records.body_msg END, risk_bundle = CASE WHEN {_NEWER} THEN excluded.risk_bundle"
                         " ELSE records.risk_bundle END" + _SAME_RECORD)
ADD_BODY_MSG = "ALTER TABLE records ADD COLUMN body_msg BIGINT NOT NULL DEFAULT 0"
# The risk bundle version the record was assessed with (its body's `risk.bundle`; NULL: none): what keeps a
# published bundle from the hub's retention (hub/retention.py prune_bundles) while a record names it.
ADD_RISK_BUNDLE = "ALTER TABLE records ADD COLUMN risk_bundle BIGINT"
INDEX_RISK_BUNDLE = "CREATE INDEX IF NOT EXISTS records_risk_bundle ON records (risk_bundle)"
# The numbered migrations that change data (recorded in `hub_migrations`, each in one transaction with its record).
REKEY_NORMS = (1, "identity and vehicle hold keys with look-alikes folded (search.normalise)")
FILL_RISK_BUNDLE = (2, "records.risk_bundle from each body's risk.bundle")
_NOT_FOREIGN = " WHERE NOT EXISTS (SELECT 1 FROM records WHERE id = ? AND station <> ?)"  # args: record id, station
REVIEW_COLS = ("record_id", "station", "officer", "decided_ts", "outcome", "body", "committed_at")
INSERT_REVIEW = (f"INSERT INTO reviews ({','.join(REVIEW_COLS)}) SELECT {','.join('?' * len(REVIEW_COLS))}"
                 + _NOT_FOREIGN + " ON CONFLICT (record_id, officer, decided_ts) DO UPDATE SET station = reviews.station"
                 " WHERE reviews.station = excluded.station RETURNING record_id")
TIP_COLS = ("station", "record_id", "projection", "officer", "threat", "label", "outcome", "decision_ms", "shown_ts",
            "responded_ts", "body", "committed_at", "hub")
INSERT_TIP = (f"INSERT INTO tip_outcomes ({','.join(TIP_COLS)}) SELECT {','.join('?' * len(TIP_COLS))}"
              + _NOT_FOREIGN + " ON CONFLICT (station, record_id, projection) DO UPDATE SET station = tip_outcomes.station"
              " RETURNING record_id")
# An image upload belongs to the station of its first chunk; later chunks must agree on count and size. A
# station starts a new upload only while it holds fewer incomplete ones than the limit (args: the upload's
# five values, station, limit, sha256).
UPSERT_UPLOAD = ("INSERT INTO blob_uploads (sha256, station, count, size, started_at) SELECT ?,?,?,?,?"
                 " WHERE (SELECT count(*) FROM blob_uploads WHERE station = ? AND pruned = 0) < ?"
                 " OR EXISTS (SELECT 1 FROM blob_uploads WHERE sha256 = ?)"
                 " ON CONFLICT (sha256) DO UPDATE SET station = blob_uploads.station WHERE blob_uploads.station ="
                 " excluded.station AND blob_uploads.count = excluded.count AND blob_uploads.size = excluded.size"
                 " AND blob_uploads.pruned = 0 RETURNING sha256")
# A chunk is kept only under its station's live upload (args: the chunk's five values, sha256, station).
INSERT_CHUNK = ("INSERT INTO blob_chunks (sha256, idx, count, size, data) SELECT ?,?,?,?,?"
                " WHERE EXISTS (SELECT 1 FROM blob_uploads WHERE sha256 = ? AND station = ? AND pruned = 0)"
                " ON CONFLICT DO NOTHING")
UPSERT_STATION = ("INSERT INTO stations (station, state, session, status, status_at, seen_at) VALUES (?,?,?,?,?,?)"
                  " ON CONFLICT (station) DO UPDATE SET state=excluded.state, session=excluded.session,"
                  " status=excluded.status, status_at=excluded.status_at, seen_at=excluded.seen_at"
                  # a newer session wins; within one, the Last Will (offline, stamped at connect) wins
                  " WHERE excluded.session > stations.session OR (excluded.session = stations.session"
                  " AND stations.state <> 'offline' AND (excluded.state = 'offline' OR excluded.status_at >= stations.status_at))")
# The order a transaction runs its statements in: a record before its update and its review, an upload
# before its chunks; the same in every hub process, so that they take locks alike.
STATEMENT_ORDER = (UPSERT_RECORD, UPSERT_UPDATED_RECORD, INSERT_IDENTITY, INSERT_REVIEW,
                   search_reports.UPSERT_SEARCH_REPORT, search_reports.SET_OUTCOME, INSERT_TIP, UPSERT_UPLOAD, INSERT_CHUNK,
                   UPSERT_STATION)
INT64 = range(-(2**63), 2**63)
# The PostgreSQL advisory lock (class, then the schema's hash) that hub processes take in turn to create or
# alter tables: PostgreSQL refuses the second of two CREATE TABLE IF NOT EXISTS of one table that overlap
# ("duplicate key value violates unique constraint pg_type_typname_nsp_index"), so two hub processes that
# started together could see one of them exit at start-up.
SCHEMA_LOCK_CLASS = 0x43504548  # "CPEH"
RACES = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)  # the transaction is tried again
# What a database refuses because of the data in one message (not because it is down): that message is rejected.
DATA_REFUSALS = (sqlite3.IntegrityError, sqlite3.DataError, psycopg.DataError, psycopg.IntegrityError,
                 psycopg.errors.ProgramLimitExceeded, OverflowError)


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a message's write; `owned`: it must RETURN a row, else the row is another station's."""

    sql: str
    args: tuple
    owned: bool = True


@dataclass(frozen=True, slots=True)
class Write:
    """All statements of one message; the message is refused when one of its owned steps returns no row."""

    steps: tuple[Step, ...]


def unstorable(write: Write) -> str | None:
    """Why this write cannot be stored on both backends (NUL in text, integer past 64 bits), or None."""
    for step in write.steps:
        for value in step.args:
            if isinstance(value, str) and "\x00" in value:
                return f"text {value[:40]!r} holds a NUL byte, which the hub database cannot store"
            if isinstance(value, int) and value not in INT64:
                return f"integer {value} is outside the 64-bit range of the hub database"
    return None


def risk_bundle_of(body: str) -> int | None:
    """The risk bundle version a stored record body names (`risk.bundle`), or None."""
    try:
        risk = json.loads(body).get("risk")
    except (ValueError, AttributeError):
        return None
    version = risk.get("bundle") if isinstance(risk, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) and version in INT64 else None


class HubStore:
    """Common SQL; subclasses open connections and name their placeholder and blob type."""

    blob_type = "BLOB"
    bytewise = ""  # the collation that orders text by code point (search.py): SQLite's default BINARY
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

    def wait_for_writers(self, cur: Cursor, *tables: str, writes: bool = False) -> None:
        """First in a transaction: let the writers of `tables` in flight commit, and hold off new ones until it ends,
        so its next statements see every row (SQLite: nothing to do, it has one writer at a time). `writes`: the
        transaction writes them too, so it also waits for another such transaction (see PgStore)."""

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
        except (sqlite3.Error, psycopg.Error, OverflowError) as exc:
            self.close()
            raise HubStoreError(f"hub database {self.url} failed: {exc}") from exc

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        return self.run_in_transaction(lambda cur: cur.execute(self.sql(sql), args).fetchall())

    # ---- writes ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def schema_lock(self) -> Iterator[None]:
        """Held while tables are created or altered (every `migrate` of the hub's database): processes that
        start together take turns, so a check and the DDL it leads to are never interleaved with another
        process's. Re-entrant within a thread (the control room's migration runs the hub's)."""
        depth = getattr(self._local, "schema_depth", 0)
        if depth:
            self._local.schema_depth = depth + 1
            try:
                yield
            finally:
                self._local.schema_depth = depth
            return
        with self._schema_lock():
            self._local.schema_depth = 1
            try:
                yield
            finally:
                self._local.schema_depth = 0

    def _schema_lock(self) -> contextlib.AbstractContextManager[object]:
        """This backend's lock against other processes' DDL; none by default."""
        return contextlib.nullcontext()

    def migrate(self) -> None:
        def ddl(cur: Cursor) -> None:
            for stmt in TABLES.format(blob=self.blob_type, bytewise=self.bytewise).split(";"):
                if stmt.strip():
                    cur.execute(stmt)
        with self.schema_lock():
            indexed = self._has_table("record_identities")
            self.run_in_transaction(ddl)
            if not indexed:
                self._index_identities()
            self._migrate_search_reports()
            if not self._has_column("records", "body_msg"):  # a hub that predates it: every body counts as oldest
                self.run_in_transaction(lambda cur: cur.execute(ADD_BODY_MSG))
            if not self._has_column("records", "risk_bundle"):  # a hub that predates it: filled from the bodies below
                self.run_in_transaction(lambda cur: cur.execute(ADD_RISK_BUNDLE))
            self.run_in_transaction(lambda cur: cur.execute(INDEX_RISK_BUNDLE))
            self._rekey_norms()
            self._fill_risk_bundle()

    def _rekey_norms(self, page: int = 5000) -> None:
        """Migration REKEY_NORMS: every identity index row and vehicle hold (released ones too) keyed again by
        today's `normalise`, in one transaction, so that a prune never sees a hold keyed one way and the rows
        it holds the other. Only values with a character other than A-Z and 0-9 can change: those are read."""
        holds = self._has_table("legal_holds")  # the control room's (retention.py); created later keyed anew

        def rekey(cur: Cursor) -> tuple[int, int]:
            cur.execute(self.sql("SELECT 1 FROM hub_migrations WHERE number = ?"), (REKEY_NORMS[0],))
            if cur.fetchall():
                return -1, -1
            identities, after = 0, ("", "", "")
            while True:
                cur.execute(self.sql("SELECT record_id, kind, value, norm FROM record_identities WHERE (record_id, kind,"
                                     f" value) > (?, ?, ?) AND {self.unplain('value')} ORDER BY record_id, kind, value"
                                     " LIMIT ?"), (*after, page))
                rows = cur.fetchall()
                changed = [(normalise(v), rid, k, v) for rid, k, v, norm in rows if normalise(v) != norm]
                if changed:
                    cur.executemany(self.sql("UPDATE record_identities SET norm = ? WHERE record_id = ? AND kind = ?"
                                             " AND value = ?"), changed)
                identities += len(changed)
                if len(rows) < page:
                    break
                after = tuple(rows[-1][:3])
            held = 0
            if holds:
                cur.execute("SELECT id, value, norm FROM legal_holds WHERE kind <> 'record'")
                keys = [(normalise(v), hid) for hid, v, norm in cur.fetchall() if normalise(v) != norm]
                if keys:
                    cur.executemany(self.sql("UPDATE legal_holds SET norm = ? WHERE id = ?"), keys)
                held = len(keys)
            cur.execute(self.sql("INSERT INTO hub_migrations (number, name, applied_at) VALUES (?,?,?)"),
                        (*REKEY_NORMS, time.time()))
            return identities, held
        identities, held = self.run_in_transaction(rekey)
        if identities >= 0:
            log.info("hub.migrated", migration=REKEY_NORMS[0], name=REKEY_NORMS[1], identity_rows=identities,
                     holds=held)

    def _fill_risk_bundle(self, page: int = 5000) -> None:
        """Migration FILL_RISK_BUNDLE: `records.risk_bundle` of every record stored before the column, from its
        body, in one transaction (until then the hub's retention could not see that a record names a bundle). Only
        bodies that mention a bundle are read."""
        def fill(cur: Cursor) -> int:
            cur.execute(self.sql("SELECT 1 FROM hub_migrations WHERE number = ?"), (FILL_RISK_BUNDLE[0],))
            if cur.fetchall():
                return -1
            filled, after = 0, ""
            while True:
                cur.execute(self.sql("SELECT id, body FROM records WHERE id > ? AND risk_bundle IS NULL"
                                     " AND body LIKE ? ORDER BY id LIMIT ?"), (after, '%"bundle"%', page))
                rows = cur.fetchall()
                named = [(v, rid) for rid, body in rows if (v := risk_bundle_of(body)) is not None]
                if named:
                    cur.executemany(self.sql("UPDATE records SET risk_bundle = ? WHERE id = ?"), named)
                filled += len(named)
                if len(rows) < page:
                    break
                after = rows[-1][0]
            cur.execute(self.sql("INSERT INTO hub_migrations (number, name, applied_at) VALUES (?,?,?)"),
                        (*FILL_RISK_BUNDLE, time.time()))
            return filled
        filled = self.run_in_transaction(fill)
        if filled >= 0:
            log.info("hub.migrated", migration=FILL_RISK_BUNDLE[0], name=FILL_RISK_BUNDLE[1], records=filled)

    def unplain(self, column: str) -> str:
        """SQL: the text column holds a character other than A-Z and 0-9 (SQLite's GLOB)."""
        return f"{column} GLOB '*[^A-Z0-9]*'"

    def _migrate_search_reports(self) -> None:
        """The search reports' table and `records.search_outcome` (added to a hub that predates them)."""
        if not self._has_table("search_reports"):
            self.run_in_transaction(lambda cur: [cur.execute(stmt) for stmt in search_reports.DDL.split(";")
                                                 if stmt.strip()])
        try:
            self.query("SELECT search_outcome FROM records LIMIT 1")
        except HubStoreError:
            self.run_in_transaction(lambda cur: cur.execute(search_reports.ADD_OUTCOME_COLUMN))
        self.run_in_transaction(lambda cur: cur.execute(search_reports.INDEX_OUTCOME))
        if not self._has_column("search_reports", "digest"):
            self.run_in_transaction(lambda cur: cur.execute(search_reports.ADD_DIGEST_COLUMN))

    def _has_column(self, table: str, column: str) -> bool:
        try:
            self.query(f"SELECT {column} FROM {table} LIMIT 1")
        except HubStoreError:
            return False
        return True

    def _has_table(self, name: str) -> bool:
        try:
            self.query(f"SELECT 1 FROM {name} LIMIT 1")
        except HubStoreError:
            return False
        return True

    def _index_identities(self, page: int = 5000) -> None:
        """Fill the identity index (search.py) from the records a hub held before it had one, page by page."""
        after = ""
        while rows := self.query("SELECT id, station, decided_ts, body FROM records WHERE id > ? ORDER BY id LIMIT ?",
                                 (after, page)):
            found = [row for rid, station, ts, body in rows for row in stored_identity_rows(rid, station, ts, body)]
            self.run_in_transaction(lambda cur: cur.executemany(self.sql(INDEX_IDENTITY), found) if found else None)
            after = rows[-1][0]

    def commit(self, writes: list[Write]) -> list[str]:
        """Write the messages in one transaction; per message "" (written), "foreign" (another station's row)
        or the database's reason for refusing it. When the database refuses the batch for its data, each
        message is retried alone, so one message cannot hold the others. Rows are written in key order (stable,
        so one row's messages keep theirs) so that hub processes writing the same rows take locks alike."""
        order = sorted(range(len(writes)), key=lambda i: str(writes[i].steps[0].args[0]))
        ordered = [writes[i] for i in order]
        try:
            done = self._with_retry(ordered)
        except HubStoreError as exc:
            if not isinstance(exc.__cause__, DATA_REFUSALS):
                raise
            done = [self._write_alone(w) for w in ordered]
        results = [""] * len(writes)
        for i, result in zip(order, done):
            results[i] = result
        return results

    def _with_retry(self, writes: list[Write], tries: int = 3) -> list[str]:
        """One transaction, tried again when the database broke a deadlock or a serialization conflict."""
        for _ in range(tries - 1):
            try:
                return self.run_in_transaction(self._write_all, writes)
            except HubStoreError as exc:
                if not isinstance(exc.__cause__, RACES):
                    raise
        return self.run_in_transaction(self._write_all, writes)

    def _write_alone(self, write: Write) -> str:
        try:
            return self.run_in_transaction(self._write_all, [write])[0]
        except HubStoreError as exc:
            if not isinstance(exc.__cause__, DATA_REFUSALS):
                raise
            return f"the hub database refused it: {exc.__cause__}"

    def _write_all(self, cur: Any, writes: list[Write]) -> list[str]:
        """Run the steps statement by statement in STATEMENT_ORDER (rows in the writes' order); a write is
        "foreign" when one of its owned steps returned no row. Each statement checks ownership itself, so a
        step after a refused one changes nothing and no step has to wait for the one before."""
        refused: set[int] = set()
        order = list(dict.fromkeys([*STATEMENT_ORDER, *(s.sql for w in writes for s in w.steps)]))
        for sql in order:
            group = [(i, step) for i, w in enumerate(writes) for step in w.steps if step.sql == sql]
            if not group:
                continue
            got = self._run_group(cur, sql, [step.args for _, step in group], group[0][1].owned)
            refused.update(i for (i, step), ok in zip(group, got) if step.owned and not ok)
        return ["foreign" if i in refused else "" for i in range(len(writes))]

    def _run_group(self, cur: Any, sql: str, rows: list[tuple], returning: bool) -> list[bool]:
        """Run one statement per row; per row, whether it RETURNed a row."""
        got = []
        for args in rows:
            cur.execute(self.sql(sql), args)
            got.append(bool(cur.fetchall()) if returning else True)
        return got

    def prune_uploads(self, started_before: float) -> int:
        """Drop the chunks of incomplete uploads started before the cutoff; the upload stays marked pruned."""
        def prune(cur: Any) -> int:
            cur.execute(self.sql("UPDATE blob_uploads SET pruned = 1 WHERE pruned = 0 AND started_at < ? RETURNING sha256"),
                        (started_before,))
            shas = [r[0] for r in cur.fetchall()]
            for sha in shas:
                cur.execute(self.sql("DELETE FROM blob_chunks WHERE sha256 = ?"), (sha,))
            return len(shas)
        return self.run_in_transaction(prune)

    def blob_state(self, sha256: str) -> tuple[bool, int]:
        """(image already stored, chunks held) for one sha256."""
        rows = self.query("SELECT (SELECT count(*) FROM blobs WHERE sha256=?), (SELECT count(*) FROM blob_chunks WHERE sha256=?)",
                          (sha256, sha256))
        return rows[0][0] > 0, rows[0][1]

    def assemble(self, sha256: str, station: str) -> bool:
        """Join the chunks, check the whole-file hash, store the image; False (chunks dropped) on mismatch. True
        when the image is stored already: another hub process may have finished it since this one looked."""
        def join(cur: Cursor) -> bool:
            cur.execute(self.sql("SELECT count(*) FROM blobs WHERE sha256=?"), (sha256,))
            done = cur.fetchall()[0][0] > 0
            if not done:
                cur.execute(self.sql("SELECT data, size FROM blob_chunks WHERE sha256=? ORDER BY idx"), (sha256,))
            parts = [] if done else cur.fetchall()
            data = b"".join(bytes(p[0]) for p in parts)
            ok = done or (bool(parts) and hashlib.sha256(data).hexdigest() == sha256 and len(data) == parts[0][1])
            if ok and not done:
                cur.execute(self.sql("INSERT INTO blobs (sha256, size, station, data, committed_at) VALUES (?,?,?,?,?)"
                                      " ON CONFLICT DO NOTHING"), (sha256, len(data), station, data, time.time()))
            cur.execute(self.sql("DELETE FROM blob_chunks WHERE sha256=?"), (sha256,))
            cur.execute(self.sql("DELETE FROM blob_uploads WHERE sha256=?"), (sha256,))
            return ok
        return self.run_in_transaction(join)

    def drop_chunks(self, sha256: str) -> None:
        def drop(cur: Any) -> None:
            cur.execute(self.sql("DELETE FROM blob_chunks WHERE sha256=?"), (sha256,))
            cur.execute(self.sql("DELETE FROM blob_uploads WHERE sha256=?"), (sha256,))
        self.run_in_transaction(drop)

    def record_bundle_ack(self, station: str, version: int, sha256: str, outcome: str, code: str | None,
                          at: float) -> None:
        """A station's answer to a risk bundle (central_sync.risk_delivery); the latest answer per envelope wins."""
        self.query("INSERT INTO bundle_acks (station, version, sha256, outcome, code, at) VALUES (?,?,?,?,?,?)"
                   " ON CONFLICT (station, version, sha256) DO UPDATE SET outcome=excluded.outcome,"
                   " code=excluded.code, at=excluded.at WHERE excluded.at >= bundle_acks.at RETURNING station",
                   (station, version, sha256, outcome, code, at))

    # ---- reads ----------------------------------------------------------------------------
    def bundle_acks(self) -> list[tuple]:
        """Per station its latest risk bundle answer: (station, version, sha256, outcome, code, at)."""
        # one pass in the table's order (a correlated NOT EXISTS read each station's rows once per row:
        # 6.3 s on SQLite for 50 stations with a year of 6-hourly versions, about 0.1 s so)
        return self.query("SELECT station, version, sha256, outcome, code, at FROM (SELECT station, version, sha256,"
                          " outcome, code, at, row_number() OVER (PARTITION BY station ORDER BY at DESC, version DESC,"
                          " sha256) AS n FROM bundle_acks) AS newest WHERE n = 1 ORDER BY station")

    def applied_bundle_versions(self) -> dict[str, int]:
        """Per station the newest risk bundle version it acknowledged as applied."""
        rows = self.query("SELECT station, max(version) FROM bundle_acks WHERE outcome = 'applied' GROUP BY station")
        return {station: int(version) for station, version in rows}

    def seqs_after(self, station: str, after: int, limit: int = 200_000) -> list[int]:
        rows = self.query("SELECT DISTINCT seq FROM records WHERE station=? AND seq>? ORDER BY seq LIMIT ?", (station, after, limit))
        return [r[0] for r in rows]

    def stations(self) -> list[tuple]:
        return self.query("SELECT station, state, session, status, status_at, seen_at FROM stations ORDER BY station")

    def gap_prefixes(self) -> dict[str, int]:
        """Per station the seq through which the gap check found nothing missing (central_sync.hub.gaps)."""
        return {station: through for station, through in self.query("SELECT station, through FROM gap_prefix")}

    def save_gap_prefix(self, station: str, through: int) -> None:
        """Keep the station's gap-free prefix; it only grows (several hub processes check at once)."""
        self.query("INSERT INTO gap_prefix (station, through) VALUES (?,?) ON CONFLICT (station) DO UPDATE"
                   " SET through = excluded.through WHERE excluded.through > gap_prefix.through RETURNING station",
                   (station, through))

    def station_ids(self) -> list[str]:
        return [r[0] for r in self.query("SELECT station FROM stations")]

    def records(self, where: str, args: tuple, limit: int, offset: int) -> list[tuple]:
        return self.query(f"SELECT body, is_alert, committed_at, hub FROM records {where}"
                          " ORDER BY decided_ts DESC, id DESC LIMIT ? OFFSET ?", (*args, limit, offset))

    def reviews(self, record_id: str) -> list[str]:
        return [r[0] for r in self.query("SELECT body FROM reviews WHERE record_id=? ORDER BY decided_ts", (record_id,))]

    def json_text(self, column: str, *path: str) -> str:
        """SQL for the text at `path` inside a JSON column (NULL where absent): SQLite's json_extract."""
        return f"json_extract({column}, '$.{'.'.join(path)}')"

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
    bytewise = 'COLLATE "C"'

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

    def unplain(self, column: str) -> str:
        """SQL: the text column holds a character other than A-Z and 0-9 (compared by code point)."""
        return f"{column} COLLATE \"C\" ~ '[^A-Z0-9]'"

    def json_text(self, column: str, *path: str) -> str:
        """SQL for the text at `path` inside a JSON column (NULL where absent): PostgreSQL's #>> on jsonb."""
        return f"({column}::jsonb #>> '{{{','.join(path)}}}')"

    @contextlib.contextmanager
    def _schema_lock(self) -> Iterator[object]:
        """A session advisory lock per schema on a connection of its own, unlocked at the end (the server also
        drops it with the connection, when the process holding it dies)."""
        key = (SCHEMA_LOCK_CLASS,)
        try:
            conn = psycopg.connect(self.dsn, autocommit=True)
        except psycopg.Error as exc:
            raise HubStoreError(f"hub database {self.url} is unreachable: {exc}") from exc
        with conn:
            try:
                conn.execute("SELECT pg_advisory_lock(%s, hashtext(coalesce(current_schema(), '')))", key)
            except psycopg.Error as exc:
                raise HubStoreError(f"hub database {self.url} failed: {exc}") from exc
            try:
                yield conn
            finally:  # at once, not when the server gets round to the closed connection
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(coalesce(current_schema(), '')))", key)

    def _transaction(self, conn: psycopg.Connection) -> Any:
        return conn.transaction()

    def wait_for_writers(self, cur: Cursor, *tables: str, writes: bool = False) -> None:
        """A statement's snapshot misses rows not yet committed. SHARE lets readers of the same tables run side by
        side; a transaction that then writes them takes SHARE ROW EXCLUSIVE, which conflicts with itself: two
        holding SHARE that both went on to write would each wait for the other (a deadlock). The tables are locked
        in the order given, the order ingest writes them (records before search_reports)."""
        mode = "SHARE ROW EXCLUSIVE" if writes else "SHARE"
        cur.execute(f"LOCK TABLE {', '.join(tables)} IN {mode} MODE")

    def _run_group(self, cur: Any, sql: str, rows: list[tuple], returning: bool) -> list[bool]:
        """One round trip for the group (executemany pipelines it); per row, whether it RETURNed a row."""
        cur.executemany(self.sql(sql), rows, returning=returning)
        if not returning:
            return [True] * len(rows)
        got = [bool(cur.fetchall())]
        while cur.nextset():
            got.append(bool(cur.fetchall()))
        return got


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
