"""A diagnostic run the control room asks for (`request_diag`): the plan's phases that move nothing,
on the running station's own devices, inside the daemon.

    report = await run_remote(cfg, devices, detector, "quick", lane_busy=lambda: queued > 0)

Remote plans (edge.diag.plan names):

    quick   links, clock, hub               PLC register reads, controller HELLO and STATUS,
                                            readers, clock drift, a round trip through the broker
    full    quick + inference               the model's timing on a reference scan: skipped while
                                            the lane is in use, it takes the CPU live items need

The phases that drive outputs, the belt or the X-ray, or ask a technician to act (io, tracking,
rfid, llrp, cameras, imaging, safety) never run from here, whatever the lane is doing: a
technician runs them on site with `edge diag`. Nothing here requests the safe state either (that
would stop a running lane); the devices stay the daemon's and are neither opened nor closed.
The report is a plain dict (records.phase_dict per phase, attachments left out) that the station
sends back to the hub.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from edge.config import StationConfig
from edge.devices import Devices
from edge.diag.context import DiagError
from edge.diag.core import Outcome, PhaseResult, run_outcome
from edge.diag.hand import Action
from edge.diag.messages import Catalogue
from edge.diag.plan import PLAN
from edge.diag.records import phase_dict
from edge.diag.runner import DiagOptions, _utc, run_phase
from edge.diag.station import DiagStation, is_twin

if TYPE_CHECKING:
    from models.runtime import Detector

log = structlog.get_logger()

REMOTE_PLANS: dict[str, tuple[str, ...]] = {"quick": ("links", "clock", "hub"),
                                            "full": ("links", "clock", "hub", "inference")}
NEEDS_IDLE_LANE = frozenset({"inference"})  # CPU-heavy: run only while no item waits for the model


class RemoteHand:
    """No technician stands at a remote run: a phase that would prompt ends as an error instead."""

    kind = "remote"

    async def perform(self, text: str, action: Action, *, confirm: bool) -> float | None:
        raise DiagError(f"a remote diagnostic run cannot ask a technician: {text}")


async def run_remote(cfg: StationConfig, devices: Devices, detector: Detector | None, plan: str,
                     lane_busy: Callable[[], bool] = lambda: False, lang: str = "en") -> dict[str, Any]:
    """Run the remote plan's phases in order; the report (outcome, phases, what was left out and why)."""
    if plan not in REMOTE_PLANS:
        raise DiagError(f"remote plan {plan!r} is not one of {', '.join(REMOTE_PLANS)}")
    station = DiagStation(cfg, is_twin(cfg), devices=devices, detector=detector,
                          model_problem="" if detector is not None else "the station has no usable model")
    cat, hand = Catalogue(lang), RemoteHand()
    opts = DiagOptions(out_dir=cfg.station.data_dir / "diag", phases=REMOTE_PLANS[plan], prompt_timeout_s=5.0,
                       lang=lang)
    started, results = _utc(), []
    for phase in (p for p in PLAN if p.name in REMOTE_PLANS[plan]):
        if phase.name in NEEDS_IDLE_LANE and lane_busy():
            results.append(PhaseResult(phase.name, cat.text(f"title.{phase.name}", target=""), Outcome.SKIPPED,
                                       started=_utc(), reason=cat.text("skip.lane_busy")))
            continue
        results.append(await run_phase(phase, station, hand, cat, opts))
    log.info("diag.remote_done", station=cfg.station.id, plan=plan, outcome=str(run_outcome(results)))
    return {"plan": plan, "station": cfg.station.id, "outcome": str(run_outcome(results)), "started": started,
            "ended": _utc(), "phases": [_compact(phase_dict(p, [])) for p in results],
            "not_run": [p.name for p in PLAN if p.name not in REMOTE_PLANS[plan]],
            "note": "phases that move hardware or need a technician run on site only (edge diag)"}


def _compact(phase: dict[str, Any]) -> dict[str, Any]:
    """What the control room shows of a phase: no prompts or attachments."""
    keep = ("name", "unit", "target", "value", "outcome", "low", "high", "message", "diagnosis", "detail")
    return {"name": phase["name"], "title": phase["title"], "outcome": phase["outcome"],
            "duration_s": phase["duration_s"], "reason": phase["reason"], "notes": phase["notes"],
            "diagnoses": phase["diagnoses"],
            "measurements": [{k: m.get(k) for k in keep} for m in phase["measurements"]]}
