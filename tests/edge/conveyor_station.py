"""What the belt tests share: a conveyor flow on the PLC simulator, built as the daemon builds it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from central_sync.schema import ItemKind
from edge.config import ConveyorSection
from edge.devices import Devices
from edge.events import EventBus
from edge.metrics import StationMetrics
from edge.stations import InspectorParts, beltlatch
from edge.stations.conveyor import ConveyorFlow
from edge.stations.identify import TagWindow
from edge.store import StoreWriter
from appliance.watchdog import Progress
from drivers.plc import PlcConfig, open_plc

# Generous read-back time where a test expects the PLC to confirm: the machine is shared.
TOLERANT = {"kind": "sim", "readback_timeout_ms": 3000}


def conveyor_flow(plc, writer: StoreWriter, events: EventBus, station: str,
                  section: ConveyorSection | None = None) -> ConveyorFlow:
    """The conveyor flow of a station without scanner or model (an item that enters goes to manual), on `plc`."""
    metrics, devices = StationMetrics(), Devices(plc=plc)
    devices.mark("plc", "ok")
    inspection = InspectorParts(station, "1", 400.0, None, writer, events, metrics)
    return ConveyorFlow(devices, inspection, Progress(), ItemKind.BAGGAGE, TagWindow(devices, events),
                        section or ConveyorSection(), writer.store.data_dir / beltlatch.FILE_NAME,
                        plc.cfg.encoder_counts_per_m)


def on_loop(station: Any, coro_fn: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 30) -> Any:
    """Run `coro_fn()` on a StationHarness's own loop (as the daemon runs its flows) and wait for it."""
    return asyncio.run_coroutine_threadsafe(coro_fn(), station.loop).result(timeout)


async def running_flow(station: Any) -> tuple[AsyncExitStack, Any, ConveyorFlow]:
    """A conveyor flow running on the PLC simulator for a station screen (call it on the screen's loop):
    the exit stack that stops it, the simulated PLC's model and the flow."""
    stack = AsyncExitStack()
    # The screen's loop also serves a browser on a shared machine: a stall of 0.77 s once made the PLC's
    # heartbeat stale (500 ms), the belt latched and the screen rightly said so. Link loss has its own tests.
    cfg = PlcConfig(**TOLERANT, heartbeat_stale_ms=3000)
    plc = await stack.enter_async_context(open_plc(cfg, f"{station.ctx.station_id}/plc"))
    flow = conveyor_flow(plc, station.writer, station.events, station.ctx.station_id)
    task = asyncio.create_task(flow.run(), name="flow")
    stack.callback(task.cancel)
    return stack, plc.sim.model, flow
