"""How long a vehicle's references take to reach the station (issue 19): they are asked for as soon as an
identity is read and must be in before the scan ends (a gantry scan lasts seconds).

Run:  PYTHONPATH=$PWD:$PWD/tests .venv/bin/python bench/bench_history_refs.py [--vehicles 2000] [--passes 5] [--pg URL]

A hub (SQLite, and PostgreSQL when --pg is given) holds `vehicles` × `passes` vehicle records written by the
real ingest path, one plate each, a mix of outcomes. Timed:
- `hub_answer_ms`: GET /api/history/plate/{plate} in process (passes and references, newest first);
- `station_fetch_ms`: the station's whole fetch over loopback HTTP from a uvicorn hub: the answer, one van
  scan downloaded and hash-checked, the cache written, the reference prepared for the comparison.
Prints medians and p95 and writes bench/results/history_refs.json. Never asserts on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hashlib  # noqa: E402

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from central_sync.devtools import free_port  # noqa: E402
from central_sync.hub import api_auth  # noqa: E402
from central_sync.hub.api import create_app  # noqa: E402
from central_sync.hub.store import HubStore, open_store  # noqa: E402
from central_sync.schema import Identity, Verdict  # noqa: E402
from edge.config import HistorySection  # noqa: E402
from edge.history import hub_client, open_history  # noqa: E402
from history_kit import ingest, vehicle_pass  # noqa: E402
from models.training.portal import PortalSpec  # noqa: E402
from models.training.portal.passes import Pass, portal_pass  # noqa: E402

VERDICTS = (Verdict.CLEAR, Verdict.CLEAR, Verdict.SUSPECT, Verdict.MANUAL, Verdict.CLEAR)


def plate(n: int) -> str:
    return f"AB {n:05d}"


def seed(store: HubStore, vehicles: int, passes: int, scan: bytes) -> None:
    """Every vehicle's passes; vehicle 0's clean passes carry the van scan (held by the hub)."""
    sha = hashlib.sha256(scan).hexdigest()
    batch = []
    for v in range(vehicles):
        for k in range(passes):
            verdict = VERDICTS[(v + k) % len(VERDICTS)]
            data = scan if v == 0 else f"scan {v} {k}".encode()
            batch.append(vehicle_pass(v * passes + k + 1, verdict, k + 1, data, plate=plate(v),
                                      review="false_alarm" if verdict == Verdict.SUSPECT else None))
        if len(batch) >= 1000:
            ingest(store, batch)
            batch = []
    ingest(store, batch, {sha: scan})


def percentile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "p95": round(percentile(values, 0.95), 2),
            "n": len(values)}


async def hub_answers(store: HubStore, vehicles: int, token_file: Path, rounds: int) -> list[float]:
    app = create_app(store, service_tokens=api_auth.ServiceTokens.load(token_file))
    token = (token_file.parent / "token").read_text()
    times = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(rounds):
            t0 = time.perf_counter()
            resp = await client.get(f"/api/history/plate/{plate(i * 7919 % vehicles)}")
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.text
    return times


async def station_fetches(store: HubStore, token_file: Path, work: Path, rounds: int) -> list[float]:
    app = create_app(store, service_tokens=api_auth.ServiceTokens.load(token_file))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    (work / "station-token").write_text((token_file.parent / "token").read_text())
    config = HistorySection(hub_url=f"http://127.0.0.1:{port}", token_file=work / "station-token", timeout_s=60)
    times = []
    try:
        async with hub_client(config) as client:
            for i in range(rounds):
                history = open_history(config, work / f"station-{i}", client)  # a cold cache each time
                ident = [Identity(kind="plate", value=plate(0))]
                t0 = time.perf_counter()
                history.prefetch(ident)
                await asyncio.gather(*history._fetches.values())
                times.append((time.perf_counter() - t0) * 1000)
                found = history.found(ident)
                assert found is not None and found.prepared
    finally:
        server.should_exit = True
        await task
    return times


async def run_backend(url: str, args: argparse.Namespace, scan: bytes, work: Path) -> dict[str, Any]:
    store = open_store(url)
    store.migrate()
    t0 = time.perf_counter()
    seed(store, args.vehicles, args.passes, scan)
    seeded_s = time.perf_counter() - t0
    token, line = api_auth.new_token("bench")
    (work / "tokens").write_text(line + "\n")
    (work / "token").write_text(token)
    answers = await hub_answers(store, args.vehicles, work / "tokens", args.rounds)
    fetches = await station_fetches(store, work / "tokens", work, args.fetches)
    store.close()
    return {"records": args.vehicles * args.passes, "seed_s": round(seeded_s, 1),
            "hub_answer_ms": summary(answers), "station_fetch_ms": summary(fetches)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vehicles", type=int, default=2000)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--fetches", type=int, default=20)
    ap.add_argument("--pg", default="", help="a PostgreSQL URL whose database the bench may fill (a fresh schema)")
    args = ap.parse_args()
    scan = portal_pass(2, Pass(0), PortalSpec(vehicle="van", suspect=False)).to_bytes()
    out: dict[str, Any] = {"bench": "history_refs", "machine": platform.machine(), "cpus": os.cpu_count(),
                           "load_avg": os.getloadavg()[0], "scan_bytes": len(scan)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        out["sqlite"] = asyncio.run(run_backend(str(work / "hub.db"), args, scan, work))
        if args.pg:
            out["postgresql"] = asyncio.run(run_backend(args.pg, args, scan, work))
    print(json.dumps(out, indent=1))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "history_refs.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
