"""The phase-and-measurement layer: judgement, outcomes, guidance from the catalogue."""

from __future__ import annotations

import pytest

from edge.diag.core import Outcome, PhaseResult, Spec, worst
from edge.diag.context import PhaseContext
from edge.diag.messages import Catalogue
from edge.diag.specs import SPECS

LATENCY = Spec("x.ms", "ms", "latency", high=20, marginal_high=15, message="eye.slow")
RANGE = Spec("x.speed", "m/s", "speed", low=0.2, high=0.5, marginal_low=0.25, marginal_high=0.45)
FLAG = Spec("x.ok", "", "flag", expect=True)


@pytest.mark.parametrize(("spec", "value", "outcome"), [
    (LATENCY, 10, Outcome.PASS), (LATENCY, 15, Outcome.PASS), (LATENCY, 17, Outcome.MARGINAL),
    (LATENCY, 20, Outcome.MARGINAL), (LATENCY, 20.01, Outcome.FAIL), (LATENCY, None, Outcome.FAIL),
    (LATENCY, float("nan"), Outcome.FAIL), (RANGE, 0.3, Outcome.PASS), (RANGE, 0.22, Outcome.MARGINAL),
    (RANGE, 0.19, Outcome.FAIL), (RANGE, 0.48, Outcome.MARGINAL), (RANGE, 0.6, Outcome.FAIL),
    (FLAG, True, Outcome.PASS), (FLAG, False, Outcome.FAIL), (Spec("x", "", "info"), 1e9, Outcome.PASS),
])
def test_judgement_of_limits_and_marginal_bands(spec, value, outcome):
    assert spec.judge(value) == outcome


def test_a_run_is_as_bad_as_its_worst_phase():
    assert worst([Outcome.PASS, Outcome.MARGINAL, Outcome.SKIPPED]) == Outcome.MARGINAL
    assert worst([Outcome.ABORTED, Outcome.MARGINAL]) == Outcome.ABORTED
    assert worst([Outcome.ABORTED, Outcome.FAIL, Outcome.ERROR]) == Outcome.FAIL
    assert worst([Outcome.SKIPPED]) == Outcome.SKIPPED and worst([]) == Outcome.PASS


def _ctx() -> PhaseContext:
    return PhaseContext(station=None, hand=None, result=PhaseResult("io", "I/O"),  # type: ignore[arg-type]
                        catalogue=Catalogue("en"), prompt_timeout_s=1.0)


def test_a_slow_photo_eye_gets_plain_guidance_with_its_values():
    ctx = _ctx()
    m = ctx.measure("io.eye_response_ms", 175.4, target="eye 3")
    assert m.outcome == Outcome.FAIL and m.message == "eye.slow"
    assert m.diagnosis == "Photo-eye eye 3 responds in 175 ms, limit 100 ms: clean the lens and check its alignment."
    marginal = ctx.measure("io.eye_response_ms", 58.0, target="eye 2")
    assert marginal.outcome == Outcome.MARGINAL and "limit 100 ms" in marginal.diagnosis
    assert ctx.result.judge() == Outcome.FAIL and len(ctx.result.diagnoses()) == 2


def test_a_value_that_could_not_be_measured_fails_and_says_why():
    m = _ctx().measure("io.divert_ms", None, target="to pass", detail="PLC p at h did not answer within 300 ms")
    assert m.outcome == Outcome.FAIL
    assert "did not answer within 300 ms" in m.diagnosis and m.message == "divert.slow"


def test_passing_measurements_carry_no_guidance():
    m = _ctx().measure("io.divert_ms", 120.0, target="to pass")
    assert m.outcome == Outcome.PASS and not m.diagnosis and not m.message


def test_config_dependent_limits():
    spec = SPECS["tracking.verdict_ms"].limited(high=2000, marginal_high=1400)
    assert spec.judge(1000) == Outcome.PASS and spec.judge(1500) == Outcome.MARGINAL and spec.judge(2100) == Outcome.FAIL
    assert SPECS["tracking.verdict_ms"].high is None  # the table itself is unchanged
