"""Append-only, hash-chained audit log of every view of a case image and every decision.

Each row: seq (1, 2, 3, ... without gaps), at (UTC RFC 3339), actor, action, object, detail
(canonical JSON text), prev_hash (the previous row's hash; 64 zeros for the first), and
hash = sha256 over the canonical JSON of all those fields. Triggers refuse UPDATE and DELETE, so
changing a row needs deliberate tampering with the schema, which `verify` then detects: a changed
row breaks its own hash, a removed row breaks the sequence, a re-hashed row breaks the next link.
Removing the newest rows is not detectable from the chain alone (see the hub copy).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

GENESIS = "0" * 64

AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    object    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_object ON audit_log (object);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    object: str
    detail: str
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "detail": json.loads(self.detail)}


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (the connection is in autocommit)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(AUDIT_DDL)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(seq: int, at: str, actor: str, action: str, obj: str, detail: str, prev_hash: str) -> str:
    body = {"seq": seq, "at": at, "actor": actor, "action": action, "object": obj, "detail": detail,
            "prev_hash": prev_hash}
    return hashlib.sha256(canonical(body).encode("utf-8")).hexdigest()


def append(conn: sqlite3.Connection, actor: str, action: str, obj: str, detail: dict[str, Any] | None = None,
           at: datetime | None = None) -> AuditEntry:
    """Add one entry at the head of the chain, atomically."""
    stamp = (at or datetime.now(timezone.utc)).isoformat()
    text = canonical(detail or {})
    with transaction(conn):
        head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        digest = entry_hash(seq, stamp, actor, action, obj, text, prev)
        conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?)",
                     (seq, stamp, actor, action, obj, text, prev, digest))
    return AuditEntry(seq, stamp, actor, action, obj, text, prev, digest)


def entries(conn: sqlite3.Connection, obj: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """Newest first; only those about `obj` when given."""
    where, args = ("WHERE object = ?", (obj,)) if obj else ("", ())
    rows = conn.execute(f"SELECT * FROM audit_log {where} ORDER BY seq DESC LIMIT ?", (*args, limit))
    return [AuditEntry(*row) for row in rows]


def verify_conn(conn: sqlite3.Connection) -> tuple[bool, int | None]:
    """Walk the chain from the start; (True, None) or (False, the first seq that does not hold)."""
    expected_seq, prev = 1, GENESIS
    for row in conn.execute("SELECT * FROM audit_log ORDER BY seq"):
        e = AuditEntry(*row)
        if e.seq != expected_seq or e.prev_hash != prev:
            return False, e.seq
        if entry_hash(e.seq, e.at, e.actor, e.action, e.object, e.detail, e.prev_hash) != e.hash:
            return False, e.seq
        expected_seq, prev = e.seq + 1, e.hash
    return True, None


def verify(store: Any) -> tuple[bool, int | None]:
    """Check the audit chain of an open `edge.store.Store`; names the first broken seq."""
    ensure_schema(store.conn)
    return verify_conn(store.conn)
