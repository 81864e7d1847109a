"""Cost of the station screen's image tools (issue 21): the scan data the server sends once per item, and
the time the browser takes to redraw the scan for each tool, against the server PNG it replaces.

Run:  PYTHONPATH=$PWD .venv/bin/python bench/bench_image_tools.py [--repeat 5] [--no-browser]

For a 360 × 560 bag (the demo's) and a 40 ft container (about 3,000 × 900), prints: the server's time to
encode /scan.bin (classes, dense regions, gzip) and its size, the server's time and size for the colour
PNG (render.render_png, what one mode switch used to cost on top of the round trip), and, in headless
Chromium, the median time of ImageTools.render() per view and tool. Writes bench/results/image_tools.json.
Never asserts; the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "edge")]

from central_sync.schema import ItemKind, Verdict  # noqa: E402
from edge.web import render, scandata  # noqa: E402
from edge.web.demo import record_for, synthetic_scan  # noqa: E402
from models.scan import Scan  # noqa: E402

TOOLS = {  # what the officer does -> the state imagetools.js renders
    "colour": "S.mode = 'colour'", "high": "S.mode = 'grey'", "low": "S.mode = 'low'",
    "organic": "S.mode = 'organic'", "gamma_2": "S.mode = 'colour'; ImageTools.state.gamma = 2",
    "edges": "ImageTools.state.gamma = 1; ImageTools.state.edge = true",
    "slicing_20_60": "ImageTools.state.edge = false; ImageTools.state.lo = 20; ImageTools.state.hi = 60",
}


def median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4)


def server(scan: Scan, portal: bool, repeat: int) -> dict[str, Any]:
    body, png = scandata.encode(scan, portal=portal), render.render_png(scan, "colour", [], portal=portal)
    return {"shape": list(scan.shape), "scan_bin_s": median_s(lambda: scandata.encode(scan, portal=portal), repeat),
            "scan_bin_kb": round(len(body) / 1024), "colour_png_s": median_s(
                lambda: render.render_png(scan, "colour", [], key=None, portal=portal), repeat),
            "colour_png_kb": round(len(png) / 1024)}


def browser(scans: dict[str, tuple[Scan, bool]], repeat: int) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright
    from station_browser import OFFICER, launch, sign_in

    from edge.web.config import TipConfig, WebConfig
    from edge.web.demo import StationHarness

    out: dict[str, dict[str, float]] = {}
    with StationHarness(ROOT / "var" / "bench-image-tools", WebConfig(tip=TipConfig(enabled=False))) as station:
        station.add_demo_users()
        with sync_playwright() as pw:
            page = launch(pw).new_page(viewport={"width": 1920, "height": 1080})
            page.set_default_timeout(60_000)
            sign_in(page, station, OFFICER)
            for name, (scan, portal) in scans.items():
                rec = record_for(scan, Verdict.CLEAR, "clear", [])
                if portal:
                    rec = rec.model_copy(update={"kind": ItemKind.CONTAINER})
                station.publish_record(station.commit(scan, rec))
                page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
                out[name] = {tool: page.evaluate(f"""() => {{ {setup}; const t = [];
                    for (let i = 0; i < {repeat}; i++) {{ const t0 = performance.now(); ImageTools.render();
                      t.push(performance.now() - t0); }}
                    t.sort((a, b) => a - b); return Math.round(t[t.length >> 1] * 10) / 10; }}""")
                             for tool, setup in TOOLS.items()}
                page.evaluate("ImageTools.state.lo = 0; ImageTools.state.hi = 100")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    from models.training.portal import PortalSpec, portal_scan

    scans = {"bag_360x560": (synthetic_scan(np.random.default_rng(1), threat=True, dense=True)[0], False),
             "container_40ft": (portal_scan(1000, PortalSpec(vehicle="tractor_40ft", cargo="dense", pixel_mm=6.0)), True)}
    result: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "repeat": args.repeat,
                              "server": {k: server(s, p, args.repeat) for k, (s, p) in scans.items()}}
    if not args.no_browser:
        result["browser_render_ms"] = browser(scans, args.repeat)
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "results" / "image_tools.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
