"""A vehicle's history on the hub: its passes by identity, each with its outcome, and its references.

A pass is a record holding the identity (plate, container number or UHF tag TID, matched through the
identity index of search.py, exactly and after normalisation). Its outcome, strongest evidence first:

- the latest version of its search report (`search_reports` on the record): `nothing_found` once the
  officer signed it, `seizure` once a supervisor other than the signer countersigned it, `open` while it waits
  for that (a countersignature by the signer or by another role leaves it open);
- else the officer's review: `cleared` for cleared or false_alarm, `open` for threat_confirmed (a
  search should follow) and for an override (its sense depends on the verdict it overrode);
- else the verdict: `cleared` for clear, `open` for suspect and manual (nobody has decided yet).

A reference is a recent pass whose outcome is `cleared` or `nothing_found` and whose scan image the
hub holds, newest first: the clean pass a new scan of the same vehicle is compared with. `open`
passes and seizures never are, nor a pass whose read of the identity was flagged as conflicting with
another read (edge.identity: one of them is misread, maybe this one, so the record may be another
vehicle's); that pass is still one of the identity's passes (`conflict`), so that its outcome counts. Both hub backends run the same SQL (search.py's index and
HubStore.records); the outcome is derived here so that it is the same wherever it is read.

For a container number, the references go on (after the container's own, `basis` "same_vehicle") with
clean passes of *other* containers of the same ISO 6346 size/type code that were declared empty
(`basis` "same_type_empty", at most `type_count`): what an empty box of that type looks like, for a
container with no clean pass of its own or a declared-empty one whose own references are old. The type
code is the one the station asks with, else the one the container's own newest pass recorded
(`InspectionRecord.container`). Only scans of the same detector width (the scan's second dimension: a gantry
of a compatible kind) are offered when the width is known (asked with, else the container's own newest
scan). Those passes are read from the newest `TYPE_SCAN_ROWS` container records in the window: bounded
work, no index of its own (HubStore.json_text reads the body's field on either backend).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from itertools import islice
from typing import Any, Literal, Protocol

from central_sync.hub.search import Queryable, normalise, search_clause
from central_sync.hub.search_reports import COUNTERSIGNING_ROLES

Outcome = Literal["cleared", "nothing_found", "seizure", "open"]
OUTCOMES: tuple[Outcome, ...] = ("cleared", "nothing_found", "seizure", "open")
REFERENCE_OUTCOMES: tuple[Outcome, ...] = ("cleared", "nothing_found")
HISTORY_KINDS = ("plate", "container", "rfid_tid")
"""The identities a vehicle's history is kept by (a TID is the tag's factory id; an EPC is rewritable)."""
MAX_PASSES = 200
"""The most passes one history answer reads (newest first)."""
Basis = Literal["same_vehicle", "same_type_empty"]
TYPE_SCAN_ROWS = 2000
"""The newest container records a same-type-empty search reads at most (see the module's note)."""
MAX_TYPE_REFERENCES = 5


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
    basis: Basis = "same_vehicle"  # same_type_empty: another container of the same size/type, declared empty
    size_type: str | None = None  # a container's ISO 6346 size/type code as its record gives it
    declared_empty: bool | None = None
    conflict: bool = False  # the record's read of the identity asked by conflicts with another read: never a reference

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def report_outcome(reports: list[dict[str, Any]]) -> Outcome | None:
    """The outcome of the latest search report version, None without a report."""
    if not reports:
        return None
    latest = max(reports, key=lambda r: int(r.get("version", 0)))
    if latest.get("outcome") == "nothing_found":
        return "nothing_found"
    return "seizure" if countersigned(latest) else "open"


def countersigned(report: dict[str, Any]) -> bool:
    """Whether a seizure's countersignature makes it final: a supervisor's other than the signer's, the rule the
    station checks and the hub's `records.search_outcome` follows (search_reports.final)."""
    by, signer = report.get("countersigned") or {}, report.get("officer") or {}
    return bool(by) and by.get("role") in COUNTERSIGNING_ROLES and by.get("badge") != signer.get("badge")


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
    container = body.get("container") or {}
    return Pass(record_id=str(body["id"]), station=str(body["station"]),
                decided_ts=_epoch(str(body["decided_at"])), item_kind=str(body.get("kind", "")),
                verdict=str(body.get("verdict", "")), outcome=pass_outcome(body),
                scan_sha256=scan.get("sha256"), scan_size=scan.get("size"),
                scan_shape=(int(shape[0]), int(shape[1])) if shape else None,
                size_type=container.get("size_type"), declared_empty=container.get("declared_empty"))


class RecordSource(Queryable, Protocol):
    """A hub store as the history needs it (central_sync.hub.store.HubStore)."""

    def records(self, where: str, args: tuple, limit: int, offset: int) -> list[tuple]: ...

    def json_text(self, column: str, *path: str) -> str: ...


def passes(store: RecordSource, kind: str, value: str, limit: int = MAX_PASSES) -> list[Pass]:
    """The passes holding this identity, newest first, at most `limit`."""
    clause, args = search_clause(store, value, kind, "exact")
    rows = store.records(f"WHERE {clause}", args, min(limit, MAX_PASSES), 0)
    norm = normalise(value)
    return [replace(as_pass(body), conflict=read_in_conflict(body, kind, norm))
            for body in (json.loads(text) for text, *_ in rows)]


def read_in_conflict(body: dict[str, Any], kind: str, norm: str) -> bool:
    """Whether the record's read of this identity (kind, normalised value) is flagged as conflicting."""
    return any(i.get("kind") == kind and normalise(str(i.get("value", ""))) == norm and i.get("conflict")
               for i in body.get("identities") or ())


def references(history: list[Pass], since_ts: float, count: int, held: Callable[[str], bool]) -> list[Pass]:
    """The newest `count` clean passes decided at or after `since_ts` whose scan image is `held` by the hub (none
    whose read of the identity was in conflict)."""
    clean = [p for p in history if p.outcome in REFERENCE_OUTCOMES and p.decided_ts >= since_ts and not p.conflict]
    newest = sorted(clean, key=lambda p: (p.decided_ts, p.record_id), reverse=True)
    return list(islice((p for p in newest if p.scan_sha256 and held(p.scan_sha256)), count))


def same_type_empty(store: RecordSource, own: list[Pass], since_ts: float, count: int, held: Callable[[str], bool],
                    size_type: str | None = None, detector_px: int | None = None, container: str = "") -> list[Pass]:
    """The newest `count` clean passes of other containers of the container's size/type declared empty, decided
    at or after `since_ts`, whose scan the hub holds (and of the same detector width when it is known)."""
    size_type = size_type or next((p.size_type for p in own if p.size_type), None)
    width = detector_px or next((p.scan_shape[1] for p in own if p.scan_shape), None)
    if not size_type or count <= 0:
        return []
    rows = store.query(
        f"SELECT body FROM (SELECT body, decided_ts, id FROM records WHERE kind = 'container' AND decided_ts >= ?"
        f" ORDER BY decided_ts DESC, id DESC LIMIT ?) recent WHERE {store.json_text('body', 'container', 'size_type')}"
        f" = ? ORDER BY decided_ts DESC, id DESC", (since_ts, TYPE_SCAN_ROWS, size_type))
    mine, number = {p.record_id for p in own}, normalise(container)
    found: list[Pass] = []
    for (text,) in rows:
        body = json.loads(text)
        p = as_pass(body)
        if p.record_id in mine or any(i.get("kind") == "container" and normalise(str(i.get("value", ""))) == number
                                      for i in body.get("identities") or ()) or p.declared_empty is not True or p.outcome not in REFERENCE_OUTCOMES:
            continue
        if width is not None and (p.scan_shape is None or p.scan_shape[1] != width):
            continue
        if p.scan_sha256 and held(p.scan_sha256):
            found.append(replace(p, basis="same_type_empty"))
            if len(found) >= count:
                break
    return found


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()
