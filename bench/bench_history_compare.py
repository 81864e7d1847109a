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
process CPU seconds (the fairer one-core figure on a shared machine; the load average is recorded), each pair's
figure the median of --repeat runs (the slowest single run is printed too), and writes
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


def clocked(work: Any, repeat: int) -> tuple[float, float, float]:
    """The median wall-clock and CPU seconds of `repeat` runs of work(), and the slowest run's wall-clock."""
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu), max(wall)


def timed(vehicle: str, seeds: range, repeat: int = 1) -> dict[str, Any]:
    one: list[tuple[float, float, float]] = []
    two: list[tuple[float, float, float]] = []
    before, shapes = [], []
    for seed in seeds:
        spec = PortalSpec(vehicle=vehicle, suspect=False)
        ref_scan, cur = portal_pass(seed, Pass(0), spec), portal_pass(seed, Pass(1, changes=("added_steel",)), spec)
        t0 = time.perf_counter()
        ref = prepare(ref_scan)
        before.append(time.perf_counter() - t0)
        shapes.append(list(cur.shape))
        second = prepare(portal_pass(seed, Pass(2), spec))
        one.append(clocked(lambda: compare(cur, ref), repeat))
        two.append(clocked(lambda: compare_references(cur, [ref, second]), repeat))

    def figures(runs: list[tuple[float, float, float]], name: str) -> dict[str, float]:
        return {f"{name}median_s": round(statistics.median(r[0] for r in runs), 3),
                f"{name}max_s": round(max(r[0] for r in runs), 3),
                f"{name}cpu_median_s": round(statistics.median(r[1] for r in runs), 3),
                f"{name}cpu_max_s": round(max(r[1] for r in runs), 3),
                f"{name}slowest_run_s": round(max(r[2] for r in runs), 3)}

    return {**figures(one, "after_last_line_"), **figures(two, "two_references_"), "repeat": repeat,
            "prepare_reference_median_s": round(statistics.median(before), 3), "shapes": shapes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pair (its median is its figure)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    seeds = range(2000, 2000 + args.pairs)
    timed("van", range(1))                                  # caches and tables warm
    out: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "threads": 1,
                           "load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
                           "van": timed("van", seeds, args.repeat),
                           "container_40ft": timed("tractor_40ft", seeds, args.repeat),
                           "goals_s": {"van": 0.3, "container_40ft": 1.0}}
    for name in ("van", "container_40ft"):
        r = out[name]
        print(f"{name}: after the last line median {r['after_last_line_median_s']} s, worst pair"
              f" {r['after_last_line_max_s']} s (goal {out['goals_s'][name]} s; CPU {r['after_last_line_cpu_median_s']} s,"
              f" worst {r['after_last_line_cpu_max_s']} s; slowest single run {r['after_last_line_slowest_run_s']} s);"
              f" with two references median {r['two_references_median_s']} s, worst pair {r['two_references_max_s']} s"
              f" (CPU {r['two_references_cpu_median_s']} s, worst {r['two_references_cpu_max_s']} s; slowest single run"
              f" {r['two_references_slowest_run_s']} s); reference prepared in {r['prepare_reference_median_s']} s")
    path = ROOT / "bench" / "results" / "history_compare.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**old, "latency": out}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
