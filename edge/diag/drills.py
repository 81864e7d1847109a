"""Fault drills against the twin: inject a fault, run the plan through it, clear it, prove recovery.

A drill adds two phases around the plan: `drill-inject` (the fault is noticed in time and the
station is degraded-safe) and `drill-recover` (the fault cleared, the link is back within bounds,
nothing restarted by itself). The phase the fault affects fails with its diagnosis in between.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from drivers.errors import DriverError
from edge.diag.context import PhaseContext
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


# ---- PLC stops answering --------------------------------------------------------------------

async def _plc_inject(ctx: PhaseContext) -> None:
    plc = ctx.station.plc
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
    plc = ctx.station.plc
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
    scanner = ctx.station.scanner
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
    scanner = ctx.station.scanner
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

def _first_reader(ctx: PhaseContext) -> tuple[str, Any]:
    name = next(iter(ctx.station.readers))
    return name, ctx.station.readers[name]


async def _reader_inject(ctx: PhaseContext) -> None:
    name, reader = _first_reader(ctx)
    t0 = time.monotonic()
    reader.sim.unplug()
    # udev removes the /dev/serial/by-id link with the device; without this the reader could
    # reopen whatever pseudo-terminal later gets the old /dev/pts number
    Path(reader.sim.port).unlink(missing_ok=True)
    while reader.link_ok and time.monotonic() - t0 < DETECT_TIMEOUT_S:
        await asyncio.sleep(0.01)
    ctx.measure("drill.detected_ms", None if reader.link_ok else (time.monotonic() - t0) * 1000,
                target=f"reader {name} unplugged", detail="the reader still reports its port open")
    ctx.measure("drill.safe_while_faulted", not reader.present, target=f"reader {name} unplugged",
                detail="tags still reported present")


async def _reader_recover(ctx: PhaseContext) -> None:
    name, reader = _first_reader(ctx)
    t0 = time.monotonic()
    reader.sim.replug()
    while not reader.link_ok and time.monotonic() - t0 < RECOVER_TIMEOUT_S:
        await asyncio.sleep(0.01)
    ctx.measure("drill.recovered_ms", (time.monotonic() - t0) * 1000 if reader.link_ok else None,
                target=f"reader {name}", detail="" if reader.link_ok else "the port did not reopen")


DRILLS: dict[str, Drill] = {d.name: d for d in (
    Drill("plc-timeout", "plc", _plc_inject, _plc_recover, "links", "plc.no_answer"),
    Drill("controller-corrupt", "scanner", _corrupt_inject, _corrupt_recover, "links", "controller.frame_errors"),
    Drill("reader-unplugged", "readers", _reader_inject, _reader_recover, "links", "reader.unplugged"),
)}
