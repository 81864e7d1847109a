"""Prompts: nobody acting within the timeout ABORTS the phase (never fails it); the station stays safe."""

from __future__ import annotations

import io
import os

from edge.config import load_config
from edge.diag import DiagOptions, Outcome, run_diag
from edge.diag.hand import TerminalTechnician


async def _run_with_absent_technician(tmp_path, phases, answers: bytes = b""):
    """`answers`: the lines the technician typed before walking away."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, answers)
    printed = io.StringIO()
    with os.fdopen(read_fd) as stdin:
        hand = TerminalTechnician(out=printed, stdin=stdin)
        opts = DiagOptions(out_dir=tmp_path, phases=phases, prompt_timeout_s=0.5, hand=hand)
        result = await run_diag(load_config("examples/conveyor.toml"), opts)
    os.close(write_fd)
    return result, printed.getvalue()


async def test_nothing_moves_before_the_technician_says_the_way_is_clear(twin, tmp_path):
    """The phases that run the belt, move the divert or the barrier or switch the X-ray permit on did so with no
    prompt; unanswered, the phase is ABORTED and nothing was energised."""
    result, printed = await _run_with_absent_technician(tmp_path, ("safety",))
    safety = result.phases[0]
    assert safety.outcome == Outcome.ABORTED and [p["key"] for p in safety.prompts] == ["prompt.energise"]
    assert "nobody is on the belt" in printed and not safety.measurements
    assert "Press the emergency stop" not in printed  # it never came to energising the belt and the permit


async def test_unanswered_estop_prompt_aborts_and_the_station_is_left_safe(twin, tmp_path):
    result, printed = await _run_with_absent_technician(tmp_path, ("safety",), answers=b"\n")  # the way is clear
    safety = result.phases[0]
    assert safety.outcome == Outcome.ABORTED and result.outcome == Outcome.ABORTED
    assert "Press the emergency stop" in printed and "nobody answered" in safety.reason
    assert safety.prompts[0]["answered"] is True and safety.prompts[1]["answered"] is False
    model = result.station.plc.sim.model  # the twin's physics after teardown
    assert not model.belt_running and not model.active("xray_permit_request") and model.gate_pos == 1.0
    assert not result.station.emulator.armed
    assert not result.teardown


async def test_unconfirmed_prompt_aborts_the_phase_not_fails_it(twin, tmp_path):
    result, printed = await _run_with_absent_technician(tmp_path, ("imaging", "clock"))
    imaging, clock = result.phases
    assert imaging.outcome == Outcome.ABORTED and not imaging.measurements
    assert clock.outcome == Outcome.PASS  # the plan goes on after an aborted phase
    assert "test object" in printed


async def test_terminal_confirmation_answers_the_prompt(twin, tmp_path):
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"\n\n\n")
    with os.fdopen(read_fd) as stdin:
        opts = DiagOptions(out_dir=tmp_path, phases=("imaging",), prompt_timeout_s=5.0,
                           hand=TerminalTechnician(out=io.StringIO(), stdin=stdin))
        result = await run_diag(load_config("examples/conveyor.toml"), opts)
    os.close(write_fd)
    prompts = result.phases[0].prompts
    assert [p["key"] for p in prompts] == ["prompt.place_test_object", "prompt.energise", "prompt.remove_test_object"]
    assert [p["answered"] for p in prompts] == [True, True, True] and prompts[0]["by"] == "technician"
