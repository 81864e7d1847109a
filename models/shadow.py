"""Shadow model: a candidate detector runs beside the active one and never touches a verdict.

The candidate runs in the background of the shared pool (it starts only when the pool is idle), one
row of tiles per pool job, so a live item arriving meanwhile waits for one row at most, never for the
whole scan; its detections are compared with the active model's, class by class, matched at
IoU >= 0.5. The figures (`stats()`) tell whether the candidate can be rolled out.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from pathlib import Path

import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict, Field

from models.decode import iou_one_to_many
from models.detection import Detection
from models.errors import ModelError
from models.pool import InferencePool, PoolBusy
from models.runtime import Detector
from models.scan import Scan
from models.tiling import TileBoxes

log = structlog.get_logger("models.shadow")


Compared = Callable[[bool, float, bool | None], None]
"""Told after each comparison: whether both models found the same classes, the candidate's seconds, and whether
the candidate flagged an item the active model flagged (None: the active model found nothing on it)."""


class Shadow(Protocol):
    """What the inspection hands a decided scan to (ShadowRunner; edge.model_rollout.Rollout on canary)."""

    def submit(self, station: str, scan: Scan, active: Sequence[Detection]) -> bool: ...


class ShadowConfig(BaseModel):
    """Candidate model settings the station config composes (absent = no shadow model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: Path
    iou: float = Field(default=0.5, gt=0, le=1)
    max_pending: int = Field(default=2, ge=1, le=64)


def match(active: Sequence[Detection], candidate: Sequence[Detection], iou: float = 0.5) -> dict[str, Counter]:
    """Per class: counts of `both`, `only_active`, `only_candidate` (greedy best-IoU matching)."""
    out: dict[str, Counter] = {}
    for label in {d.label for d in (*active, *candidate)}:
        a = np.array([d.box for d in active if d.label == label], np.float32).reshape(-1, 4)
        c = np.array([d.box for d in candidate if d.label == label], np.float32).reshape(-1, 4)
        both = _greedy_pairs(a, c, iou)
        out[label] = Counter(both=both, only_active=len(a) - both, only_candidate=len(c) - both)
    return out


def _greedy_pairs(a: np.ndarray, c: np.ndarray, iou: float) -> int:
    if not len(a) or not len(c):
        return 0
    m = np.stack([iou_one_to_many(box, c) for box in a])
    pairs = 0
    while m.size and m.max() >= iou:
        i, j = np.unravel_index(m.argmax(), m.shape)
        m[i, :], m[:, j] = -1, -1
        pairs += 1
    return pairs


class ShadowRunner:
    """Runs `candidate` on scans already decided by the active model; use as async context manager."""

    def __init__(self, candidate: Detector, pool: InferencePool, *, iou: float = 0.5, max_pending: int = 2,
                 on_compared: Compared | None = None) -> None:
        self.candidate, self.pool, self.iou, self.max_pending = candidate, pool, iou, max_pending
        self.on_compared = on_compared
        self._tasks: set[asyncio.Task] = set()
        self._scans: Counter = Counter()
        self._classes: dict[str, Counter] = {}

    @classmethod
    def from_config(cls, cfg: ShadowConfig, candidate: Detector, pool: InferencePool) -> ShadowRunner:
        return cls(candidate, pool, iou=cfg.iou, max_pending=cfg.max_pending)

    async def __aenter__(self) -> ShadowRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def submit(self, station: str, scan: Scan, active: Sequence[Detection]) -> bool:
        """Start a comparison in the background; False (and counted) when too many are pending."""
        self._scans["offered"] += 1
        if len(self._tasks) >= self.max_pending:
            self._scans["skipped_pending"] += 1
            return False
        task = asyncio.create_task(self.compare(station, scan, active), name=f"shadow-{station}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def compare(self, station: str, scan: Scan, active: Sequence[Detection]) -> dict[str, Counter] | None:
        """Run the candidate (background priority) and record agreement; None when skipped or failed."""
        started = time.perf_counter()
        try:
            found, seconds = await self._detect(station, scan)
        except PoolBusy:
            self._scans["skipped_busy"] += 1
            return None
        except ModelError as exc:
            self._scans["failed"] += 1
            log.warning("shadow.failed", station=station, error=str(exc))
            if self.on_compared is not None:  # no usable answer is no agreement: a canary never promotes it
                self.on_compared(False, time.perf_counter() - started, False if active else None)
            return None
        result = match(active, found, self.iou)
        self._record(result, bool(active), bool(found))
        if self.on_compared is not None:
            self.on_compared({d.label for d in active} == {d.label for d in found}, seconds,
                             bool(found) if active else None)
        return result

    async def _detect(self, station: str, scan: Scan) -> tuple[list[Detection], float]:
        """The candidate's detections, one background job per row of tiles (live jobs go first between rows),
        and its own time: the rows' time in the workers, not the waits behind live work."""
        candidate = self.candidate
        ys, xs = candidate.tile_grid(scan.shape)
        tiles: list[TileBoxes] = []

        def row(y: int, last: bool) -> tuple[list[Detection], float]:
            t0 = time.perf_counter()
            tiles.extend(candidate.run_tiles(scan.high, scan.low, [y], xs))
            return (candidate.finalise(tiles, scan.shape) if last else []), time.perf_counter() - t0

        found: list[Detection] = []
        seconds = 0.0
        for i, y in enumerate(ys):
            found, took = await self.pool.run(f"{station}/shadow", functools.partial(row, y, i == len(ys) - 1),
                                              background=True, waits=i > 0, cost=len(xs) * candidate.tile_seconds)
            seconds += took
        return found, seconds

    def _record(self, result: dict[str, Counter], active_hit: bool, candidate_hit: bool) -> None:
        self._scans["compared"] += 1
        self._scans["verdict_agree" if active_hit == candidate_hit else "verdict_differ"] += 1
        for label, counts in result.items():
            self._classes.setdefault(label, Counter()).update(counts)

    def stats(self) -> dict:
        """Agreement figures for metrics: scans and per-class both / only_active / only_candidate."""
        info = self.candidate.info
        return {
            "candidate": {"name": info.name, "version": info.version, "sha256": info.sha256},
            "scans": {k: self._scans[k] for k in ("offered", "compared", "skipped_busy", "skipped_pending",
                                                   "failed", "verdict_agree", "verdict_differ")},
            "classes": {label: {k: c[k] for k in ("both", "only_active", "only_candidate")}
                        for label, c in sorted(self._classes.items())},
        }
