"""Risk bundle delivery benchmark: a 1 M-entry signed bundle from the hub to a station over a real Mosquitto.

Run:  .venv/bin/python bench/bench_risk_delivery.py [--entries 1000000] [--rules 500] [--declarations 20000]

Builds the bundle bench_risk.py builds (same generators), signs it and starts a Mosquitto with the
shipped limits (max_packet_size 2 MiB, Receive Maximum 64). The hub's RiskDelivery runs in its own
process (`hub` mode of this script): it waits for the station's status, offers the bundle and prints
the moment it did. The station runs in this process as the daemon composes it: RiskRuntime, its
RiskReceiver (chunks joined on paho's thread, the bundle opened and applied in a worker thread, kept
in data_dir/risk/, swapped in) and the sync publisher sending its status. Meanwhile the station's
event loop evaluates one item after another, as the inspection pipeline does, and records every gap
between two evaluations: the longest gap while the bundle is received and applied is the pause the
inspections see. The same loop runs for as long beforehand with no delivery, for comparison.

Figures: envelope size and chunks, publish -> applied seconds (goal <= 30 s), longest pipeline gap
during the delivery and the baseline's, evaluations made meanwhile, and where the time went
(joined, opened and applied, acknowledged at the hub). Prints them and writes
bench/results/risk_delivery.json. Never asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

import bench_risk  # noqa: E402  (the bundle generators)
from central_sync.config import BrokerConfig, SyncConfig  # noqa: E402
from central_sync.devtools import Mosquitto, open_station_db  # noqa: E402
from central_sync.publisher import Publisher  # noqa: E402
from central_sync.risk_delivery import CHUNK_BYTES, Offer, RiskAck, RiskDelivery  # noqa: E402
from edge.risk import RiskConfig, RiskReceiver, RiskRuntime  # noqa: E402
from risk.bundle import RandomPolicy, bundle_dict, encode_bundle  # noqa: E402
from risk.engine import Facts  # noqa: E402

STATION = "bench-1"
BROKER = "max_packet_size 2097152\nmax_inflight_messages 64"
RESULTS = ROOT / "bench" / "results" / "risk_delivery.json"


def build(n_entries: int, n_rules: int, n_decl: int, key: Ed25519PrivateKey) -> tuple[bytes, dict[str, float]]:
    """The signed envelope of a snapshot bundle, and how long building and signing took."""
    rng = random.Random(18)
    t0 = time.perf_counter()
    doc = bundle_dict(version=1, issued_at=time.time() - 60, expires_at=time.time() + 86400,
                      entries=bench_risk.entries(n_entries, rng), rules=bench_risk.rules(n_rules, rng),
                      declarations=bench_risk.declarations(n_decl, rng), random=RandomPolicy(rate=0.02))
    t1 = time.perf_counter()
    data = encode_bundle(doc, key, "risk-bench")
    return data, {"build_s": round(t1 - t0, 2), "sign_s": round(time.perf_counter() - t1, 2)}


# ---- hub process ---------------------------------------------------------------------------------
async def hub(port: int, envelope_path: Path) -> None:
    """Offer the bundle once the station is online; print "offered <t>" and "acked <t> <outcome>"."""
    data = envelope_path.read_bytes()
    acked = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_ack(station: str, ack: RiskAck, at: float) -> None:
        print(f"acked {time.time():.6f} {ack.outcome} {ack.code}", flush=True)
        loop.call_soon_threadsafe(acked.set)

    async with RiskDelivery(BrokerConfig(port=port), "hub-bench", on_ack, resend_s=300) as rd:
        await rd.link.ready()
        while STATION not in rd.core.stations:
            await asyncio.sleep(0.05)
        print(f"offered {time.time():.6f}", flush=True)
        rd.offer(Offer(1, data))
        await asyncio.wait_for(acked.wait(), 300)


# ---- station (this process) ----------------------------------------------------------------------
class Pipeline:
    """Evaluations back to back on the event loop, as inspections would run; every gap recorded."""

    def __init__(self, runtime: RiskRuntime) -> None:
        self.runtime = runtime
        self.gaps: list[tuple[float, float]] = []  # (at, gap seconds)
        self.count = 0
        self.facts = [Facts(item_id=f"item-{i}", at=time.time(), identities=(("plate", bench_risk.value("plate", i)),),
                            station_id=STATION, station_kind="gantry", detector_verdict="clear") for i in range(1000)]

    async def run(self, stop: asyncio.Event) -> None:
        last = time.perf_counter()
        while not stop.is_set():
            self.runtime.evaluate(self.facts[self.count % len(self.facts)])
            self.count += 1
            await asyncio.sleep(0)
            now = time.perf_counter()
            self.gaps.append((now, now - last))
            last = now

    def longest(self, since: float, until: float) -> float:
        return max((g for at, g in self.gaps if since <= at <= until), default=0.0)

    def longest_at(self, since: float, until: float) -> float:
        """When the longest gap ended, in seconds after `since`."""
        at, _ = max(((a, g) for a, g in self.gaps if since <= a <= until), key=lambda x: x[1], default=(since, 0.0))
        return at - since


async def station(port: int, tmp: Path, key: Ed25519PrivateKey, envelope_path: Path, baseline_s: float) -> dict[str, Any]:
    pub = tmp / "risk-bench.pub"
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    runtime = RiskRuntime.start(STATION, RiskConfig(keys={"risk-bench": pub}, seed="bench"), tmp / "data")
    open_station_db(tmp / "station.db").close()
    pipeline, stop = Pipeline(runtime), asyncio.Event()
    loop_task = asyncio.create_task(pipeline.run(stop))
    t_base = time.perf_counter()
    await asyncio.sleep(baseline_s)
    baseline = pipeline.longest(t_base, time.perf_counter())
    base_count = pipeline.count
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "hub", "--port", str(port),
                                                 "--envelope", str(envelope_path), stdout=subprocess.PIPE)
    sync = SyncConfig(port=port, status_period_s=1.0)
    async with RiskReceiver(BrokerConfig(port=port), STATION, runtime) as rx, \
            Publisher(sync, STATION, tmp / "station.db", tmp / "scans", extra_status=runtime.status):
        await rx.link.ready()
        assert child.stdout is not None
        offered = float((await _line(child.stdout, b"offered"))[1])
        t_offered = time.perf_counter() - (time.time() - offered)
        count_at_offer = pipeline.count
        while runtime.version != 1 and not any(k.startswith("refused") for k in runtime.counters):
            await asyncio.sleep(0.01)
        applied = time.time()
        t_applied = time.perf_counter()
        acked_line = [w.decode() for w in await _line(child.stdout, b"acked")]
        await child.wait()
    stop.set()
    await loop_task
    return {"publish_to_applied_s": round(applied - offered, 2),
            "publish_to_acked_at_hub_s": round(float(acked_line[1]) - offered, 2), "ack": acked_line[2],
            "longest_pipeline_gap_during_delivery_ms": round(pipeline.longest(t_offered, t_applied) * 1000, 1),
            "longest_pipeline_gap_baseline_ms": round(baseline * 1000, 1), "baseline_s": baseline_s,
            "longest_gap_ended_after_publish_s": round(pipeline.longest_at(t_offered, t_applied), 2),
            "gaps_over_100ms_during_delivery": sum(1 for a, g in pipeline.gaps if t_offered <= a <= t_applied and g > 0.1),
            "station_open_s": runtime.timing.get("open_s"), "station_apply_s": runtime.timing.get("apply_s"),
            "evaluations_during_delivery": pipeline.count - count_at_offer,
            "evaluations_per_s_baseline": round(base_count / baseline_s),
            "station_counters": dict(runtime.counters), "applied_version": runtime.version}


async def _line(stream: asyncio.StreamReader, word: bytes) -> list[bytes]:
    """The words of the hub's next line starting with `word` (its log lines are skipped)."""
    while line := await stream.readline():
        if line.startswith(word + b" "):
            return line.split()
    raise RuntimeError(f"the hub process ended before printing {word.decode()!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode")
    hub_ap = sub.add_parser("hub")
    hub_ap.add_argument("--port", type=int, required=True)
    hub_ap.add_argument("--envelope", type=Path, required=True)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--rules", type=int, default=500)
    ap.add_argument("--declarations", type=int, default=20_000)
    ap.add_argument("--baseline-s", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.mode == "hub":
        asyncio.run(hub(args.port, args.envelope))
        return
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data, timing = build(args.entries, args.rules, args.declarations, key)
        envelope_path = tmp / "bundle.cperb"
        envelope_path.write_bytes(data)
        print(f"bundle: {args.entries} entries, {args.rules} rules, {args.declarations} declarations, "
              f"{len(data) / 1e6:.1f} MB signed ({-(-len(data) // CHUNK_BYTES)} chunks of {CHUNK_BYTES // 1024} KiB); "
              f"built in {timing['build_s']} s, signed in {timing['sign_s']} s")
        with Mosquitto(tmp / "broker", BROKER) as broker:
            figures = asyncio.run(station(broker.port, tmp, key, envelope_path, args.baseline_s))
    result = {"entries": args.entries, "rules": args.rules, "declarations": args.declarations,
              "envelope_bytes": len(data), "chunks": -(-len(data) // CHUNK_BYTES), "chunk_bytes": CHUNK_BYTES,
              **timing, **figures, "goal_publish_to_applied_s": 30.0,
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
              "command": "python bench/bench_risk_delivery.py " + " ".join(sys.argv[1:])}
    print(f"publish -> applied: {figures['publish_to_applied_s']} s (goal <= 30 s); ack at the hub after "
          f"{figures['publish_to_acked_at_hub_s']} s ({figures['ack']})")
    print(f"station: open (verify, inflate, parse) {figures['station_open_s']} s, apply (index) "
          f"{figures['station_apply_s']} s; longest gap ended {figures['longest_gap_ended_after_publish_s']} s after "
          f"the publish, {figures['gaps_over_100ms_during_delivery']} gaps over 100 ms")
    print(f"longest pipeline gap: {figures['longest_pipeline_gap_during_delivery_ms']} ms during the delivery, "
          f"{figures['longest_pipeline_gap_baseline_ms']} ms without; {figures['evaluations_during_delivery']} "
          f"evaluations meanwhile")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
