"""What the daemon hands to its web app and other consumers: one typed object, built once at start."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from edge.events import EventBus
from edge.store import StoreWriter

if TYPE_CHECKING:
    from edge.config import StationConfig
    from edge.stations.conveyor import BeltRestart


class BeltControl(Protocol):
    """A conveyor belt as the screen drives it: its latch and a supervisor's restart."""

    def belt_status(self) -> dict[str, object]: ...

    async def restart_belt(self, actor: str) -> BeltRestart: ...


@dataclass
class StationContext:
    """The running station as the web app sees it.

    `health()` returns a JSON-able dict: {"devices": {name: {"state": "ok"|"degraded"|"lost",
    "detail": str}}, "model": {...}, "sync": {...backlog figures...}, "budget_misses": int,
    "alarms": [[code, message], ...]}. `belt` is the conveyor's belt (None for other kinds);
    `panels` names what the kind's screen shows (edge.stations.kinds); `stopping` is the daemon's
    stop, so that live streams end and the server can shut down while a screen is connected.
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
    panels: tuple[str, ...] = ()
    stopping: asyncio.Event | None = None
