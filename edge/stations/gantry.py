"""Drive-through gantry: a vehicle at the entry loop is scanned; the light and barrier follow the verdict.

Safe state is red light and closed barrier: only a `clear` verdict whose barrier opening is
confirmed by read-back lets a vehicle go; a suspect or manual vehicle waits for the officer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field

import structlog

from central_sync.schema import ItemKind, Verdict
from drivers.errors import DriverError
from drivers.plc.state import EyeEdge, LinkChanged, Plc
from edge.devices import Devices
from edge.inspection import Inspector, Item
from edge.stations import FlowParts, InspectorParts
from edge.stations.acquisition import LIVENESS_S, current_link, plc_turns, start_line_scan
from edge.stations.identify import TagWindow
from appliance.watchdog import Progress, follow_turns
from edge.verdict import Reason

log = structlog.get_logger()


@dataclass
class GantryFlow:
    devices: Devices
    parts: InspectorParts  # the inspector is built with this flow's actuation
    progress: Progress
    item_kind: ItemKind
    tags: TagWindow
    inspector: Inspector = field(init=False)
    belt: None = field(default=None, init=False)  # no belt for the screen to restart
    _scanning: asyncio.Task | None = None

    def __post_init__(self) -> None:
        self.inspector = self.parts.build(self._actuate)

    @classmethod
    def build(cls, parts: FlowParts) -> GantryFlow:
        return cls(parts.devices, parts.inspector, parts.progress, parts.item_kind, parts.tags())

    def stopped_on_request(self) -> None:
        """Nothing outlives the daemon: the PLC's safe state holds vehicles at the barrier."""

    @property
    def plc(self) -> Plc:
        """The station's PLC (a DriverError when it could not be opened at start)."""
        return self.devices.opened_plc()

    async def run(self) -> None:
        plc = self.plc
        self.progress.register("plc")
        await self._safe_state()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(follow_turns(self.progress, "plc", lambda: plc_turns(plc), LIVENESS_S),
                              name="plc-liveness")
            tasks.create_task(self.tags.run(), name="readers")
            link = await current_link(plc)
            self.devices.mark("plc", "ok" if link.ok else "lost", link.reason)
            async for event in plc.events():
                if isinstance(event, LinkChanged):
                    self.devices.mark("plc", "ok" if event.ok else "lost", event.reason)
                elif isinstance(event, EyeEdge):
                    self._on_eye(event, tasks)

    def _on_eye(self, event: EyeEdge, tasks: asyncio.TaskGroup) -> None:
        if event.eye == "eye_entry" and event.blocked:
            if self._scanning is not None and not self._scanning.done():
                log.warning("gantry.vehicle_while_scanning", detail="second vehicle at the entry loop")
                return
            self._scanning = tasks.create_task(self._inspect_vehicle(), name="vehicle")
        elif event.eye == "eye_exit" and not event.blocked:
            tasks.create_task(self._after_exit(), name="after-exit")

    async def _inspect_vehicle(self) -> None:
        item = Item(ref="vehicle", kind=self.item_kind)
        self.tags.start(item)
        await _quietly(self.plc.request_xray_permit(True))
        await self.inspector.inspect(item, await start_line_scan(self.devices, item.id))
        self.tags.stop(item)
        await _quietly(self.plc.request_xray_permit(False))

    async def _actuate(self, item: Item, verdict: Verdict, reason: Reason) -> Reason | None:
        plc = self.plc
        try:
            if verdict is Verdict.CLEAR:
                await plc.request_light("green")
                await plc.request_barrier(True)
            else:
                await plc.request_light("red")
        except DriverError as exc:
            self.devices.mark("plc", "degraded", str(exc))
            await self._safe_state()
            return Reason.DEVICE_FAULT
        return None

    async def _after_exit(self) -> None:
        await self._safe_state()

    async def _safe_state(self) -> None:
        """The gantry PLC's safe state (drivers.plc.config.SAFE_STATES), each request read back."""
        plc = self.plc
        for req in plc.safe_state:
            await _quietly(plc.request_safe(req))


async def _quietly(request: Awaitable[None]) -> None:
    """A safe-state request whose failure is already visible as the PLC's link state."""
    try:
        await request
    except DriverError as exc:
        log.warning("plc.request_failed", error=str(exc))
