"""Inference benchmark: bare onnxruntime vs the detector pipeline, streaming line scans, memory.

Run:  .venv/bin/python bench/bench_inference.py [--model DIR] [--repeats 300] [--line-repeats 5]
                                               [--lines-per-s 2000] [--width 1024]

Prints a table and writes bench/results/inference.json. Never asserts on time. Uses the shipped
model (models/zoo/cpe-tiny, else the only package in the zoo) when present, else a test graph of
realistic cost (about 1 GMAC per 640x640 tile, models.testgraphs with backbone=True).
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.cli import default_model_dir  # noqa: E402
from models.errors import ManifestError  # noqa: E402
from models.pool import InferencePool  # noqa: E402
from models.runtime import Detector, load_detector  # noqa: E402
from models.scan import Scan, load_scan  # noqa: E402
from models.streaming import StripDetector  # noqa: E402

LINE_COUNTS = (2_000, 8_000, 16_000)
BLOCK = 32  # lines per delivery from the line scanner


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pick_model(tmp: Path, given: Path | None) -> tuple[Path, str]:
    """The given package, else the shipped model if there is one, else a realistic-cost test graph."""
    if given is not None:
        return given, f"model package {given}"
    try:
        d = default_model_dir()
        return d, f"shipped model {d.relative_to(ROOT)}"
    except ManifestError:
        from models.testgraphs import write_package

        d = write_package(tmp / "bench-graph", tile=640, backbone=True, name="bench-graph")
        return d, "test graph (models.testgraphs, backbone=True, ~1 GMAC/tile): no shipped model under models/zoo"


def baggage_scan() -> tuple[Scan, str]:
    paths = sorted((ROOT / "examples" / "scans").glob("bag_*.npz"))
    if paths:
        return load_scan(paths[-1]), str(paths[-1].relative_to(ROOT))
    from models.testgraphs import scatter

    high, low, _ = scatter(448, 512, 12, seed=1)
    return Scan(high, low), "synthetic 448x512"


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def bench_single_tile(det: Detector, scan: Scan, repeats: int) -> dict:
    """Bare session.run on the prepared tile vs detect() on the scan, interleaved to share the noise."""
    ys, xs = det.tile_grid(scan.shape)
    tensor = det.tile_tensor(scan.high, scan.low, ys[0], xs[0])
    feed = {det.session.get_inputs()[0].name: tensor}
    bare, pipe, own = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        det.session.run(None, feed)
        t1 = time.perf_counter()
        inside = det.stats()["session_run_seconds"]
        det.detect(scan)
        t2 = time.perf_counter()
        bare.append(t1 - t0)
        pipe.append(t2 - t1)
        own.append((t2 - t1) - (det.stats()["session_run_seconds"] - inside))
    return {
        "own_p50_ms": pct(own, 50) * 1e3, "own_p99_ms": pct(own, 99) * 1e3,
        "tiles": len(ys) * len(xs),
        "bare_p50_ms": pct(bare, 50) * 1e3, "bare_p99_ms": pct(bare, 99) * 1e3,
        "detect_p50_ms": pct(pipe, 50) * 1e3, "detect_p99_ms": pct(pipe, 99) * 1e3,
        "ratio_p50": pct(pipe, 50) / pct(bare, 50), "ratio_p99": pct(pipe, 99) / pct(bare, 99),
    }


def line_scan(scan: Scan, lines: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A long scan made of baggage scans side by side and end to end (no intermediate copies)."""
    out = []
    for src in (scan.high, scan.low):
        dst = np.empty((lines, width), np.uint16)
        h, w = src.shape
        for y in range(0, lines, h):
            for x in range(0, width, w):
                part = dst[y : y + h, x : x + w]
                part[:] = src[: part.shape[0], : part.shape[1]]
        out.append(dst)
    return out[0], out[1]


async def stream_once(det: Detector, pool: InferencePool, high, low, lines_per_s: float) -> tuple[float, int, int]:
    """Deliver lines in real time; seconds from the last line to the detections, and strips unfinished then."""
    loop = asyncio.get_running_loop()
    async with StripDetector(det, high.shape[1], pool=pool, station="gantry") as strip:
        start = loop.time()
        for y in range(0, len(high), BLOCK):
            due = start + (y + BLOCK) / lines_per_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            await strip.feed_async(high[y : y + BLOCK], low[y : y + BLOCK])
        t0 = loop.time()
        left = len(det.tile_grid(high.shape)[0]) - strip.strips_done + strip.strips_pending
        found = await strip.finish_async(deadline=t0 + 60)
        return loop.time() - t0, len(found), left


async def after_scan_once(det: Detector, pool: InferencePool, high, low) -> tuple[float, int]:
    loop = asyncio.get_running_loop()
    scan = Scan(high, low)
    t0 = loop.time()
    found = await pool.run("gantry", lambda: det.detect(scan), deadline=t0 + 600,
                           cost=det.estimate_seconds(scan.shape))
    return loop.time() - t0, len(found)


async def bench_lines(det: Detector, scan: Scan, width: int, lines_per_s: float, repeats: int) -> list[dict]:
    rows = []
    async with InferencePool(workers=1, queue_per_station=64) as pool:
        for n in LINE_COUNTS:
            high, low = line_scan(scan, n, width)
            stream = [await stream_once(det, pool, high, low, lines_per_s) for _ in range(repeats)]
            batch = [await after_scan_once(det, pool, high, low) for _ in range(repeats)]
            assert stream[0][1] == batch[0][1], "streamed and batch detections differ"
            xs = len(det.tile_grid(high.shape)[1])
            rows.append({
                "lines": n, "width": width, "tiles": int(np.prod([len(a) for a in det.tile_grid(high.shape)])),
                "streaming_ms": statistics.median(s[0] for s in stream) * 1e3,
                "streaming_tiles_after_last_line": max(s[2] for s in stream) * xs,
                "after_scan_ms": statistics.median(s for s, _ in batch) * 1e3,
                "detections": batch[0][1],
            })
    base = rows[0]["streaming_ms"]
    for r in rows:
        r["streaming_vs_2000"] = r["streaming_ms"] / base
    return rows


async def bench_throughput(det: Detector, scan: Scan, seconds: float, workers: int) -> dict:
    """Closed-loop items per second through the pool with `workers` workers (detector alone)."""
    loop = asyncio.get_running_loop()
    done = 0
    async with InferencePool(workers=workers, queue_per_station=4) as pool:
        end = loop.time() + seconds

        async def station(name: str) -> None:
            nonlocal done
            while loop.time() < end:
                await pool.run(name, lambda: det.detect(scan), cost=det.estimate_seconds(scan.shape))
                done += 1

        t0 = loop.time()
        await asyncio.gather(*(station(f"lane-{i}") for i in range(workers)))
        return {"workers": workers, "items_per_s": done / (loop.time() - t0)}


def table(res: dict) -> str:
    s, g = res["single_tile"], res["goals"]
    out = [
        f"model: {res['model']}  ({res['model_name']} {res['model_version']}, {res['threads']} thread)",
        f"machine: {res['machine']}, {res['cpus']} CPUs, load average {res['load_average'][0]:.1f} at start, "
        f"{res['load_average'][1]:.1f} at end (other processes share these CPUs)",
        "",
        "single-tile baggage scan  " + res["scan"],
        f"  bare session.run per tile    p50 {s['bare_p50_ms']:8.2f} ms   p99 {s['bare_p99_ms']:8.2f} ms",
        f"  detect() (pipeline)          p50 {s['detect_p50_ms']:8.2f} ms   p99 {s['detect_p99_ms']:8.2f} ms",
        f"  ratio pipeline / bare        p50 {s['ratio_p50']:8.3f}      p99 {s['ratio_p99']:8.3f}",
        f"  pipeline's own work (detect minus its session.run)  p50 {s['own_p50_ms']:.2f} ms   "
        f"p99 {s['own_p99_ms']:.2f} ms",
        "",
        f"line scans ({res['lines_per_s']:.0f} lines/s, blocks of {BLOCK}): time from last line to detections",
        f"  {'lines':>7} {'tiles':>6} {'tiles left at last line':>24} {'streaming ms':>13} {'after-scan ms':>14}"
        f" {'stream/2000':>12}",
    ]
    for r in res["line_scans"]:
        out.append(f"  {r['lines']:>7} {r['tiles']:>6} {r['streaming_tiles_after_last_line']:>24}"
                   f" {r['streaming_ms']:>13.1f} {r['after_scan_ms']:>14.1f}"
                   f" {r['streaming_vs_2000']:>12.3f}")
    t = res["throughput"]
    out += [
        "",
        f"detector throughput, baggage scans, {t['workers']} workers x 1 thread: {t['items_per_s']:.1f} items/s",
        f"resident memory: {res['rss_start_mb']:.0f} MB at start, {res['rss_loaded_mb']:.0f} MB with the model "
        f"loaded, {res['rss_peak_mb']:.0f} MB peak",
        "",
        "goals                                   goal     measured",
        f"  pipeline p99 / bare p99 (1 tile)      <= 1.2   {g['single_tile_p99_ratio']:.3f}",
        f"  last line to verdict 16k / 2k lines   <= 1.3   {g['stream_16k_over_2k']:.3f}",
    ]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=300, help="single-tile repeats")
    ap.add_argument("--line-repeats", type=int, default=5, help="repeats per line-scan length")
    ap.add_argument("--lines-per-s", type=float, default=2000.0)
    ap.add_argument("--width", type=int, default=1024, help="line-scan detector pixels")
    ap.add_argument("--throughput-s", type=float, default=5.0)
    ap.add_argument("--model", type=Path, default=None, help="model package (default: the zoo's, else a test graph)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "inference.json")
    args = ap.parse_args()

    rss_start, load_start = rss_mb(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, model_note = pick_model(Path(tmp), args.model)
        det = load_detector(model_dir, intra_op_threads=1)
    rss_loaded = rss_mb()
    scan, scan_note = baggage_scan()
    single = bench_single_tile(det, scan, args.repeats)
    lines = asyncio.run(bench_lines(det, scan, args.width, args.lines_per_s, args.line_repeats))
    thr = asyncio.run(bench_throughput(det, scan, args.throughput_s, workers=2))
    res = {
        "model": model_note, "model_name": det.info.name, "model_version": det.info.version,
        "model_sha256": det.info.sha256, "threads": 1,
        "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
        "scan": f"{scan_note} {scan.shape[0]}x{scan.shape[1]}",
        "single_tile": single, "lines_per_s": args.lines_per_s, "line_scans": lines, "throughput": thr,
        "load_average": [load_start, os.getloadavg()[0]], "cpus": os.cpu_count(),
        "rss_start_mb": rss_start, "rss_loaded_mb": rss_loaded, "rss_peak_mb": rss_mb("VmHWM"),
        "goals": {
            "single_tile_p99_ratio": single["ratio_p99"],
            "stream_16k_over_2k": lines[-1]["streaming_vs_2000"],
        },
        "command": "python bench/bench_inference.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(table(res))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
