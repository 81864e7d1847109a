"""End to end through a real Mosquitto: records, alerts, reviews and images reach the hub once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from contextlib import closing
import hashlib
from datetime import UTC, datetime

import numpy as np
import httpx
import pytest

from central_sync.config import SyncConfig
from central_sync.errors import HubStoreError
from central_sync.devtools import add_record, fill, make_record, open_station_db, outbox_rows
from central_sync.hub.api import create_app
from central_sync.hub.api_auth import ServiceTokens, token_hash
from central_sync.hub.service import Hub
from central_sync.hub.ingest import Limits
from central_sync.hub.store import INSERT_CHUNK, open_store
from central_sync.outbox import Lane, enqueue
from central_sync.publisher import Publisher
from central_sync.schema import Review, Verdict
from central_sync.config import BrokerConfig
from edge.store import Store
from polling import until
from slow_proxy import SlowProxy


def write_scan(scans, rng) -> str:
    buf = rng.integers(0, 65535, size=(200, 300), dtype=np.uint16).tobytes()
    sha = hashlib.sha256(buf).hexdigest()
    path = scans / sha[:2] / f"{sha}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf)
    return sha


async def test_records_alerts_reviews_and_images_arrive_once(tmp_path, broker):
    db, scans = tmp_path / "station.db", tmp_path / "scans"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 40, alert_every=7)
    sha = write_scan(scans, np.random.default_rng(1))
    rec = make_record("gate-1", 41, Verdict.SUSPECT, scan_sha=sha, tag="PLATE-XYZ")
    add_record(conn, rec)
    review = Review(officer="B-17", decided_at=datetime(2026, 1, 2, tzinfo=UTC), outcome="threat_confirmed", label="knife")
    conn.execute("BEGIN")
    enqueue(conn, Lane.RECORD, "review", rec.id, 41, rec.model_copy(update={"review": review}).to_json())
    enqueue(conn, Lane.IMAGE, "blob", rec.id, 41, sha)
    conn.execute("COMMIT")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    cfg = SyncConfig(port=broker.port, chunk_bytes=16 * 1024, status_period_s=0.5)
    async with Hub(BrokerConfig(port=broker.port), store, "hub-t") as hub, Publisher(cfg, "gate-1", db, scans) as pub:
        await until(lambda: outbox_rows(db) == 0, "outbox drained", timeout=30, in_thread=True)
        # The publisher's figures are a snapshot taken every tick: wait for one taken after the last ack.
        stats = await until(pub.stats, "backlog figure at 0, every row acked", timeout=5, in_thread=True,
                            check=lambda s: s["backlog"].get("record", {}).get("rows") == 0
                            and s["counters"].get("acked", 0) >= 49)
        assert stats["connected"] and stats["counters"]["acked"] == 49 and stats["counters"].get("errors", 0) == 0
        assert store.query("SELECT count(*), count(DISTINCT seq), sum(is_alert) FROM records") == [(41, 41, 6)]
        assert store.image(sha) == (scans / sha[:2] / f"{sha}.npz").read_bytes()
        tokens = ServiceTokens({token_hash("e2e-token"): "e2e"})
        transport = httpx.ASGITransport(app=create_app(store, hub.stats, service_tokens=tokens))
        async with httpx.AsyncClient(transport=transport, base_url="http://hub",
                                     headers={"Authorization": "Bearer e2e-token"}) as http:
            alerts = (await http.get("/api/alerts", params={"q": "PLATE"})).json()
            assert [a["record"]["id"] for a in alerts] == [rec.id]
            one = (await http.get(f"/api/inspections/{rec.id}")).json()
            assert one["reviews"][0]["officer"] == "B-17" and one["record"]["review"]["label"] == "knife"
            img = await http.get(f"/api/images/{sha}")
            assert hashlib.sha256(img.content).hexdigest() == sha
            await until(lambda: store.stations(), "station status stored", timeout=5, in_thread=True)
            st = (await http.get("/api/stations")).json()
            assert st[0]["station"] == "gate-1" and st[0]["state"] == "online"
            assert (await http.get("/healthz")).json() == {"ok": True}
    conn.close()


async def test_hub_rejection_parks_the_row_and_alarms(tmp_path, broker):
    """The row the hub rejects is parked and a standing alarm on the station's screen names it and why (the
    docs said so; nothing raised one)."""
    db = tmp_path / "station.db"
    Store(tmp_path).open().close()  # the station store's tables, its alarms among them
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 5)
    forged = make_record("gate-9", 6)
    conn.execute("BEGIN")
    enqueue(conn, Lane.RECORD, "inspection", forged.id, 6, forged.to_json())
    conn.execute("COMMIT")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with Hub(BrokerConfig(port=broker.port), store, "hub-t"), \
            Publisher(SyncConfig(port=broker.port), "gate-1", db, tmp_path) as pub:
        await until(lambda: pub.stats()["counters"].get("rejected"), "rejection counted", timeout=120, in_thread=True)
        await until(lambda: outbox_rows(db) == 0, "outbox drained of deliverable rows", timeout=60, in_thread=True)
        assert "hub rejected" in pub.stats()["last_error"]
    row = conn.execute("SELECT record_id, last_error FROM outbox").fetchall()
    assert row[0][0] == forged.id and "gate-9" in row[0][1]
    assert store.query("SELECT count(*) FROM records") == [(5,)]
    with Store(tmp_path) as station:
        ((code, message),) = station.standing_alarms()
    assert code == "sync_parked" and message.startswith(
        f"outbox row 6 of record {forged.id} is parked and will not be sent to the hub: hub rejected it: ")
    assert "gate-9" in message and message.endswith(" (1 parked in all)")
    conn.close()


async def test_a_backlog_of_images_reaches_a_hub_that_was_held_up(tmp_path, broker):
    """While the hub is held up (a database stall), the station keeps at most max_uploads (32) images under way,
    below the hub's limit of 64 incomplete ones: it started one for each of 80 images and the hub rejected 16,
    parked for good."""
    db, scans = tmp_path / "station.db", tmp_path / "scans"
    conn = open_station_db(db)
    rng = np.random.default_rng(5)
    conn.execute("BEGIN")
    for rec in [make_record("gate-1", seq) for seq in range(1, 81)]:
        data = rng.bytes(3000)
        sha = hashlib.sha256(data).hexdigest()
        (scans / sha[:2]).mkdir(parents=True, exist_ok=True)
        (scans / sha[:2] / f"{sha}.npz").write_bytes(data)
        enqueue(conn, Lane.IMAGE, "blob", rec.id, rec.seq, sha)
    conn.execute("COMMIT")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    going, commit = threading.Event(), store.commit

    def held_up(writes):
        going.wait(30)
        return commit(writes)

    store.commit = held_up
    async with Hub(BrokerConfig(port=broker.port), store, "hub-t"), \
            Publisher(SyncConfig(port=broker.port, status_period_s=0.5), "gate-1", db, scans) as pub:
        await until(pub.stats, "every image the station will start sent to the broker", timeout=20, in_thread=True,
                    check=lambda s: s["counters"].get("chunks_sent", 0) >= 32 and s["inflight"] == 0)
        going.set()
        # past the ack timeout (20 s): chunks sent before the hub's bulk link subscribed are sent again after it
        await until(lambda: outbox_rows(db) == 0, "every image acknowledged", timeout=90, in_thread=True)
        counters = pub.stats()["counters"]
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, counters
    assert store.query("SELECT count(*) FROM blobs") == [(80,)]
    conn.close()


async def test_an_unreadable_scan_file_parks_its_row_and_every_record_is_acknowledged(tmp_path, broker):
    """A scan file that is there but cannot be read (EIO from a bad block; here a link to /proc/self/mem, whose
    first page reads so) parks its row. The OSError ended every session that opened it: the records sent in it
    were never acknowledged, and every reconnect read the same row again."""
    db, scans = tmp_path / "station.db", tmp_path / "scans"
    conn = open_station_db(db)
    first = fill(conn, "gate-1", 1, 5)
    sha = hashlib.sha256(b"on a bad block").hexdigest()
    bad = scans / sha[:2] / f"{sha}.npz"
    bad.parent.mkdir(parents=True)
    bad.symlink_to("/proc/self/mem")
    with pytest.raises(OSError):
        bad.read_bytes()
    conn.execute("BEGIN")
    enqueue(conn, Lane.IMAGE, "blob", first[0].id, 1, sha)
    conn.execute("COMMIT")
    fill(conn, "gate-1", 6, 40)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with Hub(BrokerConfig(port=broker.port), store, "hub-t"), \
            Publisher(SyncConfig(port=broker.port), "gate-1", db, scans) as pub:
        # records sent before the hub's bulk link subscribed are lost at the broker and sent again after the
        # ack timeout (20 s): a wait longer than that
        await until(lambda: outbox_rows(db) == 0, "every record acknowledged", timeout=60, in_thread=True)
        stats = await until(pub.stats, "the acks and the park counted", timeout=5, in_thread=True,
                            check=lambda s: s["counters"].get("acked") == 45 and s["counters"].get("parked") == 1)
    assert stats["session"] == 1
    parked = conn.execute("SELECT last_error FROM outbox").fetchall()
    assert parked == [(f"parked: scan file {bad} of blob row 6 cannot be read: [Errno 5] Input/output error",)]
    assert store.query("SELECT count(*) FROM records") == [(45,)]
    conn.close()


async def test_acks_for_rows_the_station_does_not_hold_are_counted_and_are_no_progress(tmp_path, broker):
    """Acks naming rows the station never wrote or retired already (a replay) were neither counted nor logged,
    and moved last_ack_at, which the board's "acks stalled" check reads, as if the hub were acknowledging."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from central_sync import protocol as p

    db = tmp_path / "station.db"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 3)  # no hub: never acknowledged
    async with Publisher(SyncConfig(port=broker.port, status_period_s=0.5), "gate-1", db, tmp_path) as pub:
        await until(pub.stats, "the rows published", timeout=10, in_thread=True,
                    check=lambda s: s["counters"].get("published") == 3)
        hub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        hub.connect("127.0.0.1", broker.port)
        hub.loop_start()
        try:
            bogus = p.AckMsg(hub="x", acks=[p.AckItem(msg=999_999, record_id="no-such-record", status="committed"),
                                             p.AckItem(msg=888_888, record_id="other", status="rejected", reason="r")])
            hub.publish(p.topic("gate-1", "ack"), bogus.model_dump_json(), qos=1).wait_for_publish(5)
            stats = await until(pub.stats, "the unknown acks counted", timeout=10, in_thread=True,
                                check=lambda s: s["counters"].get("ack_unknown") == 2)
        finally:
            hub.loop_stop()
            hub.disconnect()
    assert stats["last_ack_at"] is None and stats["counters"].get("acked", 0) == 0
    assert outbox_rows(db) == 3
    conn.close()


async def test_image_upload_resumes_where_it_stopped(tmp_path, broker):
    db, scans = tmp_path / "station.db", tmp_path / "scans"
    conn = open_station_db(db)
    rng = np.random.default_rng(7)
    buf = rng.integers(0, 65535, size=(2048, 2048), dtype=np.uint16).tobytes()
    sha = hashlib.sha256(buf).hexdigest()
    (scans / sha[:2]).mkdir(parents=True)
    (scans / sha[:2] / f"{sha}.npz").write_bytes(buf)
    conn.execute("BEGIN")
    enqueue(conn, Lane.IMAGE, "blob", "rec-img", 1, sha)
    conn.execute("COMMIT")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    cfg = SyncConfig(port=broker.port, chunk_bytes=64 * 1024, max_inflight=4)
    conn.close()
    # The interruption is made deterministic: once the hub holds 10 chunks its database refuses
    # further chunks (the hub's own handling of a failing database: no ack, counted), so the first
    # hub can never finish the image however fast the machine is.
    outage = {"on": False}
    commit = store.commit

    def commit_until_outage(writes):
        if outage["on"] and any(step.sql == INSERT_CHUNK for w in writes for step in w.steps):
            raise HubStoreError(f"hub database {store.url} unavailable (test outage)")
        results = commit(writes)
        outage["on"] = outage["on"] or store.blob_state(sha)[1] >= 10
        return results

    store.commit = commit_until_outage

    def done() -> set[int]:
        """The chunks the station knows the hub has stored (its saved upload progress)."""
        with closing(sqlite3.connect(db)) as c:
            try:
                row = c.execute("SELECT done FROM sync_blob_progress").fetchone()
            except sqlite3.OperationalError:  # the publisher has not created its table yet
                return set()
        return {int(i) for i in row[0].split(",")} if row and row[0] else set()

    # the publisher starts before the hub (so that it publishes into the gap once the hub is gone): chunks it
    # sends before the hub has subscribed are lost at the broker and resent after ack_timeout_s (20 s by
    # default, which with the suite's load ran past the wait once); this first session resends after 2 s
    first = cfg.model_copy(update={"ack_timeout_s": 2.0})
    async with Publisher(first, "gate-1", db, scans):
        async with Hub(BrokerConfig(port=broker.port), store, "hub-t"):
            await until(lambda: len(done()) >= 10, "10 chunks stored at the hub", timeout=30, in_thread=True)
        await asyncio.sleep(0.3)  # the hub is gone: what is published now is lost at the broker
    stored = done()
    assert 10 <= len(stored) < 128 and store.image(sha) is None and store.blob_state(sha)[1] < 128
    # The database is back; the hub notes which chunks reach it in the second session. Resuming means no
    # chunk the station knew stored is sent again. (How many are sent is not the measure: under load the
    # hub can fall silent past ack_timeout_s and the unacknowledged ones are rightly sent twice.)
    received: list[int] = []

    def commit_noting_chunks(writes):
        received.extend(step.args[1] for w in writes for step in w.steps if step.sql == INSERT_CHUNK)
        return commit(writes)

    outage["on"], store.commit = False, commit_noting_chunks
    async with Hub(BrokerConfig(port=broker.port), store, "hub-t"), Publisher(cfg, "gate-1", db, scans) as pub:
        await until(lambda: outbox_rows(db) == 0, "image delivered", timeout=60, in_thread=True)
        counters = pub.stats()["counters"]
    assert store.image(sha) == buf
    again = sorted(stored & set(received))
    assert not again, f"stored in the first session, sent again: {again} ({counters})"
    assert set(received) | stored == set(range(128))


async def test_a_message_sent_as_soon_as_the_hub_has_started_reaches_it(tmp_path, broker):
    """Starting a hub returned before the broker had granted its shared subscriptions: what a station sent in that
    moment was dropped at the broker (a shared subscription without a member) and sent again only after the
    station's ack timeout (20 s). Now the hub has started once the broker takes messages for it."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from central_sync import protocol as p

    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    station = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)  # connected before the hub starts
    station.connect("127.0.0.1", broker.port)
    station.loop_start()
    try:  # the broker answers the hub after 0.3 s (a loaded machine, a distant broker)
        async with SlowProxy(broker.port, delay_s=(0.3, 0.3)) as slow, \
                Hub(BrokerConfig(port=slow.port), store, "hub-t") as hub:
            for leaf in ("alert", "inspection"):  # one message for each lane; not a record: counted malformed
                station.publish(p.topic("gate-1", leaf), b"{not json", qos=1).wait_for_publish(5)
            stats = await until(hub.stats, "both messages received", timeout=10, in_thread=True,
                                check=lambda s: s["counters"].get("malformed") == 2)
    finally:
        station.loop_stop()
        station.disconnect()
    assert stats["connected"]


async def test_a_hub_start_cancelled_while_it_waits_for_the_broker_stops_its_threads(tmp_path) -> None:
    """Starting waits for the broker's SUBACK after the link and ingest threads started: a start cancelled in that
    wait (a timeout, Ctrl-C) never reached __aexit__, and the threads ran on as a hub nobody stops."""
    import threading

    from central_sync.devtools import free_port

    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(BrokerConfig(port=free_port(), reconnect_min_s=0.1, reconnect_max_s=0.5), store, "hub-z")  # no broker
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(hub.__aenter__(), 1.0)
    assert hub._stop.is_set()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("hub-") and t in hub._threads and t.is_alive()]


async def test_rows_the_hub_refused_are_sent_again_on_request_once_it_takes_them(tmp_path, broker, monkeypatch, capsys):
    """A hub refused the station's records (here over its record limit, as an older hub refuses a newer station's
    fields): parked, they stayed on the station for good with the standing alarm and no way to send them again. Now
    `edge sync parked` lists them and why, and `edge sync resend` queues them again (audited): the running publisher
    sends them to the hub that takes them now, and the alarm names what stays parked, then clears."""
    from edge import audit
    from edge.cli import main

    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    config = tmp_path / "station.toml"
    config.write_text((root / "examples" / "xray.toml").read_text())
    monkeypatch.setenv("EDGE_STATION__DATA_DIR", str(tmp_path / "data"))
    Store(tmp_path / "data").open().close()  # the station store's tables, its alarms among them
    db = tmp_path / "data" / "station.db"
    conn = open_station_db(db)
    records = fill(conn, "xray-01", 1, 3)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with Publisher(SyncConfig(port=broker.port, ack_timeout_s=2.0), "xray-01", db, tmp_path) as pub:
        async with Hub(BrokerConfig(port=broker.port), store, "hub-t", limits=Limits(record_bytes=100)):
            await until(lambda: pub.stats()["counters"].get("rejected", 0) >= 3, "3 rejections", timeout=120,
                        in_thread=True)
        assert main(["sync", "parked", "--config", str(config)]) == 0
        listed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("20")]  # not the logs
        assert listed[-1] == "3 rows parked" and all("exceeds the hub's limit of 100" in line for line in listed[:3])
        assert listed[0].startswith(f"row 1 (record lane, inspection) of record {records[0].id}, seq 1, sent ")
        assert main(["sync", "resend", "--config", str(config), "--row", "9"]) == 2
        assert "row 9 is not parked here (parked: 1, 2, 3); nothing was queued again" in capsys.readouterr().err
        async with Hub(BrokerConfig(port=broker.port), store, "hub-t"):
            assert main(["sync", "resend", "--config", str(config), "--row", "2"]) == 0
            assert "\n1 parked row queued again (2 as 4): " in "\n" + capsys.readouterr().out
            await until(lambda: store.query("SELECT id FROM records"), "the record sent again", timeout=60,
                        in_thread=True, check=lambda rows: rows == [(records[1].id,)])
            with Store(tmp_path / "data") as station:
                ((code, message),) = station.standing_alarms()
            assert code == "sync_parked" and message.startswith(f"outbox row 3 of record {records[2].id} is parked")
            assert message.endswith(" (2 parked in all)")
            assert main(["sync", "resend", "--config", str(config), "--all"]) == 0
            await until(lambda: store.query("SELECT count(*) FROM records"), "every record", timeout=60,
                        in_thread=True, check=lambda rows: rows == [(3,)])
            await until(lambda: outbox_rows(db), "the outbox drained", timeout=60, in_thread=True, check=lambda n: n == 0)
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    with Store(tmp_path / "data") as station:
        assert station.standing_alarms() == []
        trail = [e for e in audit.entries(station.conn) if e.action == "sync.resend"]
    assert [[r["parked"] for r in json.loads(e.detail)["rows"]] for e in reversed(trail)] == [[2], [1, 3]]
    conn.close()
