"""Seal policy and verdict: a declared seal that is missing, opened or tampered never yields clear."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from central_sync.schema import Identity, ItemKind, SealEventOut, SealStatus, Verdict
from edge.seals import SealExpectation
from edge.verdict import Outcome, Reason, decide

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
EXPECT = SealExpectation(True, ("HKEL0001234",))


def seal(state: str, value: str = "HKEL0001234") -> Identity:
    return Identity(kind="seal", value=value, seal=SealStatus(state=state))  # type: ignore[arg-type]


def verdict(problem: str | None) -> tuple[Verdict, Reason]:
    return decide(Outcome(True, True, True, (), None, (), problem))


def test_an_intact_declared_seal_lets_the_scan_decide() -> None:
    assert EXPECT.problem(ItemKind.CONTAINER, [seal("intact")]) is None
    assert verdict(None) == (Verdict.CLEAR, Reason.CLEAR)


def test_missing_opened_and_tampered_seals_go_to_manual_with_the_reason() -> None:
    cases = [([], "declared seal HKEL0001234 was not read"), ([seal("opened")], "seal HKEL0001234 is opened"),
             ([seal("tampered")], "seal HKEL0001234 is tampered"),
             ([Identity(kind="seal", value="HKEL0001234")], "seal HKEL0001234 was read without its state")]
    for idents, sentence in cases:
        problem = EXPECT.problem(ItemKind.CONTAINER, idents)
        assert problem == sentence
        assert verdict(problem) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT)


def test_a_tamper_event_in_the_lane_counts_even_when_the_seal_reads_intact_again() -> None:
    events = [SealEventOut(seal_id="HKEL0001234", state="tampered", at=NOW)]
    assert EXPECT.problem(ItemKind.CONTAINER, [seal("intact")], events) == \
        "seal HKEL0001234 reported tampered while the item was in the lane"


def test_any_seal_when_no_number_is_named_and_nothing_for_undeclared_or_other_kinds() -> None:
    anyseal = SealExpectation(True)
    assert anyseal.problem(ItemKind.VEHICLE, []) == "the item is declared sealed and no seal was read"
    assert anyseal.problem(ItemKind.VEHICLE, [seal("intact", "CNSL0001")]) is None
    assert anyseal.problem(ItemKind.BAGGAGE, []) is None
    assert SealExpectation(False).problem(ItemKind.CONTAINER, [seal("tampered")]) is None


@given(states=st.lists(st.sampled_from(("intact", "opened", "tampered")), min_size=1, max_size=4),
       events=st.lists(st.sampled_from(("intact", "opened", "tampered")), max_size=3),
       detections=st.booleans())
def test_a_tampered_or_opened_seal_never_yields_clear(states: list[str], events: list[str], detections: bool) -> None:
    idents = [seal(s) for s in states]  # the latest read wins in fusion; every one of them is checked here
    heard = [SealEventOut(seal_id="HKEL0001234", state=e, at=NOW) for e in events]  # type: ignore[arg-type]
    problem = EXPECT.problem(ItemKind.CONTAINER, idents[-1:], heard)
    outcome = Outcome(True, True, True, (), None, ("r",) if detections else (), problem)
    if idents[-1].seal and idents[-1].seal.state != "intact" or any(e != "intact" for e in events):
        assert decide(outcome) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT)
    assert decide(outcome)[0] != Verdict.CLEAR or problem is None
