"""Read queries over the store's `inspections` table for the screen (queue, history, export)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from central_sync.schema import InspectionRecord
from edge.store import Store

_COLUMNS = "record"


@dataclass(frozen=True)
class HistoryFilter:
    """History search: free text over the record (ids, tags, plates, labels), verdict, review state."""

    text: str = ""
    verdict: str | None = None
    reviewed: bool | None = None
    since: str | None = None  # RFC 3339, compared on decided_at
    until: str | None = None
    officer: str | None = None
    limit: int = 50
    before_seq: int | None = None  # paging: only records older than this seq


def utc_iso(value: str) -> str:
    """An RFC 3339 time in the form the store writes (UTC, isoformat), so that text comparison orders it."""
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"time {value!r} has no UTC offset")
    return when.astimezone(timezone.utc).isoformat()


def _records(rows: Iterable[tuple[str]]) -> list[InspectionRecord]:
    return [InspectionRecord.model_validate_json(r[0]) for r in rows]


def queue(store: Store, limit: int = 100, after_seq: int = 0) -> list[InspectionRecord]:
    """Suspect and manual items with no decision yet, oldest first (they are waiting longest); paging:
    only those after `after_seq`."""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM inspections WHERE verdict IN ('suspect', 'manual') AND reviewed = 0"
        " AND seq > ? ORDER BY seq LIMIT ?", (after_seq, limit))
    return _records(rows)


def queue_size(store: Store) -> int:
    return int(store.conn.execute(
        "SELECT count(*) FROM inspections WHERE verdict IN ('suspect', 'manual') AND reviewed = 0").fetchone()[0])


def history(store: Store, f: HistoryFilter) -> list[InspectionRecord]:
    """Newest first, filtered as `f` says."""
    where: list[str] = []
    args: list[str | int] = []
    if f.text:
        where.append("instr(lower(record), lower(?)) > 0")
        args.append(f.text)
    if f.verdict:
        where.append("verdict = ?")
        args.append(f.verdict)
    if f.reviewed is not None:
        where.append("reviewed = ?")
        args.append(int(f.reviewed))
    if f.since:
        where.append("decided_at >= ?")
        args.append(utc_iso(f.since))
    if f.until:
        where.append("decided_at <= ?")
        args.append(utc_iso(f.until))
    if f.officer:
        where.append("json_extract(record, '$.review.officer') = ?")
        args.append(f.officer)
    if f.before_seq is not None:
        where.append("seq < ?")
        args.append(f.before_seq)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    rows = store.conn.execute(f"SELECT {_COLUMNS} FROM inspections {clause} ORDER BY seq DESC LIMIT ?",
                              (*args, f.limit))
    return _records(rows)


def after_seq(store: Store, seq: int, limit: int = 100) -> list[InspectionRecord]:
    """Records committed after `seq`, oldest first: what a reconnecting screen missed (the newest `limit`)."""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM (SELECT seq, record FROM inspections WHERE seq > ? ORDER BY seq DESC LIMIT ?)"
        " ORDER BY seq", (seq, limit))
    return _records(rows)


def count_between(store: Store, after: int, before: int) -> int:
    """How many records were committed after seq `after` and before seq `before`."""
    return int(store.conn.execute("SELECT count(*) FROM inspections WHERE seq > ? AND seq < ?",
                                  (after, before)).fetchone()[0])


def reviewed_with_scans(store: Store, limit: int = 10_000) -> list[InspectionRecord]:
    """Reviewed records whose scan file is still on disk: the labelled dataset for export."""
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM inspections WHERE reviewed = 1 AND scan_stored = 1 ORDER BY seq LIMIT ?",
        (limit,))
    return _records(rows)


def scan_stored(store: Store, record_id: str) -> bool:
    row = store.conn.execute("SELECT scan_stored FROM inspections WHERE id = ?", (record_id,)).fetchone()
    return bool(row and row[0])
