"""Threat Image Projection: fictional threats composited into clean scans, officers' responses scored.

A threat cut-out is a scan file (`.npz`, models/scan.py) holding the transmission of the threat
alone in air, with `label` in its meta. Projection multiplies transmissions per channel,
T = T_bag · T_threat, which is exact per pixel for the monochromatic approximation (the error of
that approximation against a per-energy sum is in DOMAIN.md): the cut-out's air (T = 1) leaves the
bag as it was. The threat's whole box goes inside the bag's silhouette, `BAG_MARGIN_PX` from its
outline; a bag too small for every threat gets none. Projection happens only on the way
to the screen: the record, its verdict and the actuation never see it. Each projection is a row in
`tip_events` holding everything needed to recompute the composite (threat, place, scale).
Outcomes: hit (officer flagged it), miss (officer cleared it, or moved on after the image was on
screen long enough to be judged), false_alarm (officer flagged an image that held no projection),
not_shown (the image never reached the screen, or left it before `min_dwell_s` of watching: never
counted, never sent to the hub). The screen reports each stage: the composite served (`served`), the
image watched on the live view for the dwell (`seen`), the officer moving on (`left`). Each outcome is also queued for the hub, in the same
transaction, as an outbox row of kind `tip` on the record lane (`central_sync.protocol.TipOutcome`);
the item's own record and outbox rows are never touched.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timezone
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import structlog

from central_sync.outbox import Lane, enqueue
from central_sync.protocol import Kind
from central_sync.schema import InspectionRecord, ScanRef, Verdict
from edge.audit import transaction
from edge.store import Store
from edge.web.config import TipConfig
from models.errors import ScanFormatError
from models.scan import AIR, Scan, load_scan, save_scan


SHIPPED_LIBRARY = Path(__file__).resolve().parent / "tip_library"
log = structlog.get_logger()

TIP_DDL = """
CREATE TABLE IF NOT EXISTS tip_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           REAL NOT NULL,
    officer      TEXT NOT NULL,
    record_id    TEXT NOT NULL,
    threat       TEXT,
    label        TEXT,
    params       TEXT,
    outcome      TEXT NOT NULL,
    responded_at REAL,
    served_at    REAL,
    seen_at      REAL
);
CREATE INDEX IF NOT EXISTS tip_events_officer ON tip_events (officer, outcome);
"""


@dataclass(frozen=True)
class Threat:
    name: str
    label: str
    high: np.ndarray  # float32 transmission 0..1
    low: np.ndarray


@dataclass(frozen=True)
class Projection:
    """Where a threat goes: top-left corner (x, y) in scan pixels and its scale."""

    threat: str
    x: int
    y: int
    scale: float

    def box(self, threat: Threat) -> tuple[float, float, float, float]:
        h, w = _scaled_shape(threat, self.scale)
        return (float(self.x), float(self.y), float(self.x + w), float(self.y + h))


@dataclass(frozen=True)
class TipResponse:
    outcome: str  # hit | miss | false_alarm
    label: str | None = None
    box: tuple[float, float, float, float] | None = None


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(TIP_DDL)
    have = {r[1] for r in conn.execute("PRAGMA table_info(tip_events)")}
    for column in ("served_at", "seen_at"):  # stores made before the dwell rule
        if column not in have:
            conn.execute(f"ALTER TABLE tip_events ADD COLUMN {column} REAL")


def load_library(folder: Path) -> dict[str, Threat]:
    """Every readable cut-out in `folder` by file stem; unreadable files are logged and skipped."""
    threats: dict[str, Threat] = {}
    for path in sorted(Path(folder).glob("*.npz")):
        try:
            scan = load_scan(path)
        except ScanFormatError as exc:
            log.warning("tip.cutout_unreadable", path=str(path), error=str(exc))
            continue
        threats[path.stem] = Threat(path.stem, str(scan.meta.get("label", path.stem)),
                                    scan.high.astype(np.float32) / AIR, scan.low.astype(np.float32) / AIR)
    return threats


def _scaled_shape(threat: Threat, scale: float) -> tuple[int, int]:
    h, w = threat.high.shape
    return max(1, round(h * scale)), max(1, round(w * scale))


def choose(threats: dict[str, Threat], high: np.ndarray, cfg: TipConfig, rng: random.Random) -> Projection | None:
    """A threat and a place for it whose whole box lies inside the bag's silhouette, at least
    `BAG_MARGIN_PX` from its outline; None when no threat fits inside the bag (an empty tray, a bag
    too small): a threat reaching past the bag into the air would tell the officer it is a test."""
    scale = rng.uniform(cfg.min_scale, cfg.max_scale)
    # running count of the pixels outside the bag (less its margin): a box with none lies inside
    outside = cv2.integral((~_erode(bag_silhouette(high), BAG_MARGIN_PX)).astype(np.uint8))
    places = {n: _places(outside, _scaled_shape(threats[n], scale)) for n in sorted(threats)}
    fitting = [n for n, (ys, _) in places.items() if len(ys)]
    if not fitting:
        return None
    name = rng.choice(fitting)
    ys, xs = places[name]
    i = rng.randrange(len(ys))
    return Projection(name, int(xs[i]), int(ys[i]), scale)


BAG_MARGIN_PX = 8  # a projected threat's box keeps this far inside the bag's outline
_BAG_BELOW = 0.9 * AIR  # a pixel darker than this holds something, not air


def bag_silhouette(high: np.ndarray) -> np.ndarray:
    """Where the bag is (bool mask): every object's outline filled, holes inside it included."""
    mask = (high < _BAG_BELOW).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def _erode(mask: np.ndarray, margin: int) -> np.ndarray:
    kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel, borderValue=0).astype(bool)


def _places(outside: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (ys, xs) of every h x w box holding no pixel outside the bag (`outside`: the
    integral image, (H+1, W+1), of the pixels outside)."""
    h, w = size
    if h >= outside.shape[0] or w >= outside.shape[1]:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    n = outside
    count = n[h:, w:] - n[:-h, w:] - n[h:, :-w] + n[:-h, :-w]
    ys, xs = np.nonzero(count == 0)
    return ys, xs


def composite(scan: Scan, threat: Threat, p: Projection) -> Scan:
    """The scan with the threat multiplied into its transmissions at `p`."""
    th, tw = _scaled_shape(threat, p.scale)
    out = []
    for bag, cut in ((scan.high, threat.high), (scan.low, threat.low)):
        t = cv2.resize(cut, (tw, th), interpolation=cv2.INTER_LINEAR)
        region = bag[p.y:p.y + th, p.x:p.x + tw].astype(np.float32) * t
        merged = bag.copy()
        merged[p.y:p.y + th, p.x:p.x + tw] = np.clip(region + 0.5, 0, AIR).astype(np.uint16)
        out.append(merged)
    return Scan(high=out[0], low=out[1], meta=dict(scan.meta))


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class TipEngine:
    """Decides projections for one station screen and scores the responses."""

    def __init__(self, cfg: TipConfig, threats: dict[str, Threat] | None = None, folder: Path | None = None) -> None:
        self.cfg = cfg
        self.folder = folder or cfg.library_dir
        self.threats = threats if threats is not None else load_library(self.folder) if self.folder else {}
        self.rng = random.Random(cfg.seed)

    def ensure_library(self) -> None:
        """Fill an empty library folder with the shipped threats (blocking: run it off the loop)."""
        if self.threats or not self.cfg.enabled or self.folder is None:
            return
        if not any(Path(self.folder).glob("*.npz")):
            try:
                Path(self.folder).mkdir(parents=True, exist_ok=True)
                for threat in SHIPPED_LIBRARY.glob("*.npz"):
                    shutil.copy2(threat, Path(self.folder) / threat.name)
            except OSError as exc:
                log.warning("tip.library_unavailable", folder=str(self.folder), error=str(exc))
                return
            log.info("tip.library_seeded", folder=str(self.folder), source=str(SHIPPED_LIBRARY))
        self.threats = load_library(self.folder)

    @property
    def active(self) -> bool:
        return self.cfg.enabled and self.cfg.rate > 0 and bool(self.threats)

    def on_item(self, store: Store, officer: str, record: InspectionRecord, now: float | None = None) -> None:
        """A new item reaches an officer's screen: earlier projections whose image was never drawn are
        closed as not shown (the officer was elsewhere), and maybe one is projected into this item.
        A projection whose image was drawn stays open: its item may still be on screen. An item this officer
        has a projection for, open or answered, gets no other (one officer may watch on two screens)."""
        now = time.time() if now is None else now
        with transaction(store.conn):
            store.conn.execute("UPDATE tip_events SET outcome = 'not_shown', responded_at = ? WHERE officer = ?"
                               " AND outcome = 'pending' AND served_at IS NULL AND record_id != ?",
                               (now, officer, record.id))
            taken = store.conn.execute(f"SELECT 1 FROM tip_events WHERE {_TAKEN} LIMIT 1", (officer, record.id)).fetchone()
        ref = self._projectable_scan(store, record) if taken is None else None
        if ref is not None and self.rng.random() < self.cfg.rate:
            self._project(store, officer, record, ref, now)

    def served(self, conn: sqlite3.Connection, officer: str, record_id: str, now: float | None = None) -> None:
        """The composite was drawn for this officer (the first time counts)."""
        conn.execute("UPDATE tip_events SET served_at = ? WHERE officer = ? AND record_id = ? AND outcome ="
                     " 'pending' AND served_at IS NULL", (time.time() if now is None else now, officer, record_id))

    def seen(self, conn: sqlite3.Connection, officer: str, record_id: str, now: float | None = None) -> bool:
        """The screen says the image was watched for the dwell (live view, page visible): from now on,
        moving on without an answer is a miss. Refused (False) when the image was drawn less than
        `min_dwell_s` ago or not at all, whatever the screen says."""
        now = time.time() if now is None else now
        cur = conn.execute("UPDATE tip_events SET seen_at = ? WHERE officer = ? AND record_id = ? AND outcome ="
                           " 'pending' AND seen_at IS NULL AND served_at IS NOT NULL AND served_at <= ?",
                           (now, officer, record_id, now - self.cfg.min_dwell_s))
        return cur.rowcount > 0

    def left(self, conn: sqlite3.Connection, officer: str, record_id: str,
             now: float | None = None) -> TipResponse | None:
        """The officer moved on from the item without answering: a miss when its image was seen for
        the dwell (with the threat's class and box, to show where it was), else not shown (None)."""
        now = time.time() if now is None else now
        with transaction(conn):
            row = self._displayed(conn, officer, record_id)
            seen = row[0] if row is not None and row[3] is not None else None  # watched for the dwell
            if seen is not None:
                _close(conn, [seen], "miss", now)
            _not_shown(conn, officer, record_id, now)
        p = self._projection(row)
        if p is None or seen is None:
            return None
        threat = self.threats[p.threat]
        return TipResponse("miss", threat.label, p.box(threat))

    def close_all(self, conn: sqlite3.Connection, officer: str, now: float | None = None) -> None:
        """The officer signs in or out: what was open from before is closed (seen: miss, else not shown)."""
        now = time.time() if now is None else now
        for (record_id,) in conn.execute("SELECT DISTINCT record_id FROM tip_events WHERE officer = ? AND"
                                         " outcome = 'pending'", (officer,)).fetchall():
            self.left(conn, officer, record_id, now)

    def _projectable_scan(self, store: Store, record: InspectionRecord) -> ScanRef | None:
        """The record's stored scan when a threat may be projected into it."""
        eligible = self.active and record.verdict is Verdict.CLEAR
        if not eligible or record.scan is None or not store.scan_path(record.scan.sha256).exists():
            return None
        return record.scan

    def _project(self, store: Store, officer: str, record: InspectionRecord, ref: ScanRef, now: float) -> None:
        try:
            scan = load_scan(store.scan_path(ref.sha256))
        except ScanFormatError as exc:
            log.warning("tip.scan_unreadable", record=record.id, error=str(exc))
            return
        p = choose(self.threats, scan.high, self.cfg, self.rng)
        if p is None:
            log.info("tip.no_room", record=record.id, reason=f"no threat of the library fits inside the bag of"
                     f" item {record.id} ({scan.shape[0]}x{scan.shape[1]} px scan) {BAG_MARGIN_PX} px from its outline")
            return
        params = json.dumps({"x": p.x, "y": p.y, "scale": p.scale})
        cur = store.conn.execute("INSERT INTO tip_events (at, officer, record_id, threat, label, params, outcome)"
                                 f" SELECT ?,?,?,?,?,?,'pending' WHERE NOT EXISTS (SELECT 1 FROM tip_events WHERE {_TAKEN})",
                                 (now, officer, record.id, p.threat, self.threats[p.threat].label, params,
                                  officer, record.id))
        if cur.rowcount:
            log.info("tip.projected", officer=officer, record=record.id, threat=p.threat)

    def _displayed(self, conn: sqlite3.Connection, officer: str, record_id: str) -> tuple[int, str, str, Any] | None:
        """The projection this officer is shown in the item (id, threat, params, seen_at): the newest open one."""
        return conn.execute("SELECT id, threat, params, seen_at FROM tip_events WHERE officer = ? AND record_id = ?"
                            " AND outcome = 'pending' ORDER BY id DESC LIMIT 1", (officer, record_id)).fetchone()

    def _projection(self, row: tuple[int, str, str, Any] | None) -> Projection | None:
        if row is None or row[1] not in self.threats:
            return None
        params = json.loads(row[2])
        return Projection(row[1], params["x"], params["y"], params["scale"])

    def pending(self, conn: sqlite3.Connection, officer: str, record_id: str) -> Projection | None:
        return self._projection(self._displayed(conn, officer, record_id))

    def displayed_scan(self, store: Store, officer: str, record: InspectionRecord, scan: Scan) -> Scan:
        """What this officer is shown: the composite while a projection awaits an answer, else the scan."""
        p = self.pending(store.conn, officer, record.id)
        return composite(scan, self.threats[p.threat], p) if p else scan

    def respond(self, conn: sqlite3.Connection, officer: str, record_id: str, flagged: bool,
                box: tuple[float, float, float, float] | None = None, now: float | None = None) -> TipResponse | None:
        """Score the officer's answer on a screened item; None when it was not a TIP matter.

        An item is scored once per officer: a second answer (another screen, a retry) counts for
        nothing. A projection whose composite was never drawn for the officer (`served`) is not
        answered by it (closed as not shown): the answer was given on an image the officer never saw."""
        now = time.time() if now is None else now
        with transaction(conn):
            if conn.execute("SELECT 1 FROM tip_events WHERE officer = ? AND record_id = ? AND outcome IN"
                            " ('hit', 'miss', 'false_alarm') LIMIT 1", (officer, record_id)).fetchone():
                return None
            row = self._displayed(conn, officer, record_id)
            p = self._projection(row)
            if row is not None and p is not None and not _drawn(conn, row[0]):
                _not_shown(conn, officer, record_id, now)
                p = None
            if p is None:
                if not flagged:
                    return None
                cur = conn.execute("INSERT INTO tip_events (at, officer, record_id, outcome, responded_at)"
                                   " VALUES (?,?,?,'false_alarm',?)", (now, officer, record_id, now))
                if cur.lastrowid is None:
                    raise sqlite3.DatabaseError(f"TIP false alarm of {officer} on {record_id} was stored "
                                                "without a row id")
                _queue_for_hub(conn, cur.lastrowid)
                return TipResponse("false_alarm")
            assert row is not None
            threat = self.threats[p.threat]
            hit = flagged and (box is None or _overlaps(box, p.box(threat)))
            outcome = "hit" if hit else "miss"
            _close(conn, [row[0]], outcome, now)  # the projection shown is answered; any other never was on screen
            _not_shown(conn, officer, record_id, now)
        return TipResponse(outcome, threat.label, p.box(threat))


# an item this officer has a projection for, open or answered (a false alarm too): it gets no other
_TAKEN = "officer = ? AND record_id = ? AND outcome != 'not_shown'"


def _drawn(conn: sqlite3.Connection, event_id: int) -> bool:
    """The projection's composite was served to the officer's screen (image or image-tool data)."""
    return conn.execute("SELECT served_at IS NOT NULL FROM tip_events WHERE id = ?", (event_id,)).fetchone()[0] == 1


def _not_shown(conn: sqlite3.Connection, officer: str, record_id: str, now: float) -> None:
    """Close the item's open projections left for this officer as never shown (not charged, not sent)."""
    conn.execute("UPDATE tip_events SET outcome = 'not_shown', responded_at = ? WHERE officer = ? AND record_id = ?"
                 " AND outcome = 'pending'", (now, officer, record_id))


def _close(conn: sqlite3.Connection, ids: list[int], outcome: str, now: float) -> None:
    """Answer pending projections and queue each outcome for the hub (inside the caller's transaction)."""
    conn.executemany("UPDATE tip_events SET outcome = ?, responded_at = ? WHERE id = ?", [(outcome, now, i) for i in ids])
    for event_id in ids:
        _queue_for_hub(conn, event_id)


def _queue_for_hub(conn: sqlite3.Connection, event_id: int) -> None:
    """One outbox row (kind `tip`, record lane) carrying the outcome of TIP event `event_id`, keyed at
    the hub by (station, item, event). Written as stored, not judged here: a row the hub rejects
    is parked in the outbox and alarmed like any other, never dropped."""
    row = conn.execute(
        "SELECT coalesce(t.served_at, t.at), t.officer, t.record_id, t.threat, t.label, t.outcome, t.responded_at, i.station, i.seq"
        " FROM tip_events t LEFT JOIN inspections i ON i.id = t.record_id WHERE t.id = ?", (event_id,)).fetchone()
    at, officer, record_id, threat, label, outcome, responded_at, station, seq = row
    if station is None:
        log.warning("tip.outcome_not_synced", event=event_id, record=record_id,
                    reason=f"item {record_id} is no longer in the station database, so its station and seq are unknown")
        return
    body = {"v": 1, "station": station, "officer": officer, "record_id": record_id, "projection": event_id,
            "threat": threat, "label": label, "outcome": outcome, "shown_at": _iso(at),
            "responded_at": _iso(responded_at),
            "decision_ms": None if outcome == "false_alarm" else round((responded_at - at) * 1000.0, 1)}
    enqueue(conn, Lane.RECORD, Kind.TIP.value, record_id, seq, json.dumps(body))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def stats(conn: sqlite3.Connection, officer: str | None = None) -> list[dict[str, Any]]:
    """Per-officer counts and rates of answered projections: hits, misses, false alarms. Open (pending)
    projections are never counted here: an officer reading their own line the moment an item arrives
    would learn that it holds one (a pending count of 1, or the line appearing at all)."""
    where, args = ("AND officer = ?", (officer,)) if officer else ("", ())
    rows = conn.execute(
        "SELECT officer, sum(outcome='hit'), sum(outcome='miss'), sum(outcome='false_alarm') FROM tip_events"
        f" WHERE outcome IN ('hit', 'miss', 'false_alarm') {where} GROUP BY officer ORDER BY officer", args)
    out = []
    for badge, hits, misses, fa in rows:
        answered = hits + misses
        out.append({"officer": badge, "projected": answered, "hits": hits, "misses": misses,
                    "false_alarms": fa, "hit_rate": round(hits / answered, 3) if answered else None})
    return out


# -- building a library --------------------------------------------------------------------------

def build_library(folder: Path, sources: list[Path] | None = None, per_class: int = 3, seed: int = 0) -> list[Path]:
    """Fill `folder` with cut-outs: from labelled scans' `truth` boxes when given, else from the
    training simulator's threat generators rendered through its dual-energy physics (the training
    extra; this is how edge/tip_library, shipped and used by stations, was made)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if sources:
        return [p for src in sources for p in _crop_truth(src, folder)]
    from models.training.physics import ideal_transmission  # optional extra: the simulator
    from models.training.threats import GENERATORS

    rng = np.random.default_rng(seed)
    written = []
    for label, make in GENERATORS.items():
        for i in range(per_class):
            obj = make(rng)
            high, low = ideal_transmission(obj.parts)
            scan = Scan(_to16(high), _to16(low), {"label": label, "source": "models.training.threats"})
            written.append(save_scan(scan, folder / f"{label}-{i}.npz"))
    return written


def _to16(t: np.ndarray) -> np.ndarray:
    return np.clip(t * AIR + 0.5, 0, AIR).astype(np.uint16)


def _crop_truth(src: Path, folder: Path) -> list[Path]:
    scan = load_scan(src)
    out = []
    for i, truth in enumerate(scan.meta.get("truth", [])):
        x0, y0, x1, y1 = (int(round(v)) for v in truth["box"])
        cut = Scan(np.ascontiguousarray(scan.high[y0:y1, x0:x1]), np.ascontiguousarray(scan.low[y0:y1, x0:x1]),
                   {"label": truth["label"], "source": f"{src.name}#{i}"})
        out.append(save_scan(cut, folder / f"{src.stem}-{i}.npz"))
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m edge.tip FOLDER [SCAN.npz ...]`: build a threat library."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m edge.tip FOLDER [LABELLED_SCAN.npz ...]", file=sys.stderr)
        return 2
    for path in build_library(Path(args[0]), [Path(a) for a in args[1:]] or None):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
