"""A full station database: the station keeps deciding (manual, the lane's safe state), alarms, recovers."""

from __future__ import annotations

import pytest

from central_sync.schema import ItemKind, Verdict
from edge.detector import Engine
from edge.errors import DiskFull
from edge.events import EventBus
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.stations.acquisition import WholeScan
from edge.store import Store, StoreWriter
from edge.verdict import Reason
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import case, write_package

from edge_factories import make_record


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return write_package(tmp_path_factory.mktemp("pkg") / "model", "cpe-fcos-v1", 128)


def _fill(s: Store) -> None:
    s.conn.execute(f"PRAGMA max_page_count = {s.conn.execute('PRAGMA page_count').fetchone()[0] + 2}")
    with pytest.raises(DiskFull):
        for _ in range(10_000):
            s.commit(make_record(), scan_stored=False)


def _room(s: Store) -> None:
    s.conn.execute("PRAGMA max_page_count = 1073741823")


async def test_a_full_database_sends_every_item_to_manual_and_recovers(tmp_path, package):
    actuated: list[tuple[Verdict, Reason]] = []
    events = EventBus()

    async def actuate(item, verdict, reason):
        actuated.append((verdict, reason))

    async with InferencePool(1, 4) as pool, StoreWriter(Store(tmp_path / "data", station="st-1")) as store:
        inspector = Inspector("st-1", "1", 5000, Engine(load_detector(package, overlap=32), pool), store, events,
                              StationMetrics(), actuate)

        def bag() -> WholeScan:
            high, low = case(256, 200)
            return WholeScan(Scan(high, low, {"pixel_mm": 1.0}))

        assert (await inspector.inspect(Item("bag-0", ItemKind.BAGGAGE), bag())).verdict is Verdict.CLEAR
        await store.call(_fill, store.store)
        before = await store.call(store.store.count)

        record = await inspector.inspect(Item("bag-1", ItemKind.BAGGAGE), bag())
        assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.STORE_FULL.value)
        assert actuated[-1] == (Verdict.MANUAL, Reason.STORE_FULL)  # the lane's safe state, decided before acting

        store.store.full = None  # room came back and was taken again before the next record was written
        record = await inspector.inspect(Item("bag-2", ItemKind.BAGGAGE), bag())
        assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.STORE_FULL.value)
        assert actuated[-1] == (Verdict.CLEAR, Reason.CLEAR)  # acted once, as a flow expects; shown as manual
        assert await store.call(store.store.count) == before
        assert "disk_full" in dict(await store.call(store.store.standing_alarms))

        await store.call(_room, store.store)
        await store.call(store.store.check_space)
        record = await inspector.inspect(Item("bag-3", ItemKind.BAGGAGE), bag())
        assert record.verdict is Verdict.CLEAR and record.seq == before + 1
        assert "disk_full" not in dict(await store.call(store.store.standing_alarms))


async def test_a_route_on_a_full_database_is_logged_and_the_flow_goes_on(tmp_path):
    from edge.stations.routes import RouteRecorder
    from edge.tracking import ItemRouted

    async with StoreWriter(Store(tmp_path / "data", station="st-1")) as store:
        record = await store.call(store.store.commit, make_record(), False)
        await store.call(_fill, store.store)
        routes = RouteRecorder(store)
        routes.entered(7, record.id)
        assert routes.committed(7) is None
        await routes.routed(ItemRouted(7, "manual", "verdict", 0.0))  # a failed write would end the conveyor flow
        assert (await store.call(store.store.get, record.id)).route is None
