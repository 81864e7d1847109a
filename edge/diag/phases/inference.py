"""Inference latency on this device: one tile, and a whole scan against the station's budget."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from drivers.retrofit.config import SimRetrofitConfig
from drivers.xray.config import SimScannerConfig
from edge.diag.context import PhaseContext
from edge.diag.specs import SPECS
from models.runtime import Detector
from models.scan import Scan, load_scan

RUNS = 5


def reference_scan(ctx: PhaseContext) -> Scan:
    """A scan of this station's kind: the twin's first scan, else the test object."""
    d = ctx.station.cfg.devices
    sim: SimScannerConfig | SimRetrofitConfig | None = d.scanner.sim if d.scanner is not None else None
    if sim is None and d.source is not None:
        sim = d.source.sim
    if sim is not None:
        files = sorted(sim.scan_dir.glob("*.npz"))
        if files:
            return load_scan(files[0])
    from edge.diag.testobject import make_test_object

    return make_test_object(1.0)


def _timed(detector: Detector, scan: Scan) -> float:
    t0 = time.perf_counter()
    detector.detect(scan)
    return (time.perf_counter() - t0) * 1000


async def run(ctx: PhaseContext) -> None:
    det = ctx.station.detector
    ctx.measure("inference.model_loaded", det is not None, target="model",
                detail=ctx.station.problems.get("model", ""))
    if det is None:
        return
    scan = await asyncio.to_thread(reference_scan, ctx)
    times = [await asyncio.to_thread(_timed, det, scan) for _ in range(RUNS)]
    budget = ctx.station.cfg.station.budget_ms
    ys, xs = det.tile_grid(scan.shape)
    ctx.measure("inference.tile_ms", det.tile_seconds * 1000, target=det.info.name)
    spec = SPECS["inference.scan_ms"].limited(high=budget, marginal_high=budget * 0.5)
    ctx.measure("inference.scan_ms", float(np.percentile(times, 95)), target=f"{scan.shape[0]}x{scan.shape[1]}",
                spec=spec, detail=f"{len(ys) * len(xs)} tiles, {RUNS} runs")
    ctx.note(f"whole-scan time is an upper bound of the time after the last line (strips run during the scan)")
