"""The station's outbox table: rows written in the same transaction as their record.

The station store (edge) creates this table in its migrations and calls `enqueue` inside its
own transaction; the publisher in this package reads and retires rows. A row is deleted only
when the hub acknowledges that it is committed centrally (the delivery rule).

Lanes, in priority order: ALERT (0) before RECORD (1) before IMAGE (2).
"""

from __future__ import annotations

import sqlite3
import time
from enum import IntEnum

OUTBOX_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    lane        INTEGER NOT NULL,          -- 0 alert, 1 record, 2 image
    kind        TEXT    NOT NULL,          -- 'inspection', 'alert', 'review', 'blob'
    record_id   TEXT    NOT NULL,
    seq         INTEGER NOT NULL,          -- the record's per-station seq
    payload     BLOB    NOT NULL,          -- JSON for messages; sha256 hex for blobs (photo:<sha256> for search photos)
    size        INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_sent_at REAL,
    last_error  TEXT
);
CREATE INDEX IF NOT EXISTS outbox_lane_id ON outbox (lane, id);
"""


class Lane(IntEnum):
    ALERT = 0
    RECORD = 1
    IMAGE = 2


def enqueue(conn: sqlite3.Connection, lane: Lane, kind: str, record_id: str, seq: int, payload: bytes | str) -> int:
    """Add one row; the caller owns the transaction."""
    data = payload.encode() if isinstance(payload, str) else payload
    cur = conn.execute(
        "INSERT INTO outbox (lane, kind, record_id, seq, payload, size, created_at) VALUES (?,?,?,?,?,?,?)",
        (int(lane), kind, record_id, seq, data, len(data), time.time()),
    )
    if cur.lastrowid is None:
        raise sqlite3.DatabaseError(f"outbox insert of {kind} {record_id} seq {seq} returned no row id")
    return cur.lastrowid
