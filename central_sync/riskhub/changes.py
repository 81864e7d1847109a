"""The change log a delta is built from: the approved drafts not yet carried by a published version.

A delta removes every (kind, value) it touches and adds the current entries of those keys again (as a
station applies it, risk/engine.py), so it is right whenever the touched keys cover every change since
the base version; touching more is harmless. The keys come from three places, none of which needs the
previous snapshot's million entries compared with the current ones:

- `entry.put` / `entry.delete` drafts name their key;
- `watchlist.put` / `watchlist.delete` touch every value the list held before (the previous snapshot's
  columns) or holds now (a lane changes every entry of its list);
- entries whose validity ended between the two versions (their shared attributes in the previous
  snapshot say so);
- values of the previous snapshot that are not in today's normal form (a hub upgraded to a stricter
  `risk.normal.normalise` published them), with their normal form.

A draft counts as published once a version whose content was read after its approval is stored
(risk_published_drafts, written in the transaction that stores the bundle): the drafts read before the
content are marked, those read after it are touched again by the next version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from central_sync.hub.store import Cursor, HubStore
from risk.bundle import Bundle, EntryColumns, normalise

LIST_OPS = ("watchlist.put", "watchlist.delete")
PLAIN_COLUMN = re.compile(r"[A-Z0-9 ]*")
"""A bundle column of values all in normal form at a glance (one regular expression over the whole column)."""
ENTRY_OPS = ("entry.put", "entry.delete")


@dataclass(frozen=True, slots=True)
class Change:
    """One approved draft not yet published."""

    draft_id: str
    op: str
    payload: dict


def unpublished(store: HubStore) -> list[Change]:
    """The approved drafts no stored version has carried yet, oldest first."""
    rows = store.query("SELECT d.id, d.op, d.payload FROM risk_drafts d WHERE d.status='approved' AND NOT EXISTS"
                       " (SELECT 1 FROM risk_published_drafts p WHERE p.draft_id = d.id) ORDER BY d.created_at, d.id")
    return [Change(r[0], r[1], json.loads(r[2])) for r in rows]


def mark(cur: Cursor, store: HubStore, changes: list[Change], version: int) -> None:
    """Record that `version` carries these drafts (in the transaction that stores it)."""
    cur.executemany(store.sql("INSERT INTO risk_published_drafts (draft_id, version) VALUES (?,?)"
                              " ON CONFLICT (draft_id) DO NOTHING"), [(c.draft_id, version) for c in changes])


def touched(changes: list[Change], prev: Bundle, current: EntryColumns, kinds: dict[str, str],
            now: float) -> dict[str, set[str]]:
    """Per list kind, the normalised values a delta from `prev` to `current` must remove and add again."""
    prev_kinds = _list_kinds(prev)
    out: dict[str, set[str]] = {}
    lists: set[str] = set()
    for c in changes:
        if c.op in LIST_OPS:
            lists.add(c.payload["id"])
        elif c.op in ENTRY_OPS:
            kind = kinds.get(c.payload["list_id"]) or prev_kinds.get(c.payload["list_id"])
            if kind is not None:  # a list never published and gone again: no station holds its entries
                out.setdefault(kind, set()).add(normalise(kind, c.payload["value"]))
    ended = {i for i, m in enumerate(prev.table.metas)
             if m.list_id in lists or (m.valid_to is not None and m.valid_to <= now)}
    for kind, (_, idx) in prev.table.columns.items():
        hit = np.flatnonzero(np.isin(idx, np.fromiter(ended, dtype=np.int32, count=len(ended))))
        if hit.size:
            values = prev.table.values(kind)
            out.setdefault(kind, set()).update(values[i] for i in hit.tolist())
    _current_of_lists(current, lists, out)
    _renormalised(prev, out)
    return out


def _renormalised(prev: Bundle, out: dict[str, set[str]]) -> None:
    """Add the previous version's values that are no longer in normal form (published by a hub whose
    normalisation was laxer) and their normal form: the delta replaces them as the snapshot does."""
    for kind, (joined, _) in prev.table.columns.items():
        if PLAIN_COLUMN.fullmatch(joined):
            continue
        for value in prev.table.values(kind):
            norm = normalise(kind, value)
            if norm != value:
                out.setdefault(kind, set()).update((value, norm))


def _current_of_lists(current: EntryColumns, lists: set[str], out: dict[str, set[str]]) -> None:
    """Add the current values of the touched lists."""
    wanted = {i for meta, i in current.metas.items() if meta[0] in lists}
    for kind, (values, idx) in current.columns.items() if wanted else ():
        out.setdefault(kind, set()).update(v for v, m in zip(values, idx) if m in wanted)


def present(prev: Bundle, keys: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The touched keys the previous version holds (what the delta removes), in a stable order."""
    gone: list[tuple[str, str]] = []
    for kind, wanted in sorted(keys.items()):
        have = wanted.intersection(prev.table.values(kind)) if kind in prev.table.columns else set()
        gone += [(kind, v) for v in sorted(have)]
    return gone


def _list_kinds(prev: Bundle) -> dict[str, str]:
    """The kind of every list the previous version holds entries of."""
    out: dict[str, str] = {}
    for kind, (_, idx) in prev.table.columns.items():
        for m in np.unique(idx).tolist():
            out[prev.table.metas[m].list_id] = kind
    return out
