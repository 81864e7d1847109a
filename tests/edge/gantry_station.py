"""What the gantry lane tests share: a gantry flow on the real PLC simulator (pymodbus) and the firmware
emulator's scanner, served by the station screen's app as the daemon serves it.

The detector is the one seam replaced: `DarkBlockEngine` finds a block of transmission under 5 % in
the scan it is fed (a suspect), nothing in a scan without one (clear), so each vehicle's verdict
follows from the scan the emulator streams for it.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import numpy as np

from central_sync.schema import ItemKind, ModelRef
from drivers.plc import PlcConfig, open_plc
from drivers.plc.config import SEPARATOR
from drivers.xray import ScannerConfig, open_scanner
from edge import audit
from edge.auth import add_user
from edge.context import StationContext
from edge.config import DevicesSection
from edge.devices import Devices, open_devices
from edge.events import EventBus
from edge.history import VehicleHistory
from edge.metrics import StationMetrics
from edge.stations import InspectorParts
from edge.stations.gantry import GantryFlow, separator_eye
from edge.stations.identify import TagWindow
from edge.stations.lane import FILE_NAME, Lane
from edge.store import Store, StoreWriter
from edge.web.app import create_app, ensure_schema
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import DEMO_USERS
from appliance.watchdog import Progress
from models.detection import Detection
from models.scan import Scan, save_scan
from polling import until

OFFICER, SUPERVISOR, TECHNICIAN = ((b, p) for b, _, _, p in DEMO_USERS)
DARK = 3000  # transmission under this is "contraband" to DarkBlockEngine
# A short lane driven fast: entry loop 5 m, barrier 30 m (room for two 4 m cars queueing), exits 33 m.
LANE = {"vehicle_speed_m_s": 10.0, "vehicle_length_m": (4.0, 4.0), "barrier_m": 30.0, "eye_exit_m": 33.0,
        "eye_search_bay_m": 33.0, "barrier_actuation_s": 0.1}
# Its loops' debounce: cars 2 m apart at 10 m/s leave a loop free 0.2 s; a 4 m car occupies a loop 0.4 s.
LOOP_GAP_S, LOOP_OCCUPIED_S = 0.1, 0.1
# The scanner link goes stale after the driver's default second without a frame: on a loaded 2-core CI machine the
# test process's loop was once held 0.44 s (over the 0.4 s this rig had), the scan aborted and a clear car went to
# `manual`. No gantry test waits for the scanner link to go stale (the link-loss tests mute the PLC).
SCANNER = dict(heartbeat_ms=50, stale_ms=1000, reconnect_ms=50, ack_timeout_ms=100, scan_idle_timeout_ms=2000,
               ready_timeout_ms=2000)
# The emulator's line FIFO: at 2000 lines/s its default 512 lines overflow once the test process's loop is held 0.26 s
# during a scan (a loaded 2-core CI machine holds it longer), and the scan ends incomplete: a clear car goes to
# `manual` (the legitimate fail-safe) and a test waiting for it to leave waits in vain. The rig's FIFO never overflows;
# tests/drivers/test_xray_scanner.py tests the overflow itself.
FIFO_LINES = 10**6


def vehicle_scan(suspect: bool) -> Scan:
    """A 120-line scan; a suspect one holds a dark block."""
    img = np.full((120, 64), 50000, np.uint16)
    img[20:100, 10:54] = 30000
    if suspect:
        img[40:60, 20:30] = 1000
    return Scan(high=img, low=(img // 2).astype(np.uint16), meta={"source": "test"})


class _DarkBlocks:
    def __init__(self) -> None:
        self.darkest = 65535

    async def feed(self, high: np.ndarray, low: np.ndarray) -> None:
        self.darkest = min(self.darkest, int(high.min()))

    async def finish(self, scan: Scan, deadline: float) -> list[Detection]:
        return [Detection("drugs", 0.9, (20.0, 40.0, 30.0, 60.0))] if self.darkest < DARK else []

    async def aclose(self) -> None:
        return None


class DarkBlockEngine:
    """The test's detector: a scan with a block darker than DARK is a 'drugs' detection."""

    model = ModelRef(name="dark-block", version="1", sha256="0" * 64)
    classes = ("drugs",)

    def open_stream(self, station: str, item_kind: str) -> _DarkBlocks:
        return _DarkBlocks()


@dataclass
class Gantry:
    """A running gantry: its flow, the simulated lane (`sim`), its store and its screen."""

    flow: GantryFlow
    plc: object
    store: Store
    app: object
    stack: AsyncExitStack
    barrier_seen_open: list[float] = field(default_factory=list)  # sim times the barrier was open

    @property
    def sim(self):  # noqa: ANN201 - drivers.plc.sim.GantryModel
        return self.plc.sim.model

    async def client(self, who: tuple[str, str]) -> httpx.AsyncClient:
        client = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://station"))
        r = await client.post("/api/signin", json={"badge": who[0], "pin": who[1]})
        assert r.status_code == 200, r.text
        return client

    def records(self) -> list:
        """The inspection records, oldest first."""
        return [self.store.get(row[0]) for row in self.store.conn.execute("SELECT id FROM inspections ORDER BY seq")]

    def lane_audit(self) -> list[dict]:
        return [e.as_dict() for e in audit.entries(self.store.conn) if e.action.startswith("lane.")][::-1]

    async def polls(self, n: int) -> None:
        """Let the PLC driver poll n more times (a count of loop turns, not a duration)."""
        start = (await self.plc.read_state()).seq
        await until(self.plc.read_state, f"{n} more polls", check=lambda st: st.seq >= start + n, timeout=60)

    async def vehicles_decided(self, n: int) -> list:
        return await until(self.records, f"{n} vehicles decided", check=lambda rs: len(rs) >= n, timeout=60)


async def _watch_barrier(g: Gantry) -> None:
    """Note every moment the simulated barrier stands open (whatever asked for it)."""
    while True:
        if g.sim.barrier_pos > 0:
            g.barrier_seen_open.append(g.sim.t)
        await asyncio.sleep(0.005)


def _parts(writer: StoreWriter, events: EventBus, model: bool) -> InspectorParts:
    """Without a model every vehicle is `manual` (model_unavailable)."""
    engine = DarkBlockEngine() if model else None
    return InspectorParts("g-1", "1", 10_000.0, engine, writer, events, StationMetrics())


def plc_config(readback_timeout_ms: int = 3000, separator: bool = False) -> PlcConfig:
    """The simulated gantry PLC (with `separator`, its map has the vehicle separator at discrete input 11)."""
    registers = {SEPARATOR: {"table": "discrete", "address": 11}} if separator else {}
    return PlcConfig(kind="sim", model="gantry", readback_timeout_ms=readback_timeout_ms, sim={"gantry": LANE},
                     registers=registers)


async def gantry_flow(stack: AsyncExitStack, tmp_path: Path, scans: list[Scan], writer: StoreWriter,
                      events: EventBus, queue: int = 1, readback_timeout_ms: int = 3000, plc: object | None = None,
                      model: bool = True, station: str = "g-1", history: VehicleHistory | None = None,
                      readers: dict[str, Any] | None = None, loop_gap_s: float = LOOP_GAP_S,
                      seals: dict[str, Any] | None = None, separator: bool = False) -> GantryFlow:
    """A gantry flow of `queue` places whose scanner streams `scans` in turn (on `plc` when given, else on one
    with the vehicle separator when `separator`), whose tag readers are `readers` and whose seal readers `seals`
    ([devices.readers], [devices.seals] tables), not yet running."""
    folder = tmp_path / "scans"
    folder.mkdir(exist_ok=True)
    save_scan(scans[0], folder / "first.npz")
    scanner_cfg = ScannerConfig(kind="sim", sim={"scan_dir": folder, "line_rate": 2000, "boot_ms": 50,
                                                 "fifo_lines": FIFO_LINES}, **SCANNER)
    if plc is None:
        plc = await stack.enter_async_context(open_plc(plc_config(readback_timeout_ms, separator), f"{station}/plc"))
    scanner = await stack.enter_async_context(open_scanner(scanner_cfg, f"{station}/scanner"))
    scanner.emulator.scans = list(scans)
    devices = Devices(plc=plc, scanner=scanner)
    if readers or seals:
        opened = await open_devices(stack, DevicesSection.model_validate({"readers": readers or {}, "seals": seals or {}}),
                                    station)
        devices.readers, devices.seals = opened.readers, opened.seals
    await until(plc.read_state, "the PLC link is up", check=lambda st: st.link_ok)
    return GantryFlow(devices, _parts(writer, events, model), Progress(), ItemKind.VEHICLE, TagWindow(devices, events),
                      Lane(queue, writer.store.data_dir / FILE_NAME), history=history, loop_gap_s=loop_gap_s,
                      loop_occupied_s=LOOP_OCCUPIED_S, separator=separator_eye(plc.cfg.eyes))


async def running_gantry(station: Any, tmp_path: Path, scans: list[Scan]) -> tuple[AsyncExitStack, GantryFlow]:
    """A gantry flow of one place running for a station screen (StationHarness; call it on the screen's
    loop, as the daemon runs its flows): the exit stack that stops it, and the flow."""
    stack = AsyncExitStack()
    flow = await gantry_flow(stack, tmp_path, scans, station.writer, station.events, station=station.ctx.station_id)
    task = asyncio.create_task(flow.run(), name="flow")
    stack.callback(task.cancel)
    return stack, flow


@asynccontextmanager
async def gantry(tmp_path: Path, scans: list[Scan], queue: int = 1, readback_timeout_ms: int = 3000,
                 plc: object | None = None, model: bool = True,
                 history: VehicleHistory | None = None, readers: dict[str, Any] | None = None,
                 loop_gap_s: float = LOOP_GAP_S, seals: dict[str, Any] | None = None,
                 separator: bool = False) -> AsyncIterator[Gantry]:
    """A running gantry lane and its screen (see gantry_flow)."""
    async with AsyncExitStack() as stack:
        store = Store(tmp_path / "data", station="g-1").open()
        stack.callback(store.close)
        ensure_schema(store)
        for badge, name, role, pin in DEMO_USERS:
            add_user(store, badge, name, role, pin)
        writer = await stack.enter_async_context(StoreWriter(store))
        events = EventBus()
        flow = await gantry_flow(stack, tmp_path, scans, writer, events, queue, readback_timeout_ms, plc, model,
                                 history=history, readers=readers, loop_gap_s=loop_gap_s, seals=seals,
                                 separator=separator)
        ctx = StationContext("g-1", "gantry", "1", 10_000.0, writer, events,
                             lambda: {"devices": flow.devices.states(), "budget_misses": 0}, lane_control=flow,
                             panels=("lane",))
        g = Gantry(flow, flow.devices.plc, store, create_app(ctx, WebConfig(tip=TipConfig(enabled=False))), stack)
        tasks = [asyncio.create_task(flow.run(), name="flow"), asyncio.create_task(_watch_barrier(g))]
        try:
            yield g
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
