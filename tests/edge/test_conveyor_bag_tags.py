"""A bag's tag, read at the tunnel entry, is on its own record also when the bag's scan fails at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from drivers.plc import PlcConfig, open_plc
from drivers.rfid import LlrpConfig, open_reader
from drivers.simlane import LaneSim, describe
from edge.config import ConveyorSection
from edge.events import EventBus
from edge.store import Store, StoreWriter
from polling import until
from conveyor_station import TOLERANT, conveyor_flow

LANE = LaneSim(name="bag-tags-test", items="bags", seed=9)
SPEED_M_S = 0.5
TAG_DELAY_S = 0.4  # the reader hears a bag's tag this long after the bag covered the entry eye (it covers it 0.6 s+)


async def test_a_bag_whose_scan_fails_at_once_keeps_the_tag_read_after_that(tmp_path: Path) -> None:
    """Without a scanner every bag's acquisition fails as it enters: its `manual` record was written before the
    reader heard its tag (0.4 s later, the bag still in the entry antenna's field), so the record had no tag and the
    read joined no bag (the next bag to enter took it, were it still in the field)."""
    plc_cfg = PlcConfig(**TOLERANT, heartbeat_stale_ms=3000, sim={
        "host_watchdog_ms": 3000, "conveyor": {"auto_items": True, "belt_speed_m_s": SPEED_M_S, "item_gap_min_m": 0.3,
                                             "lane": LANE.model_dump()}})
    reader_cfg = LlrpConfig.model_validate({"kind": "llrp", "antennas": [1], "removal_after_ms": 300, "sim": {
        "antennas": 1, "read_ms": 20, "lane": LANE.name, "lane_delay_s": TAG_DELAY_S}})
    async with open_plc(plc_cfg, "t-1/plc") as plc, open_reader(reader_cfg, "bags") as reader, \
            StoreWriter(Store(tmp_path / "data", station="t-1")) as writer:
        flow = conveyor_flow(plc, writer, EventBus(), "t-1", ConveyorSection(belt_speed_m_s=SPEED_M_S))
        flow.devices.readers["bags"] = reader
        task = asyncio.create_task(flow.run(), name="flow")
        try:
            recent = await until(lambda: writer.call(writer.store.recent, 10), "two bags recorded",
                                 check=lambda rows: len(rows) >= 2, timeout=60)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    records = recent[::-1][:2]
    assert [r.verdict.value for r in records] == ["manual", "manual"]
    assert [[i.value for i in r.identities if i.kind == "rfid_epc"] for r in records] == \
        [[describe(LANE, 1).epc], [describe(LANE, 2).epc]]


async def test_a_bag_lifted_off_in_the_tunnel_after_its_scan_failed_is_still_recorded(tmp_path: Path) -> None:
    """A bag whose scan failed at once waits for its scan's end before its record is written (its tag is heard after
    it entered). Lifted off the belt in the tunnel, with no bag behind it, it never reaches the exit eye: the tracker
    routes it by the belt's travel (to manual) and its record waited for good. Now its record is written when it is
    routed: manual, never lost."""
    plc_cfg = PlcConfig(**TOLERANT, heartbeat_stale_ms=3000, sim={
        "host_watchdog_ms": 3000, "conveyor": {"belt_speed_m_s": 1.0}})
    async with open_plc(plc_cfg, "t-1/plc") as plc, StoreWriter(Store(tmp_path / "data", station="t-1")) as writer:
        flow = conveyor_flow(plc, writer, EventBus(), "t-1", ConveyorSection(belt_speed_m_s=1.0))
        task = asyncio.create_task(flow.run(), name="flow")
        try:
            model = plc.sim.model
            await until(lambda: model.belt_running, "the belt runs", timeout=30)
            model.add_item(0.3, lead_m=0.3)
            await until(lambda: flow.tracker.items, "the bag entered the tunnel", timeout=30)
            model.items.clear()  # lifted off before the X-ray exit
            recent = await until(lambda: writer.call(writer.store.recent, 10), "the bag recorded",
                                 check=lambda rows: len(rows) >= 1, timeout=30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert [r.verdict.value for r in recent] == ["manual"]
