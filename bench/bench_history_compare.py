"""Time of the comparison with an earlier pass after the last line (issue 19 goals: a van ≤ 300 ms, a
40 ft container ≤ 1 s, one core).

Run:  PYTHONPATH=$PWD .venv/bin/python bench/bench_history_compare.py [--pairs 6]

The reference pass is prepared (log-attenuation, binning) when the identity is read, before the scan
ends, so it is timed apart; the figure after the last line is `compare` on the complete current scan:
registration, difference, noise statistics, suppression and change regions; with two references (the station's
usual case once a vehicle has passed twice), `compare_references`: both comparisons and the corroboration. Pairs are
repeated passes
of generator A (models.training.portal.passes), vans and 40 ft containers at the generator's own
pitches. One thread for numpy and OpenCV. Prints the median and worst wall-clock seconds and the
process CPU seconds (the fairer one-core figure on a shared machine; the load average is recorded) and writes
bench/results/history_compare.json (beside the evaluation's figures). Never asserts on a time.
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

import cv2  # noqa: E402

from models.history.compare import compare, compare_references, prepare  # noqa: E402
from models.training.portal import PortalSpec  # noqa: E402
from models.training.portal.passes import Pass, portal_pass  # noqa: E402


def timed(vehicle: str, seeds: range) -> dict[str, Any]:
    after, cpu, before, shapes, two, two_cpu = [], [], [], [], [], []
    for seed in seeds:
        spec = PortalSpec(vehicle=vehicle, suspect=False)
        ref_scan, cur = portal_pass(seed, Pass(0), spec), portal_pass(seed, Pass(1, changes=("added_steel",)), spec)
        t0 = time.perf_counter()
        ref = prepare(ref_scan)
        t1, c1 = time.perf_counter(), time.process_time()
        compare(cur, ref)
        t2, c2 = time.perf_counter(), time.process_time()
        before.append(t1 - t0)
        after.append(t2 - t1)
        cpu.append(c2 - c1)
        shapes.append(list(cur.shape))
        second = prepare(portal_pass(seed, Pass(2), spec))
        t3, c3 = time.perf_counter(), time.process_time()
        compare_references(cur, [ref, second])
        two.append(time.perf_counter() - t3)
        two_cpu.append(time.process_time() - c3)
    return {"after_last_line_median_s": round(statistics.median(after), 3), "after_last_line_max_s": round(max(after), 3),
            "cpu_median_s": round(statistics.median(cpu), 3), "cpu_max_s": round(max(cpu), 3),
            "two_references_median_s": round(statistics.median(two), 3), "two_references_max_s": round(max(two), 3),
            "two_references_cpu_median_s": round(statistics.median(two_cpu), 3),
            "two_references_cpu_max_s": round(max(two_cpu), 3),
            "prepare_reference_median_s": round(statistics.median(before), 3), "shapes": shapes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    seeds = range(2000, 2000 + args.pairs)
    timed("van", range(1))                                  # caches and tables warm
    out: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "threads": 1,
                           "load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
                           "van": timed("van", seeds), "container_40ft": timed("tractor_40ft", seeds),
                           "goals_s": {"van": 0.3, "container_40ft": 1.0}}
    for name in ("van", "container_40ft"):
        r = out[name]
        print(f"{name}: after the last line median {r['after_last_line_median_s']} s, worst {r['after_last_line_max_s']} s"
              f" (goal {out['goals_s'][name]} s), CPU time median {r['cpu_median_s']} s, worst {r['cpu_max_s']} s;"
              f" reference prepared in {r['prepare_reference_median_s']} s; with two references median"
              f" {r['two_references_median_s']} s, worst {r['two_references_max_s']} s (CPU {r['two_references_cpu_median_s']}"
              f" s, worst {r['two_references_cpu_max_s']} s)")
    path = ROOT / "bench" / "results" / "history_compare.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, "latency": out}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
