"""A vehicle's history on the hub: its passes by identity, each with its outcome, and its references.

A pass is a record holding the identity (plate, container number or UHF tag TID, matched through the
identity index of search.py, exactly and after normalisation). Its outcome, strongest evidence first:

- the latest version of its search report (`search_reports` on the record): `nothing_found` once the
  officer signed it, `seizure` once a supervisor countersigned it, `open` while it waits for that;
- else the officer's review: `cleared` for cleared or false_alarm, `open` for threat_confirmed (a
  search should follow) and for an override (its sense depends on the verdict it overrode);
- else the verdict: `cleared` for clear, `open` for suspect and manual (nobody has decided yet).

A reference is a recent pass whose outcome is `cleared` or `nothing_found` and whose scan image the
hub holds, newest first: the clean pass a new scan of the same vehicle is compared with. `open`
passes and seizures never are. Both hub backends run the same SQL (search.py's index and
HubStore.records); the outcome is derived here so that it is the same wherever it is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Literal, Protocol

from central_sync.hub.search import Queryable, search_clause

Outcome = Literal["cleared", "nothing_found", "seizure", "open"]
OUTCOMES: tuple[Outcome, ...] = ("cleared", "nothing_found", "seizure", "open")
REFERENCE_OUTCOMES: tuple[Outcome, ...] = ("cleared", "nothing_found")
HISTORY_KINDS = ("plate", "container", "rfid_tid")
"""The identities a vehicle's history is kept by (a TID is the tag's factory id; an EPC is rewritable)."""
MAX_PASSES = 200
"""The most passes one history answer reads (newest first)."""


@dataclass(frozen=True, slots=True)
class Pass:
    """One earlier pass of a vehicle: its record, when it was decided, its outcome and its scan image."""

    record_id: str
    station: str
    decided_ts: float
    item_kind: str
    verdict: str
    outcome: Outcome
    scan_sha256: str | None
    scan_size: int | None
    scan_shape: tuple[int, int] | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def report_outcome(reports: list[dict[str, Any]]) -> Outcome | None:
    """The outcome of the latest search report version, None without a report."""
    if not reports:
        return None
    latest = max(reports, key=lambda r: int(r.get("version", 0)))
    if latest.get("outcome") == "nothing_found":
        return "nothing_found"
    return "seizure" if latest.get("countersigned") else "open"


def pass_outcome(body: dict[str, Any]) -> Outcome:
    """A record's outcome as a pass (the module's note gives the order of evidence)."""
    searched = report_outcome(body.get("search_reports") or [])
    if searched is not None:
        return searched
    review = body.get("review") or {}
    if review:
        return "cleared" if review.get("outcome") in ("cleared", "false_alarm") else "open"
    return "cleared" if body.get("verdict") == "clear" else "open"


def as_pass(body: dict[str, Any]) -> Pass:
    """The pass a stored record body describes."""
    scan = body.get("scan") or {}
    shape = scan.get("shape")
    return Pass(record_id=str(body["id"]), station=str(body["station"]),
                decided_ts=_epoch(str(body["decided_at"])), item_kind=str(body.get("kind", "")),
                verdict=str(body.get("verdict", "")), outcome=pass_outcome(body),
                scan_sha256=scan.get("sha256"), scan_size=scan.get("size"),
                scan_shape=(int(shape[0]), int(shape[1])) if shape else None)


class RecordSource(Queryable, Protocol):
    """A hub store as the history needs it (central_sync.hub.store.HubStore)."""

    def records(self, where: str, args: tuple, limit: int, offset: int) -> list[tuple]: ...


def passes(store: RecordSource, kind: str, value: str, limit: int = MAX_PASSES) -> list[Pass]:
    """The passes holding this identity, newest first, at most `limit`."""
    clause, args = search_clause(store, value, kind, "exact")
    rows = store.records(f"WHERE {clause}", args, min(limit, MAX_PASSES), 0)
    return [as_pass(json.loads(body)) for body, *_ in rows]


def references(history: list[Pass], since_ts: float, count: int, held: Callable[[str], bool]) -> list[Pass]:
    """The newest `count` clean passes decided at or after `since_ts` whose scan image is `held` by the hub."""
    clean = [p for p in history if p.outcome in REFERENCE_OUTCOMES and p.decided_ts >= since_ts]
    newest = sorted(clean, key=lambda p: (p.decided_ts, p.record_id), reverse=True)
    return list(islice((p for p in newest if p.scan_sha256 and held(p.scan_sha256)), count))


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
