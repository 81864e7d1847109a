"""The fail-safe verdict rules of the design, in one place.

`clear` only when the detector finished inside the budget on a complete scan, no detection is
over its class threshold and no rule fired. A detection -> `suspect`. Anything that prevents a
decision -> `manual` with its reason. There is no default: every path names its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from central_sync.schema import Verdict
from models.detection import Detection
from risk.engine import Assessment
from risk.verdict import stricter


class Reason(StrEnum):
    """Stable reason codes, stored in records and translated only at display time."""

    CLEAR = "clear"
    DETECTION = "detection"
    RULE = "rule"
    BUDGET_MISSED = "budget_missed"
    DEADLINE_UNREACHABLE = "deadline_unreachable"
    OVERLOAD = "overload"
    SCAN_INCOMPLETE = "scan_incomplete"
    DEVICE_FAULT = "device_fault"
    MODEL_UNAVAILABLE = "model_unavailable"
    MODEL_CANNOT_CLEAR = "model_cannot_clear"  # the model found nothing, but its manifest says it never clears
    MODEL_NOT_APPLICABLE = "model_not_applicable"  # the model was not made for this scan (models.applicability)
    INFERENCE_FAILED = "inference_failed"
    SAFETY_STOP = "safety_stop"
    STORE_FULL = "store_full"  # the station database is full: the record cannot be written
    RESTARTED = "restarted"  # the station software stopped while the item was scanned (a gantry vehicle left in the lane)
    SEAL_NOT_INTACT = "seal_not_intact"  # a container declared sealed whose seal is missing, opened or tampered
    CONTAINER_UNIDENTIFIED = "container_unidentified"  # a container code not read, or failing its check, while
    # the station checks declarations (edge.identity.unidentified_container): its declaration cannot be found
    RISK_RED = "risk_red"  # the risk assessment selected the item for physical inspection (risk.verdict)
    RISK_AMBER = "risk_amber"  # the risk assessment wants the officer to decide on a detector clear (risk.verdict)
    DENSE_OBJECT = "dense_object"  # part of a bag the beam cannot penetrate: nothing behind it was judged (models.dense)


@dataclass(frozen=True)
class Outcome:
    """What the inspection produced before the decision."""

    inference_completed: bool
    within_budget: bool
    scan_complete: bool
    detections: tuple[Detection, ...] = ()
    failure: Reason | None = None  # set when something prevented a decision
    rules_fired: tuple[str, ...] = ()
    seal_problem: str | None = None  # edge.seals: why a declared seal is not intact (missing, opened, tampered)
    container_problem: str | None = None  # edge.identity: a container whose declaration cannot be looked up
    dense_problem: str | None = None  # models.dense: what the beam did not get through (only ever stops a clear)
    zero_band: str | None = None  # models.dense.zero_band: lines reading exactly 0 everywhere, a detector or link
    # fault (only ever stops a clear: a detection stays suspect)


def decide(outcome: Outcome) -> tuple[Verdict, Reason]:
    """Apply the verdict rules; the order of the checks is the order of precedence."""
    if outcome.failure is not None:
        return Verdict.MANUAL, outcome.failure
    if outcome.seal_problem is not None:
        return Verdict.MANUAL, Reason.SEAL_NOT_INTACT
    if outcome.container_problem is not None:
        return Verdict.MANUAL, Reason.CONTAINER_UNIDENTIFIED
    if not outcome.scan_complete:
        return Verdict.MANUAL, Reason.SCAN_INCOMPLETE
    if not outcome.inference_completed:
        return Verdict.MANUAL, Reason.INFERENCE_FAILED
    if not outcome.within_budget:
        return Verdict.MANUAL, Reason.BUDGET_MISSED
    if outcome.detections:
        return Verdict.SUSPECT, Reason.DETECTION
    if outcome.rules_fired:
        return Verdict.SUSPECT, Reason.RULE
    if outcome.zero_band is not None:
        return Verdict.MANUAL, Reason.DEVICE_FAULT
    if outcome.dense_problem is not None:
        return Verdict.MANUAL, Reason.DENSE_OBJECT
    return Verdict.CLEAR, Reason.CLEAR


def with_risk(verdict: Verdict, reason: Reason, assessment: Assessment) -> tuple[Verdict, Reason]:
    """The verdict after the risk assessment: only ever stricter (risk.verdict.stricter), as a Reason."""
    new_verdict, new_reason = stricter(verdict, reason, assessment)
    return new_verdict, Reason(new_reason)
