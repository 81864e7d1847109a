"""Identities read during an inspection: tags seen while the item is open become part of its record.

A reader configured under the name `badge` is the officer's sign-in reader: its tags go to the
station screen (event "badge"), never into inspection records.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog

from central_sync.schema import Identity
from drivers.errors import DriverError
from edge.devices import Devices
from edge.events import EventBus
from edge.inspection import Item

log = structlog.get_logger()

BADGE_READER = "badge"


@dataclass
class TagWindow:
    devices: Devices
    events: EventBus
    _open: dict[str, Item] = field(default_factory=dict)

    def start(self, item: Item) -> None:
        self._open[item.id] = item

    def stop(self, item: Item) -> None:
        self._open.pop(item.id, None)

    async def run(self) -> None:
        if not self.devices.readers:
            return
        async with asyncio.TaskGroup() as tasks:
            for name, reader in self.devices.readers.items():
                tasks.create_task(self._follow(name, reader), name=f"reader:{name}")

    async def _follow(self, name: str, reader: Any) -> None:
        try:
            async for event in reader.events():
                if type(event).__name__ == "TagSeen":
                    self._seen(name, event)
        except DriverError as exc:
            self.devices.mark(f"reader:{name}", "lost", str(exc))
            raise

    def _seen(self, reader_name: str, event: Any) -> None:
        tag = event.tag.hex
        if reader_name == BADGE_READER:
            self.events.publish("badge", {"badge": tag, "reader": reader_name})
            return
        for item in self._open.values():
            if all(i.value != tag for i in item.identities):
                item.identities.append(Identity(kind="rfid", value=tag, source=reader_name))
        log.info("reader.tag_seen", reader=reader_name, tag=tag, open_items=len(self._open))
