"""Liveness of the station flows on the real PLC simulator: an idle station is alive.

The watchdog's "plc" task means "the driver's poll loop turns", not "the PLC reported an event":
with no items, no vehicles and a belt stopped after an e-stop, nothing happens, yet the station
must keep sending WATCHDOG=1 (or systemd kills and restarts it).
"""

from __future__ import annotations

import asyncio

from central_sync.schema import ItemKind
from conveyor_station import TOLERANT, conveyor_flow
from drivers.plc import PlcConfig, open_plc
from edge.devices import Devices
from edge.events import EventBus
from edge.metrics import StationMetrics
from edge.stations import InspectorParts
from edge.stations.gantry import GantryFlow
from edge.stations.lane import Lane
from edge.stations.identify import TagWindow
from edge.store import Store, StoreWriter
from appliance.watchdog import Progress
from polling import until

STALL_S = 2.0
WATCHED_S = 3 * STALL_S


async def polls(plc, n: int) -> None:
    """Wait until the driver has polled n more times (a count of loop turns, not a duration)."""
    start = (await plc.read_state()).seq
    await until(plc.read_state, f"{n} more polls of the PLC", check=lambda st: st.seq >= start + n, timeout=60)


async def never_stalls(progress: Progress, plc) -> None:
    """Watch `progress` for WATCHED_S while the PLC reports nothing new; it names no stalled task."""
    progress.stall_after_s = STALL_S
    loop = asyncio.get_running_loop()
    end = loop.time() + WATCHED_S
    while loop.time() < end:
        assert progress.stalled() == [], "an idle station must keep beating liveness"
        await asyncio.sleep(0.1)
    await polls(plc, 5)  # the PLC was polled all along: the loop turned
    assert progress.stalled() == []


async def test_an_idle_conveyor_with_a_latched_belt_stays_alive(tmp_path):
    cfg = PlcConfig(**TOLERANT)
    async with open_plc(cfg, "t-1/plc") as plc, StoreWriter(Store(tmp_path / "data", station="t-1")) as writer:
        flow = conveyor_flow(plc, writer, EventBus(), "t-1")
        task = asyncio.create_task(flow.run(), name="flow")
        try:
            await until(lambda: flow.belt_status()["run_confirmed"], "the belt runs after start")
            plc.sim.model.press_estop()
            await until(lambda: flow.latch == "estop", "the e-stop latches the belt")
            assert "plc" in flow.progress._last
            await never_stalls(flow.progress, plc)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_an_idle_gantry_stays_alive(tmp_path):
    cfg = PlcConfig(**{**TOLERANT, "model": "gantry"})
    async with open_plc(cfg, "g-1/plc") as plc, StoreWriter(Store(tmp_path / "data", station="g-1")) as writer:
        metrics, devices, events = StationMetrics(), Devices(plc=plc), EventBus()
        progress = Progress()
        flow = GantryFlow(devices, InspectorParts("g-1", "1", 400.0, None, writer, events, metrics), progress,
                          ItemKind.VEHICLE, TagWindow(devices, events), Lane(1))
        task = asyncio.create_task(flow.run(), name="flow")
        try:
            await until(lambda: devices.states().get("plc", {}).get("state") == "ok", "the gantry's PLC link is up")
            assert "plc" in progress._last
            await never_stalls(progress, plc)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
