"""Stage latencies recorded by running stations (e.g. the demo), p50/p99 per station and stage.

    .venv/bin/python bench/stage_latencies.py var/demo/*/station.db

Prints a table and writes bench/results/stage_latencies.json. Reads records only: it measures
what the stations measured on themselves (every record carries its per-stage latencies).
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "stage_latencies.json"


def station_figures(db: Path) -> tuple[str, dict[str, dict[str, float]], dict[str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = [json.loads(r[0]) for r in conn.execute("SELECT record FROM inspections ORDER BY seq")]
    stages: dict[str, list[float]] = defaultdict(list)
    verdicts: dict[str, int] = defaultdict(int)
    for rec in rows:
        verdicts[f"{rec['verdict']}/{rec['reason']}"] += 1
        for stage, ms in rec["latencies_ms"].items():
            stages[stage].append(ms)
        after_scan = sum(rec["latencies_ms"].get(s, 0.0) for s in ("detect", "decide"))
        stages["scan_end_to_verdict"].append(after_scan)
    figures = {s: {"n": len(v), "p50_ms": float(np.percentile(v, 50)), "p99_ms": float(np.percentile(v, 99))}
               for s, v in stages.items()}
    station = rows[0]["station"] if rows else db.parent.name
    return station, figures, dict(verdicts)


def main(paths: list[str]) -> None:
    results = {}
    print(f"{'station':<14}{'stage':<22}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}")
    for path in paths:
        station, figures, verdicts = station_figures(Path(path))
        results[station] = {"stages": figures, "verdicts": verdicts}
        for stage, f in figures.items():
            print(f"{station:<14}{stage:<22}{f['n']:>6}{f['p50_ms']:>10.1f}{f['p99_ms']:>10.1f}")
        print(f"{station:<14}verdicts: {verdicts}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"\nwritten {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
