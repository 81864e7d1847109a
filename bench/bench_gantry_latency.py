"""Gantry latency benchmark: last line -> verdict of a container scan against a van scan, streaming, one core.

Run:  .venv/bin/python bench/bench_gantry_latency.py [--model DIR] [--repeats 10] [--lines-per-s 1000]

Both scans go through models.streaming.StripDetector as the station runs it (edge.detector: line
blocks fed as they arrive, strips queued in an InferencePool of one worker, onnxruntime with one
thread, `finish_async` with a deadline), followed by the applicability content check the station
runs when a scan ends. The time measured is from the last line to the merged detections.

Scans: generator A (models.training.portal) with contraband: a tractor with a 40 ft container
resized to 4,000 x 1,024 and a van resized to 1,200 x 800; the content only has to be realistic
enough for realistic detection counts, the figure is about time. Goal (issue 16): container p50
<= 1.3 x van p50. Prints a table and writes bench/results/gantry_latency.json; never asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.applicability import ScanFacts, content_problem, scan_problem  # noqa: E402
from models.cli import ZOO  # noqa: E402
from models.pool import InferencePool  # noqa: E402
from models.runtime import Detector, load_detector  # noqa: E402
from models.scan import Scan  # noqa: E402
from models.streaming import StripDetector  # noqa: E402

BLOCK = 32  # lines per delivery from the line scanner
SHAPES = {"container": (4000, 1024), "van": (1200, 800)}
GOAL = 1.3


def pick_model(given: Path | None) -> tuple[Path, str, bool]:
    """(package, how it was chosen, whether the guard judges the scans)."""
    if given is not None:
        return given, f"model package {given}", True
    if (ZOO / "cpe-gantry" / "manifest.toml").is_file():
        return ZOO / "cpe-gantry", "models/zoo/cpe-gantry", True
    return (ZOO / "cpe-tiny", "models/zoo/cpe-tiny with the guard bypassed (no cpe-gantry yet; a baggage model "
            "is not made for vehicles, so these figures are timing only)", False)


def make_scans() -> dict[str, Scan]:
    """Generator A scans resized to SHAPES: a 40 ft container on a tractor (9/6 MV linac) and a van (tube).

    Resizing along the lines stands for a slower pass (finer line pitch); across, for a taller detector column.
    """
    import cv2

    from models.training.portal import PortalSpec, portal_scan

    scans = {}
    for (name, (h, w)), vehicle in zip(SHAPES.items(), ("tractor_40ft", "van")):
        scan = portal_scan(7, PortalSpec(vehicle=vehicle, pixel_mm=5.0 if name == "container" else 7.0, suspect=True))
        high, low = (cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in (scan.high, scan.low))
        scans[name] = Scan(high=high, low=low, meta=scan.meta)
    return scans


async def stream_once(det: Detector, pool: InferencePool, scan: Scan, lines_per_s: float) -> dict:
    """Deliver lines in real time; seconds from the last line to the detections (content check included)."""
    loop = asyncio.get_running_loop()
    high, low = scan.high, scan.low
    async with StripDetector(det, high.shape[1], pool=pool, station="gantry") as strip:
        start = loop.time()
        for y in range(0, len(high), BLOCK):
            await asyncio.sleep(max(0.0, start + (y + BLOCK) / lines_per_s - loop.time()))
            await strip.feed_async(high[y : y + BLOCK], low[y : y + BLOCK])
        t0 = time.perf_counter()
        strips_left = len(det.tile_grid(high.shape)[0]) - strip.strips_done + strip.strips_pending
        refused = content_problem(high, low)
        found = await strip.finish_async(deadline=loop.time() + 60)
        return {"seconds": time.perf_counter() - t0, "detections": len(found), "strips_left": strips_left,
                "refused": refused}


def summary(runs: list[dict], det: Detector, shape: tuple[int, int]) -> dict:
    ms = np.array([r["seconds"] for r in runs]) * 1e3
    ys, xs = det.tile_grid(shape)
    return {"shape": list(shape), "tiles": len(ys) * len(xs), "tiles_per_strip": len(xs),
            "strips_left_at_last_line": max(r["strips_left"] for r in runs),
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "detections": runs[0]["detections"], "repeats": len(runs)}


async def bench(det: Detector, scans: dict[str, Scan], repeats: int, lines_per_s: float) -> dict[str, dict]:
    runs: dict[str, list[dict]] = {name: [] for name in scans}
    async with InferencePool(workers=1, queue_per_station=256) as pool:
        for name, scan in scans.items():  # one warm-up each
            await stream_once(det, pool, scan, lines_per_s)
        for _ in range(repeats):  # interleaved, so that both share the machine's noise
            for name, scan in scans.items():
                runs[name].append(await stream_once(det, pool, scan, lines_per_s))
    return {name: summary(runs[name], det, scans[name].shape) for name in scans}


def table(res: dict) -> str:
    out = [f"model: {res['model']}", f"scans: {res['scans']}",
           f"lines/s {res['lines_per_s']:.0f}, block {BLOCK} lines, 1 onnxruntime thread, pool of 1, "
           f"tile {res['tile']} overlap {res['overlap']}",
           f"  {'scan':<10} {'shape':>12} {'tiles':>6} {'tiles/strip':>12} {'strips left':>12} "
           f"{'p50 ms':>8} {'p95 ms':>8} {'dets':>5}  guard"]
    for name, r in res["results"].items():
        shape = "x".join(map(str, r["shape"]))
        out.append(f"  {name:<10} {shape:>12} {r['tiles']:>6} {r['tiles_per_strip']:>12} "
                   f"{r['strips_left_at_last_line']:>12} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['detections']:>5}"
                   f"  {res['guard'][name]}")
    g = res["goal"]
    out.append(f"container / van last line -> verdict: p50 {g['ratio_p50']:.3f}, p95 {g['ratio_p95']:.3f} "
               f"(goal <= {GOAL}: {'met' if g['ratio_p50'] <= GOAL else 'missed'} at p50)")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="model package (default: cpe-gantry, else cpe-tiny)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--lines-per-s", type=float, default=1000.0, help="line rate of the simulated portal")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gantry_latency.json")
    args = ap.parse_args()
    model_dir, how, guarded = pick_model(args.model)
    det = load_detector(model_dir, intra_op_threads=1)
    scans = make_scans()
    guard = {name: (scan_problem(det.manifest, ScanFacts.of_meta(s.meta, s.shape), s.high, s.low) or "judged")
             if guarded else "bypassed" for name, s in scans.items()}
    results = asyncio.run(bench(det, scans, args.repeats, args.lines_per_s))
    res = {
        "model": how, "model_name": det.info.name, "model_version": det.info.version,
        "scans": "generator A (models.training.portal), seed 7 with contraband: tractor_40ft and van, resized to "
                 + ", ".join(f"{n} {h}x{w}" for n, (h, w) in SHAPES.items()),
        "lines_per_s": args.lines_per_s, "tile": list(det.tile_size), "overlap": det.overlap, "guard": guard,
        "results": results,
        "goal": {"ratio_p50": results["container"]["p50_ms"] / results["van"]["p50_ms"],
                 "ratio_p95": results["container"]["p95_ms"] / results["van"]["p95_ms"], "target": GOAL},
        "machine": f"{platform.machine()}  python {platform.python_version()}",
        "load_average": list(os.getloadavg()),
    }
    print(table(res))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
