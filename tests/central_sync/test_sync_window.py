"""The QoS 1 window holds for every publish, status messages included, against a real Mosquitto
whose Receive Maximum is below the station's own limit."""

from __future__ import annotations

import asyncio

from central_sync.config import BrokerConfig, SyncConfig
from central_sync.devtools import Mosquitto, fill, open_station_db, outbox_rows
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.publisher import Publisher


async def test_status_messages_never_exceed_the_brokers_receive_maximum(tmp_path):
    db = tmp_path / "station.db"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 400, alert_every=0)
    conn.close()
    store = open_store(str(tmp_path / "hub.sqlite3"))
    seen: list[tuple[int, int]] = []
    with Mosquitto(tmp_path / "broker", "max_inflight_messages 2") as broker:
        # one row per publish and a status due at every tick: the window is full whenever one is due
        cfg = SyncConfig(port=broker.port, batch_max_rows=1, status_period_s=0.01)
        async with Hub(BrokerConfig(port=broker.port), store, "hub-t"), Publisher(cfg, "gate-1", db, tmp_path) as pub:
            loop = asyncio.get_running_loop()
            end = loop.time() + 60
            while await asyncio.to_thread(outbox_rows, db) and loop.time() < end:
                stats = pub.stats()
                if stats["connected"]:
                    seen.append((stats["inflight"], stats["window"]))
                await asyncio.sleep(0.005)
            assert await asyncio.to_thread(outbox_rows, db) == 0, "outbox not drained within 60 s"
            assert pub.stats()["counters"].get("errors", 0) == 0
    assert seen and {w for _, w in seen} == {2}
    over = [i for i, w in seen if i > w]
    assert not over, f"{len(over)} of {len(seen)} samples had more publishes in flight than the window of 2: {over[:5]}"
