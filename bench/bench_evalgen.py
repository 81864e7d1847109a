"""Generator B speed (issue 16): seconds per scan by vehicle type on one core, and scans per minute.

Run:  PYTHONPATH=. .venv/bin/python bench/bench_evalgen.py [--seeds 5]

The goal is a 3,000 × 900 scan in about 2 s on one core; the container rigs are that size. The
first scan of each portal builds its lookup tables (about 0.1 s), reported apart as `warm_up_s`.
Writes bench/results/evalgen.json. Never asserts.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.evalgen import VEHICLES, alt_portal_scan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    for source_seed in range(8):  # builds every portal's tables once
        alt_portal_scan(source_seed, scale=0.2)
    warm = time.perf_counter() - t0
    rows = {}
    for vehicle in VEHICLES:
        times, shapes = [], []
        for seed in range(args.seeds):
            t = time.perf_counter()
            scan = alt_portal_scan(1000 + seed, vehicle=vehicle)
            times.append(time.perf_counter() - t)
            shapes.append(scan.shape)
        rows[vehicle] = {"mean_s": round(sum(times) / len(times), 3), "max_s": round(max(times), 3),
                         "mean_lines": round(sum(s[0] for s in shapes) / len(shapes)),
                         "mean_pixels": round(sum(s[1] for s in shapes) / len(shapes))}
        r = rows[vehicle]
        print(f"{vehicle:14s} {r['mean_lines']:5d} × {r['mean_pixels']:4d}  mean {r['mean_s']:.3f} s  max {r['max_s']:.3f} s")
    out = {"warm_up_s": round(warm, 3), "per_vehicle": rows, "python": platform.python_version(),
           "machine": platform.machine(), "threads": 1}
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "evalgen.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"warm-up (lookup tables) {warm:.2f} s; written bench/results/evalgen.json")


if __name__ == "__main__":
    main()
