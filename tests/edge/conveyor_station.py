"""What the belt tests share: a conveyor flow on the PLC simulator, built as the daemon builds it."""

from __future__ import annotations

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

# Generous read-back time where a test expects the PLC to confirm: the machine is shared.
TOLERANT = {"kind": "sim", "readback_timeout_ms": 3000}


def conveyor_flow(plc, writer: StoreWriter, events: EventBus, station: str) -> ConveyorFlow:
    """The conveyor flow of a station without scanner or model (no item may enter), on `plc`."""
    metrics, devices = StationMetrics(), Devices(plc=plc)
    devices.mark("plc", "ok")
    inspection = InspectorParts(station, "1", 400.0, None, writer, events, metrics)
    return ConveyorFlow(devices, inspection, Progress(), ItemKind.BAGGAGE, TagWindow(devices, events),
                        ConveyorSection(), writer.store.data_dir / beltlatch.FILE_NAME)
