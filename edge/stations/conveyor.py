"""Baggage conveyor: items are scanned as they pass the tunnel and diverted at the gate.

PLC events drive the sans-IO tracker (edge.tracking); its outputs start and stop scans and set
the divert gate. The gate rests at manual: an item passes only with a `clear` verdict in hand
when it reaches the decision point, so a late verdict always means manual inspection.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from central_sync.schema import ItemKind, Verdict
from drivers.errors import DriverError
from drivers.plc.state import BeltMoved, EyeEdge, LinkChanged
from edge.config import ConveyorSection
from edge.devices import Devices
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.stations.acquisition import LineScan, current_link, start_line_scan
from edge.stations.identify import TagWindow
from edge.supervisor import Progress
from edge.tracking import ConveyorTracker, GateCommand, Geometry, ItemEntered, ItemRouted, ItemScanned, \
    TrackingFault, latency_budget_s
from edge.verdict import Reason

log = structlog.get_logger()


def geometry_of(section: ConveyorSection) -> Geometry:
    return Geometry(section.entry_m, section.exit_m, section.gate_m, section.actuation_s)


def geometry_budget_ms(section: ConveyorSection) -> float:
    """The longest budget the belt allows: from the tail leaving the tunnel to the decision point."""
    return latency_budget_s(geometry_of(section), section.belt_speed_m_s) * 1000


@dataclass
class ConveyorFlow:
    devices: Devices
    inspector: Inspector
    progress: Progress
    item_kind: ItemKind
    tags: TagWindow
    section: ConveyorSection
    metrics: StationMetrics
    tracker: ConveyorTracker = field(init=False)
    _tracker_ids: dict[str, int] = field(default_factory=dict)  # record id -> tracker item id
    _streams: dict[int, object] = field(default_factory=dict)
    _tasks: asyncio.TaskGroup | None = None
    _belt_start_pending: bool = False
    _gate: asyncio.Queue[GateCommand] = field(default_factory=lambda: asyncio.Queue(64))

    def __post_init__(self) -> None:
        self.tracker = ConveyorTracker(geometry_of(self.section), self.section.belt_speed_m_s)
        self.inspector.actuate = self._actuate
        self._belt_start_pending = self.section.start_belt
        limit = geometry_budget_ms(self.section)
        if self.inspector.budget_ms > limit:
            log.warning("conveyor.budget_limited_by_belt", configured_ms=self.inspector.budget_ms, limit_ms=limit)
            self.inspector.budget_ms = limit

    async def run(self) -> None:
        plc = self.devices.plc
        self.progress.register("plc")
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            tasks.create_task(self.tags.run(), name="readers")
            tasks.create_task(self._drive_gate(), name="gate")
            self._handle(self._feed(await current_link(plc)))
            async for event in plc.events():
                self.progress.beat("plc")
                self._handle(self._feed(event))

    def _feed(self, event: object) -> list:
        if isinstance(event, EyeEdge):
            return self.tracker.on_edge(event.eye, event.blocked, event.encoder_m, event.t)
        if isinstance(event, BeltMoved):
            return self.tracker.advance(event.encoder_m, event.t)
        if isinstance(event, LinkChanged):
            self.devices.mark("plc", "ok" if event.ok else "lost", event.reason)
            if event.ok and self._belt_start_pending:
                self._belt_start_pending = False  # once, at start: after a link loss only an operator restarts
                self._tasks.create_task(self._start_belt(), name="belt-start")
            if not event.ok:
                self.metrics.dropped.labels("item", "plc_link_lost").inc(len(self.tracker.items))
                return self.tracker.link_lost(event.t)
        return []

    def _handle(self, outputs: list) -> None:
        tasks = self._tasks
        for out in outputs:
            if isinstance(out, ItemEntered):
                item = Item(ref=f"item-{out.item_id}", kind=self.item_kind)
                self._tracker_ids[item.id] = out.item_id
                tasks.create_task(self._inspect(out.item_id, item), name=f"item-{out.item_id}")
            elif isinstance(out, ItemScanned):
                tasks.create_task(self._end_scan(out.item_id), name=f"end-scan-{out.item_id}")
            elif isinstance(out, GateCommand):
                self._command_gate(out)
            elif isinstance(out, ItemRouted):
                self._routed(out)
            elif isinstance(out, TrackingFault):
                self.metrics.dropped.labels("item", "tracking_fault").inc()
                log.error("conveyor.tracking_fault", detail=out.message)

    async def _inspect(self, item_id: int, item: Item) -> None:
        self.tags.start(item)
        acquisition = await start_line_scan(self.devices, item.id)
        if isinstance(acquisition, LineScan):
            self._streams[item_id] = acquisition.stream
        await self.inspector.inspect(item, acquisition)
        self.tags.stop(item)
        self._streams.pop(item_id, None)

    async def _end_scan(self, item_id: int) -> None:
        """The item's tail left the tunnel: end its scan if the scanner has not already."""
        stream = self._streams.get(item_id)
        if stream is not None and not stream.ended:
            try:
                await stream.stop()
            except DriverError as exc:
                self.devices.mark("scanner", "degraded", str(exc))

    async def _actuate(self, item: Item, verdict: Verdict, reason: Reason) -> Reason | None:
        """Hand the verdict to the tracker; the gate acts when the item reaches it."""
        item_id = self._tracker_ids.pop(item.id)
        self._handle(self.tracker.set_verdict(item_id, verdict.value, time.monotonic()))
        return None

    def _command_gate(self, command: GateCommand) -> None:
        try:
            self._gate.put_nowait(command)
        except asyncio.QueueFull:
            self.metrics.dropped.labels("gate_command", "queue_full").inc()
            log.error("conveyor.gate_queue_full", to_manual=command.to_manual)

    async def _drive_gate(self) -> None:
        """Apply gate commands in order; a request not confirmed by read-back leaves the gate at manual."""
        while True:
            command = await self._gate.get()
            try:
                await self.devices.plc.request_divert(command.to_manual)
            except DriverError as exc:
                self.devices.mark("plc", "degraded", str(exc))
                log.error("conveyor.gate_unconfirmed", to_manual=command.to_manual, error=str(exc))

    def _routed(self, out: ItemRouted) -> None:
        self.metrics.routed.labels(out.route, out.reason).inc()
        log.info("conveyor.item_routed", item=out.item_id, route=out.route, reason=out.reason)

    async def _start_belt(self) -> None:
        try:
            await self.devices.plc.request_belt(True)
            await self.devices.plc.request_xray_permit(True)
        except DriverError as exc:
            self.devices.mark("plc", "degraded", f"belt did not start: {exc}")
