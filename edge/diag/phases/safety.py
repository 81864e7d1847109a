"""Safety interlock proof tests with the technician in the loop.

For each e-stop and door of the station: the station is put in motion (belt running, X-ray permit
granted, controller armed); the technician is prompted to press the e-stop or open the door; the
observed response (belt stopped, permit dropped, controller disarmed) and its time are measured;
a permit request while tripped must be refused; after release and reset nothing may restart.
Response times are intervals: the PLC gives no timestamp of the trip, so a change lies between the
last sample without it and the first with it; the worst end is judged, and where the samples are
too far apart to judge against the limit the time is reported not measurable (never 0.0 ms PASS).
Software only reads the safety inputs; the act is the technician's (or the twin's hand).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from drivers.errors import DeviceRefused, ReadbackMismatch
from drivers.plc import ModbusPlc, PlcState
from edge.diag.context import PhaseContext
from edge.diag.hand import Action
from edge.diag.phases._watch import Bracket, SampleLog, request_timeout, wait_state
from edge.diag.specs import SPECS
from edge.stations.kinds import KINDS

SETTLE_S = 0.3
RESPONSE_WINDOW_S = 2.0
TIME_IT = "time it with a recorder on the safety relay or a PLC that timestamps its inputs"


@dataclass(frozen=True)
class SafetyInput:
    """One physical safety device: what it is called, the twin's name for it, and what it trips."""

    label: str
    kind: str  # "estop" or "door"
    twin_name: str

    @property
    def tripped(self) -> Callable[[PlcState], bool]:
        if self.kind == "estop":
            return lambda s: s.link_ok and not s.estop_ok
        return lambda s: s.link_ok and not s.interlocks_ok


# Each station kind's safety devices, as its declaration names them (edge.stations.kinds).
SAFETY_INPUTS: dict[str, tuple[SafetyInput, ...]] = {
    name: tuple(SafetyInput(d.label, d.trips, d.twin_name) for d in kind.diag.safety) for name, kind in KINDS.items()}

VERBS = {"estop": ("prompt.press_estop", "press_estop", "prompt.release_estop", "release_estop"),
         "door": ("prompt.open_door", "open_door", "prompt.close_door", "close_door")}


async def run(ctx: PhaseContext) -> None:
    plc = ctx.station.plc
    if plc is None:
        ctx.skip("skip.device_lost", target="PLC")
    kind = ctx.station.cfg.station.kind
    devices = SAFETY_INPUTS.get(kind, ())
    if not devices:  # nothing proved is no PASS: a retrofit station's PLC guards a machine this kind does not know
        ctx.skip("skip.no_safety_devices", target=KINDS[kind].title)
    await ctx.confirm_clear()  # each proof runs the belt and switches the X-ray permit on before the trip
    for device in devices:
        await _proof(ctx, plc, device)


async def _energise(ctx: PhaseContext, plc: ModbusPlc) -> None:
    """Put the station in the state the safety function must end: motion and beam permitted."""
    if "belt_run_request" in plc.cfg.registers:
        await ctx.io("belt run", plc.request_belt(True), request_timeout(plc))
    await ctx.io("X-ray permit", plc.request_xray_permit(True), request_timeout(plc))
    scanner = ctx.station.scanner
    if scanner is not None:
        await ctx.io("controller arm", scanner.arm(), 4.0)


async def _proof(ctx: PhaseContext, plc: ModbusPlc, dev: SafetyInput) -> None:
    ask, verb, ask_back, verb_back = VERBS[dev.kind]
    await _energise(ctx, plc)
    target = dev.label
    async with SampleLog(plc) as log:
        t_act, i_trip = await ctx.prompt(ask, Action(verb, dev.twin_name), until=lambda: log.wait(dev.tripped, 3600))
        ctx.measure("safety.trip_seen", i_trip is not None, target=target)
        if i_trip is not None:  # the responses are timed from the trip
            trip = Bracket(t_act, t_act) if t_act is not None else log.bracket(i_trip, dev.tripped)
            if "belt_run_request" in plc.cfg.registers:
                stopped = await log.wait(lambda s: not s.belt_running, RESPONSE_WINDOW_S, start=i_trip)
                _response(ctx, "safety.belt_stop_ms", target, log, trip, stopped, lambda s: not s.belt_running,
                          "belt still running")
            dropped = await log.wait(lambda s: not s.xray_permit, RESPONSE_WINDOW_S, start=i_trip)
            _response(ctx, "safety.permit_drop_ms", target, log, trip, dropped, lambda s: not s.xray_permit,
                      "permit still on")
    if dev.kind == "door" and ctx.station.scanner is not None:
        status = await ctx.io("controller STATUS", ctx.station.scanner.status(), 4.0)
        ctx.measure("safety.controller_disarmed", not status.armed, target=target)
    ctx.measure("safety.permit_refused", await _refused(ctx, plc), target=target)
    await ctx.prompt(ask_back, Action(verb_back, dev.twin_name),
                     until=lambda: wait_state(plc, lambda s: s.link_ok and s.estop_ok and s.interlocks_ok, 3600))
    await asyncio.sleep(SETTLE_S)
    after = await plc.read_state()
    moving = [n for n, on in (("belt", after.belt_running), ("X-ray permit", after.xray_permit)) if on]
    ctx.measure("safety.no_restart", not moving, target=target, detail=", ".join(moving) + " on after reset")


def _response(ctx: PhaseContext, name: str, target: str, log: SampleLog, trip: Bracket | None, index: int | None,
              done: Callable[[PlcState], bool], missing: str) -> None:
    """Trip -> response time as an interval; judged on its worst end, or not measurable when too coarse."""
    if index is None:
        ctx.measure(name, None, target=target, detail=missing)
        return
    seen = log.bracket(index, done)
    spec = SPECS[name]
    if trip is None or seen is None:
        what = "the trip" if trip is None else "the response"
        ctx.unmeasurable(name, target=target, why=f"no PLC sample before {what} to time it from; {TIME_IT}")
        return
    lo, hi = max(0.0, seen.lo - trip.hi) * 1000, (seen.hi - trip.lo) * 1000
    how = "the act timed by the twin's hand" if trip.known else \
        "the PLC gives no timestamp of the trip, so trip and response are bracketed by its polls"
    if spec.high is not None and hi - lo > spec.high:
        ctx.unmeasurable(name, target=target, why=f"{how}, and its samples lie up to {hi - lo:.0f} ms apart, "
                                                  f"more than the {spec.high:g} ms limit; {TIME_IT}")
        return
    ctx.measure(name, hi, target=target, interval=(lo, hi), detail=f"between {lo:.0f} and {hi:.0f} ms: {how}")


async def _refused(ctx: PhaseContext, plc: ModbusPlc) -> bool:
    """A permit request while tripped must not be confirmed: refused or not confirmed by the PLC's answers.

    A lost link (LinkLost) proves nothing and ends the phase as a failure."""
    try:
        await ctx.io("X-ray permit while tripped", plc.request_xray_permit(True), request_timeout(plc))
    except (ReadbackMismatch, DeviceRefused):
        return True
    await ctx.io("X-ray permit off", plc.request_xray_permit(False), request_timeout(plc))
    return False
