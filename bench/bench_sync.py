"""Sync benchmark: backlog drain vs raw paho QoS 1, alert latency while draining, hub ingest 1 vs 2.

Run:  .venv/bin/python bench/bench_sync.py [--records 100000] [--ingest 20000] [--pg postgresql://127.0.0.1:5432/test]

Starts its own Mosquitto (Receive Maximum 64) and hub processes, uses a throw-away PostgreSQL
schema. Prints a table next to the goals and writes bench/results/sync.json. Never asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central_sync import protocol as p  # noqa: E402
from central_sync.config import SyncConfig  # noqa: E402
from central_sync.devtools import Mosquitto, add_record, fill, make_record, open_station_db, outbox_rows  # noqa: E402
from central_sync.publisher import Publisher  # noqa: E402
from central_sync.schema import Verdict  # noqa: E402

BROKER = "max_inflight_messages 64\nmax_queued_messages 0\nmax_queued_bytes 0"
WINDOW = 64
BATCH = 100  # rows per batch message, the publisher's default batch_max_rows


def publish_all(port: int, client_id: str, items: list[tuple[str, bytes]]) -> float:
    """Publish QoS 1 from one thread that owns the client, window 64; returns seconds taken."""
    acked = [0]
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(WINDOW)
    pub.on_publish = lambda c, u, mid, rc, props: acked.__setitem__(0, acked[0] + 1)
    pub.connect("127.0.0.1", port)
    for _ in range(20):
        pub.loop(0.02)
    sent, total = 0, len(items)
    t0 = time.perf_counter()
    while acked[0] < total:
        while sent < total and sent - acked[0] < WINDOW:
            pub.publish(items[sent][0], items[sent][1], qos=1)
            sent += 1
        pub.loop(0.01)
    elapsed = time.perf_counter() - t0
    pub.disconnect()
    return elapsed


def raw_paho_rate(port: int, payload: bytes, count: int) -> float:
    """Messages/s of plain paho QoS 1 publishes, a shared-subscription subscriber attached as the hub would be."""
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub", protocol=mqtt.MQTTv5)
    sub.connect("127.0.0.1", port)
    sub.subscribe(f"$share/hub/{p.ROOT}/+/inspection", qos=1)
    sub.loop_start()
    elapsed = publish_all(port, "bench-raw", [(p.topic("raw", "inspection"), payload)] * count)
    sub.disconnect()
    sub.loop_stop()
    return count / elapsed


class HubProcs:
    def __init__(self, pg: str, port: int, workdir: Path) -> None:
        self.pg, self.port, self.workdir, self.procs = pg, port, workdir, []

    def start(self, n: int) -> None:
        for i in range(n):
            args = [sys.executable, "-m", "central_sync.hub.cli", "run", "--db", self.pg, "--broker-port", str(self.port),
                    "--http-port", "0", "--hub-id", f"bench-hub-{i}-{uuid.uuid4().hex[:4]}"]
            log = (self.workdir / f"hub{i}.log").open("ab")
            self.procs.append(subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum((self.workdir / f"hub{i}.log").read_text().count("hub.link_up") >= 2
                                                  for i in range(n)) < n:
            time.sleep(0.1)

    def signal(self, sig: int) -> None:
        for proc in self.procs:
            proc.send_signal(sig)

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        self.procs = []
        for log in self.workdir.glob("hub*.log"):
            log.unlink()


def pg_count(pg: str) -> int:
    with psycopg.connect(pg) as conn:
        return conn.execute("SELECT count(*) FROM records").fetchone()[0]


def pg_reset(pg: str) -> None:
    with psycopg.connect(pg) as conn:
        conn.execute("DROP TABLE IF EXISTS records, reviews, blobs, blob_chunks, stations")


async def drain(port: int, pg: str, workdir: Path, records: int) -> dict:
    """Drain a backlog through one hub; meanwhile enqueue an alert every 50 ms and time each."""
    db = workdir / "station.db"
    conn = open_station_db(db)
    fill(conn, "bench-1", 1, records, alert_every=0)
    alerts: dict[str, float] = {}
    stop = threading.Event()

    def alerter(pub: Publisher) -> None:
        c = open_station_db(db)
        seq = records + 1
        while not stop.wait(0.05):
            rec = make_record("bench-1", seq, Verdict.SUSPECT)
            alerts[rec.id] = time.time()
            add_record(c, rec)
            pub.notify()  # as the station daemon does after each commit
            seq += 1
        c.close()

    cfg = SyncConfig(port=port, max_inflight=WINDOW, max_unacked=2000, status_period_s=2.0)
    t0 = time.perf_counter()
    async with Publisher(cfg, "bench-1", db, workdir) as pub:
        thread = threading.Thread(target=alerter, args=(pub,), daemon=True)
        thread.start()
        while await asyncio.to_thread(outbox_rows, db) > len(alerts) * 2 + 2000:
            await asyncio.sleep(0.2)
        stop.set()
        while await asyncio.to_thread(outbox_rows, db):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
    total = records + len(alerts)
    with psycopg.connect(pg) as pc:
        rows = dict(pc.execute("SELECT id, committed_at FROM records WHERE is_alert=1").fetchall())
        n, distinct = pc.execute("SELECT count(*), count(DISTINCT seq) FROM records").fetchone()
    lat = sorted((rows[i] - t) * 1000 for i, t in alerts.items() if i in rows)
    conn.close()
    return {"records": records, "alerts_during_drain": len(alerts), "seconds": round(elapsed, 2),
            "rate_per_s": round(total / elapsed), "alert_p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
            "alert_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1) if lat else None,
            "hub_rows": n, "lost": total - distinct, "duplicates": n - distinct}


def ingest_payloads(messages: int, batch: int) -> list[tuple[str, bytes]]:
    """`messages` records from 8 stations, one per message (batch 1) or in batches as stations send them."""
    per_station: dict[str, list[bytes]] = {f"ing-{i}": [] for i in range(8)}
    for i in range(messages):
        station = f"ing-{i % 8}"
        rec = make_record(station, i // 8 + 1)
        per_station[station].append(p.encode_envelope(station, "inspection", i + 1, rec.seq, rec.id, rec.to_json().encode(), 0.0))
    out = []
    for station, envs in per_station.items():
        for j in range(0, len(envs), batch):
            part = envs[j:j + batch]
            out.append((p.topic(station, "inspection"), part[0]) if batch == 1 else (p.topic(station, "batch"), p.encode_batch(station, part)))
    return out


def ingest_rate(port: int, pg: str, workdir: Path, hubs: int, messages: int, batch: int) -> float:
    """Records/s committed to PostgreSQL by `hubs` processes from a pre-filled broker queue."""
    pg_reset(pg)
    procs = HubProcs(pg, port, workdir)
    procs.start(hubs)
    procs.signal(signal.SIGSTOP)
    publish_all(port, "bench-feed", ingest_payloads(messages, batch))
    t0 = time.perf_counter()
    procs.signal(signal.SIGCONT)
    while pg_count(pg) < messages and time.perf_counter() - t0 < 600:
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    procs.stop()
    return messages / elapsed


async def main_async(args: argparse.Namespace) -> dict:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.pg, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    pg = f"{args.pg}?options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp) / "broker", BROKER) as broker:
            work = Path(tmp)
            sample = make_record("raw", 1).to_json().encode()
            payload = p.encode_envelope("raw", "inspection", 1, 1, "x" * 40, sample, 0.0)
            raw = raw_paho_rate(broker.port, payload, args.records)
            hubs = HubProcs(pg, broker.port, work)
            hubs.start(1)
            try:
                drained = await drain(broker.port, pg, work, args.records)
            finally:
                hubs.stop()
            runs = {f"{n}x{b}": [] for b in (1, BATCH) for n in (1, 2)}
            for _ in range(args.rounds):  # alternate, so a burst of load elsewhere hits all alike
                for key in runs:
                    n, b = map(int, key.split("x"))
                    runs[key].append(ingest_rate(broker.port, pg, work, n, args.ingest, b))
            med = {k: statistics.median(v) for k, v in runs.items()}
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
    return {"raw_paho_qos1_per_s": round(raw), "drain": drained,
            "ingest_one_hub_per_s": round(med["1x1"]), "ingest_two_hubs_per_s": round(med["2x1"]),
            "ingest_one_hub_batched_per_s": round(med[f"1x{BATCH}"]), "ingest_two_hubs_batched_per_s": round(med[f"2x{BATCH}"]),
            "ingest_records": args.ingest, "ingest_rounds": args.rounds, "ingest_batch_rows": BATCH,
            "ingest_runs_per_s": {k: [round(x) for x in v] for k, v in runs.items()}}


def report(res: dict, args: argparse.Namespace) -> None:
    d = res["drain"]
    ratio = d["rate_per_s"] / res["raw_paho_qos1_per_s"]
    scale = res["ingest_two_hubs_per_s"] / res["ingest_one_hub_per_s"]
    scale_b = res["ingest_two_hubs_batched_per_s"] / res["ingest_one_hub_batched_per_s"]
    rows = [
        ("raw paho QoS 1 publish rate", f"{res['raw_paho_qos1_per_s']} msg/s", "reference"),
        (f"drain {d['records']} records (+{d['alerts_during_drain']} alerts)", f"{d['rate_per_s']} rec/s = {ratio:.0%} of raw", ">= 80 %"),
        ("alert latency p50 while draining", f"{d['alert_p50_ms']} ms", ""),
        ("alert latency p99 while draining", f"{d['alert_p99_ms']} ms", "< 500 ms"),
        ("drain lost / duplicates", f"{d['lost']} / {d['duplicates']}", "0 / 0"),
        (f"hub ingest to PostgreSQL, 1 process ({res['ingest_records']} rec, 1 per msg, median of {res['ingest_rounds']})",
         f"{res['ingest_one_hub_per_s']} rec/s", ""),
        ("hub ingest to PostgreSQL, 2 processes, 1 per msg", f"{res['ingest_two_hubs_per_s']} rec/s = {scale:.2f}x", ">= 1.7x"),
        (f"hub ingest to PostgreSQL, 1 process, {BATCH} per msg", f"{res['ingest_one_hub_batched_per_s']} rec/s", ""),
        (f"hub ingest to PostgreSQL, 2 processes, {BATCH} per msg", f"{res['ingest_two_hubs_batched_per_s']} rec/s = {scale_b:.2f}x", ">= 1.7x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'result':<32}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:<32}  {goal}")
    res.update(drain_vs_raw=round(ratio, 3), two_vs_one=round(scale, 3), two_vs_one_batched=round(scale_b, 3), machine=platform.node(), cpus=_cpus(),
               command=" ".join(sys.argv), ran_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    out = ROOT / "bench" / "results" / "sync.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


def _cpus() -> int:
    import os
    return os.cpu_count() or 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000, help="backlog size to drain (default 100000)")
    ap.add_argument("--ingest", type=int, default=20_000, help="records for each hub-ingest run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating 1-hub/2-hub ingest runs (median reported)")
    ap.add_argument("--pg", default="postgresql://127.0.0.1:5432/test")
    args = ap.parse_args()
    report(asyncio.run(main_async(args)), args)


if __name__ == "__main__":
    main()
