"""Append-only, hash-chained audit log of every view of a case image and every decision.

Each row: seq (1, 2, 3, ... without gaps), at (UTC RFC 3339), actor, action, object, detail
(canonical JSON text), prev_hash and hash, chained by `appliance.hashchain` over those fields
(rows written before issue 15 are in its form v1, new ones in v2). Triggers refuse UPDATE and
DELETE, so changing a row needs deliberate tampering with the schema, which `verify` then detects
and names. Removing the newest rows is not detectable from the chain alone: the log is not synced and no
copy of its head is kept elsewhere (docs/case-bundles.md).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from appliance import hashchain
from appliance.hashchain import ChainBreak

GENESIS = hashchain.GENESIS
FIELDS = ("seq", "at", "actor", "action", "object", "detail", "prev_hash")
FORM = hashchain.ChainForm("station audit", FIELDS)

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


def entry_hash(seq: int, at: str, actor: str, action: str, obj: str, detail: str, prev_hash: str,
               version: int = hashchain.CURRENT) -> str:
    """The hash of one row in canonical form `version`."""
    body = {"seq": seq, "at": at, "actor": actor, "action": action, "object": obj, "detail": detail,
            "prev_hash": prev_hash}
    return FORM.digest(body, version)


def append(conn: sqlite3.Connection, actor: str, action: str, obj: str, detail: dict[str, Any] | None = None,
           at: datetime | None = None) -> AuditEntry:
    """Add one entry at the head of the chain, atomically."""
    stamp = (at or datetime.now(timezone.utc)).isoformat()
    body = {"at": stamp, "actor": actor, "action": action, "object": obj,
            "detail": hashchain.canonical_text(detail or {})}
    with transaction(conn):
        head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        row = hashchain.seal(FORM, {"seq": head[0], "hash": head[1]} if head else None, body)
        entry = AuditEntry(**{k: row[k] for k in (*FIELDS, "hash")})
        conn.execute("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?)", astuple(entry))
    return entry


def entries(conn: sqlite3.Connection, obj: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """Newest first; only those about `obj` when given."""
    where, args = ("WHERE object = ?", (obj,)) if obj else ("", ())
    rows = conn.execute(f"SELECT * FROM audit_log {where} ORDER BY seq DESC LIMIT ?", (*args, limit))
    return [AuditEntry(*row) for row in rows]


def first_break(conn: sqlite3.Connection) -> ChainBreak | None:
    """Walk the chain from the start; the first entry that does not hold, or None."""
    rows = conn.execute("SELECT * FROM audit_log ORDER BY seq")
    return hashchain.verify(FORM, (AuditEntry(*row).__dict__ for row in rows))


def verify_conn(conn: sqlite3.Connection) -> tuple[bool, int | None]:
    """(True, None) when the chain holds, else (False, the first seq that does not hold)."""
    broken = first_break(conn)
    return (True, None) if broken is None else (False, broken.seq)


def verify(store: Any) -> tuple[bool, int | None]:
    """Check the audit chain of an open `edge.store.Store`; names the first broken seq."""
    ensure_schema(store.conn)
    return verify_conn(store.conn)
