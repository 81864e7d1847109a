"""Chaos: the station publisher and the hub processes are killed with SIGKILL mid-traffic."""

from __future__ import annotations

import asyncio

import pytest

from central_sync.devtools import Mosquitto, outbox_rows
from central_sync.hub.store import open_store
from central_sync.publisher import Publisher
from cs_chaos_kit import PublisherProc, assert_alerts_first, assert_delivered_once, backlog, sync_cfg, wait_drained
from polling import until, wait_until

pytestmark = pytest.mark.slow
N = 3000


def test_publisher_killed_mid_publish(tmp_path, pg_url, hubs):
    db = tmp_path / "station.db"
    records = backlog(db, "gate-3", N)
    store = open_store(pg_url)
    store.migrate()
    with Mosquitto(tmp_path / "broker") as broker:
        hubs(pg_url, broker.port, "hub-a")
        pub = PublisherProc(sync_cfg(broker.port), "gate-3", db, tmp_path, tmp_path / "pub.log")
        for kill_below in (N - 200, N - 1200):
            pub.start()
            wait_until(lambda: outbox_rows(db) < kill_below, f"outbox below {kill_below} rows", timeout=60)
            pub.kill9()
        pub.start()
        wait_drained(db, 90)
        pub.kill9()
    assert_delivered_once(store, records, db)
    assert_alerts_first(store, records)
    store.close()


async def test_hub_killed_mid_commit(tmp_path, pg_url, hubs):
    db = tmp_path / "station.db"
    records = backlog(db, "gate-4", N)
    store = open_store(pg_url)
    store.migrate()
    count = lambda: store.query("SELECT count(*) FROM records")[0][0]
    with Mosquitto(tmp_path / "broker") as broker:
        hub_a, hub_b = hubs(pg_url, broker.port, "hub-a"), hubs(pg_url, broker.port, "hub-b")
        # both came up (they migrate the same fresh schema at once), so the one killed below dies mid-ingest
        await until(lambda: hub_a.started() and hub_b.started(), "both hubs started", timeout=180, in_thread=True)
        async with Publisher(sync_cfg(broker.port), "gate-4", db, tmp_path) as pub:
            await until(lambda: count() > 400, "400 records at the hub", timeout=180, in_thread=True)
            hub_a.assert_running()
            hub_a.stop()                       # one of two dies: the other carries on
            hub_b.assert_running()
            # on a time-out the last value shows the hub's count beside what the station still holds
            seen = lambda: hub_b.assert_running() or (count(), {"outbox": outbox_rows(db), **pub.stats()})
            await until(seen, "1500 records at the hub", check=lambda v: v[0] > 1500, timeout=180, in_thread=True)
            hub_b.stop()                       # both down for a moment
            await asyncio.sleep(0.5)
            hub_a.start()
            await asyncio.to_thread(wait_drained, db, 90)
            assert pub.stats()["counters"].get("resend_timeout", 0) + pub.stats()["counters"].get("resend_requested", 0) > 0
    assert_delivered_once(store, records, db)
    assert_alerts_first(store, records)
    store.close()
