"""Assembly of streamed detector lines into blocks (progressively) and into a Scan (at the end)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import structlog

from drivers.xray.errors import ScanUnavailable
from firmware_bridge import codec
from models.scan import Scan

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LineBlock:
    """Consecutive lines `first_line`.. of one scan, both energies, shape (n, W)."""

    first_line: int
    high: np.ndarray
    low: np.ndarray


class ScanStream:
    """Async iterator of LineBlocks as lines arrive; `result()` once it has ended."""

    def __init__(self, scan_id: int, ref: str, device: str, *, idle_timeout_s: float, max_lines: int,
                 meta: dict[str, Any], stop: Callable[[ScanStream], Awaitable[None]],
                 on_abort: Callable[[ScanStream, str], None] | None = None) -> None:
        self.scan_id = scan_id
        self.ref = ref
        self.device = device
        self._idle = idle_timeout_s
        self._max_lines = max_lines
        self._meta = meta
        self._stop_cb = stop
        self._on_abort = on_abort
        self._lines: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._next = 0
        self._width: int | None = None
        self._changed = asyncio.Event()
        self._t0 = time.monotonic()
        self._t_last = self._t0
        self.end: codec.ScanEnd | None = None
        self.abort_reason: str | None = None
        self.duplicates = 0

    @property
    def ended(self) -> bool:
        return self.end is not None or self.abort_reason is not None

    # ---- fed by the driver -----------------------------------------------------------------

    def add_line(self, line: codec.Line) -> None:
        """Store one line (a repeat of a known index is counted and ignored; a repeat with other pixels means the
        controller's line index cannot be trusted, and ends the scan incomplete)."""
        if self.ended:
            return
        if self._width is None:
            self._width = len(line.high)
        if len(line.high) != self._width or line.index >= self._max_lines:
            self.abort(f"line {line.index} of width {len(line.high)} does not fit a scan of width "
                       f"{self._width} and at most {self._max_lines} lines")
            return
        known = self._lines.get(line.index)
        if known is not None:
            self.duplicates += 1
            if not (np.array_equal(known[0], line.high) and np.array_equal(known[1], line.low)):
                self.abort(f"line {line.index} arrived again with other pixels: the controller's line index "
                           f"cannot be trusted")
            return
        self._lines[line.index] = (line.high, line.low)
        self._t_last = time.monotonic()
        self._changed.set()

    def finish(self, end: codec.ScanEnd) -> None:
        """The controller's SCAN_END; a line count that cannot be true ends the scan incomplete."""
        if self.ended:
            return
        self.end = end
        problem = self._count_problem(end.line_count)
        if problem is not None:
            self.abort_reason = problem
            log.warning("xray.scan_aborted", device=self.device, ref=self.ref, reason=problem)
        self._changed.set()

    def _count_problem(self, sent: int) -> str | None:
        """Why SCAN_END's lines_sent cannot be this scan's length (more than max_lines, or fewer than arrived)."""
        if sent > self._max_lines:
            return (f"the controller's SCAN_END says {sent} lines were sent, more than the {self._max_lines} "
                    f"a scan may have")
        if self._lines and sent <= max(self._lines):
            return f"the controller's SCAN_END says {sent} lines were sent, but line {max(self._lines)} arrived"
        return None

    def abort(self, reason: str) -> None:
        """End the stream here, without the controller's SCAN_END; `on_abort` has the controller stop."""
        if not self.ended:
            self.abort_reason = reason
            log.warning("xray.scan_aborted", device=self.device, ref=self.ref, reason=reason)
            self._changed.set()
            if self._on_abort is not None:
                self._on_abort(self, reason)

    # ---- consumed by the pipeline ----------------------------------------------------------

    def __aiter__(self) -> ScanStream:
        return self

    async def __anext__(self) -> LineBlock:
        while True:
            block = self._take()
            if block is not None:
                return block
            if self.ended:
                raise StopAsyncIteration
            self._changed.clear()
            try:
                async with asyncio.timeout(self._idle):
                    await self._changed.wait()
            except TimeoutError:
                self.abort(f"no line arrived for {self._idle:.2f} s after line {self._next - 1}")

    def _take(self) -> LineBlock | None:
        """The next run of consecutive lines; after the end, runs beyond gaps too."""
        if self._next not in self._lines and self.ended and self._lines:
            later = [i for i in self._lines if i > self._next]
            if later:
                self._next = min(later)
        start, rows = self._next, []
        while self._next in self._lines:
            rows.append(self._lines[self._next])
            self._next += 1
        if not rows:
            return None
        return LineBlock(start, np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]))

    async def stop(self) -> None:
        """Ask the controller to stop; the stream then ends (incomplete) when SCAN_END arrives."""
        if not self.ended:
            await self._stop_cb(self)

    def result(self) -> Scan:
        """The assembled scan, up to the last line that arrived; complete only if SCAN_END said so and every
        line arrived. SCAN_END's count only says how many are missing (the arrays never take its size)."""
        if not self.ended:
            raise ScanUnavailable(f"scan {self.ref!r} on {self.device} has not ended yet", device=self.device)
        if not self._lines or self._width is None:
            raise ScanUnavailable(f"scan {self.ref!r} on {self.device} ended without a single line "
                                  f"({self.abort_reason or 'controller sent none'})", device=self.device)
        count = max(self._lines) + 1
        high = np.zeros((count, self._width), np.uint16)
        low = np.zeros((count, self._width), np.uint16)
        for i, (h, lo) in self._lines.items():
            high[i], low[i] = h, lo
        sent = self.end.line_count if self.end is not None and self.abort_reason is None else count
        missing = sent - len(self._lines)
        complete = self.end is not None and self.end.complete and missing == 0 and self.abort_reason is None
        return Scan(high=high, low=low, meta=self._result_meta(count, missing), complete=complete)

    def _result_meta(self, count: int, missing: int) -> dict[str, Any]:
        meta = dict(self._meta, ref=self.ref, scan_id=self.scan_id, lines=count, missing_lines=missing,
                    duplicate_lines=self.duplicates)
        elapsed = self._t_last - self._t0
        if count > 1 and elapsed > 0 and "lines_per_s" not in meta:
            meta["lines_per_s"] = round(count / elapsed, 1)
        if self.abort_reason is not None:
            meta["incomplete_reason"] = self.abort_reason
        elif self.end is not None and not self.end.complete:
            meta["incomplete_reason"] = "the controller reported the scan incomplete"
        elif missing:
            meta["incomplete_reason"] = f"{missing} lines never arrived"
        return meta
