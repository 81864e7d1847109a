"""LLRP benchmark: codec decode rate (one core), and the client against the simulator over local TCP.

Run:  .venv/bin/python bench/bench_llrp.py [--seconds 3] [--tags 200]

Prints figures and writes bench/results/llrp.json. Never asserts on time.

    decode      RO_ACCESS_REPORT messages of 1 and of 50 tags (EPC-96, antenna, RSSI, timestamps, TID read)
                decoded per second by LlrpDecoder, in 64 KiB chunks
    ingest      tag reads per second the client takes from the simulator with `--tags` tags in the field
    first read  time from a tag entering the simulated field to the client's TagSeen (median, p95), with
                the simulator reading every 20 ms: the client's share is what exceeds that period
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.rfid import LlrpConfig, TagSeen, open_reader  # noqa: E402
from drivers.rfid.llrp import LlrpReader  # noqa: E402
from drivers.rfid.llrp.codec import LlrpDecoder, RoAccessReport, encode  # noqa: E402
from drivers.rfid.llrp.params import OpRead, TagReport  # noqa: E402

READ_MS = 20


def report(n_tags: int, msg_id: int) -> bytes:
    tags = tuple(TagReport(i.to_bytes(12), True, 1, 1 + i % 4, -50 - i % 30, 1_700_000_000_000_000,
                           1_700_000_000_500_000, 3, 1, (OpRead(1, 0, (0xE280 << 80 | i).to_bytes(12)),))
                 for i in range(n_tags))
    return encode(RoAccessReport(tags, msg_id))


def decode_rate(n_tags: int, seconds: float) -> dict[str, float]:
    """Messages and tags decoded per second, the stream fed in 64 KiB chunks."""
    stream = b"".join(report(n_tags, i) for i in range(max(1, 2000 // n_tags)))
    chunks = [stream[i:i + 65536] for i in range(0, len(stream), 65536)]
    messages, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        decoder = LlrpDecoder()
        for chunk in chunks:
            messages += len(decoder.feed(chunk))
    elapsed = time.perf_counter() - t0
    return {"messages_per_s": messages / elapsed, "tags_per_s": messages * n_tags / elapsed,
            "bytes_per_message": len(stream) / max(1, 2000 // n_tags)}


async def ingest(n_tags: int, seconds: float) -> dict[str, float]:
    """Reads per second through the client with `n_tags` tags in the field of two antennas."""
    cfg = LlrpConfig(kind="llrp", antennas=(1, 2), sim={"read_ms": READ_MS})
    async with open_reader(cfg, "bench") as reader:
        assert isinstance(reader, LlrpReader) and reader.sim is not None
        while not reader.link_ok:
            await asyncio.sleep(0.01)
        count = [0]

        async def pump() -> None:
            async for _ in reader.reads():
                count[0] += 1

        task = asyncio.create_task(pump())
        for i in range(n_tags):
            reader.sim.present(f"{i:024X}", f"E280{i:020X}", antenna=1 + i % 2, seconds=seconds + 5)
        await asyncio.sleep(0.5)
        start, t0 = count[0], time.perf_counter()
        await asyncio.sleep(seconds)
        rate = (count[0] - start) / (time.perf_counter() - t0)
        task.cancel()
    return {"reads_per_s": rate, "offered_per_s": n_tags * 1000 / READ_MS}


async def first_read(samples: int) -> dict[str, float]:
    """Tag enters the field -> TagSeen at the client (the simulator reads every READ_MS)."""
    cfg = LlrpConfig(kind="llrp", antennas=(1,), removal_after_ms=100, sim={"read_ms": READ_MS})
    delays = []
    async with open_reader(cfg, "bench") as reader:
        assert isinstance(reader, LlrpReader) and reader.sim is not None
        while not reader.link_ok:
            await asyncio.sleep(0.01)
        events = reader.events()
        for i in range(samples):
            t0 = asyncio.get_running_loop().time()
            reader.sim.present(f"{i:024X}", f"E281{i:020X}", seconds=0.05)
            async for ev in events:
                if isinstance(ev, TagSeen):
                    delays.append((ev.t - t0) * 1000)
                    break
            await asyncio.sleep(0.2)
    delays.sort()
    return {"median_ms": statistics.median(delays), "p95_ms": delays[int(0.95 * (len(delays) - 1))],
            "samples": len(delays), "sim_read_period_ms": READ_MS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--tags", type=int, default=200)
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args()
    results = {"decode_1_tag": decode_rate(1, args.seconds), "decode_50_tags": decode_rate(50, args.seconds),
               "ingest": asyncio.run(ingest(args.tags, args.seconds)),
               "first_read": asyncio.run(first_read(args.samples)),
               "machine": platform.platform(), "python": platform.python_version()}
    for name, figures in results.items():
        if isinstance(figures, dict):
            print(f"{name:16s} " + "  ".join(f"{k}={v:,.1f}" for k, v in figures.items()))
    out = ROOT / "bench" / "results" / "llrp.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    main()
