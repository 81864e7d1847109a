"""Gantry lane throughput (issue 16): vehicles decided per minute, verdict shares and how long the lane
waited for officers, read afterwards from a gantry station's database (its records and audit log).

Run:  .venv/bin/python bench/bench_gantry_lane.py [--db var/demo/gantry-01/station.db] [--queue 2]
                                                 [--minutes 10] [--json bench/results/gantry_lane.json]

A vehicle counts as decided when its way out is: a `clear` verdict releases it at once (the record's
decided_at); any other verdict waits for an officer (the demo officer included) until the first
lane.release / lane.search_bay audit entry that opened its gate or queued it. Vehicles per minute =
decided vehicles / the window from the first scan's start to the last decision (or the first
`--minutes` of it). "Officer wait" is the time at least one vehicle waited for an officer; "held"
is the time at least `--queue` vehicles did (a lower bound of the time the lane was full and held:
clear vehicles queued behind a waiting one are not counted). Never asserts.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tomllib
from collections import Counter
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "var" / "demo"


def _t(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def read(db: Path) -> tuple[list[dict], dict[str, float]]:
    """The records (oldest first) and, per record id, when an officer's decision let it go."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        records = [json.loads(r[0]) for r in conn.execute("SELECT record FROM inspections ORDER BY seq")]
        let_go: dict[str, float] = {}
        for obj, at, detail in conn.execute("SELECT object, at, detail FROM audit_log WHERE action IN"
                                            " ('lane.release', 'lane.search_bay') ORDER BY seq"):
            if json.loads(detail).get("result") in ("open", "queued"):
                let_go.setdefault(obj, _t(at))
    return records, let_go


def busy_s(intervals: list[tuple[float, float]], at_least: int) -> float:
    """Seconds during which at least `at_least` of the intervals overlap."""
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    total, depth, since = 0.0, 0, 0.0
    for t, step in edges:
        if depth >= at_least:
            total += t - since
        depth, since = depth + step, t
    return total


def measure(records: list[dict], let_go: dict[str, float], queue: int, minutes: float | None) -> dict:
    if not records:
        return {"vehicles": 0}
    start = min(_t(r["started_at"]) for r in records)
    end = start + minutes * 60 if minutes else None
    decided: dict[str, float] = {}
    waits: list[tuple[float, float]] = []
    for r in records:
        verdict_at = _t(r["decided_at"])
        at = verdict_at if r["verdict"] == "clear" else let_go.get(r["id"])
        if r["verdict"] != "clear":
            waits.append((verdict_at, at if at is not None else max([verdict_at, *let_go.values()])))
        if at is not None and (end is None or at <= end):
            decided[r["id"]] = at
    stop = end or max(decided.values(), default=start)
    window = max(stop - start, 1e-9)
    scanned = [r for r in records if end is None or _t(r["started_at"]) <= end]
    verdicts = Counter(r["verdict"] for r in scanned)
    reasons = Counter(r["reason"] for r in scanned)
    clipped = [(a, min(b, stop)) for a, b in waits if a < stop]
    return {"window_min": round(window / 60, 2), "vehicles_scanned": len(scanned), "vehicles_decided": len(decided),
            "decided_per_min": round(len(decided) / (window / 60), 2),
            "verdict_shares": {k: round(v / len(scanned), 3) for k, v in sorted(verdicts.items())},
            "reasons": dict(sorted(reasons.items())),
            "still_waiting": sum(1 for r in scanned if r["verdict"] != "clear" and r["id"] not in decided),
            "officer_wait_s": round(busy_s(clipped, 1), 1), "held_s_lower_bound": round(busy_s(clipped, queue), 1),
            "queue": queue}


def configured_queue(config: Path) -> int:
    try:
        return int(tomllib.loads(config.read_text()).get("gantry", {}).get("queue", 1))
    except OSError:
        return 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=DEMO / "gantry-01" / "station.db")
    ap.add_argument("--queue", type=int, default=None,
                    help="the lane's [gantry] queue (default: configs/gantry.toml beside the station's data dir)")
    ap.add_argument("--minutes", type=float, default=None, help="only the first N minutes from the first scan")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    queue = args.queue or configured_queue(args.db.parent.parent / "configs" / "gantry.toml")
    result = measure(*read(args.db), queue, args.minutes)
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"db": str(args.db), **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
