"""The record says where the conveyor actually sent the item: a `clear` verdict routed to manual (the
PLC link was lost between the verdict and the gate) is stored as verdict clear, route manual."""

from __future__ import annotations

import json

from central_sync.schema import Verdict
from edge.stations.routes import RouteRecorder
from edge.store import Store, StoreWriter
from edge.tracking import ConveyorTracker, Geometry, ItemRouted

from edge_factories import make_record
from polling import until


def clear_item_then_link_lost() -> list[ItemRouted]:
    """One item scanned, a clear verdict in hand, the link lost before its front reaches the gate."""
    tracker = ConveyorTracker(Geometry(0.5, 1.3, 2.8, 0.15), 0.3)
    tracker.on_edge("eye_tunnel_entry", True, 0.0, 0.0)
    tracker.on_edge("eye_tunnel_exit", True, 0.8, 1.0)
    tracker.on_edge("eye_tunnel_exit", False, 1.1, 2.0)
    tracker.set_verdict(1, "clear", 2.1)
    tracker.link_lost(3.0)
    return [o for o in tracker.advance(2.5, 9.0) if isinstance(o, ItemRouted)]


async def routed_record(tmp_path, route_first: bool):
    async with StoreWriter(Store(tmp_path / "data", station="st-1")) as writer:
        woken: list[int] = []
        recorder = RouteRecorder(writer, lambda: woken.append(1))
        record = make_record(Verdict.CLEAR, "clear")
        recorder.entered(1, record.id)
        [routed] = clear_item_then_link_lost()
        if route_first:
            assert recorder.routed(routed) is None  # held until the record is committed
        await writer.call(writer.store.commit, record, False)
        write = recorder.committed(1)
        if not route_first:
            assert write is None
            write = recorder.routed(routed)
        await write
        stored = await writer.call(writer.store.get, record.id)
        kinds = await writer.call(lambda: writer.store.conn.execute("SELECT kind FROM outbox ORDER BY id").fetchall())
        return stored, [k for (k,) in kinds], woken


async def test_clear_record_routed_manual_on_link_loss_says_both(tmp_path):
    stored, kinds, woken = await routed_record(tmp_path, route_first=False)
    assert stored.verdict is Verdict.CLEAR and stored.reason == "clear"
    assert stored.route is not None and (stored.route.to, stored.route.reason) == ("manual", "link_lost")
    assert kinds == ["inspection", "review"]  # the update goes to the hub on the record lane, like a review
    assert woken


async def test_a_route_before_the_record_is_committed_still_reaches_it(tmp_path):
    stored, kinds, _ = await routed_record(tmp_path, route_first=True)
    assert stored.verdict is Verdict.CLEAR
    assert (stored.route.to, stored.route.reason) == ("manual", "link_lost")


async def test_the_hub_gets_the_route(tmp_path):
    """Station store -> Mosquitto -> hub: the hub's record says verdict clear and route manual (link_lost)."""
    from central_sync.config import BrokerConfig, SyncConfig
    from central_sync.devtools import Mosquitto
    from central_sync.hub.service import Hub
    from central_sync.hub.store import open_store
    from central_sync.publisher import Publisher

    async with StoreWriter(Store(tmp_path / "data", station="st-1")) as writer:
        recorder = RouteRecorder(writer)
        record = make_record(Verdict.CLEAR, "clear")
        recorder.entered(1, record.id)
        await writer.call(writer.store.commit, record, False)
        recorder.committed(1)
        [routed] = clear_item_then_link_lost()
        await recorder.routed(routed)
        with Mosquitto(tmp_path / "broker") as broker:
            hub_store = open_store(str(tmp_path / "hub.sqlite3"))
            cfg = SyncConfig(port=broker.port, status_period_s=0.5)
            async with Hub(BrokerConfig(port=broker.port), hub_store, "hub-t"), \
                    Publisher(cfg, "st-1", writer.store.db_path, writer.store.scans_dir) as publisher:
                def parked() -> int:
                    return publisher.stats().get("backlog", {}).get("record", {}).get("parked", 0)

                async def settled() -> bool:
                    return bool(parked()) or not await writer.call(lambda: sum(writer.store.outbox_backlog().values()))

                await until(settled, "the hub acknowledged both rows, or refused one", timeout=60, interval=0.1)
                assert parked() == 0, "the hub refused the route update"
                [(body,)] = hub_store.query("SELECT body FROM records")
        body = json.loads(body)
        assert body["verdict"] == "clear" and body["route"]["to"] == "manual" and body["route"]["reason"] == "link_lost"
