"""The demo's risk state: authored with four eyes, published once, and some of the demo gantry's
vehicles (their windscreen tags) hit the watchlist at a station that applies the bundle."""

from __future__ import annotations

import time
from pathlib import Path

from central_sync.riskhub import demo, publish
from edge.demo import demo_tids
from riskhub_fixtures import open_risk_store, risk_key
from risk.bundle import open_bundle
from risk.engine import BundleState, Engine, Facts


def test_the_demo_publishes_a_watchlist_some_demo_vehicles_hit(tmp_path: Path) -> None:
    store = open_risk_store(str(tmp_path / "hub.db"))
    key = risk_key(tmp_path)
    tids = demo_tids()
    out = demo.seed(store, key, tids)
    assert out is not None and demo.seed(store, key, tids) is None  # once
    assert store.query("SELECT DISTINCT d.author, a.approver FROM risk_drafts d JOIN risk_approvals a ON a.draft_id = d.id")\
        == [("supervisor", "admin")]
    bundle = open_bundle(out.snapshot, {key.key_id: key.private.public_key()}, now=time.time(), current=None)
    assert len(bundle.rules) == len(demo.RULES) and bundle.random.rate == 0.05
    engine = Engine(BundleState.empty().apply(bundle))
    lanes = [engine.evaluate(Facts(item_id=f"v{n}", at=time.time(), identities=(("rfid_tid", tid),), station_id="gantry-1",
                                   station_kind="gantry", detector_verdict="clear")) for n, tid in enumerate(tids)]
    hits = [tid for tid, a in zip(tids, lanes) if any(f.kind == "watchlist" for f in a.fired)]
    assert hits == tids[::3] and len(hits) >= 2
    assert all(a.lane == "red" for tid, a in zip(tids, lanes) if tid in hits)
    assert publish.latest_offer(store) is not None  # what the hub offers the stations when it starts
