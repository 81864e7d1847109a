"""Timing shared by the benchmarks: run a call n times, report median and p95 in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"median": round(statistics.median(samples), 2), "p95": round(samples[int(0.95 * (n - 1))], 2), "n": n}
