"""Threat Image Projection: physics of the composite, scoring, statistics, and that the record never changes."""

import asyncio
import json
from pathlib import Path

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from central_sync.schema import Verdict
from edge import audit, tip
from edge.auth import add_user
from edge.context import StationContext
from edge.events import EventBus
from edge.store import Store, StoreWriter
from edge.web.app import create_app, ensure_schema
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import DEMO_USERS, record_for, synthetic_scan
from models.scan import AIR, Scan

OFFICER = (DEMO_USERS[0][0], DEMO_USERS[0][3])
SUPERVISOR = (DEMO_USERS[1][0], DEMO_USERS[1][3])


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return tip.SHIPPED_LIBRARY


def test_library_holds_the_simulators_threats(library):
    threats = tip.load_library(library)
    assert {t.label for t in threats.values()} == {"firearm", "knife", "ammunition", "cigarettes", "phone",
                                                   "battery", "drugs"}
    gun = threats["firearm-0"]
    assert gun.high.min() < 0.2 and gun.high.max() > 0.99  # steel dark, air around it clear
    assert (gun.low <= gun.high + 1e-6).all()  # the low channel attenuates at least as much


def test_cut_outs_from_labelled_example_scans(tmp_path):
    sources = sorted(Path(__file__).resolve().parents[2].glob("examples/scans/*firearm*.npz"))
    if not sources:
        pytest.skip("no labelled example scans in examples/scans")
    written = tip.build_library(tmp_path, sources[:1])
    threats = tip.load_library(tmp_path)
    assert len(threats) == len(written) >= 1 and "firearm" in {t.label for t in threats.values()}


def test_composite_multiplies_transmissions_inside_the_box_only(library):
    threat = tip.load_library(library)["knife-0"]
    rng = np.random.default_rng(3)
    bag = Scan(rng.integers(20000, 60000, (200, 300), dtype=np.uint16),
               rng.integers(15000, 50000, (200, 300), dtype=np.uint16))
    p = tip.Projection("knife-0", x=5, y=50, scale=1.0)
    out = tip.composite(bag, threat, p)
    x0, y0, x1, y1 = (int(v) for v in p.box(threat))
    expected = bag.high[y0:y1, x0:x1].astype(np.float64) * threat.high
    assert np.abs(out.high[y0:y1, x0:x1] - expected).max() <= 1.0
    expected_low = bag.low[y0:y1, x0:x1].astype(np.float64) * threat.low
    assert np.abs(out.low[y0:y1, x0:x1] - expected_low).max() <= 1.0
    outside = np.ones(bag.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert (out.high[outside] == bag.high[outside]).all() and (out.low[outside] == bag.low[outside]).all()
    assert out.high.dtype == np.uint16 and out.high.max() <= AIR


def _bag_in_air(size: tuple[int, int], shape: tuple[int, int] = (360, 560)) -> Scan:
    """A scan of air (with the detector's noise) holding one dense box of `size` (h, w) in its middle."""
    rng = np.random.default_rng(4)
    high = np.clip(AIR * (1 + rng.normal(0, 0.003, shape)), 0, AIR).astype(np.uint16)
    y, x = (shape[0] - size[0]) // 2, (shape[1] - size[1]) // 2
    high[y:y + size[0], x:x + size[1]] = 30000
    return Scan(high=high, low=(high * 0.8).astype(np.uint16))


def test_the_projected_threat_lies_wholly_inside_the_bag(library):
    """Before: only the threat box's top-left corner was on the bag; the rest reached past the bag's outline
    into the air (11 of 50 draws), a patch an officer spots as a test."""
    import random

    threats = tip.load_library(library)
    margin = tip.BAG_MARGIN_PX
    for bag in range(3):
        scan, _ = synthetic_scan(np.random.default_rng(bag), threat=False)
        for seed in range(30):
            p = tip.choose(threats, scan.high, TipConfig(), random.Random(seed))
            x0, y0, x1, y1 = (int(v) for v in p.box(threats[p.threat]))
            around = scan.high[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin]
            assert (around < 0.9 * AIR).all(), f"bag {bag} seed {seed}: {p} reaches the air"


def test_the_composite_changes_the_bag_only_where_the_threat_is(library):
    """Transmissions multiply: the cut-out's air (transmission 1) leaves the bag's pixels as they were, in
    both channels, and no pixel of the air around the bag changes (no patch edge to see)."""
    import random

    import cv2

    threats = tip.load_library(library)
    scan, _ = synthetic_scan(np.random.default_rng(2), threat=False)
    air = scan.high >= 0.9 * AIR
    for seed in range(30):
        p = tip.choose(threats, scan.high, TipConfig(), random.Random(seed))
        threat = threats[p.threat]
        x0, y0, x1, y1 = (int(v) for v in p.box(threat))
        out = tip.composite(scan, threat, p)
        for bag, cut, merged in ((scan.high, threat.high, out.high), (scan.low, threat.low, out.low)):
            footprint = np.zeros(scan.shape, bool)
            footprint[y0:y1, x0:x1] = cv2.resize(cut, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) < 1.0
            changed = merged != bag
            assert not (changed & ~footprint).any(), f"seed {seed}: {p} changed pixels outside the threat"
            assert not (changed & air).any(), f"seed {seed}: {p} changed the air around the bag"
            assert changed.any()


@pytest.mark.parametrize("size", [(0, 0), (40, 60), (44, 400)])
def test_no_threat_is_projected_into_a_bag_too_small_for_it(library, size):
    """Before: an empty tray or a bag too small (or too thin) for every threat still got one, in the air."""
    import random

    threats = tip.load_library(library)
    thinnest = min(min(t.high.shape) for t in threats.values()) * TipConfig().min_scale
    assert min(size) - 2 * tip.BAG_MARGIN_PX < thinnest  # no threat fits inside it, at any scale
    scan = _bag_in_air(size)
    assert all(tip.choose(threats, scan.high, TipConfig(), random.Random(s)) is None for s in range(20))
    big = _bag_in_air((220, 400))
    p = tip.choose(threats, big.high, TipConfig(), random.Random(0))
    x0, y0, x1, y1 = (int(v) for v in p.box(threats[p.threat]))
    assert (big.high[y0:y1, x0:x1] == 30000).all()


class TipStation:
    def __init__(self, tmp_path, library):
        self.store = Store(tmp_path / "data", station="t-1").open()
        ensure_schema(self.store)
        for badge, name, role, pin in DEMO_USERS:
            add_user(self.store, badge, name, role, pin)
        self.writer = StoreWriter(self.store)
        ctx = StationContext("t-1", "conveyor", "1", 400.0, self.writer, EventBus(), lambda: {})
        self.cfg = WebConfig(tip=TipConfig(rate=1.0, library_dir=library, seed=5))
        self.app = create_app(ctx, self.cfg)
        self.engine = self.app.state.web.tip
        self.rng = np.random.default_rng(11)

    def item(self, verdict=Verdict.CLEAR, reason="clear"):
        scan, truth = synthetic_scan(self.rng, threat=verdict is Verdict.SUSPECT)
        record = record_for(scan, verdict, reason, truth, station="t-1")
        return self.store.commit(record, self.store.put_scan(record.scan.sha256, scan.to_bytes()))


@pytest.fixture
def station(tmp_path, library):
    st = TipStation(tmp_path, library)
    with TestClient(st.app) as client:
        assert client.post("/api/signin", json={"badge": OFFICER[0], "pin": OFFICER[1]}).status_code == 200
        st.client = client
        yield st
    asyncio.run(st.writer.__aexit__(None, None, None))  # closes the store and its thread


def test_the_image_tools_data_carries_the_projection_while_it_awaits_an_answer(station):
    """The screen draws from /scan.bin (static/imagetools.js): a TIP image must be there too, then go."""
    from edge.web import scandata

    rec = station.item()
    plain = scandata.decode(station.client.get(f"/api/cases/{rec.id}/scan.bin").content)
    station.engine.on_item(station.store, OFFICER[0], rec)
    projected = scandata.decode(station.client.get(f"/api/cases/{rec.id}/scan.bin").content)
    assert not np.array_equal(projected[1], plain[1])
    assert "tip" not in projected[0]  # nothing in the data tells the officer it is a test
    station.client.post(f"/api/cases/{rec.id}/screen", json={"flagged": False})
    again = scandata.decode(station.client.get(f"/api/cases/{rec.id}/scan.bin").content)
    assert np.array_equal(again[1], plain[1]) and np.array_equal(again[2], plain[2])


def _outbox(store):
    """The item's own outbox rows (TIP outcomes travel as rows of their own, kind `tip`)."""
    return store.conn.execute("SELECT id, lane, kind, record_id, seq, payload FROM outbox WHERE kind != 'tip'").fetchall()


def test_hit_is_scored_then_told_and_the_record_is_untouched(station):
    rec = station.item()
    before, outbox_before = station.store.get(rec.id), _outbox(station.store)
    plain = station.client.get(f"/api/cases/{rec.id}/image.png").content
    station.engine.on_item(station.store, OFFICER[0], rec)  # what the live stream does for each new item
    projected = station.client.get(f"/api/cases/{rec.id}/image.png").content
    assert projected != plain
    p = station.engine.pending(station.store.conn, OFFICER[0], rec.id)
    box = list(p.box(station.engine.threats[p.threat]))
    r = station.client.post(f"/api/cases/{rec.id}/screen", json={"flagged": True, "box": box}).json()
    assert r["tip"] is True and r["outcome"] == "hit" and r["label"] == station.engine.threats[p.threat].label
    assert station.client.get(f"/api/cases/{rec.id}/image.png").content == plain  # back to the real scan
    assert station.store.get(rec.id) == before and _outbox(station.store) == outbox_before


def test_flag_in_the_wrong_place_or_clearing_is_a_miss(station):
    a, b = station.item(), station.item()
    station.engine.on_item(station.store, OFFICER[0], a)
    station.client.get(f"/api/cases/{a.id}/image.png")
    r = station.client.post(f"/api/cases/{a.id}/screen", json={"flagged": True, "box": [0, 0, 2, 2]}).json()
    assert r["outcome"] == "miss"
    station.engine.on_item(station.store, OFFICER[0], b)
    station.client.get(f"/api/cases/{b.id}/image.png")
    assert station.client.post(f"/api/cases/{b.id}/screen", json={"flagged": False}).json()["outcome"] == "miss"


def test_moving_on_after_watching_the_image_is_a_miss_told_with_the_threats_box(station):
    a, b = station.item(), station.item()
    station.engine.on_item(station.store, OFFICER[0], a)
    station.client.get(f"/api/cases/{a.id}/image.png")  # drawn on the screen
    station.engine.on_item(station.store, OFFICER[0], b)  # b arrives while a is still on screen: a stays open
    assert station.engine.pending(station.store.conn, OFFICER[0], a.id) is not None
    assert station.engine.seen(station.store.conn, OFFICER[0], a.id, now=time.time() + 3.5)  # watched 3 s
    p = station.engine.pending(station.store.conn, OFFICER[0], a.id)
    r = station.client.post(f"/api/cases/{a.id}/left").json()
    assert r == {"tip": True, "outcome": "miss", "label": station.engine.threats[p.threat].label,
                 "box": list(p.box(station.engine.threats[p.threat]))}
    assert tip.stats(station.store.conn, OFFICER[0])[0]["misses"] == 1


def test_images_never_shown_or_left_before_the_dwell_are_not_charged(station):
    never, glimpsed = station.item(), station.item()
    station.engine.on_item(station.store, OFFICER[0], never)  # the officer was on another view
    station.engine.on_item(station.store, OFFICER[0], glimpsed)  # `never` was not drawn: not shown
    station.client.get(f"/api/cases/{glimpsed.id}/image.png")
    assert station.client.post(f"/api/cases/{glimpsed.id}/seen").json() == {"ok": True}  # too soon: refused
    assert station.client.post(f"/api/cases/{glimpsed.id}/left").json() == {"tip": False}
    outcomes = station.store.conn.execute("SELECT record_id, outcome FROM tip_events ORDER BY id").fetchall()
    assert outcomes == [(never.id, "not_shown"), (glimpsed.id, "not_shown")]
    assert tip.stats(station.store.conn, OFFICER[0]) == []
    assert station.store.conn.execute("SELECT count(*) FROM outbox WHERE kind = 'tip'").fetchone()[0] == 0


def test_no_projection_into_suspect_items_and_flags_on_real_images_are_false_alarms(station):
    rec = station.item(Verdict.SUSPECT, "detection")
    station.engine.on_item(station.store, OFFICER[0], rec)
    assert station.engine.pending(station.store.conn, OFFICER[0], rec.id) is None
    clear = station.item()
    r = station.client.post(f"/api/cases/{clear.id}/screen", json={"flagged": True}).json()
    assert r == {"tip": False}
    assert tip.stats(station.store.conn, OFFICER[0])[0]["false_alarms"] == 1


def test_statistics_per_officer(station):
    for flagged in (True, True, False):
        rec = station.item()
        station.engine.on_item(station.store, OFFICER[0], rec)
        station.client.get(f"/api/cases/{rec.id}/image.png")
        station.client.post(f"/api/cases/{rec.id}/screen", json={"flagged": flagged})
    mine = station.client.get("/api/tip/stats").json()["officers"]
    assert mine == [{"officer": OFFICER[0], "projected": 3, "hits": 2, "misses": 1, "false_alarms": 0,
                     "hit_rate": 0.667}]
    station.client.post("/api/signout")
    station.client.post("/api/signin", json={"badge": SUPERVISOR[0], "pin": SUPERVISOR[1]})
    assert [o["officer"] for o in station.client.get("/api/tip/stats").json()["officers"]] == [OFFICER[0]]


def test_an_officers_statistics_do_not_tell_that_the_item_just_arrived_holds_a_projection(station):
    """Before: the officer's own line read pending 1 (and appeared at all) the moment a projection was made."""
    answered = station.item()
    station.engine.on_item(station.store, OFFICER[0], answered)
    station.client.get(f"/api/cases/{answered.id}/image.png")
    station.client.post(f"/api/cases/{answered.id}/screen", json={"flagged": False})
    before = station.client.get("/api/tip/stats").json()["officers"]
    rec = station.item()
    station.engine.on_item(station.store, OFFICER[0], rec)
    assert station.engine.pending(station.store.conn, OFFICER[0], rec.id) is not None
    assert station.client.get("/api/tip/stats").json()["officers"] == before
    assert before == [{"officer": OFFICER[0], "projected": 1, "hits": 0, "misses": 1, "false_alarms": 0,
                       "hit_rate": 0.0}]
    fresh = station.item()  # a supervisor's first projection does not make a line appear either
    station.engine.on_item(station.store, SUPERVISOR[0], fresh)
    assert [o["officer"] for o in tip.stats(station.store.conn)] == [OFFICER[0]]


def test_the_cases_audit_trail_does_not_tell_the_officer_that_the_image_held_a_projection(station):
    """Before: the trail of GET /api/cases/{id} read `case.image_view {"tip": true}` after loading the image."""
    plain, projected = station.item(), station.item()
    station.engine.on_item(station.store, OFFICER[0], projected)
    for rec in (plain, projected):
        station.client.get(f"/api/cases/{rec.id}/image.png")
    trails = [station.client.get(f"/api/cases/{rec.id}").json()["audit"] for rec in (plain, projected)]
    assert [[(e["action"], e["detail"]) for e in trail] for trail in trails] == [
        [("case.image_view", {"mode": "colour"})]] * 2
    views = audit.entries(station.store.conn, projected.id)  # the evidence keeps it, for the supervisor
    assert [json.loads(e.detail)["tip"] for e in views] == [True]
    station.client.post("/api/signout")
    station.client.post("/api/signin", json={"badge": SUPERVISOR[0], "pin": SUPERVISOR[1]})
    assert station.client.get(f"/api/cases/{projected.id}").json()["audit"][0]["detail"]["tip"] is True


def test_an_answer_is_scored_once_and_only_on_an_image_the_officer_was_shown(station):
    """Before: flagging an item whose composite was never drawn scored a hit (answering blind); a second
    answer on an answered projection added a false alarm, and each flag on a clean item added another."""
    blind, answered, clean = station.item(), station.item(), station.item()
    station.engine.on_item(station.store, OFFICER[0], blind)
    assert station.client.post(f"/api/cases/{blind.id}/screen", json={"flagged": True}).json() == {"tip": False}
    station.engine.on_item(station.store, OFFICER[0], answered)
    station.client.get(f"/api/cases/{answered.id}/image.png")
    assert station.client.post(f"/api/cases/{answered.id}/screen", json={"flagged": True}).json()["outcome"] == "hit"
    for rec in (answered, clean, clean, clean, blind):  # another screen, a retry
        assert station.client.post(f"/api/cases/{rec.id}/screen", json={"flagged": True}).json() == {"tip": False}
    outcomes = station.store.conn.execute("SELECT record_id, outcome FROM tip_events ORDER BY id").fetchall()
    assert outcomes == [(blind.id, "not_shown"), (blind.id, "false_alarm"), (answered.id, "hit"),
                        (clean.id, "false_alarm")]
    assert tip.stats(station.store.conn, OFFICER[0]) == [
        {"officer": OFFICER[0], "projected": 1, "hits": 1, "misses": 0, "false_alarms": 2, "hit_rate": 1.0}]


def test_default_library_is_seeded_in_the_data_dir_on_first_start(tmp_path):
    store = Store(tmp_path / "data", station="t-1").open()
    writer = StoreWriter(store)
    ctx = StationContext("t-1", "conveyor", "1", 400.0, writer, EventBus(), lambda: {})
    app = create_app(ctx, WebConfig())
    with TestClient(app):
        engine = app.state.web.tip
        assert engine.active and engine.folder == tmp_path / "data" / "tip-library"
        assert len(list(engine.folder.glob("*.npz"))) == len(engine.threats) > 0
    asyncio.run(writer.__aexit__(None, None, None))
