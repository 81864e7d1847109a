"""Image quality: scan the test object, score it (ASTM F792 manner), compare with the station's baseline."""

from __future__ import annotations

import asyncio
import json
import math

import cv2

from drivers.xray import Scanner
from edge.diag import testobject
from edge.diag.context import PhaseContext
from edge.diag.phases._watch import request_timeout
from edge.diag.hand import Action
from models.material import colourise
from models.scan import Scan

SCORES = ("wire_mm", "penetration_mm", "resolution_mm", "material_accuracy")
BASELINE = ("wire_cnr_0.25mm", "step_separation_16mm", "bar_modulation_2mm", "material_accuracy")


async def run(ctx: PhaseContext) -> None:
    scanner = ctx.station.scanner
    if scanner is None:
        ctx.skip("skip.device_lost", target="X-ray scanner")
    pixel_mm = scanner.cfg.pixel_mm or 1.0
    if pixel_mm > testobject.MAX_PIXEL_MM:
        ctx.skip("skip.coarse_pixels", pixel_mm=f"{pixel_mm:g}", limit=f"{testobject.MAX_PIXEL_MM:g}")
    obj = await asyncio.to_thread(testobject.make_test_object, pixel_mm)
    await ctx.prompt("prompt.place_test_object", Action("place_test_object", args={"scan": obj}), confirm=True)
    try:
        await ctx.confirm_clear()  # the scan switches the X-ray on
        scan = await _scan(ctx, scanner)
    finally:
        await ctx.prompt("prompt.remove_test_object", Action("remove_test_object"), confirm=True)
    ctx.measure("imaging.scan_complete", scan.complete, target="test object", detail=f"{scan.shape[0]} lines")
    scores = await asyncio.to_thread(testobject.score, scan)
    for name in SCORES:
        value = scores[name]
        ctx.measure(f"imaging.{name}", None if math.isnan(value) else value, target="test object")
    _baseline(ctx, scores)
    png = await asyncio.to_thread(_png, scan)
    ctx.attach("test-object.png", png, "image/png")


async def _scan(ctx: PhaseContext, scanner: Scanner) -> Scan:
    plc = ctx.station.plc
    try:
        if plc is not None:
            await ctx.io("X-ray permit", plc.request_xray_permit(True), request_timeout(plc))
        await ctx.io("controller arm", scanner.arm(), 4.0)
        stream = await ctx.io("START_SCAN", scanner.start_scan("diag-test-object"), 4.0)
        async with asyncio.timeout(30):
            async for _ in stream:
                pass
        return stream.result()
    finally:
        await ctx.io("controller disarm", scanner.disarm(), 4.0)
        if plc is not None:
            await ctx.io("X-ray permit off", plc.request_xray_permit(False), request_timeout(plc))


def _baseline(ctx: PhaseContext, scores: dict[str, float]) -> None:
    """Compare with the station's own baseline; the first good run sets it."""
    path = ctx.station.baseline_path
    if path is None:
        return
    if not path.is_file():
        if all(m.outcome.value == "PASS" for m in ctx.result.measurements):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({k: scores[k] for k in BASELINE}, indent=2))
            ctx.note(f"image-quality baseline established in {path}")
        return
    base = json.loads(path.read_text())
    for key in BASELINE:
        ref = base.get(key)
        if ref:
            ctx.measure("imaging.baseline_ratio", scores[key] / ref, target=key,
                        detail=f"{scores[key]:.3g} now, {ref:.3g} at baseline")


def _png(scan: Scan) -> bytes:
    rgb = colourise(scan.high, scan.low)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return buf.tobytes() if ok else b""
