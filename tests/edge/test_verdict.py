"""The fail-safe verdict rules: nothing is clear unless inference completed in time on a full scan."""

import itertools

from central_sync.schema import Verdict
from edge.verdict import Outcome, Reason, decide
from models.detection import Detection

KNIFE = Detection("knife", 0.9, (0, 0, 10, 10))


def test_clear_only_when_everything_held():
    assert decide(Outcome(True, True, True)) == (Verdict.CLEAR, Reason.CLEAR)


def test_no_combination_with_a_defect_is_clear():
    for completed, in_budget, complete, failure in itertools.product(
            (True, False), (True, False), (True, False), (None, Reason.DEVICE_FAULT)):
        verdict, _ = decide(Outcome(completed, in_budget, complete, (), failure))
        ok = completed and in_budget and complete and failure is None
        assert (verdict is Verdict.CLEAR) == ok


def test_timeout_is_manual_even_with_detections():
    assert decide(Outcome(True, False, True, (KNIFE,))) == (Verdict.MANUAL, Reason.BUDGET_MISSED)


def test_fault_wins_over_detection():
    assert decide(Outcome(True, True, True, (KNIFE,), Reason.DEVICE_FAULT)) == (Verdict.MANUAL, Reason.DEVICE_FAULT)


def test_incomplete_scan_is_manual():
    assert decide(Outcome(True, True, False)) == (Verdict.MANUAL, Reason.SCAN_INCOMPLETE)


def test_detection_is_suspect():
    assert decide(Outcome(True, True, True, (KNIFE,))) == (Verdict.SUSPECT, Reason.DETECTION)


def test_rule_is_suspect():
    assert decide(Outcome(True, True, True, (), None, ("seal_mismatch",))) == (Verdict.SUSPECT, Reason.RULE)
