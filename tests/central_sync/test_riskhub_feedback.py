"""Feedback reaches the hub the way every review does: a ReviewMsg whose Review carries the search
result, or better the signed search report inside the record, ingested by the real hub ingest on both
backends, is what the hit rates count."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from central_sync import protocol as p
from central_sync.devtools import make_record
from central_sync.hub.ingest import Ingestor
from central_sync.riskhub import feedback
from central_sync.hub.store import HubStore
from central_sync.schema import (InspectionRecord, Review, RiskDraw, RiskFired, RiskOut, SearchFinding, SearchReport,
                                 SearchResult, SearchSignature, Verdict)
from riskhub_fixtures import store  # noqa: F401 - the fixture


def message(kind: str, rec: InspectionRecord, msg_id: int, body: bytes) -> tuple[str, bytes]:
    return p.topic(rec.station, kind), p.encode_envelope(rec.station, kind, msg_id, rec.seq, rec.id, body, 0.0)


def test_a_seizure_reported_in_a_review_is_feedback(store: HubStore) -> None:
    sent: list[str] = []
    ing = Ingestor(store, "hub-f", lambda t, b: sent.append(t))
    rec = make_record("gate-1", 1, Verdict.MANUAL).model_copy(update={"risk": RiskOut(
        lane="red", score=160, bundle=3, rules=[RiskFired(id="heavy-empty", kind="rule", reason="x", score=60, lane="red"),
                                                RiskFired(id="plate:plates", kind="watchlist", reason="y", score=100, lane="red")],
        random=RiskDraw(seed="s", draw=0.5, rate=0.02, selected=False))})
    found = Review(officer="B-7", decided_at=datetime(2026, 11, 2, 9, tzinfo=UTC), outcome="threat_confirmed",
                   search=SearchResult(outcome="seized", goods_class="cigarettes", quantity=12.5, unit="kg"))
    other = make_record("gate-1", 2, Verdict.MANUAL)
    plain = Review(officer="B-7", decided_at=datetime(2026, 11, 2, 9, 5, tzinfo=UTC), outcome="cleared")
    ing.handle([message("inspection", rec, 1, rec.to_json().encode()),
                message("review", rec, 2, rec.model_copy(update={"review": found}).to_json().encode()),
                message("inspection", other, 3, other.to_json().encode()),
                message("review", other, 4, plain.model_dump_json().encode())])
    rows = feedback.feedback_rows(store, 0.0, 2e9)
    assert [(r["record_id"], r["outcome"], r["goods_class"], r["quantity"], r["unit"]) for r in rows] == [
        (rec.id, "seized", "cigarettes", 12.5, "kg")]  # a review without a search result is no feedback
    assert [(r["kind"], r["id"], r["inspected"], r["seized"]) for r in feedback.hit_rates(rows)] == [
        ("rule", "heavy-empty", 1, 1), ("watchlist", "plates", 1, 1)]
    assert json.loads(store.query("SELECT body FROM reviews WHERE record_id=?", (rec.id,))[0][0])["search"]["outcome"] == "seized"


@pytest.mark.parametrize(("risk", "chosen"), [
    ({"rules": [{"id": "r1", "kind": "rule"}, {"id": "plate:plates", "kind": "watchlist"}]}, [("rule", "r1"), ("watchlist", "plates")]),
    ({"rules": [{"id": "r2", "reason": "x"}]}, [("rule", "r2")]),                       # the architecture's short form
    ({"random": {"draw": 0.01, "rate": 0.02, "seed": "s"}}, [("random", "random")]),    # no `selected`: draw < rate
    ({"random": {"value": 0.5, "rate": 0.02, "selected": False}}, []),
    ({}, []),
])
def test_selectors_are_read_from_the_records_risk(risk: dict, chosen: list[tuple[str, str]]) -> None:
    assert sorted(feedback.selectors(risk)) == chosen


def report(version: int, outcome: str, countersigned: bool, at: datetime) -> SearchReport:
    """One signed version of a record's search report (a seizure with one finding)."""
    sig = SearchSignature(badge="B-7", role="officer", signed_at=at, digest="a" * 64)
    found = [SearchFinding(goods="cigarettes", hs_class="2402", quantity=40, unit="cartons", area="cab")]
    unsigned = SearchReport(version=version, vehicle_type="van", minutes=30, outcome=outcome,  # type: ignore[arg-type]
                            findings=found if outcome == "seizure" else [], officer=sig)
    sig = sig.model_copy(update={"digest": unsigned.content_digest()})  # signed over its content, as a station signs
    return unsigned.model_copy(update={"officer": sig, "countersigned": sig.model_copy(
        update={"badge": "S-1", "role": "supervisor"}) if countersigned else None})


def test_the_search_report_is_the_outcome_and_the_review_only_without_one(store: HubStore) -> None:
    ing = Ingestor(store, "hub-f", lambda t, b: None)
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    r1 = RiskOut(lane="red", score=60, bundle=3, rules=[RiskFired(id="r1", kind="rule", reason="x", score=60, lane="red")])
    seized_review = Review(officer="B-7", decided_at=at, outcome="threat_confirmed",
                           search=SearchResult(outcome="seized", goods_class="cigarettes", quantity=1, unit="kg"))
    recs = [make_record("gate-1", n, Verdict.MANUAL).model_copy(update={"risk": r1}) for n in range(1, 5)]
    updates = [
        recs[0].model_copy(update={"review": seized_review, "search_reports": [report(1, "nothing_found", False, at)]}),
        recs[1].model_copy(update={"search_reports": [report(1, "seizure", False, at), report(2, "seizure", True, at)]}),
        recs[2].model_copy(update={"review": seized_review, "search_reports": [report(1, "seizure", False, at)]}),
        recs[3].model_copy(update={"review": seized_review})]
    msgs = [message("inspection", r, n, r.to_json().encode()) for n, r in enumerate(recs, 1)]
    ing.handle(msgs + [message("review", u, 10 + n, u.to_json().encode()) for n, u in enumerate(updates)])
    rows = {r["record_id"]: r for r in feedback.feedback_rows(store, 0.0, 2e9)}
    assert {k: (r["outcome"], r["source"]) for k, r in rows.items()} == {
        recs[0].id: ("nothing_found", "search_report"),  # the signed report wins over the review's seizure
        recs[1].id: ("seizure", "search_report"),        # countersigned: final
        recs[3].id: ("seized", "review")}                # no report: the review's search result
    # recs[2]: a seizure awaiting its countersignature is no outcome yet, and its review does not stand in
    assert (rows[recs[1].id]["goods_class"], rows[recs[1].id]["quantity"]) == ("2402", 40)
    assert [(r["id"], r["inspected"], r["seized"]) for r in feedback.hit_rates(rows.values())] == [("r1", 3, 2)]
