"""Station flows: how each kind of station turns device events into inspections."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edge.config import StationConfig
    from edge.devices import Devices
    from edge.events import EventBus
    from edge.inspection import Inspector
    from edge.metrics import StationMetrics
    from appliance.watchdog import Progress


class Flow(Protocol):
    async def run(self) -> None: ...


def build_flow(config: StationConfig, devices: Devices, inspector: Inspector, events: EventBus,
               progress: Progress, metrics: StationMetrics) -> Flow:
    """The flow for the station's kind; it sets the inspector's actuation."""
    from edge.stations.identify import TagWindow

    kind = config.station.kind
    item_kind = config.station.item_kind
    if kind == "xray":
        from edge.stations.retrofit import RetrofitFlow

        return RetrofitFlow(devices, inspector, progress, item_kind, TagWindow(devices, events))
    if kind == "gantry":
        from edge.stations.gantry import GantryFlow

        return GantryFlow(devices, inspector, progress, item_kind, TagWindow(devices, events))
    from edge.stations.beltlatch import FILE_NAME
    from edge.stations.conveyor import ConveyorFlow

    return ConveyorFlow(devices, inspector, progress, item_kind, TagWindow(devices, events), config.conveyor, metrics,
                        config.station.data_dir / FILE_NAME)
