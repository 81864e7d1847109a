"""Feedback reaches the hub the way every review does: a ReviewMsg whose Review carries the search
result, ingested by the real hub ingest on both backends, is what the hit rates count."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from central_sync import protocol as p
from central_sync.devtools import make_record
from central_sync.hub.ingest import Ingestor
from central_sync.riskhub import feedback
from central_sync.hub.store import HubStore
from central_sync.schema import InspectionRecord, Review, RiskDraw, RiskFired, RiskOut, SearchResult, Verdict
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
