"""PLC I/O map: each photo-eye toggles, divert (or barrier) actuation from feedback, belt speed, light."""

from __future__ import annotations

import asyncio
import time

from drivers.errors import DriverError, ReadbackMismatch
from drivers.plc import EyeEdge, Light, ModbusPlc
from edge.diag.context import PhaseContext
from edge.diag.hand import Action
from edge.diag.phases._watch import EventTap, wait_state, request_timeout
from edge.diag.specs import SPECS

SPEED_WINDOW_S = 1.0
EDGE_TIMEOUT_S = 2.0


MOVES = frozenset({"divert_manual_request", "belt_run_request", "barrier_open_request", "light_request"})


async def run(ctx: PhaseContext) -> None:
    plc = ctx.station.plc
    if plc is None:
        ctx.skip("skip.device_lost", target="PLC")
    for i, eye in enumerate(plc.cfg.eyes):
        await _eye(ctx, plc, i, eye)
    regs = plc.cfg.registers
    if MOVES & set(regs):  # the divert, the belt, the barrier or the lights are about to move
        await ctx.confirm_clear()
    if "divert_manual_request" in regs:
        for to_manual, label in ((False, "to pass"), (True, "to manual")):
            await _divert(ctx, plc, to_manual, label)
    if "belt_run_request" in regs:
        await _belt(ctx, plc)
    if "barrier_open_request" in regs:
        for open_, label in ((True, "open"), (False, "close")):
            await _barrier(ctx, plc, open_, label)
    if "light_request" in regs:
        colours: tuple[Light, ...] = ("green", "amber", "red")
        for colour in colours:
            await _light(ctx, plc, colour)


async def _eye(ctx: PhaseContext, plc: ModbusPlc, index: int, eye: str) -> None:
    async with EventTap(plc) as tap:
        async def both() -> tuple[EyeEdge | None, EyeEdge | None]:
            on = await tap.wait_eye(index, True, ctx.prompt_timeout_s)
            off = await tap.wait_eye(index, False, EDGE_TIMEOUT_S) if on is not None else None
            return on, off

        t_act, seen = await ctx.prompt("prompt.block_eye", Action("block_eye", eye, {"hold_s": 0.3}), until=both)
    on, off = seen or (None, None)
    detail = "" if on and off else ("no blocked edge" if on is None else "no clear edge after the block")
    ctx.measure("io.eye_toggles", bool(on and off), target=eye, detail=detail)
    if on is not None and t_act is not None:
        ctx.measure("io.eye_response_ms", (on.t - t_act) * 1000, target=eye)


async def _divert(ctx: PhaseContext, plc: ModbusPlc, to_manual: bool, label: str) -> None:
    t0 = time.perf_counter()
    try:
        await ctx.io(f"divert {label}", plc.request_divert(to_manual), request_timeout(plc))
    except DriverError as exc:
        ctx.failed("io.divert_ms", exc, target=label)
        return
    ctx.measure("io.divert_ms", (time.perf_counter() - t0) * 1000, target=label)


async def _belt(ctx: PhaseContext, plc: ModbusPlc) -> None:
    spec = SPECS["io.belt_speed_m_s"]
    sim = getattr(plc, "sim", None)
    if sim is not None:
        nominal = plc.cfg.sim.conveyor.belt_speed_m_s
        spec = spec.limited(low=nominal * 0.9, high=nominal * 1.1, marginal_low=nominal * 0.95,
                            marginal_high=nominal * 1.05)
        ctx.note(f"belt speed judged against the twin's nominal {nominal} m/s; the PLC has one set-point")
    try:
        await ctx.io("belt run", plc.request_belt(True), request_timeout(plc))
        a = await plc.read_state()
        b = await wait_state(plc, lambda s: s.t >= a.t + SPEED_WINDOW_S, SPEED_WINDOW_S + 1.0)
        speed = (b.encoder_m - a.encoder_m) / (b.t - a.t) if b is not None else None
        ctx.measure("io.belt_speed_m_s", speed, target="run", spec=spec)
        t0 = time.perf_counter()
        await ctx.io("belt stop", plc.request_belt(False), request_timeout(plc))
        ctx.measure("io.belt_stop_ms", (time.perf_counter() - t0) * 1000, target="stop")
    except DriverError as exc:
        ctx.failed("io.belt_speed_m_s", exc, target="run", spec=spec)


async def _barrier(ctx: PhaseContext, plc: ModbusPlc, open_: bool, label: str) -> None:
    """The barrier moves slower than the driver's read-back window: keep reading its end switch."""
    t0 = time.perf_counter()
    try:
        await ctx.io(f"barrier {label}", plc.request_barrier(open_), request_timeout(plc))
    except ReadbackMismatch:
        pass  # still moving: its end position is read below
    except DriverError as exc:
        ctx.failed("io.barrier_s", exc, target=label)
        return
    end_switch = "barrier_open" if open_ else "barrier_closed"
    limit = (SPECS["io.barrier_s"].high or 4.0) + 1.0
    while time.perf_counter() - t0 < limit:
        points = await ctx.io("read of discrete inputs", plc.read_points("discrete"), 2.0)
        if points.get(end_switch):
            ctx.measure("io.barrier_s", time.perf_counter() - t0, target=label)
            return
        await asyncio.sleep(0.02)
    ctx.measure("io.barrier_s", None, target=label, detail=f"{end_switch} never reported")


async def _light(ctx: PhaseContext, plc: ModbusPlc, colour: Light) -> None:
    try:
        await ctx.io(f"light {colour}", plc.request_light(colour), request_timeout(plc))
        ctx.measure("io.light_confirmed", True, target=colour)
    except DriverError as exc:
        ctx.failed("io.light_confirmed", exc, target=colour, value=False)
