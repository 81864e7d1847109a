"""What the daemon hands to its web app and other consumers: one typed object, built once at start."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

from edge.events import EventBus
from edge.store import StoreWriter

if TYPE_CHECKING:
    from edge.config import StationConfig
    from edge.stations.conveyor import BeltRestart
    from edge.stations.lane import LaneDecision
    from edge.stations.lane import Way


class BeltControl(Protocol):
    """A conveyor belt as the screen drives it: its latch and a supervisor's restart."""

    def belt_status(self) -> dict[str, object]: ...

    async def restart_belt(self, actor: str) -> BeltRestart: ...


class LaneControl(Protocol):
    """A gantry lane as the screen drives it: the vehicles in it and an officer's decision on one."""

    def lane_status(self) -> dict[str, object]: ...

    def refusal(self, record_id: str, way: Way) -> LaneDecision | None: ...

    async def decide_vehicle(self, record_id: str, way: Way, actor: str) -> LaneDecision: ...

    async def confirm_lane(self, actor: str, seen: list[str]) -> LaneDecision: ...


@dataclass
class StationContext:
    """The running station as the web app sees it.

    `health()` returns a JSON-able dict: {"devices": {name: {"state": "ok"|"degraded"|"lost",
    "detail": str}}, "model": {...}, "sync": {...backlog figures...}, "budget_misses": int,
    "alarms": [[code, message], ...]}. `belt` is the conveyor's belt (None for other kinds);
    `lane_control` the gantry's lane of vehicles waiting at the barrier (None for other kinds);
    `panels` names what the kind's screen shows (edge.stations.kinds); `stopping` is the daemon's
    stop, so that live streams end and the server can shut down while a screen is connected;
    `cameras` takes a photo (JPEG bytes) from each station camera for a search report.
    """

    station_id: str
    station_kind: str  # a key of edge.stations.kinds.KINDS
    lane: str
    budget_ms: float
    store: StoreWriter
    events: EventBus
    health: Callable[[], dict[str, Any]]
    settings: StationConfig | None = None
    belt: BeltControl | None = None
    lane_control: LaneControl | None = None
    panels: tuple[str, ...] = ()
    stopping: asyncio.Event | None = None
    cameras: dict[str, Callable[[], Awaitable[bytes]]] = field(default_factory=dict)  # name -> take a photo (JPEG)
