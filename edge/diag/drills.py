"""Fault drills against the twin: inject a fault, run the plan through it, clear it, prove recovery.

A drill adds two phases around the plan: `drill-inject` (the fault is noticed in time and the
station is degraded-safe) and `drill-recover` (the fault cleared, the link is back within bounds,
nothing restarted by itself). The phase the fault affects fails with its diagnosis in between:
that failure is expected (marked, and it does not fail the run), and `drill-diagnosis` checks it
happened. A drill passes when the station behaved as designed; it fails when it did not (not safe,
not noticed, not recovered, a wrong diagnosis, or a failure the fault does not explain).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers.errors import DriverError
from drivers.plc import ModbusPlc
from drivers.rfid import Em4100SerialReader, Em4100Sim
from drivers.xray import Scanner
from edge.diag.context import Measurements, PhaseContext
from edge.diag.core import Outcome, PhaseResult
from edge.diag.messages import Catalogue
from edge.diag.phases._watch import wait_state, request_timeout
from firmware_bridge.emulator import FaultSettings

DETECT_TIMEOUT_S = 5.0
RECOVER_TIMEOUT_S = 8.0


@dataclass(frozen=True)
class Drill:
    """One fault: which device, how to inject and clear it, which phase and diagnosis it must cause."""

    name: str
    device: str
    inject: Callable[[PhaseContext], Awaitable[None]]
    recover: Callable[[PhaseContext], Awaitable[None]]
    fails_phase: str
    diagnosis: str
    also: tuple[str, ...] = ()  # other diagnoses the fault explains in the phases it affects


def _plc(ctx: PhaseContext) -> ModbusPlc:
    plc = ctx.station.plc
    if plc is None:
        ctx.skip("skip.device_lost", target="PLC")
    return plc


def _scanner(ctx: PhaseContext) -> Scanner:
    scanner = ctx.station.scanner
    if scanner is None:
        ctx.skip("skip.device_lost", target="X-ray scanner")
    return scanner


# ---- PLC stops answering --------------------------------------------------------------------

async def _plc_inject(ctx: PhaseContext) -> None:
    plc = _plc(ctx)
    await ctx.io("belt run", plc.request_belt(True), request_timeout(plc))
    await ctx.io("X-ray permit", plc.request_xray_permit(True), request_timeout(plc))
    t0 = time.monotonic()
    plc.sim.mute()
    lost = await wait_state(plc, lambda s: not s.link_ok, DETECT_TIMEOUT_S)
    ctx.measure("drill.detected_ms", (time.monotonic() - t0) * 1000 if lost else None, target="PLC silent",
                detail="" if lost else "the host never reported the link lost")
    await asyncio.sleep(plc.cfg.sim.host_watchdog_ms / 1000 + 0.1)  # the PLC's own watchdog trips
    st, model = await plc.read_state(), plc.sim.model
    unsafe = [n for n, bad in (("items not sent to manual", not st.items_to_manual),
                               ("belt running", model.belt_running),
                               ("X-ray permit on", model.active("xray_permit_request"))) if bad]
    ctx.measure("drill.safe_while_faulted", not unsafe, target="PLC silent", detail=", ".join(unsafe))


async def _plc_recover(ctx: PhaseContext) -> None:
    plc = _plc(ctx)
    t0 = time.monotonic()
    plc.sim.unmute()
    back = await wait_state(plc, lambda s: s.link_ok, RECOVER_TIMEOUT_S)
    ctx.measure("drill.recovered_ms", (time.monotonic() - t0) * 1000 if back else None, target="PLC",
                detail="" if back else "the link did not come back")
    await asyncio.sleep(0.3)
    model = plc.sim.model
    moving = [n for n, on in (("belt", model.belt_running), ("X-ray permit", model.active("xray_permit_request")))
              if on]
    ctx.measure("drill.no_restart", not moving, target="PLC", detail=", ".join(moving) + " on after recovery")


# ---- corrupted controller frames ------------------------------------------------------------

async def _corrupt_inject(ctx: PhaseContext) -> None:
    scanner = _scanner(ctx)
    await ctx.io("controller HELLO", scanner.link.wait_up(5.0), 6.0)
    before = scanner.link.stats.get("retries", 0)
    t0 = time.monotonic()
    ctx.station.emulator.set_faults(FaultSettings(corrupt=0.6, seed=7))
    while scanner.link.stats.get("retries", 0) == before and time.monotonic() - t0 < DETECT_TIMEOUT_S:
        try:
            await ctx.io("controller STATUS", scanner.status(), 2.0)
        except DriverError:  # the fault being noticed
            break
    noticed = scanner.link.stats.get("retries", 0) > before or not scanner.link_up
    ctx.measure("drill.detected_ms", (time.monotonic() - t0) * 1000 if noticed else None,
                target="corrupted frames", detail="" if noticed else "no resend and no link loss")
    ctx.measure("drill.safe_while_faulted", not ctx.station.emulator.armed, target="corrupted frames",
                detail="controller armed")


async def _corrupt_recover(ctx: PhaseContext) -> None:
    scanner = _scanner(ctx)
    t0 = time.monotonic()
    ctx.station.emulator.set_faults(FaultSettings())
    clean = 0
    while clean < 5 and time.monotonic() - t0 < RECOVER_TIMEOUT_S:
        before = scanner.link.stats.get("retries", 0)
        try:
            await ctx.io("controller STATUS", scanner.status(), 4.0)
        except DriverError:  # the link is still recovering; keep trying within the bound
            clean = 0
            continue
        clean = clean + 1 if scanner.link.stats.get("retries", 0) == before else 0
    ctx.measure("drill.recovered_ms", (time.monotonic() - t0) * 1000 if clean >= 5 else None,
                target="controller", detail="" if clean >= 5 else "requests still need resending")
    ctx.measure("drill.no_restart", not ctx.station.emulator.armed, target="controller", detail="controller armed")


# ---- a reader unplugged ---------------------------------------------------------------------

def _first_reader(ctx: PhaseContext) -> tuple[str, Em4100SerialReader, Em4100Sim]:
    """The first serial reader and its simulator (drills run against the twin only)."""
    serial = [(n, r) for n, r in ctx.station.readers.items() if isinstance(r, Em4100SerialReader)]
    if not serial:
        raise ValueError("the reader-unplugged drill needs a serial (EM4100) reader and the station has none")
    name, reader = serial[0]
    if reader.sim is None:
        raise ValueError(f"reader {name} has no simulator to unplug: fault drills run against the twin")
    return name, reader, reader.sim


async def _reader_inject(ctx: PhaseContext) -> None:
    name, reader, sim = _first_reader(ctx)
    t0 = time.monotonic()
    sim.unplug()
    # udev removes the /dev/serial/by-id link with the device; without this the reader could
    # reopen whatever pseudo-terminal later gets the old /dev/pts number
    Path(sim.port).unlink(missing_ok=True)
    while reader.link_ok and time.monotonic() - t0 < DETECT_TIMEOUT_S:
        await asyncio.sleep(0.01)
    ctx.measure("drill.detected_ms", None if reader.link_ok else (time.monotonic() - t0) * 1000,
                target=f"reader {name} unplugged", detail="the reader still reports its port open")
    ctx.measure("drill.safe_while_faulted", not reader.present, target=f"reader {name} unplugged",
                detail="tags still reported present")


async def _reader_recover(ctx: PhaseContext) -> None:
    name, reader, sim = _first_reader(ctx)
    t0 = time.monotonic()
    sim.replug()
    while not reader.link_ok and time.monotonic() - t0 < RECOVER_TIMEOUT_S:
        await asyncio.sleep(0.01)
    ctx.measure("drill.recovered_ms", (time.monotonic() - t0) * 1000 if reader.link_ok else None,
                target=f"reader {name}", detail="" if reader.link_ok else "the port did not reopen")


DRILLS: dict[str, Drill] = {d.name: d for d in (
    Drill("plc-timeout", "plc", _plc_inject, _plc_recover, "links", "plc.no_answer"),
    Drill("controller-corrupt", "scanner", _corrupt_inject, _corrupt_recover, "links", "controller.frame_errors",
          ("controller.no_answer", "controller.slow")),
    Drill("reader-unplugged", "readers", _reader_inject, _reader_recover, "links", "reader.unplugged"),
)}


# ---- judging a drill ------------------------------------------------------------------------

def judge_drill(drill: Drill, phases: list[PhaseResult], cat: Catalogue) -> PhaseResult:
    """Mark the failures the fault explains as expected; the `drill-diagnosis` phase says whether it was diagnosed."""
    explained = {drill.diagnosis, *drill.also}
    for p in _under_fault(phases):
        failing = [m for m in p.measurements if m.outcome == Outcome.FAIL]
        if p.outcome == Outcome.FAIL and failing and all(m.message in explained for m in failing):
            p.expected = f"drill {drill.name}: the fault must cause this"
    res = PhaseResult("drill-diagnosis", cat.text("title.drill-diagnosis", target=drill.name))
    ctx = Measurements(res, cat)
    hit = next((p for p in phases if p.name == drill.fails_phase), None)
    if hit is None:
        res.outcome, res.reason = Outcome.SKIPPED, cat.text("skip.drill_phase", target=drill.fails_phase)
        return res
    found = [m for m in hit.measurements if m.outcome == Outcome.FAIL and m.message == drill.diagnosis]
    failed = sorted({m.message for m in hit.measurements if m.outcome == Outcome.FAIL})
    detail = f"phase {hit.name} ended {hit.outcome} with diagnoses {failed or 'none'}, expected {drill.diagnosis}"
    ctx.measure("drill.diagnosed", bool(found and hit.expected), target=drill.name, detail=detail)
    res.outcome = res.judge()
    return res


def _under_fault(phases: list[PhaseResult]) -> list[PhaseResult]:
    names = [p.name for p in phases]
    if "drill-inject" not in names:
        return []
    end = names.index("drill-recover") if "drill-recover" in names else len(phases)
    return phases[names.index("drill-inject") + 1:end]
