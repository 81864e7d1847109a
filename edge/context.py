"""What the daemon hands to its web app and other consumers: one object, built once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from edge.events import EventBus
from edge.store import StoreWriter


@dataclass
class StationContext:
    """The running station as the web app sees it.

    `health()` returns a JSON-able dict: {"devices": {name: {"state": "ok"|"degraded"|"lost",
    "detail": str}}, "model": {...}, "sync": {...backlog figures...}, "budget_misses": int,
    "alarms": [[code, message], ...]}.
    """

    station_id: str
    station_kind: str  # gantry | conveyor | xray
    lane: str
    budget_ms: float
    store: StoreWriter
    events: EventBus
    health: Callable[[], dict[str, Any]]
    settings: Any = None  # the validated StationConfig
    extras: dict[str, Any] = field(default_factory=dict)
