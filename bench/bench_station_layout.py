"""Station screen layout: how much of each screen size the image gets, and where the decisions are.

Run:  .venv/bin/python bench/bench_station_layout.py

For each viewport (1024x768, 1280x1024, 1920x1080, 2560x1440), an officer signs in on a demo station in
Debian's headless Chromium and a suspect item arrives; printed per size:
    stage_w, stage_h       the image pane in CSS pixels, and its share of the width
    overflow_x             the page's scroll width beyond the viewport (0: no sideways scrolling)
    confirm_bottom         the bottom of the "Confirm threat" button (within the height: no scrolling)
    signout_right          the right edge of "Sign out"

Prints figures and writes bench/results/station_layout.json. Never asserts.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "edge")]

import numpy as np  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from central_sync.schema import Verdict  # noqa: E402
from edge.web.config import TipConfig, WebConfig  # noqa: E402
from edge.web.demo import StationHarness, record_for, synthetic_scan  # noqa: E402
from station_browser import OFFICER, launch, sign_in  # noqa: E402

SIZES = ((1024, 768), (1280, 1024), (1920, 1080), (2560, 1440))


def measure(station: StationHarness, browser: object, width: int, height: int, seed: int) -> dict[str, float]:
    page = browser.new_page(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    sign_in(page, station, OFFICER)
    scan, truth = synthetic_scan(np.random.default_rng(seed), threat=True)
    rec = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    stage, confirm, signout = (page.locator(s).bounding_box() for s in ("#stage", "#confirm", "#signout"))
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    page.close()
    return {"stage_w": stage["width"], "stage_h": stage["height"], "stage_share": round(stage["width"] / width, 3),
            "overflow_x": overflow, "confirm_bottom": confirm["y"] + confirm["height"],
            "signout_right": signout["x"] + signout["width"]}


def main() -> int:
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            StationHarness(Path(tmp) / "data", WebConfig(tip=TipConfig(enabled=False))) as station, \
            sync_playwright() as pw:
        station.add_demo_users()
        browser = launch(pw)
        for i, (w, h) in enumerate(SIZES):
            out[f"{w}x{h}"] = m = measure(station, browser, w, h, i)
            print(f"{w}x{h}: image pane {m['stage_w']:.0f}x{m['stage_h']:.0f} px ({m['stage_share']:.0%} of the width),"
                  f" sideways scroll {m['overflow_x']} px, Confirm bottom at {m['confirm_bottom']:.0f} of {h},"
                  f" Sign out right edge at {m['signout_right']:.0f} of {w}")
        browser.close()
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "station_layout.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
