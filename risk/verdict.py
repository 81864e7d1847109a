"""Risk only ever makes a verdict stricter: the one place where an assessment meets the detector's verdict.

    lane red    -> manual (physical inspection) with reason risk_red, unless already manual
    lane amber  -> a clear becomes manual with reason risk_amber (the officer must decide); others unchanged
    lane green  -> unchanged

No lane turns suspect or manual into clear, and none lowers a verdict (tests/risk/test_verdict.py proves it
over every outcome). The reason codes are also members of edge.verdict.Reason, which wraps this function.
"""

from __future__ import annotations

from central_sync.schema import Verdict
from risk.engine import Assessment

RISK_RED = "risk_red"
RISK_AMBER = "risk_amber"
SEVERITY = {Verdict.CLEAR: 0, Verdict.SUSPECT: 1, Verdict.MANUAL: 2}


def stricter(verdict: Verdict, reason: str, assessment: Assessment) -> tuple[Verdict, str]:
    """The verdict and reason after the risk assessment (never less strict than before)."""
    if assessment.lane == "red" and verdict is not Verdict.MANUAL:
        return Verdict.MANUAL, RISK_RED
    if assessment.lane == "amber" and verdict is Verdict.CLEAR:
        return Verdict.MANUAL, RISK_AMBER
    return verdict, reason
