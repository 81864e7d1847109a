"""The station pipeline under load, with sync and the officer screen active.

    .venv/bin/python bench/bench_pipeline.py [--seconds 20] [--rates 10,15,20]

One in-process station (real SQLite store, shipped model, shared inference pool, the sync
publisher to a real Mosquitto and hub, the web app with a signed-in officer following the live
SSE stream) inspects example baggage scans. Prints, side by side:
  - bare onnxruntime `session.run` per tile vs the pipeline's scan-end-to-verdict p50/p99 for a
    single-tile baggage scan (items one at a time);
  - sustained items per second at fixed arrival rates, with budget misses;
  - resident memory of the process.
Writes bench/results/pipeline.json. Never fails on a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central_sync.config import SyncConfig  # noqa: E402
from central_sync.publisher import Publisher  # noqa: E402
from central_sync.schema import ItemKind  # noqa: E402
from edge.auth import add_user  # noqa: E402
from edge.context import StationContext  # noqa: E402
from edge.demo import mosquitto_binary, write_broker_config  # noqa: E402
from edge.detector import Engine  # noqa: E402
from edge.events import EventBus  # noqa: E402
from edge.inspection import Inspector, Item  # noqa: E402
from edge.metrics import StationMetrics  # noqa: E402
from edge.stations.acquisition import WholeScan  # noqa: E402
from edge.store import Store, StoreWriter  # noqa: E402
from edge.web.app import create_app  # noqa: E402
from models.cli import default_model_dir  # noqa: E402
from models.pool import InferencePool  # noqa: E402
from models.runtime import load_detector  # noqa: E402
from models.scan import load_scan  # noqa: E402

OUT = ROOT / "bench" / "results" / "pipeline.json"
BUDGET_MS = 1000.0
MISSES = ("budget_missed", "deadline_unreachable", "overload")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb() -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


async def officer_stream(port: int, stop: asyncio.Event, seen: list[float]) -> None:
    """A signed-in officer's browser following the live stream (what the screen does)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=None) as client:
        r = await client.post("/api/signin", json={"badge": "1A2B3C4D5E", "pin": "1234"})
        r.raise_for_status()
        async with client.stream("GET", "/api/stream") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    seen.append(time.perf_counter())
                if stop.is_set():
                    return


async def one_at_a_time(inspector: Inspector, scans: list, n: int, detector=None) -> tuple[list[float], list[float]]:
    """Items one after another; with `detector`, a bare session.run of one tile after each item,
    so that both sets of figures see the same machine state."""
    after_scan, bare = [], []
    for i in range(n):
        rec = await inspector.inspect(Item(f"seq-{i}", ItemKind.BAGGAGE), WholeScan(scans[i % len(scans)]))
        after_scan.append(rec.latencies_ms["detect"] + rec.latencies_ms.get("decide", 0.0))
        if detector is not None:
            bare.append(await asyncio.to_thread(bare_run_ms, detector))
    return after_scan, bare


def bare_run_ms(detector) -> float:
    """One onnxruntime session.run on a 640x640 tile: the physical limit the pipeline is held to."""
    engine = detector._engine  # noqa: SLF001 - the bench measures the session itself
    tile = np.zeros((1, len(engine.manifest.input.channels), *engine.manifest.input.size), np.float32)
    t0 = time.perf_counter()
    engine.session.run(None, {engine.input_name: tile})
    return (time.perf_counter() - t0) * 1000


async def at_rate(inspector: Inspector, scans: list, rate: float, seconds: float) -> dict:
    """Items arrive every 1/rate s whatever happens (a belt does not wait); count what came of them."""
    records, tasks = [], []

    async def one(i: int) -> None:
        records.append(await inspector.inspect(Item(f"r{rate}-{i}", ItemKind.BAGGAGE),
                                               WholeScan(scans[i % len(scans)])))

    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        tasks.append(asyncio.create_task(one(i)))
        i += 1
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    missed = sum(r.reason in MISSES for r in records)
    return {"offered_per_s": rate, "items": len(records), "decided_per_s": round(len(records) / elapsed, 2),
            "budget_misses": missed, "miss_pct": round(100 * missed / max(len(records), 1), 3),
            "p99_scan_end_to_verdict_ms": round(float(np.percentile(
                [r.latencies_ms["detect"] + r.latencies_ms.get("decide", 0) for r in records], 99)), 1)}


async def run(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    broker_port, hub_http, web_port = free_port(), free_port(), free_port()
    broker = subprocess.Popen([mosquitto_binary(), "-c", str(write_broker_config(tmp, broker_port))],
                              stderr=subprocess.DEVNULL)
    hub = subprocess.Popen([sys.executable, "-m", "central_sync.hub.cli", "run", "--db", str(tmp / "hub.sqlite3"),
                            "--broker-port", str(broker_port), "--http-port", str(hub_http)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return await _measure(args, tmp, broker_port, web_port)
    finally:
        for proc in (hub, broker):
            proc.terminate()
            proc.wait(10)


async def _measure(args: argparse.Namespace, tmp: Path, broker_port: int, web_port: int) -> dict:
    scans = [load_scan(p) for p in sorted((ROOT / "examples" / "scans").glob("bag_*.npz"))]
    detector = load_detector(args.model or default_model_dir(), intra_op_threads=1)
    store = Store(tmp / "station", station="bench-01")
    async with InferencePool(args.workers, 16) as pool, StoreWriter(store) as writer, \
            Publisher(SyncConfig(port=broker_port), "bench-01", store.db_path, store.scans_dir) as pub:
        await writer.call(add_user, store, "1A2B3C4D5E", "Bench Officer", "officer", "1234")
        events, metrics = EventBus(), StationMetrics()
        engine = Engine(detector, pool)
        ctx = StationContext("bench-01", "conveyor", "1", BUDGET_MS, writer, events, lambda: {}, None)
        server = uvicorn.Server(uvicorn.Config(create_app(ctx), port=web_port, log_level="warning"))
        web = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        stop, seen = asyncio.Event(), []
        follower = asyncio.create_task(officer_stream(web_port, stop, seen))

        async def nothing(*_):
            return None

        inspector = Inspector("bench-01", "1", BUDGET_MS, engine, writer, events, metrics, nothing, pub.notify)
        await one_at_a_time(inspector, scans, 5)  # warm caches
        single, bare = await one_at_a_time(inspector, scans, args.single, detector)
        loads = [await at_rate(inspector, scans, rate, args.seconds) for rate in args.rates]
        stop.set()
        server.should_exit = True
        await asyncio.gather(web, return_exceptions=True)
        follower.cancel()
        bare50, bare99 = (float(np.percentile(bare, q)) for q in (50, 99))
        p50, p99 = (float(np.percentile(single, q)) for q in (50, 99))
        return {
            "model": detector.info.name, "bare_tile_ms": {"p50": round(bare50, 2), "p99": round(bare99, 2)},
            "single_tile": {"n": len(single), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
                            "p50_over_bare": round(p50 / bare50, 2), "p99_over_bare": round(p99 / bare99, 2)},
            "load": loads, "officer_stream_events": len(seen), "sync": pub.stats().get("counters", {}),
            "rss_mb": rss_mb(), "workers": args.workers, "budget_ms": BUDGET_MS, "cpus": os.cpu_count(),
        }


def table(res: dict) -> str:
    s = res["single_tile"]
    lines = [f"model {res['model']}, {res['workers']} inference workers, {res['cpus']} CPUs, budget {res['budget_ms']} ms",
             f"{'':<46}{'p50':>10}{'p99':>10}",
             f"{'bare session.run, one 640x640 tile (ms)':<46}{res['bare_tile_ms']['p50']:>10.1f}"
             f"{res['bare_tile_ms']['p99']:>10.1f}",
             f"{'pipeline scan end -> verdict, one-tile bag (ms)':<46}{s['p50_ms']:>10.1f}{s['p99_ms']:>10.1f}",
             f"{'ratio (goal: p99 <= 1.2)':<46}{s['p50_over_bare']:>10.2f}{s['p99_over_bare']:>10.2f}",
             f"{'offered/s':>10}{'decided/s':>11}{'items':>7}{'misses':>8}{'miss %':>8}{'p99 ms':>9}"]
    lines += [f"{r['offered_per_s']:>10}{r['decided_per_s']:>11}{r['items']:>7}{r['budget_misses']:>8}"
              f"{r['miss_pct']:>8}{r['p99_scan_end_to_verdict_ms']:>9}" for r in res["load"]]
    lines.append(f"resident memory {res['rss_mb']['VmRSS']:.0f} MB (peak {res['rss_mb']['VmHWM']:.0f} MB; goal <= 300)")
    lines.append(f"officer screen received {res['officer_stream_events']} live events; sync {res['sync']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",")], default=[10.0, 15.0, 20.0])
    ap.add_argument("--single", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    res = asyncio.run(run(args))
    print(table(res))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2))
    print(f"\nwritten {OUT}")


if __name__ == "__main__":
    main()
