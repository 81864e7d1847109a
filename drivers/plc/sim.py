"""PLC simulator: physical models of a conveyor and a gantry behind a real pymodbus server.

The models are steppable in simulated time (`model.step(dt)`) for deterministic tests and are
stepped against the loop clock by `SimServer` for the demo. Safety logic lives in the model, as it
would in the PLC: motion and X-ray outputs need a closed e-stop chain, closed interlocks, a live
host heartbeat, and a fresh rising edge of their request after any trip (a reset never restarts).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseDeviceContext
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from drivers.errors import DeviceRefused
from drivers.plc.config import SAFE_STATES, ConveyorSim, GantrySim, PlcConfig, PlcSim, Point
from drivers.plc.ptylink import PtyLink
from drivers.simlane import LaneSim, describe, lane

WRITABLE = frozenset(
    {"belt_run_request", "divert_manual_request", "xray_permit_request", "barrier_open_request",
     "search_bay_request", "host_heartbeat", "light_request", "entry_light_request"}
)
LATCHED = frozenset({"belt_run_request", "xray_permit_request", "barrier_open_request", "search_bay_request"})
GREEN = 3  # drivers.plc.config.LIGHT_CODES["green"]
RED = 1
MAX_STEP_S = 0.05
FC_TABLE = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 3: "holding", 6: "holding",
            16: "holding", 22: "holding", 23: "holding", 4: "input"}


class ReadOnlyPoint(DeviceRefused):
    """A write aimed at a point the PLC does not accept writes to (the server answers ILLEGAL_ADDRESS)."""

    def __init__(self, point: str) -> None:
        super().__init__(f"simulated PLC refused a write to {point}, which is not a request point",
                         device="plc-sim", code=int(ExcCodes.ILLEGAL_ADDRESS))
        self.point = point


@dataclass
class SimItem:
    """An item (bag, parcel or vehicle) on the simulated lane; `lead_m` is its front edge."""

    id: int
    lead_m: float
    length_m: float
    fixed: bool = False  # a hand or test object held in a beam: does not move
    route: str = "lane"  # a vehicle's way out: "lane" (over the barrier) or "search_bay" once it turned
    coupling: tuple[float, float] | None = None  # a truck's drawbar to its trailer, metres behind its front:
    # a loop reads nothing over it, a beam at drawbar height (the vehicle separator) is broken by it
    couplings: tuple[tuple[float, float], ...] = ()  # a road train's further drawbars (to its second trailer...)

    def covers(self, x: float) -> bool:
        """True when the item blocks a beam (or a vehicle loop) at position x."""
        behind = self.lead_m - x
        drawbars = ((self.coupling,) if self.coupling is not None else ()) + self.couplings
        if any(start < behind < end for start, end in drawbars):
            return False
        return self.spans(x)

    def spans(self, x: float) -> bool:
        """True when the item, its coupling included, is at position x."""
        return self.lead_m - self.length_m <= x <= self.lead_m


def safe_requests(model: str) -> dict[str, int]:
    """The host requests as the model's PLC holds them at power-up: its safe state."""
    return {r.point: r.value for r in SAFE_STATES[model]}


@dataclass
class PlcModel:
    """Safety chain, heartbeats and latched requests common to both station models."""

    p: PlcSim
    t: float = 0.0
    estop_pressed: bool = False
    estop_latched: bool = False
    interlocks: dict[str, bool] = field(default_factory=lambda: {"door": True, "curtain": True})
    requests: dict[str, int] = field(default_factory=dict)
    enabled: set[str] = field(default_factory=set)
    plc_heartbeat: int = 0
    host_hb_seen_t: float | None = None
    heartbeat_frozen: bool = False
    _hb_acc: float = 0.0

    def press_estop(self) -> None:
        """Open the e-stop chain; it stays latched until released and reset."""
        self.estop_pressed = self.estop_latched = True
        self._trip()

    def release_estop(self) -> None:
        """Twist the mushroom button back; the chain stays latched until reset."""
        self.estop_pressed = False

    def reset(self) -> None:
        """Press the reset button: clears the latch, never restarts anything."""
        if not self.estop_pressed:
            self.estop_latched = False

    def set_interlock(self, name: str, closed: bool) -> None:
        """Open or close a door/curtain interlock."""
        self.interlocks[name] = closed
        if not closed:
            self._trip()

    @property
    def estop_ok(self) -> bool:
        return not (self.estop_pressed or self.estop_latched)

    @property
    def interlocks_ok(self) -> bool:
        return all(self.interlocks.values())

    @property
    def watchdog_ok(self) -> bool:
        seen = self.host_hb_seen_t
        return seen is not None and self.t - seen <= self.p.host_watchdog_ms / 1000

    @property
    def healthy(self) -> bool:
        return self.estop_ok and self.interlocks_ok and self.watchdog_ok

    def active(self, name: str) -> bool:
        """A latched output is on only while healthy and enabled by a rising edge."""
        return self.healthy and name in self.enabled

    def _trip(self) -> None:
        self.enabled.clear()

    def write(self, name: str, value: int) -> None:
        """Apply a host write; only request points are writable."""
        if name not in WRITABLE:
            raise ReadOnlyPoint(name)
        prev = self.requests.get(name, 0)
        self.requests[name] = value
        if name == "host_heartbeat" and value != prev:
            self.host_hb_seen_t = self.t
        if name in LATCHED:
            if value and not prev and self.healthy:
                self.enabled.add(name)
            elif not value:
                self.enabled.discard(name)

    def step(self, dt: float, elapsed: float | None = None) -> None:
        """Advance simulated time by dt seconds, the PLC's heartbeat by `elapsed` (default dt; `beat`)."""
        self.t += dt
        self.beat(dt if elapsed is None else elapsed)
        if not self.healthy:
            self._trip()
        self.step_physics(dt)

    def beat(self, elapsed: float) -> None:
        """Run the PLC's heartbeat counter for `elapsed` seconds: a PLC's own cycle keeps counting while a
        stalled host loop holds the simulated physics back."""
        self._hb_acc += elapsed
        period = self.p.plc_heartbeat_period_ms / 1000
        while self._hb_acc >= period:
            self._hb_acc -= period
            if not self.heartbeat_frozen:
                self.plc_heartbeat = (self.plc_heartbeat + 1) & 0xFFFF

    def step_physics(self, dt: float) -> None:
        """Move the station's objects (overridden)."""

    def safety_status(self) -> int:
        """The safety_status word: bit 0 e-stop ok, 1 interlocks ok, 2 host watchdog ok, 3 reset required."""
        reset_required = self.estop_latched and not self.estop_pressed
        return (int(self.estop_ok) | int(self.interlocks_ok) << 1 | int(self.watchdog_ok) << 2
                | int(reset_required) << 3)

    def values(self) -> dict[str, int]:
        """Every point's current value by name."""
        base = {
            "estop_ok": int(self.estop_ok),
            "interlocks_ok": int(self.interlocks_ok),
            "xray_permit": int(self.active("xray_permit_request")),
            "plc_heartbeat": self.plc_heartbeat,
            "safety_status": self.safety_status(),
        }
        return {**{n: self.requests.get(n, 0) for n in WRITABLE}, **base}


@dataclass
class ConveyorModel(PlcModel):
    """Belt with encoder, items, three photo-eyes and a divert gate (0 = pass, 1 = manual)."""

    requests: dict[str, int] = field(default_factory=lambda: safe_requests("conveyor"))
    c: ConveyorSim = field(default_factory=ConveyorSim)
    items: list[SimItem] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)
    belt_m: float = 0.0
    encoder_lost_m: float = 0.0  # belt travel the encoder did not count (it slipped, its cable was cut)
    encoder_stuck: bool = False  # fault injection: the encoder stops counting while the belt runs
    gate_pos: float = 1.0
    _next_id: int = 1
    _next_spawn_m: float = 0.0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.c.seed)

    @property
    def belt_running(self) -> bool:
        return self.active("belt_run_request")

    def add_item(self, length_m: float, lead_m: float = 0.0) -> int:
        """Put an item on the belt with its front edge at lead_m; returns its id."""
        item = SimItem(self._next_id, lead_m, length_m)
        self._next_id += 1
        self.items.append(item)
        return item.id

    def step_physics(self, dt: float) -> None:
        target = 1.0 if self.requests.get("divert_manual_request") or not self.watchdog_ok else 0.0
        rate = dt / self.c.divert_actuation_s if self.c.divert_actuation_s else 1.0
        self.gate_pos = min(max(self.gate_pos + max(-rate, min(rate, target - self.gate_pos)), 0.0), 1.0)
        if not self.belt_running:
            return
        dx = self.c.belt_speed_m_s * dt
        self.belt_m += dx
        if self.encoder_stuck:
            self.encoder_lost_m += dx
        self._spawn()
        gate = self.c.eye_divert_gate_m
        for item in self.items:
            if item.fixed:
                continue
            before = item.lead_m
            item.lead_m += dx
            if before < gate <= item.lead_m:
                self.outcomes[item.id] = self._gate_outcome()
        self.items = [i for i in self.items if i.lead_m - i.length_m <= self.c.belt_length_m]
        announce(self.c.lane, [i for i in self.items if i.covers(self.c.eye_tunnel_entry_m)])

    def _gate_outcome(self) -> str:
        return {1.0: "manual", 0.0: "pass"}.get(self.gate_pos, "jam")

    def _spawn(self) -> None:
        if self.c.auto_items and self.belt_m >= self._next_spawn_m:
            length = self._rng.uniform(*self.c.item_length_m)
            if self.c.lane is not None:
                length = describe(self.c.lane, self._next_id).length_m
            self.add_item(length)
            gap = max(self.c.item_gap_min_m, self._rng.expovariate(1 / self.c.item_gap_mean_m))
            self._next_spawn_m = self.belt_m + length + gap

    def eye(self, x: float) -> bool:
        return any(i.covers(x) for i in self.items)

    def values(self) -> dict[str, int]:
        counts = int((self.belt_m - self.encoder_lost_m) * self.c.encoder_counts_per_m) & 0xFFFFFFFF
        return {
            **super().values(),
            "belt_running": int(self.belt_running),
            "divert_manual": int(self.gate_pos >= 1.0),
            "divert_pass": int(self.gate_pos <= 0.0),
            "eye_tunnel_entry": int(self.eye(self.c.eye_tunnel_entry_m)),
            "eye_tunnel_exit": int(self.eye(self.c.eye_tunnel_exit_m)),
            "eye_divert_gate": int(self.eye(self.c.eye_divert_gate_m)),
            "encoder": counts,
        }


@dataclass
class GantryModel(PlcModel):
    """Vehicles on a lane, an entry light, an exit barrier and a search-bay gate (0 = closed, 1 = open),
    entry/exit/search-bay loops and the exit light.

    Vehicles never overlap: each keeps 2 m behind the one ahead, stops at the entry light's stop line
    while that light is not green, and at the barrier while neither the barrier nor the search-bay gate
    is open. The first vehicle at the barrier leaves over the exit loop when the barrier opens, or turns
    into the search bay (its own lane, its own loop) when the search-bay gate opens; one vehicle per
    opening request, and one vehicle past the entry light per change to green (the next one waits for
    the next green, as drivers do at a metering light). `outcomes` says which way each vehicle left and
    `passed` in what order. The vehicle separator's beam is broken along a vehicle and its coupling, clear
    between two vehicles (`separator_stuck` holds it broken, True, or clear, False, whatever passes; `entry_loop_stuck`
    holds the entry loop so). A vehicle in `tailgaters` follows the one ahead through the open barrier without an
    opening of its own (a driver who slips out behind a released vehicle)."""

    requests: dict[str, int] = field(default_factory=lambda: safe_requests("gantry"))
    g: GantrySim = field(default_factory=GantrySim)
    vehicles: list[SimItem] = field(default_factory=list)
    passed: list[int] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)
    turned_away: int = 0  # vehicles that found the approach full (auto vehicles only)
    barrier_pos: float = 0.0
    search_pos: float = 0.0
    separator_stuck: bool | None = None  # fault injection: the separator reads broken (True) or clear (False)
    entry_loop_stuck: bool | None = None  # fault injection: the entry loop reads blocked (True) or free (False)
    tailgaters: set[int] = field(default_factory=set)  # vehicles that drive through an open barrier ungranted
    _next_id: int = 1
    _grants: dict[str, bool] = field(default_factory=dict)  # gate request -> one vehicle may still pass
    _was_on: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.g.seed)

    def add_vehicle(self, length_m: float, lead_m: float = 0.0, coupling: tuple[float, float] | None = None,
                    couplings: tuple[tuple[float, float], ...] = ()) -> int:
        """Put a vehicle on the approach with its front at lead_m (a truck and trailer: `coupling` from and to, in
        metres behind its front; a road train: its further drawbars in `couplings`); returns its id."""
        self.vehicles.append(SimItem(self._next_id, lead_m, length_m, coupling=coupling, couplings=couplings))
        self._next_id += 1
        return self._next_id - 1

    def step_physics(self, dt: float) -> None:
        for req, on in (("barrier_open_request", self.active("barrier_open_request")),
                        ("search_bay_request", self.active("search_bay_request")), ("entry", self._entry_green())):
            if on and not self._was_on.get(req):
                self._grants[req] = True
            self._was_on[req] = on
        # The PLC keeps a gate open while a vehicle stands under it.
        self.barrier_pos = self._travel(self.barrier_pos, self.active("barrier_open_request")
                                        or self._under(self.g.barrier_m, "lane"), dt)
        self.search_pos = self._travel(self.search_pos, self.active("search_bay_request")
                                       or self._under(self.g.barrier_m, "search_bay"), dt)
        if self.g.auto_vehicles and self._rng.random() < self.g.vehicles_per_min / 60 * dt:
            self._arrive()
        self._drive(dt)
        end = max(self.g.eye_exit_m, self.g.eye_search_bay_m) + 1
        done = [v for v in self.vehicles if v.lead_m - v.length_m > end]
        self.passed.extend(v.id for v in done)
        self.outcomes.update({v.id: "exit" if v.route == "lane" else "search_bay" for v in done})
        self.vehicles = [v for v in self.vehicles if v not in done]
        announce(self.g.lane, [v for v in self.vehicles if v.covers(self.g.eye_entry_m)])

    def _travel(self, pos: float, wanted_open: bool, dt: float) -> float:
        """A gate's position after dt, moving towards open or closed at the actuation speed."""
        rate = dt / self.g.barrier_actuation_s if self.g.barrier_actuation_s else 1.0
        return min(max(pos + max(-rate, min(rate, float(wanted_open) - pos)), 0.0), 1.0)

    def _arrive(self) -> None:
        """A new vehicle joins the approach behind the last one (or turns away when the approach is full)."""
        waiting = [v for v in self.vehicles if v.lead_m <= self.g.entry_stop_m]
        if len(waiting) >= self.g.approach_max:
            self.turned_away += 1
            return
        last = min((v.lead_m - v.length_m for v in self.vehicles), default=0.0)
        length = self._rng.uniform(*self.g.vehicle_length_m)
        if self.g.lane is not None:
            length = describe(self.g.lane, self._next_id).length_m
        self.add_vehicle(length, lead_m=min(-5.0, last - 2.0))

    def _drive(self, dt: float) -> None:
        """Front vehicle first: each stops where the lights, the gates and the vehicle ahead say."""
        limit = float("inf")
        for v in sorted(self.vehicles, key=lambda v: -v.lead_m):
            if v.fixed:
                continue
            limit = min(limit, self._stop_line(v))
            v.lead_m = max(v.lead_m, min(v.lead_m + self.g.vehicle_speed_m_s * dt, limit))
            limit = v.lead_m - v.length_m - 2.0

    def _stop_line(self, v: SimItem) -> float:
        """Where vehicle v must stop now (inf: nowhere); a vehicle at the barrier turns into an open search bay."""
        if v.lead_m < self.g.entry_stop_m - 0.01:
            return self.g.entry_stop_m
        if v.lead_m <= self.g.entry_stop_m:
            if not (self._entry_green() and self._grants.pop("entry", False)):
                return self.g.entry_stop_m
            v.lead_m += 0.02  # past the line: it goes
        stop_at = self.g.barrier_m - 0.5
        if v.route != "lane" or v.lead_m > stop_at:
            return float("inf")
        if v.lead_m < stop_at - 0.01:
            return stop_at
        if self.barrier_pos >= 1.0 and (self._grants.pop("barrier_open_request", False) or v.id in self.tailgaters):
            v.lead_m += 0.02  # past the line: it goes
            return float("inf")
        if self.search_pos >= 1.0 and self._grants.pop("search_bay_request", False):
            v.route = "search_bay"
            return float("inf")
        return stop_at

    def _entry_green(self) -> bool:
        return self.requests.get("entry_light_request", RED) == GREEN and self.healthy

    def _under(self, x: float, route: str) -> bool:
        return any(v.covers(x) for v in self.vehicles if v.route == route)

    def loop(self, x: float) -> bool:
        return any(v.covers(x) for v in self.vehicles)

    def separator_broken(self) -> bool:
        if self.separator_stuck is not None:
            return self.separator_stuck
        return any(v.spans(self.g.vehicle_separator_m) for v in self.vehicles)

    def values(self) -> dict[str, int]:
        light = self.requests.get("light_request", 0) if self.healthy else RED
        entry = self.requests.get("entry_light_request", 0) if self.healthy else RED
        return {
            **super().values(),
            "barrier_open": int(self.barrier_pos >= 1.0),
            "barrier_closed": int(self.barrier_pos <= 0.0),
            "search_bay_open": int(self.search_pos >= 1.0),
            "search_bay_closed": int(self.search_pos <= 0.0),
            "eye_entry": int(self.loop(self.g.eye_entry_m) if self.entry_loop_stuck is None else self.entry_loop_stuck),
            "eye_exit": int(self._under(self.g.eye_exit_m, "lane")),
            "eye_search_bay": int(self._under(self.g.eye_search_bay_m, "search_bay")),
            "vehicle_separator": int(self.separator_broken()),
            "light": light,
            "entry_light": entry,
        }


def announce(cfg: LaneSim | None, at_entry: list[SimItem]) -> None:
    """Tell the simulated lane which items cover its entry eye now (drivers/simlane.py): they are inside."""
    if cfg is None:
        return
    shared = lane(cfg.name)
    covering = {i.id for i in at_entry if i.id > 0}  # not a technician's hand in the beam (edge diag: id -1)
    for number in [n for n in shared.inside if n not in covering]:
        shared.left(number)
    for number in sorted(covering - shared.inside.keys()):
        shared.entered(describe(cfg, number))


def make_model(cfg: PlcConfig) -> PlcModel:
    """The station model the config names."""
    if cfg.model == "conveyor":
        return ConveyorModel(p=cfg.sim, c=cfg.sim.conveyor)
    return GantryModel(p=cfg.sim, g=cfg.sim.gantry)


class RegisterImage(ModbusBaseDeviceContext):
    """Serves a model's points at the addresses of the register map; writes go through the model."""

    def __init__(self, model: PlcModel, registers: dict[str, Point], *, sparse: bool = False,
                 before_read: Callable[[], None] | None = None) -> None:
        self.model, self.sparse, self.before_read = model, sparse, before_read
        self.by_addr: dict[tuple[str, int], tuple[str, int]] = {}
        for name, pt in registers.items():
            for w in range(pt.words):
                self.by_addr[(pt.table, pt.address + w)] = (name, pt.words - 1 - w)

    def reset(self) -> None:
        """Nothing to reset: the model owns the state."""

    def getValues(self, func_code: int, address: int, count: int = 1) -> list[int] | list[bool] | ExcCodes:
        table = FC_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if self.sparse and any((table, a) not in self.by_addr for a in range(address, address + count)):
            return ExcCodes.ILLEGAL_ADDRESS
        if self.before_read is not None:
            self.before_read()
        vals = self.model.values()
        out = [self._word(vals, table, a) for a in range(address, address + count)]
        return [bool(v) for v in out] if table in ("coil", "discrete") else out

    def _word(self, vals: dict[str, int], table: str, addr: int) -> int:
        name, shift = self.by_addr.get((table, addr), ("", 0))
        return (vals.get(name, 0) >> (16 * shift)) & 0xFFFF

    def setValues(self, func_code: int, address: int, values: list[int] | list[bool]) -> None | ExcCodes:
        table = FC_TABLE.get(func_code)
        names: list[str] = []
        for i in range(len(values)):
            target = self.by_addr.get((table or "", address + i))
            if target is None or target[0] not in WRITABLE:
                return ExcCodes.ILLEGAL_ADDRESS
            names.append(target[0])
        for name, v in zip(names, values):
            self.model.write(name, int(v))
        return None


class MutableServerContext(ModbusServerContext):
    """Server context that can stop answering (fault injection): requests are dropped silently."""

    def __init__(self, device: RegisterImage) -> None:
        super().__init__(devices=device, single=True)
        self.muted = False

    def __getitem__(self, device_id: int) -> ModbusBaseDeviceContext:
        if self.muted:
            raise NoSuchIdException("muted")
        return super().__getitem__(device_id)


def _bound_port(server: ModbusTcpServer | ModbusSerialServer) -> int:
    """The TCP port a listening pymodbus server bound (its transport is then the asyncio.Server)."""
    listener = server.transport
    if not isinstance(listener, asyncio.Server):
        raise TypeError(f"pymodbus server transport is {type(listener).__name__}, not a listening asyncio.Server")
    port: int = listener.sockets[0].getsockname()[1]
    return port


class SimServer:
    """The simulated PLC served over TCP on a free 127.0.0.1 port or, with `rtu=True`, over RTU on
    a pty (the client opens `serial_port`); `realtime` steps it against the loop clock: its physics in steps of
    at most MAX_STEP_S (a stalled loop slows them down instead of letting items jump past eyes), its heartbeat
    counter on the clock itself, brought up to date before every read (a PLC's own cycle never waits for its
    host, so a host that stalled reads a heartbeat that moved on)."""

    def __init__(self, cfg: PlcConfig, *, realtime: bool = True, port: int = 0, rtu: bool = False) -> None:
        self.cfg = cfg
        self.model = make_model(cfg)
        self.context = MutableServerContext(RegisterImage(self.model, cfg.registers, sparse=cfg.sim.sparse,
                                                          before_read=self._beat if realtime else None))
        self._beaten: float | None = None  # the loop time the heartbeat has run to (realtime, once stepping)
        self.realtime, self.rtu = realtime, rtu
        self._port = port
        self.port = 0
        self.serial_port = ""
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._link: PtyLink | None = None
        self._stepper: asyncio.Task[None] | None = None

    def mute(self) -> None:
        """Stop answering requests (the PLC is silent; its host watchdog keeps running)."""
        self.context.muted = True

    def unmute(self) -> None:
        """Answer requests again."""
        self.context.muted = False

    async def __aenter__(self) -> Self:
        if self.rtu:
            self._link = await PtyLink().__aenter__()
            self._server = ModbusSerialServer(self.context, framer=FramerType.RTU, port=self._link.paths[0],
                                              baudrate=self.cfg.baudrate, ignore_missing_devices=True)
            self.serial_port = self._link.paths[1]
        else:
            self._server = ModbusTcpServer(self.context, address=("127.0.0.1", self._port),
                                           ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        if not self.rtu:
            self.port = _bound_port(self._server)
        if self.realtime:
            self._stepper = asyncio.create_task(self._run(), name="plc-sim-step")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._stepper:
            self._stepper.cancel()
            await asyncio.gather(self._stepper, return_exceptions=True)
        if self._server:
            await self._server.shutdown()
        if self._link:
            await self._link.__aexit__(None, None, None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = self._beaten = loop.time()
        while True:
            await asyncio.sleep(self.cfg.sim.step_ms / 1000)
            now = loop.time()
            self.model.step(min(now - last, MAX_STEP_S), now - self._beaten)
            last = self._beaten = now

    def _beat(self) -> None:
        """Run the heartbeat up to the loop's clock (before a read is answered)."""
        if self._beaten is not None:
            now = asyncio.get_running_loop().time()
            self.model.beat(now - self._beaten)
            self._beaten = now
