"""Chaos: the broker is killed (SIGKILL) and restarted repeatedly while a station produces records."""

from __future__ import annotations

import asyncio
import signal

import pytest

from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.publisher import Publisher
from cs_chaos_kit import Producer, assert_alerts_first, assert_delivered_once, backlog, sync_cfg, wait_drained
from polling import until

pytestmark = pytest.mark.slow


async def test_broker_killed_and_restarted_during_traffic(tmp_path, pg_url):
    db = tmp_path / "station.db"
    broker = Mosquitto(tmp_path / "broker", "persistence true").start()
    store = open_store(pg_url)
    producer = Producer(db, "gate-7", total=1500)
    try:
        async with Hub(BrokerConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=1.0), store, "hub-c", gap_period_s=1.0), \
                Publisher(sync_cfg(broker.port), "gate-7", db, tmp_path) as pub:
            producer.start()
            for _ in range(4):
                await asyncio.sleep(0.8)
                broker.kill()
                await asyncio.sleep(0.4)
                broker.start()
            await asyncio.to_thread(producer.join, 60)
            await asyncio.to_thread(wait_drained, db, 60)
            assert pub.stats()["session"] >= 5
        await asyncio.to_thread(assert_delivered_once, store, producer.records, db)
    finally:
        broker.kill()
        store.close()


async def test_stalled_broker_triggers_watchdog_rebuild(tmp_path, pg_url):
    db = tmp_path / "station.db"
    records = backlog(db, "gate-8", 3000)
    store = open_store(pg_url)
    with Mosquitto(tmp_path / "broker") as broker:
        async with Hub(BrokerConfig(port=broker.port, reconnect_min_s=0.1, reconnect_max_s=1.0), store, "hub-w", gap_period_s=1.0), \
                Publisher(sync_cfg(broker.port, progress_timeout_s=1.0), "gate-8", db, tmp_path) as pub:
            await until(lambda: pub.stats()["counters"].get("acked", 0) >= 100, "100 rows acknowledged", interval=0.05)
            broker.proc.send_signal(signal.SIGSTOP)  # accepts bytes into socket buffers, acknowledges nothing
            await asyncio.sleep(2.5)
            broker.proc.send_signal(signal.SIGCONT)
            await asyncio.to_thread(wait_drained, db, 60)
            assert pub.stats()["counters"]["watchdog_restarts"] >= 1
    await asyncio.to_thread(assert_delivered_once, store, records, db)
    assert_alerts_first(store, records)
    store.close()
