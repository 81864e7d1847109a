"""Retrofit auto-detector: scans come from an existing machine (file drop or video capture)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from central_sync.schema import ItemKind, Verdict
from drivers.errors import DriverError
from edge.devices import Devices
from edge.inspection import Inspector, Item
from edge.stations.acquisition import WholeScan
from edge.stations.identify import TagWindow
from appliance.watchdog import Progress
from edge.verdict import Reason


@dataclass
class RetrofitFlow:
    """Inspect each scan the source delivers; there is nothing to actuate, the officer acts."""

    devices: Devices
    inspector: Inspector
    progress: Progress
    item_kind: ItemKind
    tags: TagWindow

    def __post_init__(self) -> None:
        self.inspector.actuate = self._actuate

    async def run(self) -> None:
        source = self.devices.source
        if source is None:
            raise DriverError("the retrofit image source could not be opened", device="source")
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.tags.run(), name="readers")
            async for scan in source.scans():
                item = Item(ref=str(scan.meta.get("source_file", scan.meta.get("source", "scan"))),
                            kind=self.item_kind)
                await self.inspector.inspect(item, WholeScan(scan))

    async def _actuate(self, item: Item, verdict: Verdict, reason: Reason) -> Reason | None:
        return None
