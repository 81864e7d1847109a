"""TIP outcomes leave the station through the outbox: one `tip` row per answered projection, written
in the same transaction as the outcome, and the item's own record and outbox rows untouched."""

import json
import sqlite3
from datetime import UTC, datetime

import numpy as np
import pytest

from central_sync.outbox import Lane
from central_sync.protocol import TipOutcome
from central_sync.schema import Verdict
from edge import tip
from edge.store import Store
from edge.web.config import TipConfig
from edge.web.demo import record_for, synthetic_scan


@pytest.fixture
def station(tmp_path):
    store = Store(tmp_path / "data", station="t-1").open()
    tip.ensure_schema(store.conn)
    engine = tip.TipEngine(TipConfig(rate=1.0, library_dir=tip.SHIPPED_LIBRARY, seed=5))
    rng = np.random.default_rng(11)

    def item():
        scan, truth = synthetic_scan(rng, threat=False)
        record = record_for(scan, Verdict.CLEAR, "clear", truth, station="t-1")
        return store.commit(record, store.put_scan(record.scan.sha256, scan.to_bytes()))

    yield store, engine, item
    store.close()


def tip_rows(store):
    return store.conn.execute("SELECT lane, record_id, seq, payload FROM outbox WHERE kind = 'tip' ORDER BY id").fetchall()


def test_each_answered_projection_is_queued_for_the_hub_with_officer_item_class_and_times(station):
    store, engine, item = station
    a = item()
    items_before = store.conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    engine.on_item(store, "B-7", a, now=1000.0)
    assert tip_rows(store) == []  # a pending projection is not an outcome yet
    p = engine.pending(store.conn, "B-7", a.id)
    engine.served(store.conn, "B-7", a.id, now=1000.0)  # drawn on the officer's screen
    engine.respond(store.conn, "B-7", a.id, True, p.box(engine.threats[p.threat]), now=1002.5)
    [(lane, record_id, seq, payload)] = tip_rows(store)
    event = store.conn.execute("SELECT id FROM tip_events WHERE record_id = ?", (a.id,)).fetchone()[0]
    assert (lane, record_id, seq) == (Lane.RECORD, a.id, a.seq)
    assert TipOutcome.model_validate_json(payload) == TipOutcome(
        station="t-1", officer="B-7", record_id=a.id, projection=event, threat=p.threat, label=engine.threats[p.threat].label,
        outcome="hit", shown_at=datetime.fromtimestamp(1000.0, UTC), responded_at=datetime.fromtimestamp(1002.5, UTC),
        decision_ms=2500.0)
    assert store.conn.execute("SELECT * FROM outbox WHERE kind != 'tip' ORDER BY id").fetchall() == items_before
    assert store.get(a.id) == a


def test_moving_on_and_false_alarms_are_queued_too(station):
    store, engine, item = station
    a, b, c = item(), item(), item()
    engine.on_item(store, "B-7", a, now=10.0)
    engine.served(store.conn, "B-7", a.id, now=10.0)
    assert engine.seen(store.conn, "B-7", a.id, now=13.0)  # on screen for the dwell (3 s)
    engine.on_item(store, "B-7", b, now=13.5)  # b arrives while a is still on screen: a stays open
    engine.left(store.conn, "B-7", a.id, now=14.0)  # a was never answered: a miss after 4 s
    engine.respond(store.conn, "B-8", c.id, True, now=20.0)  # another officer flags an image without projection
    bodies = [json.loads(r[3]) for r in tip_rows(store)]
    assert [(x["record_id"], x["officer"], x["outcome"], x["decision_ms"]) for x in bodies] == \
        [(a.id, "B-7", "miss", 4000.0), (c.id, "B-8", "false_alarm", None)]
    assert bodies[1]["threat"] is None and bodies[1]["label"] is None


def test_outcome_and_its_outbox_row_commit_together_or_not_at_all(station):
    store, engine, item = station
    a, b = item(), item()
    engine.on_item(store, "B-7", a, now=100.0)
    engine.served(store.conn, "B-7", a.id, now=100.0)
    assert engine.seen(store.conn, "B-7", a.id, now=104.0)
    store.conn.execute("CREATE TRIGGER no_tip BEFORE INSERT ON outbox WHEN new.kind = 'tip'"
                       " BEGIN SELECT RAISE(ABORT, 'outbox refuses tip rows'); END")
    with pytest.raises(sqlite3.DatabaseError, match="outbox refuses"):
        engine.respond(store.conn, "B-7", a.id, False)
    with pytest.raises(sqlite3.DatabaseError, match="outbox refuses"):
        engine.left(store.conn, "B-7", a.id)
    assert engine.pending(store.conn, "B-7", a.id) is not None  # the outcome rolled back with its outbox row
    assert tip.stats(store.conn, "B-7") == []  # no miss counted
    store.conn.execute("DROP TRIGGER no_tip")
    assert engine.respond(store.conn, "B-7", a.id, False).outcome == "miss"
    assert [json.loads(r[3])["outcome"] for r in tip_rows(store)] == ["miss"]


def test_one_officer_on_two_screens_gets_one_projection_per_item_and_one_answer_scores_it_once(station):
    """Two live streams of one officer (two screens or tabs) each projected into the same item, and the one
    answer scored both: projected 2, hits 2, a threat never shown counted as found. Now an item holds at most one
    projection per officer, open or answered, and an answer scores only the one on screen."""
    store, engine, item = station
    a = item()
    engine.on_item(store, "B-7", a, now=10.0)
    engine.on_item(store, "B-7", a, now=10.5)  # the second screen's stream
    assert store.conn.execute("SELECT count(*) FROM tip_events").fetchone()[0] == 1
    p = engine.pending(store.conn, "B-7", a.id)
    engine.served(store.conn, "B-7", a.id, now=11.0)
    assert engine.respond(store.conn, "B-7", a.id, True, p.box(engine.threats[p.threat]), now=13.0).outcome == "hit"
    engine.on_item(store, "B-7", a, now=14.0)  # a stream opened after the answer replays the item
    assert engine.pending(store.conn, "B-7", a.id) is None
    assert [(s["projected"], s["hits"]) for s in tip.stats(store.conn, "B-7")] == [(1, 1)] and len(tip_rows(store)) == 1


def test_an_answer_scores_only_the_projection_on_screen_where_a_store_holds_two(station):
    """Stores written before hold two open projections for one officer and item: the newest is the one drawn."""
    store, engine, item = station
    b = item()
    engine.on_item(store, "B-7", b, now=20.0)
    store.conn.execute("INSERT INTO tip_events (at, officer, record_id, threat, label, params, outcome) SELECT"
                       " at, officer, record_id, threat, label, params, outcome FROM tip_events WHERE record_id = ?",
                       (b.id,))
    p = engine.pending(store.conn, "B-7", b.id)
    engine.served(store.conn, "B-7", b.id, now=21.0)
    engine.respond(store.conn, "B-7", b.id, True, p.box(engine.threats[p.threat]), now=23.0)
    assert store.conn.execute("SELECT outcome FROM tip_events WHERE record_id = ? ORDER BY id", (b.id,)).fetchall() \
        == [("not_shown",), ("hit",)]
    assert [(s["projected"], s["hits"]) for s in tip.stats(store.conn, "B-7")] == [(1, 1)] and len(tip_rows(store)) == 1
