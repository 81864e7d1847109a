"""Chaos and attack bench (issue 22): minutes of SIGKILLs of broker, hub and a station publisher while two honest
stations deliver and a third station's account attacks (items 1, 2, 6, 7, 8); prints lost / duplicated /
unexpected counts and the adversary's outcome per attack, writes bench/results/chaos.json.

Run:  .venv/bin/python bench/bench_chaos.py [--minutes 3] [--pg postgresql://127.0.0.1:5432/test | --sqlite]

Uses the harness of tests/central_sync/chaos_attack_kit.py (the short run is tests/central_sync/test_chaos_attack.py).
Item 7 (another client's id) is tried too: a takeover counts as landed. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "central_sync")]

from chaos_attack_kit import ChaosAttackRun, Plan  # noqa: E402


def run(args: argparse.Namespace, workdir: Path, hub_db: str) -> dict:
    plan = Plan(records=args.records, minutes=args.minutes, kill_every_s=args.kill_every, item7=True,
                drain_timeout_s=600.0)
    t0 = time.monotonic()
    with ChaosAttackRun(workdir, hub_db, plan) as chaos:
        chaos.chaos()
        chaos.settle()
        report = chaos.report()
    print(report.text())
    return {"backend": "sqlite" if args.sqlite else "postgresql", "minutes": args.minutes,
            "kill_every_s": args.kill_every, "elapsed_s": round(time.monotonic() - t0, 1), **report.as_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="how long the kills and the producers go on")
    ap.add_argument("--kill-every", type=float, default=8.0, help="seconds between two kills")
    ap.add_argument("--records", type=int, default=2000, help="backlog per honest station at the start")
    ap.add_argument("--pg", default="postgresql://127.0.0.1:5432/test",
                    help="PostgreSQL for the hub (a throw-away schema)")
    ap.add_argument("--sqlite", action="store_true", help="the hub on SQLite instead of PostgreSQL")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.sqlite:
            res = run(args, Path(tmp), str(Path(tmp) / "hub.db"))
        else:
            schema = f"chaos_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.pg, autocommit=True) as admin:
                admin.execute(f"CREATE SCHEMA {schema}")
                try:
                    res = run(args, Path(tmp), f"{args.pg}?options=-csearch_path%3D{schema}")
                finally:
                    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    res["machine"] = f"{platform.machine()} {platform.python_version()}"
    out = ROOT / "bench" / "results" / "chaos.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
