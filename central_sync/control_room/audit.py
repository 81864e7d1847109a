"""Append-only, hash-chained audit log of every control-room view and action.

Row: seq (1, 2, ... without gaps), at (UTC RFC 3339), actor, action, object, detail (canonical
JSON), prev_hash and hash, chained by `appliance.hashchain` over those fields (rows written before
issue 15 are in its form v1 with non-ASCII escaped, new ones in v2). `verify` names the first
broken entry. Two hub processes appending at once collide on the primary key, and the loser
retries on the new head.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from appliance import hashchain
from appliance.hashchain import GENESIS
from central_sync.control_room.db import execute, transact
from central_sync.errors import HubStoreError
from central_sync.hub.store import Cursor, HubStore

__all__ = ["FORM", "GENESIS", "append", "entries", "verify"]

APPEND_TRIES = 10
COLS = ("seq", "at", "actor", "action", "object", "detail", "prev_hash")
FORM = hashchain.ChainForm("control-room audit", COLS, v1_ascii=True)
SELECT = "SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM cr_audit"


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


def _append(store: HubStore, cur: Cursor, actor: str, action: str, obj: str, detail: dict) -> int:
    cur.execute("SELECT seq, hash FROM cr_audit ORDER BY seq DESC LIMIT 1")
    head = next(iter(cur.fetchall()), None)  # the hub's Cursor protocol has no fetchone
    body = {"at": datetime.now(UTC).isoformat(timespec="microseconds"), "actor": actor, "action": action,
            "object": obj, "detail": hashchain.canonical_text(detail)}
    row = hashchain.seal(FORM, {"seq": head[0], "hash": head[1]} if head else None, body)
    cur.execute(store.sql("INSERT INTO cr_audit (seq, at, actor, action, object, detail, prev_hash, hash)"
                          " VALUES (?,?,?,?,?,?,?,?)"), tuple(row[k] for k in (*COLS, "hash")))
    return row["seq"]


def entries(store: HubStore, limit: int = 200, after: int = 0, before: int | None = None) -> list[dict]:
    """Newest first: entries after seq `after` and, given `before`, older than it (the next page)."""
    rows = execute(store, f"{SELECT} WHERE seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                   (after, before if before is not None else 2**62, limit))
    return [dict(zip((*COLS, "hash"), r)) for r in rows]


def verify(store: HubStore) -> tuple[int, int | None, str]:
    """(entries checked, seq of the first broken entry or None, that entry and what is wrong, as a sentence)."""
    rows = execute(store, f"{SELECT} ORDER BY seq")
    broken = hashchain.verify(FORM, (dict(zip((*COLS, "hash"), r)) for r in rows))
    return len(rows), (broken.seq if broken else None), (str(broken) if broken else "")
