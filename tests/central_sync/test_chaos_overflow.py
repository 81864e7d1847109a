"""Chaos: a stalled hub overflows the broker's queue; oversized messages meet both kinds of limit."""

from __future__ import annotations

import asyncio
import signal

import pytest

from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto, add_record, make_record, open_station_db
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.publisher import Publisher
from central_sync.schema import Identity, Verdict
from cs_chaos_kit import assert_alerts_first, assert_delivered_once, backlog, sync_cfg, wait_drained
from polling import until

pytestmark = pytest.mark.slow


async def test_stalled_hub_overflows_broker_queue(tmp_path, pg_url, hubs):
    db = tmp_path / "station.db"
    # records only (pending alerts would hold them back), one per message (so the broker counts 2000)
    records = backlog(db, "gate-5", 2500, alert_every=0)
    store = open_store(pg_url)
    store.migrate()
    with Mosquitto(tmp_path / "broker", "max_queued_messages 100") as broker:
        hub = hubs(pg_url, broker.port, "hub-slow")
        await until(lambda: hub.log.read_text().count("hub.link_up") == 2, "hub connected", timeout=30, in_thread=True)
        hub.signal(signal.SIGSTOP)
        async with Publisher(sync_cfg(broker.port, max_unacked=2000, batch_max_rows=1), "gate-5", db, tmp_path) as pub:
            await until(lambda: pub.stats()["awaiting_ack"] >= 2000, "2000 rows awaiting the hub",
                        timeout=30, in_thread=True)
            await asyncio.sleep(0.5)
            hub.signal(signal.SIGCONT)
            await asyncio.to_thread(wait_drained, db, 90)
            counters = pub.stats()["counters"]
    dropped = "Outgoing messages are being dropped" in (tmp_path / "broker" / "mosquitto.log").read_text()
    resent = counters.get("resend_timeout", 0) + counters.get("resend_requested", 0)
    assert resent >= 500, f"the broker's queue should have overflowed (dropped logged: {dropped}, resent {resent})"
    assert_delivered_once(store, records, db)
    store.close()


def big_record(station: str, seq: int):
    tags = [Identity(kind="rfid", value=f"T{i:06d}" * 4) for i in range(300)]
    return make_record(station, seq, Verdict.SUSPECT).model_copy(update={"identities": tags})


@pytest.mark.parametrize("limit", ["max_packet_size 9000", "message_size_limit 9000"])
async def test_oversized_message_is_parked_and_the_rest_flows(tmp_path, pg_url, limit):
    db = tmp_path / "station.db"
    records = backlog(db, "gate-6", 300)
    conn = open_station_db(db)
    add_record(conn, big_record("gate-6", 301))
    conn.close()
    store = open_store(pg_url)
    with Mosquitto(tmp_path / "broker", limit) as broker:
        async with Hub(BrokerConfig(port=broker.port), store, "hub-o", gap_period_s=1.0), \
                Publisher(sync_cfg(broker.port, max_payload_bytes=64 * 1024, chunk_bytes=32 * 1024), "gate-6", db, tmp_path) as pub:
            await asyncio.to_thread(wait_drained, db, 60)
            await until(lambda: pub.stats()["counters"].get("parked") == 2, "parked figure", timeout=10, in_thread=True)
            stats = pub.stats()
    assert stats["counters"]["parked"] == 2, stats["counters"]  # its alert row and its record row
    assert stats["last_error"]
    if limit.startswith("max_packet_size"):
        assert stats["counters"]["too_large"] == 2 and stats["max_payload"] < 9000
    else:
        assert stats["counters"]["puback_unreadable"] >= 2
    assert_delivered_once(store, records, db)
    assert_alerts_first(store, records)
    parked = open_station_db(db).execute("SELECT count(*) FROM outbox WHERE last_error LIKE 'parked:%'").fetchone()[0]
    assert parked == 2
    store.close()
