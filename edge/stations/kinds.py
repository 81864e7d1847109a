"""Station kinds as declarations: the device roles each needs, its PLC model, flow, screen and diagnostics.

Adding a kind is one entry in `KINDS` and its flow module; the config check, the daemon and
diagnostics read this table, and nothing else names a kind. A device role is a field of
edge.config.DevicesSection opened by edge.devices.open_devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from drivers.plc.config import Model as PlcModel
from edge.stations import Flow, FlowParts

if TYPE_CHECKING:
    from edge.config import DevicesSection

Role = Literal["plc", "scanner", "source", "readers"]


def _conveyor(parts: FlowParts) -> Flow:
    from edge.stations.conveyor import ConveyorFlow

    return ConveyorFlow.build(parts)


def _gantry(parts: FlowParts) -> Flow:
    from edge.stations.gantry import GantryFlow

    return GantryFlow.build(parts)


def _retrofit(parts: FlowParts) -> Flow:
    from edge.stations.retrofit import RetrofitFlow

    return RetrofitFlow.build(parts)


@dataclass(frozen=True)
class SafetyDevice:
    """A physical safety device diagnostics prove: its label, what it trips ("estop" or "door"), the twin's name."""

    label: str
    trips: Literal["estop", "door"]
    twin_name: str


@dataclass(frozen=True)
class TestItem:
    """What the technician places for the tracking phase: its length and where its front edge starts (m)."""

    length_m: float
    lead_m: float


@dataclass(frozen=True)
class Diagnostics:
    """What `edge diag` proves on this kind beyond its devices: safety devices, the tracking test item."""

    safety: tuple[SafetyDevice, ...] = ()
    test_item: TestItem | None = None


@dataclass(frozen=True)
class StationKind:
    """One kind of station: what it needs, what it runs and what its screen shows.

    `plc_model` names the PLC's register map and safe state (drivers.plc.config SAFE_STATES);
    `panels` are what the screen shows beside the inspection queue ("belt": the belt's latch and
    a supervisor's restart; "lane": the vehicles waiting at the barrier and the officer's release)."""

    name: str
    title: str
    needs: tuple[Role, ...]
    flow: Callable[[FlowParts], Flow]
    plc_model: PlcModel | None = None
    panels: tuple[str, ...] = ()
    diag: Diagnostics = Diagnostics()

    def problems(self, devices: DevicesSection) -> list[str]:
        """What a config's devices section lacks or gets wrong for this kind, one sentence each."""
        missing = [f"devices.{role}" for role in self.needs if not getattr(devices, role)]
        found = [f"a {self.name} station needs {', '.join(missing)}"] if missing else []
        plc = devices.plc
        if plc is not None and self.plc_model is not None and plc.model != self.plc_model:
            found.append(f"a {self.name} station needs devices.plc.model = \"{self.plc_model}\", not "
                         f"\"{plc.model}\"")
        return found


ESTOP = SafetyDevice("e-stop", "estop", "estop")

KINDS: dict[str, StationKind] = {k.name: k for k in (
    StationKind("conveyor", "Baggage conveyor", ("plc", "scanner"), _conveyor, "conveyor", ("belt",),
                Diagnostics((ESTOP, SafetyDevice("tunnel door", "door", "door"),
                             SafetyDevice("exit curtain", "door", "curtain")), TestItem(0.4, 0.4))),
    StationKind("gantry", "Drive-through gantry", ("plc", "scanner"), _gantry, "gantry", ("lane",),
                diag=Diagnostics((ESTOP, SafetyDevice("scan-zone gate", "door", "door"),
                                  SafetyDevice("light curtain", "door", "curtain")), TestItem(6.0, 4.5))),
    StationKind("xray", "Retrofit X-ray auto-detector", ("source",), _retrofit),
)}
