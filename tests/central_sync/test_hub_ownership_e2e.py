"""End to end through a real Mosquitto and the real hub: a second station's account tries to rewrite the first
station's record (shipped ACL, real station publisher): the hub refuses it and the forger's row is parked;
`edge-hub run` prunes an image upload left incomplete past --upload-age."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from datetime import UTC, datetime

import paho.mqtt.publish as mqtt_publish
from paho.mqtt.client import MQTTv5

from test_broker_acl import secure_broker  # noqa: F401  (the fixture: Mosquitto with the shipped ACL)

from central_sync import protocol as p
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.devtools import fill, open_station_db, outbox_rows
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.outbox import Lane, enqueue
from central_sync.publisher import Publisher
from central_sync.schema import Review, Verdict
from polling import until


async def test_a_second_station_cannot_clear_the_first_stations_suspect_record(secure_broker):  # noqa: F811
    broker, tmp = secure_broker
    db1, db2 = tmp / "g1.db", tmp / "g2.db"
    conn1 = open_station_db(db1)
    suspect = next(r for r in fill(conn1, "gate-1", 1, 5, alert_every=5) if r.verdict == Verdict.SUSPECT)
    conn1.close()
    conn2 = open_station_db(db2)
    fill(conn2, "gate-2", 1, 2)
    review = Review(officer="FAKE-1", decided_at=datetime(2026, 1, 3, tzinfo=UTC), outcome="cleared")
    forged = suspect.model_copy(update={"station": "gate-2", "verdict": Verdict.CLEAR, "reason": "clear", "review": review})
    conn2.execute("BEGIN")
    enqueue(conn2, Lane.RECORD, "review", suspect.id, 3, forged.to_json())
    conn2.execute("COMMIT")
    conn2.close()
    store = open_store(str(tmp / "hub.db"))
    hub_cfg = BrokerConfig(port=broker.port, username="hub", password_file=tmp / "hub.pw")
    cfg = lambda user: SyncConfig(port=broker.port, username=user, password_file=tmp / f"{user}.pw")  # noqa: E731
    async with Hub(hub_cfg, store, "hub-own") as hub, Publisher(cfg("gate-1"), "gate-1", db1, tmp):
        await until(lambda: outbox_rows(db1) == 0, "gate-1 delivered", in_thread=True)
        async with Publisher(cfg("gate-2"), "gate-2", db2, tmp):
            await until(lambda: outbox_rows(db2) == 0, "gate-2's rows committed or parked", in_thread=True)
        refused = hub.stats()["counters"].get("refused_foreign", 0)
    with closing(sqlite3.connect(db2)) as c:
        parked = c.execute("SELECT record_id, last_error FROM outbox WHERE last_error LIKE 'parked:%'").fetchall()
    assert len(parked) == 1 and parked[0][0] == suspect.id and "another station" in parked[0][1]
    assert refused == 1
    assert store.query("SELECT station, verdict, body FROM records WHERE id = ?", (suspect.id,)) == \
        [("gate-1", "suspect", suspect.to_json())]
    assert store.query("SELECT count(*) FROM reviews") == [(0,)]
    assert store.query("SELECT station, count(*) FROM records GROUP BY station ORDER BY station") == \
        [("gate-1", 5), ("gate-2", 2)]
    store.close()


async def test_the_hub_process_prunes_an_upload_left_incomplete(broker, hubs, tmp_path):
    db = str(tmp_path / "hub.db")
    store = open_store(db)
    store.migrate()
    hubs(db, broker.port, "hub-prune", gap_period=0.2, extra=("--upload-age", "1"))
    data = b"z" * 2048
    sha = hashlib.sha256(data).hexdigest()
    header = p.BlobChunkHeader(station="g1", msg=1, seq=1, record_id="r1", sha256=sha, index=0, count=2, size=2048,
                               chunk_sha256=hashlib.sha256(data[:1024]).hexdigest())

    def send_until_held() -> list:
        rows = store.query("SELECT pruned FROM blob_uploads")
        if not rows:  # the hub may not have subscribed yet: a chunk is idempotent, send it again
            mqtt_publish.single(p.blob_topic("g1", sha, 0), p.encode_chunk(header, data[:1024]), qos=1,
                                hostname="127.0.0.1", port=broker.port, protocol=MQTTv5)
        return rows

    await until(send_until_held, "the chunk held by the hub", in_thread=True)
    await until(lambda: store.query("SELECT pruned FROM blob_uploads"), "the upload pruned",
                check=lambda rows: rows == [(1,)], in_thread=True)
    assert store.query("SELECT count(*) FROM blob_chunks") == [(0,)]
    store.close()
