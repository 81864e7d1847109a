"""Append-only, hash-chained audit log of every control-room view and action.

Row: seq (1, 2, ... without gaps), at (UTC RFC 3339), actor, action, object, detail (canonical
JSON), prev_hash (previous row's hash, 64 zeros for the first) and hash = sha256 of the canonical
JSON of all those fields. A changed row breaks its own hash, a removed row the sequence, a
re-hashed row the next link; `verify` names the first broken link. Two hub processes appending
at once collide on the primary key, and the loser retries on the new head.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from datetime import UTC, datetime

from central_sync.control_room.db import execute, transact
from central_sync.errors import HubStoreError
from central_sync.hub.store import HubStore

GENESIS = "0" * 64
APPEND_TRIES = 10
COLS = ("seq", "at", "actor", "action", "object", "detail", "prev_hash")


def _hash(row: dict) -> str:
    return hashlib.sha256(json.dumps({k: row[k] for k in COLS}, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def append(store: HubStore, actor: str, action: str, obj: str, detail: dict | None = None) -> int:
    """Add one entry; its seq."""
    for attempt in range(APPEND_TRIES):
        try:
            return transact(store, lambda cur: _append(store, cur, actor, action, obj, detail or {}))
        except HubStoreError:  # another writer took this seq first: retry on the new head
            if attempt == APPEND_TRIES - 1:
                raise
            time.sleep(random.uniform(0.001, 0.01 * (attempt + 1)))
    raise AssertionError("unreachable")


def _append(store: HubStore, cur, actor: str, action: str, obj: str, detail: dict) -> int:
    cur.execute("SELECT seq, hash FROM cr_audit ORDER BY seq DESC LIMIT 1")
    head = cur.fetchone()
    row = {"seq": (head[0] + 1) if head else 1, "at": datetime.now(UTC).isoformat(timespec="microseconds"),
           "actor": actor, "action": action, "object": obj,
           "detail": json.dumps(detail, sort_keys=True, separators=(",", ":")), "prev_hash": head[1] if head else GENESIS}
    cur.execute(store.sql("INSERT INTO cr_audit (seq, at, actor, action, object, detail, prev_hash, hash)"
                           " VALUES (?,?,?,?,?,?,?,?)"), (*[row[k] for k in COLS], _hash(row)))
    return row["seq"]


def entries(store: HubStore, limit: int = 200, after: int = 0) -> list[dict]:
    rows = execute(store, "SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM cr_audit"
                          " WHERE seq > ? ORDER BY seq DESC LIMIT ?", (after, limit))
    return [dict(zip((*COLS, "hash"), r)) for r in rows]


def verify(store: HubStore) -> tuple[int, int | None, str]:
    """(entries checked, seq of the first broken link or None, what is wrong there)."""
    rows = execute(store, "SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM cr_audit ORDER BY seq")
    prev, expect = GENESIS, 1
    for r in rows:
        row = dict(zip((*COLS, "hash"), r))
        if row["seq"] != expect:
            return len(rows), expect, f"entry {expect} is missing (next is {row['seq']})"
        if row["prev_hash"] != prev:
            return len(rows), row["seq"], f"entry {row['seq']} does not link to entry {row['seq'] - 1}"
        if _hash(row) != row["hash"]:
            return len(rows), row["seq"], f"entry {row['seq']} was changed after it was written"
        prev, expect = row["hash"], expect + 1
    return len(rows), None, ""
