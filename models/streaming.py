"""Detection on line scans while they arrive: strips run as soon as their last line is in.

A strip is a band of tile-height rows; strips start every `tile - overlap` rows, exactly where
`Detector.detect` puts its tile rows, and the final strip (aligned with the end of the scan) runs
in `finish`. So the streamed result equals the batch result, and the work left after the last
line is one strip plus the merge, whatever the length of the scan. Only the last tile-height
rows are kept in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from models.detection import Detection
from models.errors import ScanFormatError
from models.pool import InferencePool
from models.runtime import Detector
from models.scan import check_channels
from models.tiling import TileBoxes, axis_starts


class StripDetector:
    """Streaming detector for one scan of `width` detector pixels; sync (`feed`) or async (`feed_async`)."""

    def __init__(self, detector: Detector, width: int, *, pool: InferencePool | None = None,
                 station: str = "default") -> None:
        self.det, self.width, self.pool, self.station = detector, width, pool, station
        self._th = detector.tile_size[0]
        self._step = self._th - detector.overlap
        self._xs = axis_starts(width, detector.tile_size[1], detector.overlap)
        self._buf = {c: np.empty((2 * self._th, width), np.uint16) for c in ("high", "low")}
        self._base = 0          # scan row held in buffer row 0
        self._fill = 0          # valid rows in the buffer
        self._next = 0          # scan row where the next strip starts
        self._tiles: list[TileBoxes] = []
        self._done: set[int] = set()
        self._tasks: list[asyncio.Task] = []
        self._mode: str | None = None

    @property
    def lines(self) -> int:
        """Lines received so far."""
        return self._base + self._fill

    @property
    def strips_done(self) -> int:
        """Strips started so far (run, or queued in async mode)."""
        return len(self._done)

    @property
    def strips_pending(self) -> int:
        """Strips queued or running in async mode."""
        return sum(not t.done() for t in self._tasks)

    def feed(self, high_block: np.ndarray, low_block: np.ndarray) -> None:
        """Append a block of lines; complete strips run here (blocking)."""
        self._enter("sync")
        for y, planes in self._append(high_block, low_block):
            self._tiles += self.det.run_tiles(planes["high"], planes["low"], [0], self._xs, y_offset=y)

    def finish(self) -> list[Detection]:
        """Run the remainder of the scan and return the merged detections (blocking)."""
        self._enter("sync")
        for y, planes in self._remainder():
            self._tiles += self.det.run_tiles(planes["high"], planes["low"], [0], self._xs, y_offset=y)
        return self.det.finalise(self._tiles, (self.lines, self.width))

    async def feed_async(self, high_block: np.ndarray, low_block: np.ndarray) -> None:
        """Append a block of lines; complete strips are queued in the pool and this returns at once."""
        self._enter("async")
        for y, planes in self._append(high_block, low_block):
            self._tasks.append(asyncio.create_task(self._run_async(y, planes, None), name=f"strip-{y}"))

    async def finish_async(self, *, deadline: float | None = None) -> list[Detection]:
        """Queue the remainder (refused early if it cannot meet `deadline`), await all strips, merge."""
        self._enter("async")
        for y, planes in self._remainder():
            self._tasks.append(asyncio.create_task(self._run_async(y, planes, deadline), name=f"strip-{y}"))
        try:
            for part in await asyncio.gather(*self._tasks):
                self._tiles += part
        finally:
            await self.aclose()
        return self.det.finalise(self._tiles, (self.lines, self.width))

    async def aclose(self) -> None:
        """Cancel strips still queued (an aborted scan) and collect the outcome of every strip task."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def __aenter__(self) -> StripDetector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def expected_finish_seconds(self) -> float:
        """Expected compute after the last line: one strip of tiles (the remainder)."""
        return len(self._xs) * self.det.tile_seconds

    async def _run_async(self, y: int, planes: dict[str, np.ndarray], deadline: float | None) -> list[TileBoxes]:
        def job() -> list[TileBoxes]:
            return self.det.run_tiles(planes["high"], planes["low"], [0], self._xs, y_offset=y)

        if self.pool is None:
            return await asyncio.to_thread(job)
        cost = len(self._xs) * self.det.tile_seconds
        return await self.pool.run(self.station, job, deadline=deadline, cost=cost)

    def _enter(self, mode: str) -> None:
        if self._mode not in (None, mode):
            raise RuntimeError(f"StripDetector used in {mode} mode after {self._mode} mode")
        self._mode = mode

    def _append(self, high: np.ndarray, low: np.ndarray) -> list[tuple[int, dict[str, np.ndarray]]]:
        """Store a block; return (start row, planes copy) of every strip it completes."""
        check_channels(high, low)
        if high.shape[1] != self.width:
            raise ScanFormatError(f"line block is {high.shape[1]} pixels wide; this scan is {self.width}")
        self._reserve(len(high))
        for c, p in (("high", high), ("low", low)):
            self._buf[c][self._fill : self._fill + len(high)] = p
        self._fill += len(high)
        ready = []
        while self._next + self._th <= self.lines:
            ready.append((self._next, self._rows(self._next, self._th)))
            self._done.add(self._next)
            self._next += self._step
        self._drop(min(self._next, self.lines - self._th))
        return ready

    def _remainder(self) -> list[tuple[int, dict[str, np.ndarray]]]:
        if self.lines == 0:
            raise ScanFormatError("line scan ended without any lines")
        ys = [y for y in axis_starts(self.lines, self._th, self.det.overlap) if y not in self._done]
        self._done.update(ys)
        return [(y, self._rows(y, self._th)) for y in ys]

    def _rows(self, y: int, n: int) -> dict[str, np.ndarray]:
        """Copy of scan rows [y, y+n) (fewer at the end of the scan)."""
        lo = y - self._base
        if lo < 0:
            raise AssertionError(f"strip at row {y} needs rows already dropped (buffer starts at {self._base})")
        return {c: b[lo : min(lo + n, self._fill)].copy() for c, b in self._buf.items()}

    def _reserve(self, n: int) -> None:
        cap = next(iter(self._buf.values())).shape[0]
        if self._fill + n <= cap:
            return
        new_cap = max(2 * cap, self._fill + n)
        for c, b in self._buf.items():
            grown = np.empty((new_cap, self.width), np.uint16)
            grown[: self._fill] = b[: self._fill]
            self._buf[c] = grown

    def _drop(self, keep_from: int) -> None:
        """Forget rows before scan row `keep_from` (in steps of a quarter tile, to copy rarely)."""
        d = keep_from - self._base
        if d < self._th // 4:
            return
        for b in self._buf.values():
            b[: self._fill - d] = b[d : self._fill].copy()
        self._base += d
        self._fill -= d


def stream_detect(detector: Detector, high: np.ndarray, low: np.ndarray, block: int = 64) -> list[Detection]:
    """Feed a whole scan in blocks of `block` lines through a StripDetector (a convenience)."""
    strip = StripDetector(detector, high.shape[1])
    for y in range(0, len(high), block):
        strip.feed(high[y : y + block], low[y : y + block])
    return strip.finish()


__all__: Sequence[str] = ("StripDetector", "stream_detect")
