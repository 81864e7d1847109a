"""Retrofit auto-detector: scans come from an existing machine (file drop or video capture)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import numpy as np

from central_sync.schema import ItemKind, Verdict
from drivers.errors import DriverError
from drivers.retrofit import RejectedFile
from edge.errors import StationFault
from edge.devices import Devices
from edge.inspection import Inspector, Item
from edge.stations import FlowParts, InspectorParts
from edge.stations.acquisition import WholeScan
from edge.stations.identify import TagWindow
from appliance.watchdog import Progress
from edge.verdict import Reason
from models.errors import ScanFormatError
from models.scan import Scan


@dataclass
class RetrofitFlow:
    """Inspect each scan the source delivers; there is nothing to actuate, the officer acts."""

    devices: Devices
    parts: InspectorParts  # the inspector is built with this flow's actuation
    progress: Progress
    item_kind: ItemKind
    tags: TagWindow
    inspector: Inspector = field(init=False)
    belt: None = field(default=None, init=False)  # no belt for the screen to restart
    lane_control: None = field(default=None, init=False)  # no vehicle lane

    def __post_init__(self) -> None:
        self.inspector = self.parts.build(self._actuate)

    @classmethod
    def build(cls, parts: FlowParts) -> RetrofitFlow:
        return cls(parts.devices, parts.inspector, parts.progress, parts.item_kind, parts.tags())

    def stopped_on_request(self) -> None:
        """Nothing to remember: the existing machine runs on its own."""

    async def run(self) -> None:
        source = self.devices.source
        if source is None:
            raise DriverError("the retrofit image source could not be opened", device="source")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.tags.run(), name="readers")
            async for scan in source.scans():
                if isinstance(scan, RejectedFile):
                    await self._rejected(scan)
                    continue
                item = Item(ref=str(scan.meta.get("source_file", scan.meta.get("source", "scan"))),
                            kind=self.item_kind)
                await self.inspector.inspect(item, WholeScan(scan))

    async def _rejected(self, rejected: RejectedFile) -> None:
        """A file the source could not use is still an item: manual, and an alarm the officer sees."""
        record = await self.inspector.inspect(Item(ref=rejected.file, kind=self.item_kind), RejectedScan(rejected))
        store = self.parts.store
        await store.call(store.store.renew_alarm, "scan_rejected",
                         f"scan file {rejected.file} from {rejected.source} was rejected, record {record.id} is"
                         f" manual: {rejected.reason}")

    async def _actuate(self, item: Item, verdict: Verdict, reason: Reason) -> Reason | None:
        return None


class RejectedScan:
    """The acquisition of a rejected file: the inspector ends the item manual, scan incomplete."""

    def __init__(self, rejected: RejectedFile) -> None:
        self.rejected = rejected

    async def blocks(self) -> AsyncGenerator[tuple[np.ndarray, np.ndarray], None]:
        raise StationFault(Reason.SCAN_INCOMPLETE, self.rejected.reason)
        yield  # pragma: no cover - makes this an async generator

    def result(self) -> Scan:
        raise ScanFormatError(self.rejected.reason)
