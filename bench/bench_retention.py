"""Retention bench: how fast the hub (SQLite, and PostgreSQL when reachable) and a station prune by the policy,
and what the figures the control room shows cost. Prints records/s and ms, writes bench/results/retention.json.

Run:  .venv/bin/python bench/bench_retention.py [--records 20000] [--pg postgresql://127.0.0.1:5432/test]

Records are a tenth suspect, half past the clear days; a hundred vehicles are under a plate hold. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "edge")]

import psycopg  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from central_sync import protocol as p  # noqa: E402
from central_sync import retention as r  # noqa: E402
from central_sync.devtools import make_record  # noqa: E402
from central_sync.hub import retention as hub_retention  # noqa: E402
from central_sync.hub.ingest import Ingestor  # noqa: E402
from central_sync.hub.store import open_store  # noqa: E402
from central_sync.schema import Identity, InspectionRecord, Verdict  # noqa: E402
from edge.store import Store, StoreLimits  # noqa: E402

POLICY = r.RetentionPolicy(clear_days=30, suspect_days=365, manual_days=365)
DAY = 86400.0


def records(n: int, now: float) -> list[InspectionRecord]:
    out = []
    for i in range(1, n + 1):
        rec = make_record("g1", i, Verdict.SUSPECT if i % 10 == 0 else Verdict.CLEAR)
        at = rec.decided_at + timedelta(seconds=now - (60 if i % 2 else 10) * DAY - rec.decided_at.timestamp() + i)
        plate = Identity(kind="plate", value=f"HK{i % 1000:04d}", source="cam", status="read")
        out.append(rec.model_copy(update={"decided_at": at, "started_at": at, "identities": [plate]}))
    return out


def hub(url: str, recs: list[InspectionRecord], now: float) -> dict:
    store = open_store(url)
    hub_retention.migrate(store)
    ing = Ingestor(store, "bench", lambda t, b: None)
    for i in range(0, len(recs), 500):
        ing.handle([(p.topic("g1", "inspection"), p.encode_envelope("g1", "inspection", k, rec.seq, rec.id,
                                                                     rec.to_json().encode(), 0.0))
                    for k, rec in enumerate(recs[i:i + 500], start=i)])
    hub_retention.set_policy(store, POLICY, "bench", "bench")
    for v in range(100):
        hub_retention.place_hold(store, "plate", f"HK{v:04d}", "bench", "bench")
    t0 = time.perf_counter()
    fig = hub_retention.figures(store, now)
    figures_ms = (time.perf_counter() - t0) * 1000
    t0, deleted = time.perf_counter(), 0
    while (got := hub_retention.prune(store, now))["records"]:
        deleted += got["records"]
    elapsed = time.perf_counter() - t0
    left = store.query("SELECT count(*) FROM records")[0][0]
    store.close()
    return {"records": len(recs), "deleted": deleted, "left": left, "planned": fig["next_prune"]["records"],
            "prune_s": round(elapsed, 2), "records_per_s": round(deleted / elapsed) if elapsed else None,
            "figures_ms": round(figures_ms, 1)}


def station(workdir: Path, recs: list[InspectionRecord], now: float) -> dict:
    key = Ed25519PrivateKey.generate()
    with Store(workdir / "station", StoreLimits(reserve_bytes=0)) as s:
        for rec in recs:
            s.commit(rec, scan_stored=False)
        s.conn.execute("DELETE FROM outbox")
        holds = [r.Hold(kind="plate", value=f"HK{v:04d}") for v in range(100)]
        s.retention.receive(key.public_key(), r.sign(key, r.new_state(1, POLICY, holds, [], now)))
        t0 = time.perf_counter()
        fig = s.figures(now)
        figures_ms = (time.perf_counter() - t0) * 1000
        t0, rounds = time.perf_counter(), 0
        while s.prunable(now):
            s.prune(now)
            rounds += 1
        elapsed = time.perf_counter() - t0
        return {"records": len(recs), "deleted": s.counters.pruned_records, "left": s.count(), "rounds": rounds,
                "planned_first_round": fig["next_prune"], "prune_s": round(elapsed, 2),
                "records_per_s": round(s.counters.pruned_records / elapsed) if elapsed else None,
                "figures_ms": round(figures_ms, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--pg", default="postgresql://127.0.0.1:5432/test")
    args = ap.parse_args()
    now = make_record("g1", 1).decided_at.timestamp() + 1000 * DAY
    recs = records(args.records, now)
    out: dict = {"host": platform.node(), "python": platform.python_version()}
    with tempfile.TemporaryDirectory() as tmp:
        out["hub_sqlite"] = hub(str(Path(tmp) / "hub.db"), recs, now)
        out["station"] = station(Path(tmp), recs, now)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
            try:
                out["hub_postgresql"] = hub(f"{args.pg}?options=-csearch_path%3D{schema}", recs, now)
            finally:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    except psycopg.OperationalError as exc:
        out["hub_postgresql"] = f"skipped: {exc}"
    for name, fig in out.items():
        print(f"{name}: {fig}")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "retention.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
