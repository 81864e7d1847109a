"""End-to-end item tracking: photo-eye -> scan -> detection -> verdict -> divert (or light) of that item.

Measured with the drivers and the detector directly (the same steps as the station pipeline):
entry photo-eye edge to scan start, last line to verdict against the budget, and on a conveyor
whether the divert was in place before the item reached the gate and sent it the verdict's way.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict

from drivers.errors import DriverError
from drivers.plc import EyeEdge, Light, ModbusPlc
from drivers.xray import Scanner
from edge.diag.context import PhaseContext
from edge.diag.hand import Action
from edge.diag.phases._watch import EventTap, request_timeout
from edge.diag.specs import SPECS
from edge.stations.kinds import KINDS
from models.runtime import Detector

# The item the technician places, per station kind, as its declaration names it (edge.stations.kinds).
ITEM = {name: asdict(kind.diag.test_item) for name, kind in KINDS.items() if kind.diag.test_item is not None}
GATE_TIMEOUT_S = 30.0


async def run(ctx: PhaseContext) -> None:
    st = ctx.station
    plc, scanner, detector, kind = st.plc, st.scanner, st.detector, st.cfg.station.kind
    if plc is None or scanner is None:
        ctx.skip("skip.device_lost", target="PLC" if plc is None else "X-ray scanner")
    if detector is None:
        ctx.skip("skip.no_model")
    conveyor = "belt_run_request" in plc.cfg.registers
    await ctx.confirm_clear()  # the X-ray permit, the controller armed, the belt run
    async with EventTap(plc) as tap:
        await _prepare(ctx, plc, scanner, conveyor)
        await ctx.prompt("prompt.place_item", Action("place_item", kind, ITEM.get(kind, ITEM["conveyor"])),
                         confirm=True)
        entry = await tap.wait_eye(0, True, ctx.prompt_timeout_s)
        if entry is None:
            ctx.measure("tracking.eye_to_scan_ms", None, target=plc.cfg.eyes[0], detail="the item never reached it")
            return
        to_manual = await _inspect(ctx, scanner, detector, entry, plc.cfg.eyes[0])
        if to_manual is None:
            return
        if conveyor:
            await _divert(ctx, plc, tap, to_manual)
        else:
            await _light(ctx, plc, to_manual)
    await ctx.prompt("prompt.clear_lane", Action("clear_lane"), confirm=True)


async def _prepare(ctx: PhaseContext, plc: ModbusPlc, scanner: Scanner, conveyor: bool) -> None:
    await ctx.io("X-ray permit", plc.request_xray_permit(True), request_timeout(plc))
    await ctx.io("controller arm", scanner.arm(), 4.0)
    if conveyor:
        await ctx.io("divert to manual", plc.request_divert(True), request_timeout(plc))
        await ctx.io("belt run", plc.request_belt(True), request_timeout(plc))


async def _inspect(ctx: PhaseContext, scanner: Scanner, detector: Detector, entry: EyeEdge, eye: str) -> bool | None:
    """Scan and detect; returns whether the item goes to manual (None when nothing was decided)."""
    loop = asyncio.get_running_loop()
    stream = await ctx.io("START_SCAN", scanner.start_scan("diag-tracking"), 4.0)
    ctx.measure("tracking.eye_to_scan_ms", (loop.time() - entry.t) * 1000, target=eye)
    last_line = loop.time()
    async with asyncio.timeout(30):
        async for _block in stream:
            last_line = loop.time()
    scan = stream.result()
    ctx.measure("tracking.scan_complete", scan.complete, target="scan", detail=f"{scan.shape[0]} lines")
    detections = await asyncio.to_thread(detector.detect, scan)
    verdict_ms = (loop.time() - last_line) * 1000
    budget = ctx.station.cfg.station.budget_ms
    spec = SPECS["tracking.verdict_ms"].limited(high=budget, marginal_high=budget * 0.7)
    ctx.measure("tracking.verdict_ms", verdict_ms, target="verdict", spec=spec)
    to_manual = bool(detections) or not scan.complete or verdict_ms > budget
    ctx.note(f"verdict {'manual/suspect' if to_manual else 'clear'}: {len(detections)} detections")
    return to_manual


async def _divert(ctx: PhaseContext, plc: ModbusPlc, tap: EventTap, to_manual: bool) -> None:
    loop = asyncio.get_running_loop()
    try:
        await ctx.io("divert", plc.request_divert(to_manual), request_timeout(plc))
    except DriverError as exc:
        ctx.failed("tracking.divert_margin_s", exc, target="divert")
        return
    ready = loop.time()
    gate = len(plc.cfg.eyes) - 1
    at_gate = await tap.wait_eye(gate, True, GATE_TIMEOUT_S)
    if at_gate is None:
        ctx.measure("tracking.divert_margin_s", None, target="divert", detail="the item never reached the gate")
        return
    ctx.measure("tracking.divert_margin_s", at_gate.t - ready, target=plc.cfg.eyes[gate])
    state = await plc.read_state()
    went = _twin_outcome(ctx) or ("manual" if state.divert_to_manual else "pass")
    want = "manual" if to_manual else "pass"
    ctx.measure("tracking.right_item", went == want, target="divert", detail=f"verdict sent it to {want}, it went to {went}")
    await ctx.io("belt stop", plc.request_belt(False), request_timeout(plc))


def _twin_outcome(ctx: PhaseContext) -> str | None:
    """Where the twin's item really went (the twin sees the item; the real station sees the gate)."""
    sim, item = getattr(ctx.station.plc, "sim", None), ctx.station.twin_item
    if sim is None or item is None:
        return None
    return getattr(sim.model, "outcomes", {}).get(item)


async def _light(ctx: PhaseContext, plc: ModbusPlc, to_manual: bool) -> None:
    colour: Light = "red" if to_manual else "green"
    try:
        await ctx.io(f"light {colour}", plc.request_light(colour), request_timeout(plc))
        ctx.measure("tracking.light_confirmed", True, target=colour)
    except DriverError as exc:
        ctx.failed("tracking.light_confirmed", exc, target=colour, value=False)
