"""Running the plan: open the station, run each phase under its limit, always leave the station safe."""

from __future__ import annotations

import asyncio
import hashlib
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from collections.abc import Callable
from typing import Any

import structlog

from drivers.errors import DriverError
from edge.auth import User
from edge.config import StationConfig
from edge.diag.context import DiagError, PhaseContext, PhaseSkipped, PromptTimedOut, advice_key
from edge.diag.core import Outcome, PhaseResult, run_outcome, worst
from edge.diag.drills import DRILLS, Drill, judge_drill
from edge.diag.hand import Technician, TerminalTechnician, TwinHand
from edge.diag.messages import Catalogue
from edge.diag.plan import NEEDS, PLAN, Phase
from edge.diag.station import DiagStation, is_twin, quiet_twin

log = structlog.get_logger()

SAFE_AFTER = frozenset({"io", "tracking", "imaging", "safety", "drill-inject"})
"""The phases that move the machine or switch the X-ray permit on: each energises only once the technician confirmed
that nobody is in its way (PhaseContext.confirm_clear; unanswered within the prompt timeout: ABORTED, nothing
moved), and the safe state is requested after each."""


class DrillRefused(DiagError):
    """A fault drill asked for on hardware, or on a station without the device it needs."""


class RunInterrupted(DiagError):
    """The run was cancelled (Ctrl-C) in a phase: `result` holds what ran, that phase ABORTED, and the teardown.

    Raised instead of the cancellation so that the interrupted run is still recorded and the technician is
    told whether the safe state was confirmed (a bare KeyboardInterrupt lost both)."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(f"diagnostic run of station {result.station.name} interrupted")
        self.result = result


@dataclass
class DiagOptions:
    """How to run: who, which phases, where the records go, prompt timeout, language, drill."""

    out_dir: Path
    technician: User | None = None  # signed in (edge.diag.signin); None only against the twin
    phases: tuple[str, ...] | None = None
    prompt_timeout_s: float = 120.0
    lang: str = "en"
    drill: str | None = None
    reference_tag: str | None = None
    config_path: Path | None = None
    hand: Technician | None = None
    make_hand: Callable[[DiagStation], Technician] | None = None  # a hand that needs the opened station

DEVICE_LOST = "skip.device_lost"  # a configured device or model that did not open: the phase fails

@dataclass
class RunResult:
    """A finished run: the phases, the station facts for the record, and teardown problems."""

    station: DiagStation
    phases: list[PhaseResult]
    started: str
    ended: str
    facts: dict[str, Any] = field(default_factory=dict)
    teardown: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        """The phases' worst; at least ERROR when the station's return to its safe state was not confirmed."""
        return worst([run_outcome(self.phases), Outcome.ERROR]) if self.teardown else run_outcome(self.phases)


def _utc() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def run_diag(cfg: StationConfig, opts: DiagOptions) -> RunResult:
    """Run the plan (or the selected phases) against the station's devices; returns every result."""
    twin = is_twin(cfg)
    drill = check_drill(opts.drill, cfg, twin)
    station = DiagStation(quiet_twin(cfg) if twin else cfg, twin, baseline_path=opts.out_dir / "imaging-baseline.json",
                          reference_tag=opts.reference_tag)
    cat = Catalogue(opts.lang)
    started, results = _utc(), []
    async with AsyncExitStack() as stack:
        await station.open(stack)
        await station.load_model()
        hand = opts.hand or (opts.make_hand(station) if opts.make_hand else None) or \
            (TwinHand(station) if twin else TerminalTechnician())
        if isinstance(hand, TwinHand):
            stack.push_async_callback(hand.aclose)
        interrupted = False
        try:
            for phase in _phases(opts, drill):
                current = phase
                results.append(await run_phase(phase, station, hand, cat, opts))
                if phase.name in SAFE_AFTER and (unsafe := await station.make_safe()):
                    results[-1].notes += [f"safe state not confirmed: {p}" for p in unsafe]
                    if drill is None:  # a station left unsafe; under a drill the injected fault is why (it measures it)
                        results[-1].outcome = worst([results[-1].outcome, Outcome.ERROR])
        except asyncio.CancelledError:  # Ctrl-C: the run ends here, recorded, once the safe state is requested
            interrupted = True
            task = asyncio.current_task()
            if task is not None:  # taken: the devices' own teardown must not read it as a cancellation of theirs
                task.uncancel()
            _interrupted(current, results, cat, opts)
        finally:
            teardown = await station.make_safe()
        if drill is not None:
            results.append(judge_drill(drill, results, cat))
        facts = _facts(station, opts)
    result = RunResult(station, results, started, _utc(), facts, teardown)
    if interrupted:
        raise RunInterrupted(result)
    return result


def _interrupted(phase: Phase, results: list[PhaseResult], cat: Catalogue, opts: DiagOptions) -> None:
    """The phase a cancellation stopped, ABORTED with the reason, so that the run is ABORTED, not a PASS of a plan
    cut short. A phase already recorded was stopped in the safe state after it: its reason says so."""
    if results and results[-1].name == phase.name:
        res, key = results[-1], "phase.interrupted_after"
    else:
        res, key = PhaseResult(phase.name, cat.text(f"title.{phase.name}", target=opts.drill or ""), started=_utc()), \
            "phase.interrupted"
        results.append(res)
    res.outcome = worst([res.outcome, Outcome.ABORTED])
    res.reason = cat.text(key, target=phase.name)


def check_drill(name: str | None, cfg: StationConfig, twin: bool) -> Drill | None:
    if name is None:
        return None
    if name not in DRILLS:
        raise DrillRefused(f"unknown drill {name!r}; known: {', '.join(DRILLS)}")
    if not twin:
        raise DrillRefused(f"drill {name} injects faults into simulators; station {cfg.station.id} is not a twin")
    drill = DRILLS[name]
    present = {"plc": cfg.devices.plc, "scanner": cfg.devices.scanner, "readers": cfg.devices.readers}
    if not present[drill.device]:
        raise DrillRefused(f"drill {name} needs a {drill.device} device; station {cfg.station.id} has none")
    return drill


def _phases(opts: DiagOptions, drill: Drill | None) -> list[Phase]:
    chosen = [p for p in PLAN if opts.phases is None or p.name in opts.phases]
    if drill is None:
        return chosen
    need = {"plc": ("plc",), "scanner": ("scanner",), "readers": ("readers",)}[drill.device]
    return [Phase("drill-inject", f"Fault drill {drill.name}: inject", drill.inject, need, 30), *chosen,
            Phase("drill-recover", f"Fault drill {drill.name}: recover", drill.recover, need, 30)]


def _unmet(phase: Phase, station: DiagStation) -> tuple[str, dict[str, str]] | None:
    for need in phase.needs:
        configured, attr, key = NEEDS[need]
        if not configured(station.cfg):
            return key, {}
        if attr and not getattr(station, attr):
            return DEVICE_LOST, {"target": need}
    return None


async def run_phase(phase: Phase, station: DiagStation, hand: Technician, cat: Catalogue,
                    opts: DiagOptions) -> PhaseResult:
    """Run one phase under its time limit; every way it can end maps to an outcome and a reason."""
    res = PhaseResult(phase.name, cat.text(f"title.{phase.name}", target=opts.drill or ""), started=_utc())
    ctx = PhaseContext(station, hand, res, cat, opts.prompt_timeout_s)
    t0 = time.monotonic()
    log.info("diag.phase_started", phase=phase.name, station=station.name)
    try:
        unmet = _unmet(phase, station)
        if unmet is not None:
            raise PhaseSkipped(unmet[0], **unmet[1])
        async with asyncio.timeout(phase.timeout_s):
            await phase.run(ctx)
        if not res.measurements:  # a phase that measured nothing proved nothing: never a PASS
            raise PhaseSkipped("skip.nothing_checked", target=phase.name)
        res.outcome = res.judge()
    except PhaseSkipped as s:  # a part the config names that did not open fails the phase: not tested is not passed
        res.outcome = Outcome.FAIL if s.key == DEVICE_LOST else Outcome.SKIPPED
        res.reason = cat.text(s.key, **s.fields)
    except PromptTimedOut as e:
        res.outcome = Outcome.ABORTED
        res.reason = cat.text("phase.aborted", target=phase.name, detail=e.text, limit=e.timeout_s)
    except TimeoutError:
        res.outcome, res.reason = Outcome.ERROR, cat.text("phase.timeout", target=phase.name, limit=phase.timeout_s)
    except DriverError as e:
        res.outcome = Outcome.FAIL
        res.reason = ctx.error_text(e, phase.name, "") if advice_key(e) else \
            cat.text("phase.error", target=phase.name, detail=str(e))
    except Exception as e:  # noqa: BLE001 - the phase supervisor: any bug ends this phase as ERROR
        log.exception("diag.phase_error", phase=phase.name)
        res.outcome = Outcome.ERROR
        res.reason = cat.text("phase.error", target=phase.name, detail=f"{type(e).__name__}: {e}")
    res.duration_s = round(time.monotonic() - t0, 3)
    log.info("diag.phase_done", phase=phase.name, outcome=str(res.outcome), seconds=res.duration_s)
    return res


def _who(user: User | None) -> dict[str, str] | None:
    return {"badge": user.badge, "name": user.name, "role": user.role} if user is not None else None


def _facts(station: DiagStation, opts: DiagOptions) -> dict[str, Any]:
    """Who, what software, firmware, config and model the run proves."""
    from importlib import metadata

    try:
        software = metadata.version("checkpoint-edge")
    except metadata.PackageNotFoundError:
        software = "unknown"
    hello = getattr(getattr(station.scanner, "link", None), "hello", None)
    det = station.detector
    cfg_bytes = opts.config_path.read_bytes() if opts.config_path and opts.config_path.is_file() else \
        station.cfg.model_dump_json().encode()
    return {
        "station": station.name, "station_kind": station.cfg.station.kind, "twin": station.twin,
        "technician": _who(opts.technician), "software_version": software,
        "firmware_version": hello.firmware_version if hello else None,
        "firmware_sha256": hello.firmware_hash.hex() if hello else None,
        "config_path": str(opts.config_path) if opts.config_path else None,
        "config_sha256": hashlib.sha256(cfg_bytes).hexdigest(),
        "model": {"name": det.info.name, "version": det.info.version, "sha256": det.info.sha256} if det else None,
        "budget_ms": station.cfg.station.budget_ms, "drill": opts.drill, "devices_not_opened": station.problems,
    }
