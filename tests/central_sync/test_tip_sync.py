"""TIP outcomes from the station to the control room: a real station store and TIP engine, a real
Mosquitto (killed and restarted), the hub on SQLite (and the store on PostgreSQL), the control
room's TIP KPIs and who may see the per-officer figures."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from central_sync import protocol as p
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import make_record, outbox_rows
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.outbox import Lane, enqueue
from central_sync.publisher import Publisher
from central_sync.schema import Verdict
from edge import tip
from edge.store import Store
from edge.web.config import TipConfig
from edge.web.demo import record_for, synthetic_scan

from polling import until

PASSWORD = "correct horse"
OFFICER = "B-17"


class TipStation:
    """The station's store with TIP: items committed as the daemon does, answers scored by the engine."""

    def __init__(self, tmp_path, station: str = "gate-1") -> None:
        self.store = Store(tmp_path / "data", station=station).open()
        tip.ensure_schema(self.store.conn)
        self.engine = tip.TipEngine(TipConfig(rate=1.0, library_dir=tip.SHIPPED_LIBRARY, seed=5))
        self.rng = np.random.default_rng(11)
        self.station = station

    def item(self):
        scan, truth = synthetic_scan(self.rng, threat=False)
        record = record_for(scan, Verdict.CLEAR, "clear", truth, station=self.station)
        self.store.put_scan(record.scan.sha256, scan.to_bytes())  # on disk for the projection, not uploaded
        return self.store.commit(record, scan_stored=False)

    def hit(self, record) -> None:
        self.engine.on_item(self.store, OFFICER, record)
        p_ = self.engine.pending(self.store.conn, OFFICER, record.id)
        self.engine.served(self.store.conn, OFFICER, record.id)  # drawn on the officer's screen
        assert self.engine.respond(self.store.conn, OFFICER, record.id, True, p_.box(self.engine.threats[p_.threat])).outcome == "hit"

    def tip_rows(self) -> list[tuple]:
        return self.store.conn.execute("SELECT lane, kind, record_id, seq, payload FROM outbox WHERE kind = 'tip' ORDER BY id").fetchall()


def hub_tips(store) -> list[tuple]:
    return store.query("SELECT station, officer, record_id, projection, outcome FROM tip_outcomes ORDER BY projection")


async def test_tip_outcomes_reach_the_hub_once_across_a_broker_restart_and_a_resend(tmp_path, broker):
    st = TipStation(tmp_path)
    a, b, c, d = st.item(), st.item(), st.item(), st.item()
    item_rows = st.store.conn.execute("SELECT id, kind, payload FROM outbox ORDER BY id").fetchall()
    st.hit(a)
    st.engine.on_item(st.store, OFFICER, b, now=100.0)
    st.engine.served(st.store.conn, OFFICER, b.id, now=100.0)
    assert st.engine.seen(st.store.conn, OFFICER, b.id, now=104.0)
    st.engine.on_item(st.store, OFFICER, c)
    st.engine.left(st.store.conn, OFFICER, b.id)  # moved on from b without answering, having watched it: a miss
    st.engine.served(st.store.conn, OFFICER, c.id)
    assert st.engine.respond(st.store.conn, OFFICER, c.id, False).outcome == "miss"  # cleared the projection in c
    assert st.engine.respond(st.store.conn, OFFICER, d.id, True).outcome == "false_alarm"  # d held no projection
    tips = st.tip_rows()
    assert [json.loads(r[4])["outcome"] for r in tips] == ["hit", "miss", "miss", "false_alarm"]
    assert {r[0] for r in tips} == {Lane.RECORD} and [(r[2], r[3]) for r in tips] == [(x.id, x.seq) for x in (a, b, c, d)]
    assert st.store.conn.execute("SELECT id, kind, payload FROM outbox WHERE kind != 'tip' ORDER BY id").fetchall() == item_rows

    store = open_store(str(tmp_path / "hub.sqlite3"))
    cfg = SyncConfig(port=broker.port, status_period_s=0.5, ack_timeout_s=2.0, reconnect_min_s=0.1, reconnect_max_s=0.5)
    async with Publisher(cfg, "gate-1", st.store.db_path, st.store.scans_dir) as pub:
        # no hub yet: the broker takes the publishes and drops them; then the broker itself dies
        await until(lambda: st.store.conn.execute("SELECT min(attempts) FROM outbox").fetchone()[0],
                    "every row published to a hub-less broker", timeout=20, in_thread=True)
        broker.kill()
        assert outbox_rows(st.store.db_path) == 8  # 4 items + 4 TIP outcomes; nothing is retired without the hub's ack
        broker.start()
        async with Hub(BrokerConfig(port=broker.port), store, "hub-t") as hub:
            await until(lambda: outbox_rows(st.store.db_path) == 0, "outbox drained after the restart",
                        timeout=30, in_thread=True)
            assert hub_tips(store) == [("gate-1", OFFICER, a.id, 1, "hit"), ("gate-1", OFFICER, b.id, 2, "miss"),
                                       ("gate-1", OFFICER, c.id, 3, "miss"), ("gate-1", OFFICER, d.id, 4, "false_alarm")]
            # the same outcomes sent again (an ack lost on the way back): acknowledged, stored once
            with closing(sqlite3.connect(st.store.db_path)) as conn:
                conn.execute("BEGIN")
                for lane, kind, record_id, seq, payload in tips:
                    enqueue(conn, Lane(lane), kind, record_id, seq, payload)
                conn.execute("COMMIT")
            pub.notify()
            await until(lambda: outbox_rows(st.store.db_path) == 0, "resent outcomes acknowledged",
                        timeout=30, in_thread=True)
            assert st.store.conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)  # committed, none parked
            assert len(hub_tips(store)) == 4
        assert pub.stats()["counters"].get("rejected", 0) == 0
    hub_records = {json.loads(body)["id"]: json.loads(body) for (body,) in store.query("SELECT body FROM records")}
    assert hub_records == {x.id: json.loads(x.to_json()) for x in (a, b, c, d)}  # TIP never reaches the real records

    async with ControlRoom(store, None, ControlRoomConfig(session_idle_s=60)) as room:
        for name, role in (("op1", "operator"), ("sup1", "supervisor")):
            auth.add_user(store, name, role, PASSWORD)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=room.install(create_app(store))),
                                     base_url="https://hub") as http:
            await sign_in(http, "op1")
            station = (await http.get("/cr/api/kpi/tip")).json()
            assert station["stations"] == [{"station": "gate-1", "tip_shown": 3, "tip_hits": 1, "tip_misses": 2,
                                            "tip_hit_rate": 0.3333, "tip_miss_rate": 0.6667, "tip_false_alarms": 1,
                                            "tip_decision_s_p50": station["stations"][0]["tip_decision_s_p50"]}]
            assert "gate-1 33.3%" in station["charts"]["tip_hit_rate"] and "gate-1 66.7%" in station["charts"]["tip_miss_rate"]
            assert (await http.get("/cr/api/kpi/tip.csv")).text.splitlines()[1].startswith("gate-1,3,1,2,0.3333,0.6667,1,")
            for path in ("/cr/api/kpi/tip/officers", "/cr/api/kpi/tip/officers.csv"):
                assert (await http.get(path)).status_code == 403, path
            await sign_in(http, "sup1")
            officers = (await http.get("/cr/api/kpi/tip/officers")).json()["officers"]
            assert [(o["station"], o["officer"], o["tip_shown"], o["tip_hit_rate"], o["tip_false_alarms"]) for o in officers] \
                == [("gate-1", OFFICER, 3, 0.3333, 1)]
            assert f"gate-1,{OFFICER},3,1,2,0.3333,0.6667,1," in (await http.get("/cr/api/kpi/tip/officers.csv")).text
            summary = (await http.get("/cr/api/kpi")).json()["summary"]
            assert [(s["station"], s["tip_shown"], s["tip_hits"], s["tip_hit_rate"]) for s in summary] == [("gate-1", 3, 1, 0.3333)]
            later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1).isoformat()
            assert (await http.get("/cr/api/kpi/tip", params={"since": later, "until": later})).json()["stations"] == []
    st.store.close()


async def sign_in(http, user: str) -> None:
    r = await http.post("/cr/api/login", json={"username": user, "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_malformed_tip_outcome_is_rejected_counted_and_kept_while_the_next_is_stored(tmp_path, broker):
    st = TipStation(tmp_path)
    a, b = st.item(), st.item()
    bad = {"v": 1, "station": "gate-1", "officer": OFFICER, "record_id": a.id, "projection": 99, "threat": "knife-0",
           "label": None, "outcome": "hit", "shown_at": "2026-11-25T10:00:00+00:00",
           "responded_at": "2026-11-25T10:00:02+00:00", "decision_ms": 2000.0}  # a hit that names no threat class
    with closing(sqlite3.connect(st.store.db_path)) as conn:
        conn.execute("BEGIN")
        enqueue(conn, Lane.RECORD, "tip", a.id, a.seq, json.dumps(bad))
        conn.execute("COMMIT")
    st.hit(b)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with Hub(BrokerConfig(port=broker.port), store, "hub-t") as hub, \
            Publisher(SyncConfig(port=broker.port), "gate-1", st.store.db_path, st.store.scans_dir) as pub:
        await until(lambda: outbox_rows(st.store.db_path) == 0, "deliverable rows drained", timeout=30, in_thread=True)
        await until(lambda: pub.stats()["counters"].get("rejected") == 1, "rejection counted at the station",
                    timeout=10, in_thread=True)
        assert hub.stats()["counters"]["rejected"] == 1 and "must name the projected threat's class" in pub.stats()["last_error"]
    assert hub_tips(store) == [("gate-1", OFFICER, b.id, 1, "hit")]
    kept = st.store.conn.execute("SELECT kind, record_id, payload, last_error FROM outbox").fetchall()
    assert len(kept) == 1 and kept[0][:3] == ("tip", a.id, json.dumps(bad).encode())
    assert kept[0][3].startswith("parked: hub rejected it: tip payload of")
    st.store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_tip_outcome_stored_once_per_projection_on_both_backends(tmp_path, request, backend):
    store = open_store(str(tmp_path / "hub.db") if backend == "sqlite" else request.getfixturevalue("pg_url"))
    store.migrate()
    sent: list[dict] = []
    ingest = Ingestor(store, "hub-u", lambda t, b: sent.append(json.loads(b)))
    rec = make_record("g1", 4)
    body = p.TipOutcome(station="g1", officer="B-2", record_id=rec.id, projection=7, threat="firearm-0", label="firearm",
                        outcome="miss", shown_at=datetime(2026, 11, 25, 10, tzinfo=UTC),
                        responded_at=datetime(2026, 11, 25, 10, 0, 3, tzinfo=UTC), decision_ms=3000.0).model_dump_json().encode()
    env = lambda n: p.encode_envelope("g1", "tip", n, rec.seq, rec.id, body, 0.0)  # noqa: E731
    foreign = p.encode_envelope("g1", "tip", 3, rec.seq, "another-item", body, 0.0)
    ingest.handle([(p.topic("g1", "tip"), env(1)), (p.topic("g1", "batch"), p.encode_batch("g1", [env(2), foreign]))])
    ingest.handle([(p.topic("g1", "tip"), env(1))])
    assert store.query("SELECT station, officer, record_id, projection, label, outcome, decision_ms, responded_ts"
                       " FROM tip_outcomes") == [("g1", "B-2", rec.id, 7, "firearm", "miss", 3000.0,
                                                  datetime(2026, 11, 25, 10, 0, 3, tzinfo=UTC).timestamp())]
    assert [(a["msg"], a["status"]) for m in sent for a in m["acks"]] == [(1, "committed"), (2, "committed"),
                                                                         (3, "rejected"), (1, "committed")]
    assert ingest.counters["rejected"] == 1 and ingest.counters["tip_outcomes"] == 3
    store.close()
