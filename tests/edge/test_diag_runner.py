"""How a phase ends: every way maps to an outcome with a reason (no devices needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from drivers.errors import LinkLost
from edge.diag.context import PhaseContext
from edge.diag.core import Measurement, Outcome, PhaseResult
from edge.diag.drills import DRILLS, judge_drill
from edge.diag.hand import Action
from edge.diag.messages import Catalogue
from edge.diag.plan import Phase
from edge.diag.runner import DiagOptions, run_outcome, run_phase

STATION = SimpleNamespace(name="st-1", cfg=None)


class Absent:
    """A technician who never acts."""

    kind = "technician"

    async def perform(self, text: str, action: Action, *, confirm: bool) -> None:
        await asyncio.sleep(3600)


async def _run(body, timeout_s: float = 5.0):
    opts = DiagOptions(out_dir=Path("."), prompt_timeout_s=0.2)
    return await run_phase(Phase("t", "T", body, (), timeout_s), STATION, Absent(), Catalogue("en"), opts)


async def test_a_bug_in_a_phase_is_an_error_and_the_plan_goes_on():
    async def body(ctx: PhaseContext) -> None:
        ctx.measure("clock.wall_sane", True)
        raise KeyError("eye_4")

    res = await _run(body)
    assert res.outcome == Outcome.ERROR and "KeyError" in res.reason and res.measurements


async def test_a_phase_that_measured_nothing_is_skipped_with_the_reason_not_passed():
    async def body(ctx: PhaseContext) -> None:
        ctx.note("no device of this kind is configured")  # ran to its end, checked nothing

    res = await _run(body)
    assert res.outcome == Outcome.SKIPPED and not res.measurements
    assert res.reason == "Nothing was checked: this station has none of what phase t tests (no such device is configured)."


async def test_a_phase_over_its_time_limit_is_an_error():
    async def body(ctx: PhaseContext) -> None:
        await asyncio.sleep(10)

    res = await _run(body, timeout_s=0.1)
    assert res.outcome == Outcome.ERROR and "did not finish within 0.1 s" in res.reason


async def test_an_unanswered_prompt_aborts():
    async def body(ctx: PhaseContext) -> None:
        await ctx.prompt("prompt.press_estop", Action("press_estop", "e-stop"))

    res = await _run(body)
    assert res.outcome == Outcome.ABORTED and res.prompts[0]["answered"] is False
    assert "Press the emergency stop (e-stop) now." in res.reason


async def test_a_device_that_stops_answering_fails_the_phase_with_its_words():
    async def body(ctx: PhaseContext) -> None:
        await ctx.io("read of input 3", asyncio.sleep(10), timeout_s=0.05)

    res = await _run(body)
    assert res.outcome == Outcome.FAIL and "read of input 3 did not complete within 50 ms" in res.reason


async def test_driver_errors_are_failures_not_errors():
    async def body(ctx: PhaseContext) -> None:
        raise LinkLost("PLC at 10.0.0.5:502 did not answer read of input 3 within 300 ms")

    res = await _run(body)
    assert res.outcome == Outcome.FAIL and res.diagnoses() == [res.reason]


def _failed(name: str, message: str) -> PhaseResult:
    res = PhaseResult(name, name, Outcome.FAIL)
    res.measurements.append(Measurement("x", "t", "", False, Outcome.FAIL, expect=True, message=message,
                                        diagnosis=f"diagnosis {message}"))
    return res


def _drill_run(*middle: PhaseResult) -> list[PhaseResult]:
    return [PhaseResult("drill-inject", "inject"), *middle, PhaseResult("drill-recover", "recover")]


def test_a_drill_that_behaves_as_designed_passes():
    drill = DRILLS["plc-timeout"]
    phases = _drill_run(_failed("links", drill.diagnosis), PhaseResult("clock", "clock"))
    phases.append(judge_drill(drill, phases, Catalogue("en")))
    assert phases[1].outcome == Outcome.FAIL and "plc-timeout" in phases[1].expected
    assert phases[-1].name == "drill-diagnosis" and phases[-1].outcome == Outcome.PASS
    assert run_outcome(phases) == Outcome.PASS


def test_a_drill_diagnosed_wrongly_fails():
    drill = DRILLS["plc-timeout"]
    phases = _drill_run(_failed("links", "controller.no_hello"))
    phases.append(judge_drill(drill, phases, Catalogue("en")))
    assert not phases[1].expected and phases[-1].outcome == Outcome.FAIL
    assert run_outcome(phases) == Outcome.FAIL


def test_a_drill_where_the_station_was_not_safe_fails():
    drill = DRILLS["plc-timeout"]
    phases = _drill_run(_failed("links", drill.diagnosis))
    phases[0] = _failed("drill-inject", "drill.unsafe")
    phases.append(judge_drill(drill, phases, Catalogue("en")))
    assert run_outcome(phases) == Outcome.FAIL


async def test_a_configured_part_that_did_not_open_fails_its_phase_and_the_run():
    """Its phase was SKIPPED, which ranks below PASS: a run whose model (or PLC) never opened said PASS, exit 0."""
    from edge.diag.runner import RunResult

    async def body(ctx: PhaseContext) -> None:
        raise AssertionError("a phase whose part did not open does not run")

    station = SimpleNamespace(name="st-1", cfg=SimpleNamespace(), detector=None)
    opts = DiagOptions(out_dir=Path("."), prompt_timeout_s=0.2)
    res = await run_phase(Phase("inference", "Inference", body, ("model",), 5), station, Absent(), Catalogue("en"), opts)
    assert res.outcome == Outcome.FAIL and res.reason
    run = RunResult(station, [PhaseResult("clock", "clock"), res], "", "")  # type: ignore[arg-type]
    assert run.outcome == Outcome.FAIL


def test_a_station_whose_safe_state_was_not_confirmed_is_no_pass():
    from edge.diag.runner import RunResult

    run = RunResult(STATION, [PhaseResult("clock", "clock")], "", "", teardown=["belt_running read back 1"])  # type: ignore[arg-type]
    assert run.outcome == Outcome.ERROR
    assert RunResult(STATION, [PhaseResult("clock", "clock")], "", "").outcome == Outcome.PASS  # type: ignore[arg-type]


async def test_a_safety_phase_with_no_safety_device_to_prove_is_skipped_not_passed():
    """A retrofit (xray) station with a PLC: its kind declares no e-stop or door, so the phase measured nothing and
    said PASS. Now it is SKIPPED with the reason: the machine's own interlocks are proved by its maker's procedure."""
    from edge.diag.phases import safety

    station = SimpleNamespace(name="st-1", cfg=SimpleNamespace(station=SimpleNamespace(kind="xray")), plc=object())
    opts = DiagOptions(out_dir=Path("."), prompt_timeout_s=0.2)
    res = await run_phase(Phase("safety", "Safety", safety.run, (), 5), station, Absent(), Catalogue("en"), opts)
    assert res.outcome == Outcome.SKIPPED and res.measurements == []
    assert res.reason == ("A Retrofit X-ray auto-detector station declares no safety devices to prove: prove the "
                          "machine's own e-stops and interlocks by its maker's procedure.")
