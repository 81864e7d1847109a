"""Render speed of generator A's portal scans (issue 16 goal: a 3,000 × 900 scan in ≲ 1.5 s on one core).

Run:  PYTHONPATH=$PWD .venv/bin/python bench/bench_portal_render.py [--scans 8]

Renders 40 ft container scans forced to about 3,000 lines × 900 pixels (6 mm pixels) and vans, one
thread, prints seconds per scan (median and worst) and writes bench/results/portal_render.json.
Never asserts; the figure depends on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.training.portal import PortalSpec, portal_scan  # noqa: E402


def timed(seeds: range, spec: PortalSpec) -> dict:
    times, shapes = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        scan = portal_scan(seed, spec)
        times.append(time.perf_counter() - t0)
        shapes.append(list(scan.shape))
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3), "shapes": shapes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=8)
    args = parser.parse_args()
    portal_scan(0, PortalSpec(vehicle="van"))  # cross-section tables and caches warm
    portal_scan(0, PortalSpec(vehicle="tractor_40ft"))
    seeds = range(1000, 1000 + args.scans)
    out: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "threads": 1,
           "container_40ft_6mm": timed(seeds, PortalSpec(vehicle="tractor_40ft", cargo="dense", suspect=True,
                                                          pixel_mm=6.0)),
           "van": timed(seeds, PortalSpec(vehicle="van", suspect=True))}
    for name in ("container_40ft_6mm", "van"):
        r = out[name]
        mean_px = statistics.mean(h * w for h, w in r["shapes"]) / 1e6
        print(f"{name}: median {r['median_s']} s, worst {r['max_s']} s per scan, {mean_px:.2f} Mpixels on average")
    path = ROOT / "bench" / "results" / "portal_render.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
