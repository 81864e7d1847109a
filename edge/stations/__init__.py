"""Station flows: how each kind of station turns device events into inspections.

A flow is built from `FlowParts` and builds its own Inspector, with its actuation and its budget,
through `InspectorParts.build`: nothing is set on the flow or the inspector afterwards.
edge.stations.kinds declares which flow each kind of station runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from edge.inspection import Actuate, DetectionEngine, Inspector

if TYPE_CHECKING:
    from appliance.watchdog import Progress
    from central_sync.schema import ItemKind
    from edge.config import StationConfig
    from edge.context import BeltControl, LaneControl
    from edge.devices import Devices
    from edge.events import EventBus
    from edge.history import VehicleHistory
    from edge.metrics import StationMetrics
    from edge.risk import RiskCheck
    from edge.stations.cameras import CameraWindow
    from edge.seals import SealExpectation
    from edge.stations.identify import TagWindow
    from edge.store import StoreWriter
    from models.shadow import Shadow


class Flow(Protocol):
    """A station kind's flow, as the daemon runs it."""

    @property
    def belt(self) -> BeltControl | None:
        """The belt the screen may restart (a conveyor's), or None."""

    @property
    def lane_control(self) -> LaneControl | None:
        """The lane of vehicles officers release (a gantry's), or None."""

    async def run(self) -> None: ...

    def stopped_on_request(self) -> None:
        """The daemon stops on request (not a crash); called once, before the flow is cancelled."""


@dataclass(frozen=True)
class InspectorParts:
    """Everything an Inspector is made of but the flow's actuation (and a flow's tighter budget)."""

    station: str
    lane: str
    budget_ms: float
    engine: DetectionEngine | None
    store: StoreWriter
    events: EventBus
    metrics: StationMetrics
    after_commit: Callable[[], None] | None = None  # e.g. wake the sync publisher
    shadow: Shadow | None = None
    seals: SealExpectation | None = None  # the lane's declared seals (config [seals]), None when none is declared
    risk: RiskCheck | None = None  # edge.risk: evaluated on every item when the config has [risk]
    dense_alert_mm2: float | None = None  # config [model] dense_alert_mm2

    def build(self, actuate: Actuate, budget_ms: float | None = None) -> Inspector:
        """The Inspector that carries out verdicts with `actuate`, within `budget_ms` (default: configured)."""
        return Inspector(self.station, self.lane, self.budget_ms if budget_ms is None else budget_ms, self.engine,
                         self.store, self.events, self.metrics, actuate, self.after_commit, self.shadow, self.seals,
                         self.risk, self.dense_alert_mm2)


@dataclass(frozen=True)
class FlowParts:
    """What every flow is built from."""

    config: StationConfig
    devices: Devices
    inspector: InspectorParts
    events: EventBus
    progress: Progress
    history: VehicleHistory | None = None  # a vehicle's references and comparison (edge/history.py)

    @property
    def item_kind(self) -> ItemKind:
        return self.config.station.item_kind

    def tags(self) -> TagWindow:
        """The window that adds tags read during an inspection to its record."""
        from edge.stations.identify import TagWindow

        return TagWindow(self.devices, self.events, seal_hold_s=self.config.seals.hold_s,
                         tag_hold_s=self.config.tags.hold_s)

    def cameras(self) -> CameraWindow:
        """The window that adds the plates and container codes the cameras read during an inspection."""
        from edge.stations.cameras import CameraWindow

        return CameraWindow(self.devices, self.inspector.store)
