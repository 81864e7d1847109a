"""PLC configuration: link parameters, the register map (a declaration) and simulator parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.plc.state import Light  # state names SafeRequest for type checking only: no cycle
from drivers.simlane import LaneSim

Table = Literal["coil", "discrete", "holding", "input"]
Model = Literal["conveyor", "gantry"]


class Point(BaseModel):
    """One named PLC point: which Modbus table, which 0-based address, how many 16-bit words."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    table: Table
    address: int = Field(ge=0, le=0xFFFF)
    words: int = Field(default=1, ge=1, le=2)


def _p(table: Table, address: int, words: int = 1) -> Point:
    return Point(table=table, address=address, words=words)


# Host requests are coils / holding registers; their feedback is a discrete input / input register.
# Safety points (estop_ok, interlocks_ok, safety_status) are read-only on the PLC side.
CONVEYOR_MAP: dict[str, Point] = {
    "belt_run_request": _p("coil", 0),
    "divert_manual_request": _p("coil", 1),
    "xray_permit_request": _p("coil", 2),
    "estop_ok": _p("discrete", 0),
    "interlocks_ok": _p("discrete", 1),
    "belt_running": _p("discrete", 2),
    "divert_manual": _p("discrete", 3),
    "xray_permit": _p("discrete", 4),
    "divert_pass": _p("discrete", 5),
    "eye_tunnel_entry": _p("discrete", 8),
    "eye_tunnel_exit": _p("discrete", 9),
    "eye_divert_gate": _p("discrete", 10),
    "host_heartbeat": _p("holding", 0),
    "safety_status": _p("holding", 10),
    "plc_heartbeat": _p("input", 0),
    "encoder": _p("input", 1, 2),
}
CONVEYOR_EYES: tuple[str, ...] = ("eye_tunnel_entry", "eye_tunnel_exit", "eye_divert_gate")

GANTRY_MAP: dict[str, Point] = {
    "barrier_open_request": _p("coil", 0),
    "search_bay_request": _p("coil", 1),
    "xray_permit_request": _p("coil", 2),
    "estop_ok": _p("discrete", 0),
    "interlocks_ok": _p("discrete", 1),
    "barrier_open": _p("discrete", 3),
    "xray_permit": _p("discrete", 4),
    "barrier_closed": _p("discrete", 5),
    "search_bay_open": _p("discrete", 6),
    "search_bay_closed": _p("discrete", 7),
    "eye_entry": _p("discrete", 8),
    "eye_exit": _p("discrete", 9),
    "eye_search_bay": _p("discrete", 10),
    "host_heartbeat": _p("holding", 0),
    "light_request": _p("holding", 1),
    "entry_light_request": _p("holding", 2),
    "safety_status": _p("holding", 10),
    "plc_heartbeat": _p("input", 0),
    "light": _p("input", 3),
    "entry_light": _p("input", 4),
}
GANTRY_EYES: tuple[str, ...] = ("eye_entry", "eye_exit", "eye_search_bay")
# The vehicle separator (a light curtain at drawbar height over the entry loop: broken along a vehicle and the
# coupling to its trailer, clear in a gap between two vehicles) is in no default map: older PLCs lack it. Mapped
# (`vehicle_separator = { table = "discrete", address = 11 }`), it is read as the gantry's last eye.
SEPARATOR = "vehicle_separator"

DEFAULT_MAPS: dict[str, dict[str, Point]] = {"conveyor": CONVEYOR_MAP, "gantry": GANTRY_MAP}
DEFAULT_EYES: dict[str, tuple[str, ...]] = {"conveyor": CONVEYOR_EYES, "gantry": GANTRY_EYES}
LIGHT_CODES: dict[Light, int] = {"off": 0, "red": 1, "amber": 2, "green": 3}


@dataclass(frozen=True)
class SafeRequest:
    """One host request of a model's safe state: the point, its safe value, and what it does in words."""

    point: str
    value: int
    says: str


# Each model's safe state, in the order it is requested: no X-ray and no motion first, then items to
# manual, vehicles held at a closed barrier and search-bay gate under red lights, and none let into the
# scan zone. The driver writes it when the link comes back, the gantry flow when it starts, diagnostics
# at teardown; the simulator starts in it.
SAFE_STATES: dict[str, tuple[SafeRequest, ...]] = {
    "conveyor": (SafeRequest("belt_run_request", 0, "belt stop"),
                 SafeRequest("xray_permit_request", 0, "X-ray permit off"),
                 SafeRequest("divert_manual_request", 1, "divert to manual")),
    "gantry": (SafeRequest("xray_permit_request", 0, "X-ray permit off"),
               SafeRequest("barrier_open_request", 0, "barrier close"),
               SafeRequest("search_bay_request", 0, "search-bay gate close"),
               SafeRequest("light_request", LIGHT_CODES["red"], "red light"),
               SafeRequest("entry_light_request", LIGHT_CODES["red"], "red entry light")),
}
REQUIRED_POINTS: tuple[str, ...] = ("estop_ok", "interlocks_ok", "host_heartbeat", "plc_heartbeat")
# Modbus limits per read request (Modbus Application Protocol V1.1b3, function codes 01-04).
MAX_REGISTERS_PER_READ = 125
MAX_BITS_PER_READ = 2000
BIT_TABLES = frozenset({"coil", "discrete"})
# Words the PLC writes and the host only reads, although they sit in a host-writable table.
STATUS_POINTS = frozenset({"safety_status"})
REQUEST_POINTS = frozenset({"belt_run_request", "divert_manual_request", "xray_permit_request",
                            "barrier_open_request", "search_bay_request", "host_heartbeat", "light_request",
                            "entry_light_request"})
READ_ONLY_TABLES = frozenset({"discrete", "input"})
ENCODER_COUNTS_PER_M = 1000.0  # the belt encoder's resolution unless configured


class ConveyorSim(BaseModel):
    """Simulated conveyor: belt, photo-eye positions (m from the loading point), divert gate, items."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    belt_speed_m_s: float = Field(default=0.3, gt=0, le=2.0)
    eye_tunnel_entry_m: float = 0.5
    eye_tunnel_exit_m: float = 1.3
    eye_divert_gate_m: float = 2.8
    belt_length_m: float = 3.5
    divert_actuation_s: float = Field(default=0.15, ge=0)
    encoder_counts_per_m: float = ENCODER_COUNTS_PER_M
    item_gap_mean_m: float = Field(default=0.6, gt=0, description="mean gap from an item's tail to the next one's front")
    item_gap_min_m: float = Field(default=0.15, ge=0, description="no closer: the eyes see every gap (items that "
                                  "touch are one item to them)")
    item_length_m: tuple[float, float] = (0.2, 0.5)
    auto_items: bool = False
    seed: int = 1
    lane: LaneSim | None = Field(default=None, description="describe each bag for the lane's other simulators "
                                 "(drivers/simlane.py); its length comes from its description")


class GantrySim(BaseModel):
    """Simulated gantry: vehicles stop at the entry light while it is not green, pass the entry loop,
    queue behind each other up to the barrier, and leave over the exit loop (barrier open) or turn
    into the search bay over its loop (search-bay gate open)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vehicles_per_min: float = Field(default=2.0, ge=0)
    vehicle_speed_m_s: float = Field(default=1.5, gt=0)
    vehicle_length_m: tuple[float, float] = (4.0, 16.0)
    entry_stop_m: float = -1.0  # stop line of the entry light, before the scan zone
    eye_entry_m: float = 5.0  # entry loop: the vehicle enters the scan zone
    barrier_m: float = 22.0  # vehicles wait here for the verdict (and queue behind the one waiting)
    eye_exit_m: float = 25.0
    eye_search_bay_m: float = 25.0  # loop on the search-bay lane, which leaves the lane at the barrier
    vehicle_separator_m: float = 5.0  # the vehicle separator's beam (at drawbar height over the entry loop)
    approach_max: int = Field(default=20, ge=1)  # vehicles queueing before the entry light; more turn away
    barrier_actuation_s: float = Field(default=2.0, ge=0)
    auto_vehicles: bool = False
    seed: int = 1
    lane: LaneSim | None = Field(default=None, description="describe each vehicle for the lane's other simulators "
                                 "(drivers/simlane.py); its length comes from its description")


class PlcSim(BaseModel):
    """Simulator parameters shared by both models."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    transport: Literal["tcp", "rtu"] = "tcp"
    sparse: bool = False  # answer exception 02 for unmapped addresses, as many vendor PLCs do
    plc_heartbeat_period_ms: int = Field(default=100, ge=10)
    host_watchdog_ms: int = Field(default=600, ge=50)
    step_ms: int = Field(default=5, ge=1)
    conveyor: ConveyorSim = ConveyorSim()
    gantry: GantrySim = GantrySim()


class PlcConfig(BaseModel):
    """One PLC: link, timing, register map (defaults per model) and the simulator."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["modbus-tcp", "modbus-rtu", "sim"]
    model: Model = "conveyor"
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=0, le=65535)
    serial_port: str = ""
    baudrate: int = 19200
    unit_id: int = Field(default=1, ge=0, le=247)
    timeout_ms: int = Field(default=300, ge=10, le=5000)
    retries: int = Field(default=1, ge=0, le=3)
    poll_period_ms: int = Field(default=10, ge=1, le=1000)
    heartbeat_period_ms: int = Field(default=100, ge=10)
    heartbeat_stale_ms: int = Field(default=500, ge=20)
    readback_timeout_ms: int = Field(default=600, ge=10)
    reconnect_delay_ms: int = Field(default=200, ge=10)
    # Some PLCs accept fewer per request than Modbus allows; never more (and a 32-bit point needs 2).
    max_registers_per_read: int = Field(default=MAX_REGISTERS_PER_READ, ge=2, le=MAX_REGISTERS_PER_READ)
    max_bits_per_read: int = Field(default=MAX_BITS_PER_READ, ge=1, le=MAX_BITS_PER_READ)
    encoder_counts_per_m: float = Field(default=ENCODER_COUNTS_PER_M, gt=0)
    registers: dict[str, Point] = Field(default_factory=dict)
    eyes: tuple[str, ...] = ()
    sim: PlcSim = PlcSim()

    @model_validator(mode="after")
    def _defaults_and_checks(self) -> PlcConfig:
        """Fill the model's default map under any overrides; check that required points exist."""
        merged = {**DEFAULT_MAPS[self.model], **self.registers}
        object.__setattr__(self, "registers", merged)
        if not self.eyes:
            separator = (SEPARATOR,) if self.model == "gantry" and SEPARATOR in merged else ()
            object.__setattr__(self, "eyes", DEFAULT_EYES[self.model] + separator)
        missing = [n for n in (*REQUIRED_POINTS, *self.eyes) if n not in merged]
        if missing:
            raise ValueError(f"register map lacks points {missing}")
        unsafe = [r.point for r in SAFE_STATES[self.model] if r.point not in merged]
        if unsafe:
            raise ValueError(f"register map lacks the safe-state points {unsafe}")
        if self.kind == "modbus-rtu" and not self.serial_port:
            raise ValueError("kind modbus-rtu needs serial_port")
        _check_map(merged)
        _check_timing(self)
        return self


def _check_timing(cfg: PlcConfig) -> None:
    """The read-back window must at least cover the write's own answer and two poll periods."""
    need = cfg.timeout_ms + 2 * cfg.poll_period_ms
    if cfg.readback_timeout_ms < need:
        raise ValueError(
            f"readback_timeout_ms {cfg.readback_timeout_ms} is shorter than timeout_ms {cfg.timeout_ms} "
            f"plus two poll periods of {cfg.poll_period_ms} ms ({need} ms), so no request could be confirmed")


def _check_map(points: dict[str, Point]) -> None:
    """Requests sit in writable tables, everything else (safety included) in read-only ones; no overlaps."""
    for name, pt in points.items():
        _check_point(name, pt)
    used: dict[tuple[str, int], str] = {}
    for name, pt in points.items():
        for addr in range(pt.address, pt.address + pt.words):
            other = used.setdefault((pt.table, addr), name)
            if other != name:
                raise ValueError(f"points {other} and {name} share {pt.table} address {addr}")


def _check_point(name: str, pt: Point) -> None:
    """One point: the right kind of table for its direction, and a shape Modbus can address."""
    if name in REQUEST_POINTS and pt.table in READ_ONLY_TABLES:
        raise ValueError(f"request point {name} must be a coil or holding register, not {pt.table}")
    if name in STATUS_POINTS and pt.table not in ("holding", "input"):
        raise ValueError(f"{name} must be a holding or input register written by the PLC, not {pt.table}")
    if name not in REQUEST_POINTS | STATUS_POINTS and pt.table not in READ_ONLY_TABLES:
        raise ValueError(f"point {name} is read from the PLC and must be a discrete or input, not {pt.table}")
    if pt.table in BIT_TABLES and pt.words != 1:
        raise ValueError(f"point {name} is a {pt.table} bit and cannot have {pt.words} words")
    if pt.address + pt.words - 1 > 0xFFFF:
        raise ValueError(f"point {name} at {pt.table} {pt.address} with {pt.words} words runs past address 65535")
