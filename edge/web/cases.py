"""Case logic behind the routes: what the screen sees of a record, its image, decisions."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from central_sync.schema import InspectionRecord, ItemKind, Review
from edge import audit
from edge.auth import User
from edge.errors import EdgeError
from edge.store import Store
from edge.tip import Projection, TipEngine, composite
from edge.web import queries, render, scandata
from edge.web.i18n import catalogue, t
from models.scan import Scan, load_scan

MAX_PIXEL = 100_000  # larger than any scan's side (a 40 ft container at 5 mm: ~2,500 lines)
Pixel = Annotated[float, Field(ge=-MAX_PIXEL, le=MAX_PIXEL, allow_inf_nan=False)]


def _ordered(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if box[0] > box[2] or box[1] > box[3]:
        raise ValueError(f"a box is [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1, got {list(box)}")
    return box


# A box an officer drew, in scan pixels: a non-finite coordinate (JSON 1e999) was stored as null and left the
# record unreadable (every view of it, the history, the export and the hub's copy answered 500 or refused it)
BoxT = Annotated[tuple[Pixel, Pixel, Pixel, Pixel], AfterValidator(_ordered)]
ImageSource = tuple[Path, Projection | None]  # the scan file and the TIP projection awaiting an answer


class Decision(BaseModel):
    """An officer's decision on an item; `note` carries the reason of a supervisor's override.

    On a gantry, `lane` also says where the vehicle waiting at the barrier goes: `release` (the barrier
    opens for it, with `false_alarm` or `cleared`, or a supervisor's `override` with its reason) or
    `search_bay` (with no outcome yet: the review follows the search)."""

    model_config = ConfigDict(extra="forbid")
    outcome: Literal["threat_confirmed", "false_alarm", "cleared", "override"] | None = None
    label: str | None = Field(None, pattern=r"^[a-z0-9_]{1,40}$")
    boxes: list[BoxT] = Field(default_factory=list, max_length=50)
    note: str = Field("", max_length=2000)
    lane: Literal["release", "search_bay"] | None = None
    explained: list[int] = Field(default_factory=list, max_length=50)  # changes against the vehicle's history


class Screening(BaseModel):
    """The officer's answer on a screened image: flagged a threat (optionally where) or not."""

    model_config = ConfigDict(extra="forbid")
    flagged: bool
    box: BoxT | None = None


class CaseError(EdgeError):
    """A case request that cannot be served; `code` is the catalogue key and `status` the HTTP status."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


def summary(record: InspectionRecord, stored: bool | None = None) -> dict[str, Any]:
    """The record as the screen needs it (JSON), plus whether its scan is on disk."""
    out = record.model_dump(mode="json", by_alias=True)
    out["scan_stored"] = stored
    out["latency_verdict_ms"] = verdict_latency_ms(record.latencies_ms)
    return out


# Stages timed outside the budget, which runs from the end of acquisition to the verdict.
OUTSIDE_BUDGET = frozenset({"acquire", "actuate", "record"})


def verdict_latency_ms(stages: dict[str, float]) -> float:
    """Milliseconds from the end of acquisition to the verdict: the figure the budget limits."""
    return round(sum(ms for stage, ms in stages.items() if stage not in OUTSIDE_BUDGET), 1)


def get_case(store: Store, record_id: str) -> InspectionRecord:
    record = store.get(record_id)
    if record is None:
        raise CaseError(404, "case_not_found")
    return record


def identity_crop(store: Store, record_id: str, sha256: str) -> bytes:
    """The PNG of an evidence crop the record's identities name; only those, so no other file is reachable."""
    record = get_case(store, record_id)
    if not sha256 or all(i.crop != sha256 for i in record.identities):
        raise CaseError(404, "crop_not_found")
    try:
        return store.crop_path(sha256).read_bytes()
    except FileNotFoundError:
        raise CaseError(404, "crop_not_stored") from None


def image_source(store: Store, tip: TipEngine, user: User, record_id: str,
                 mode: str) -> tuple[InspectionRecord, ImageSource]:
    """Check, audit and find what to draw: the record and the pending TIP projection, if any."""
    record = get_case(store, record_id)
    if record.scan is None or not queries.scan_stored(store, record_id):
        raise CaseError(404, "scan_not_stored")
    pending = tip.pending(store.conn, user.badge, record_id)
    if pending is not None:
        tip.served(store.conn, user.badge, record_id)
    audit.append(store.conn, user.badge, "case.image_view", record_id, {"mode": mode, "tip": pending is not None})
    return record, (store.scan_path(record.scan.sha256), pending)


def reference_source(store: Store, user: User, record_id: str) -> tuple[InspectionRecord, Path]:
    """Check, audit and find the reference pass's scan the record was compared with (the history cache)."""
    record = get_case(store, record_id)
    sha = record.history.reference_scan if record.history is not None else None
    held = next((store.data_dir / "history").glob(f"*/{sha}.npz"), None) if sha else None
    if held is None:
        raise CaseError(404, "reference_not_held")
    audit.append(store.conn, user.badge, "case.reference_view", record_id, {"reference": sha})
    return record, held


def draw_reference(record: InspectionRecord, path: Path, mode: str) -> bytes:
    """The reference pass drawn as the current scan is (no boxes: the changes are the screen's overlay)."""
    return render.render_png(load_scan(path), mode, [], key=(path.name, None), portal=record.kind in PORTAL_KINDS)


PORTAL_KINDS = (ItemKind.VEHICLE, ItemKind.CONTAINER)  # drawn side-on, as an officer reads a portal scan


def draw(record: InspectionRecord, source: ImageSource, tip: TipEngine, mode: str, lang: str) -> bytes:
    """Load, project (TIP), colour, box and encode; runs on a worker thread."""
    path, pending = source
    scan: Scan = load_scan(path)
    if pending is not None:
        scan = composite(scan, tip.threats[pending.threat], pending)
    return render.render_png(scan, mode, _boxes(record, lang), key=(path.name, pending),
                             portal=record.kind in PORTAL_KINDS)


def scan_data(record: InspectionRecord, source: ImageSource, tip: TipEngine) -> bytes:
    """The scan as data for the screen's image tools (TIP projection included, as `draw` shows it)."""
    path, pending = source
    scan: Scan = load_scan(path)
    if pending is not None:
        scan = composite(scan, tip.threats[pending.threat], pending)
    return scandata.encode(scan, portal=record.kind in PORTAL_KINDS, key=(path.name, pending))


def _boxes(record: InspectionRecord, lang: str) -> list[render.Box]:
    ascii_labels = lang == "en"  # the PNG font is ASCII; other languages read labels from the legend
    out = []
    for i, d in enumerate(record.detections, start=1):
        name = t(f"class.{d.label}", "en") if ascii_labels and _known(d.label) else d.label
        out.append(render.Box(d.box, f"{i} {name} {d.score:.2f}" if ascii_labels else f"{i} {d.score:.2f}"))
    if record.review:
        for box in record.review.boxes:
            out.append(render.Box(box, "R" if not ascii_labels else f"R {record.review.label or ''}".strip(),
                                  render.REVIEW_RGB))
    return out


def _known(label: str) -> bool:
    return f"class.{label}" in catalogue("en")


def lane_refusal(user: User, body: Decision) -> CaseError | None:
    """Why this decision may not move a vehicle, or None: only a supervisor releases a confirmed threat
    (an override, with its reason), and every decision but a search-bay one has an outcome."""
    if body.outcome is None and body.lane != "search_bay":
        return CaseError(422, "decision_needs_outcome")
    if body.lane == "release" and body.outcome == "threat_confirmed":
        return CaseError(403, "release_needs_supervisor")
    if body.lane == "release" and body.outcome == "override" and not user.can("case.override"):
        return CaseError(403, "forbidden")
    return None


def decide(store: Store, user: User, record_id: str, body: Decision,
           again: bool = False) -> tuple[InspectionRecord, Review]:
    """Store the decision as the record's review (synced by the outbox) and audit it; the updated record
    and its review. `again`: the item still waits for a decision (a vehicle at the barrier whose release
    did not happen), so a second decision replaces the first."""
    record = get_case(store, record_id)
    if body.outcome is None:
        raise CaseError(422, "decision_needs_outcome")
    if body.outcome == "threat_confirmed" and not body.label:
        raise CaseError(422, "threat_needs_class")
    if body.outcome == "override" or (_confirms_over(record, again, body) and user.can("case.override")):
        if not user.can("case.override"):
            raise CaseError(403, "forbidden")
        if not body.note.strip():
            raise CaseError(422, "override_needs_reason")
    elif record.review is not None and not again:
        # for a supervisor too: one whose screen still showed the item undecided turned an officer's confirmed
        # threat into `cleared`, without a reason; a decision is changed only by an override, with its reason
        raise CaseError(409, "already_decided")
    elif again and body.lane == "release" and record.review is not None and record.review.outcome == "threat_confirmed":
        raise CaseError(403, "release_needs_supervisor")  # decided again while it waits: still a confirmed threat
    elif (again and record.review is not None and record.review.outcome in ("threat_confirmed", "override")
          and body.outcome != record.review.outcome):
        # decided again while it waits: a confirmed threat or a supervisor's override is not turned into something
        # else by an officer (a false alarm sent to the search bay, then released as cleared, left by the exit), nor
        # by a supervisor but by an override with its reason (`cleared` with a way out changed it silently)
        if user.can("case.override"):
            raise CaseError(409, "already_decided")
        raise CaseError(403, "decision_needs_supervisor")
    changes = len(record.history.regions) if record.history is not None else 0
    if any(not 0 <= i < changes for i in body.explained):
        raise CaseError(422, "unknown_change")
    if body.label is not None and not _known(body.label) and body.label not in {d.label for d in record.detections}:
        raise CaseError(422, "unknown_class")  # a class no screen offers nor the detector named ("banana_split")
    check_boxes(record, body.boxes)
    review = Review(officer=user.badge, decided_at=datetime.now(timezone.utc), outcome=body.outcome,
                    label=body.label, boxes=body.boxes, note=body.note, explained=sorted(set(body.explained)))
    updated = store.add_review(record_id, review)
    replaced = record.review
    audit.append(store.conn, user.badge, "case.decision", record_id,
                 {"outcome": body.outcome, "label": body.label, "boxes": [list(b) for b in body.boxes],
                  "note": body.note, "verdict": record.verdict.value, "replaces": bool(replaced),
                  "replaced": {"officer": replaced.officer, "outcome": replaced.outcome} if replaced else None,
                  "lane": body.lane, "explained": sorted(set(body.explained))})
    return updated, review


def _confirms_over(record: InspectionRecord, again: bool, body: Decision) -> bool:
    """A threat confirmed over a decision already made (a supervisor's override to `threat_confirmed`, with its
    reason: the record then counts as a confirmed threat for retention, DICOS and export, as an officer's would)."""
    return body.outcome == "threat_confirmed" and record.review is not None and not again


def check_boxes(record: InspectionRecord, boxes: list[tuple[float, float, float, float]]) -> None:
    """Refuse a box that is not inside the record's scan (x along its width, y along its lines, in scan
    pixels): [-90000, -90000, 90000, 90000] on a 560 x 360 scan was stored, and exported as training data."""
    if record.scan is None:
        return
    lines, width = record.scan.shape
    if any(b[0] < 0 or b[1] < 0 or b[2] > width or b[3] > lines for b in boxes):
        raise CaseError(422, "box_outside_scan")


def screen(store: Store, tip: TipEngine, user: User, record_id: str, body: Screening) -> dict[str, Any]:
    """Score a screening answer against TIP; the record itself is left as it is."""
    check_boxes(get_case(store, record_id), [body.box] if body.box is not None else [])
    result = tip.respond(store.conn, user.badge, record_id, body.flagged, body.box)
    audit.append(store.conn, user.badge, "case.screened", record_id,
                 {"flagged": body.flagged, "tip": result.outcome if result else None})
    if result is None or result.outcome == "false_alarm":
        return {"tip": False}
    return {"tip": True, "outcome": result.outcome, "label": result.label, "box": result.box}
