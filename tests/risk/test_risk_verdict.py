"""Risk only makes a verdict stricter: proved over every verdict, reason and assessment hypothesis draws."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from central_sync.schema import Verdict
from edge.verdict import Reason, with_risk
from risk.engine import Assessment, Fired, RandomDraw
from risk.verdict import RISK_AMBER, RISK_RED, SEVERITY, stricter

LANES = st.sampled_from(["red", "amber", "green"])
FIRED = st.builds(Fired, id=st.text(max_size=5), kind=st.sampled_from(["rule", "watchlist", "random", "no_bundle",
                                                                       "stale"]),
                  reason=st.text(max_size=5), score=st.integers(-100, 100), lane=LANES, level=st.integers(0, 3))
ASSESSMENTS = st.builds(Assessment, lane=LANES, score=st.integers(-1000, 1000),
                        fired=st.lists(FIRED, max_size=4).map(tuple),
                        random_draw=st.none() | st.builds(RandomDraw, seed=st.text(max_size=4),
                                                          value=st.floats(0, 1, exclude_max=True),
                                                          rate=st.floats(0, 1), selected=st.booleans()),
                        bundle_version=st.none() | st.integers(1, 99), stale=st.booleans())


@given(st.sampled_from(list(Verdict)), st.sampled_from(list(Reason)), ASSESSMENTS)
def test_risk_never_lowers_a_verdict(verdict: Verdict, reason: Reason, assessment: Assessment) -> None:
    after, why = stricter(verdict, reason, assessment)
    assert SEVERITY[after] >= SEVERITY[verdict]
    if verdict is not Verdict.CLEAR:
        assert after is not Verdict.CLEAR  # a suspect or manual never becomes clear
    if assessment.lane == "red":
        assert after is Verdict.MANUAL
        assert why == (reason if verdict is Verdict.MANUAL else RISK_RED)
    if assessment.lane == "amber":
        assert (after, why) == ((Verdict.MANUAL, RISK_AMBER) if verdict is Verdict.CLEAR else (verdict, reason))
    if assessment.lane == "green":
        assert (after, why) == (verdict, reason)


@given(st.sampled_from(list(Verdict)), st.sampled_from(list(Reason)), ASSESSMENTS)
def test_the_station_gets_its_own_reason_codes_back(verdict: Verdict, reason: Reason, assessment: Assessment) -> None:
    after, why = with_risk(verdict, reason, assessment)
    assert isinstance(why, Reason) and (after, str(why)) == stricter(verdict, reason, assessment)


def test_the_reason_codes_are_the_stations() -> None:
    assert (Reason.RISK_RED.value, Reason.RISK_AMBER.value) == (RISK_RED, RISK_AMBER)
