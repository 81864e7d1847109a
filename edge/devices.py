"""Opening the station's devices from config, and their states as the screen shows them.

`open_devices` is the one opener, used by `edge run` and `edge diag` alike, under the same names
("plc", "scanner", "source", "reader:NAME", "camera:NAME"). Each device is opened through its package's `open_*`
factory, which picks the real driver or the simulator by `kind`; nothing here knows the difference.
A device that cannot be opened at start makes the station start degraded (items go to manual), not
fail; `Devices.not_opened` says why.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from drivers.errors import DriverError
from edge.config import DevicesSection

if TYPE_CHECKING:
    from drivers.plc.modbus import ModbusPlc
    from drivers.retrofit import ImageSource
    from drivers.rfid import Em4100SerialReader
    from drivers.rfid.llrp import LlrpReader
    from drivers.camera import CameraBase
    from drivers.seal import LlrpSealReader, SealReaderConfig, SerialSealReader
    from drivers.xray import Scanner

log = structlog.get_logger()

State = Literal["ok", "degraded", "lost"]
READER_OPEN_S = 2.0
"""How long start-up waits for a reader's port (or LLRP session) to open before showing it lost (it keeps trying)."""
PLC_LINK_S = 2.0
"""How long start-up waits for the PLC's link (its heartbeat seen to move) before showing it lost (it keeps trying)."""
OPEN_S = 10.0
"""How long opening one device may take before it counts as not opened."""


@dataclass
class Devices:
    """The opened devices by role, and the last known state of each."""

    plc: ModbusPlc | None = None
    scanner: Scanner | None = None
    source: ImageSource | None = None
    readers: dict[str, Em4100SerialReader | LlrpReader] = field(default_factory=dict)
    cameras: dict[str, CameraBase] = field(default_factory=dict)
    seals: dict[str, SerialSealReader | LlrpSealReader] = field(default_factory=dict)
    not_opened: dict[str, str] = field(default_factory=dict)  # name -> why it could not be opened at start
    _states: dict[str, dict[str, str]] = field(default_factory=dict)

    def opened_plc(self) -> ModbusPlc:
        """The PLC a flow drives; one that could not be opened at start ends the flow (the supervisor retries)."""
        if self.plc is None:
            why = self.not_opened.get("plc", "none is configured")
            raise DriverError(f"the station's PLC could not be opened when it started: {why}", device="plc")
        return self.plc

    def mark(self, name: str, state: State, detail: str = "") -> None:
        """Record a device's state; log only when it changes."""
        previous = self._states.get(name)
        current = {"state": state, "detail": detail}
        if previous != current:
            self._states[name] = current
            logger = log.info if state == "ok" else log.warning
            logger("device.state", device=name, state=state, detail=detail)

    def degrade(self, name: str, detail: str) -> None:
        """Mark a device degraded, unless it is lost already (a lost link says more than its consequences)."""
        if self._states.get(name, {}).get("state") != "lost":
            self.mark(name, "degraded", detail)

    def states(self) -> dict[str, dict[str, Any]]:
        """Each device's state and detail; a reader's also carries its decoder rejects by reason (an LLRP
        reader's malformed messages, and its reconnects)."""
        states: dict[str, dict[str, Any]] = dict(self._states)
        for name, reader in self.readers.items():
            key = f"reader:{name}"
            if key in states:
                states[key] = {**states[key], "rejects": dict(reader.decoder.stats.rejects)}
                if hasattr(reader, "reconnects"):
                    states[key]["reconnects"] = reader.reconnects
        for name, camera in self.cameras.items():
            key = f"camera:{name}"
            if key in states:
                states[key] = {**states[key], "bad_frames": dict(camera.bad_frames), "reconnects": camera.reconnects}
        for name, seals in self.seals.items():
            link = {"state": "ok", "detail": ""} if seals.link_ok else {"state": "lost", "detail": seals.link_reason}
            states[f"seal:{name}"] = {**link, "rejects": seals.rejects}
        return states


async def open_devices(stack: AsyncExitStack, cfg: DevicesSection, station: str,
                       open_timeout_s: float = OPEN_S) -> Devices:
    """Open every configured device of `station` on `stack`; each ends in a defined state (ok or lost)."""
    from drivers.camera import open_camera
    from drivers.plc import open_plc
    from drivers.retrofit import open_source
    from drivers.rfid import open_reader
    from drivers.seal import open_seal_reader
    from drivers.xray import open_scanner

    devices = Devices()
    if cfg.plc is not None:
        devices.plc = await _open(stack, devices, "plc", open_plc(cfg.plc, f"{station}/plc"), open_timeout_s)
        if devices.plc is not None:
            await _mark_plc_link(devices, devices.plc)
    if cfg.scanner is not None:
        devices.scanner = await _open(stack, devices, "scanner", open_scanner(cfg.scanner, f"{station}/scanner"),
                                      open_timeout_s)
        if devices.scanner is not None:
            await _follow_scanner_link(devices, devices.scanner, cfg.scanner.ready_timeout_ms / 1000)
    if cfg.source is not None:
        devices.source = await _open(stack, devices, "source", open_source(cfg.source, f"{station}/source"),
                                     open_timeout_s)
        if devices.source is not None and hasattr(devices.source, "on_health"):  # a drop folder that went away
            devices.source.on_health = lambda state, detail: devices.mark("source", state, detail)
    for name, reader_cfg in cfg.readers.items():
        reader = await _open(stack, devices, f"reader:{name}", open_reader(reader_cfg, f"{station}/{name}"),
                             open_timeout_s)
        if reader is not None:
            devices.readers[name] = reader
            await _follow_reader(devices, f"reader:{name}", reader)
    for name, camera_cfg in cfg.cameras.items():
        camera = await _open(stack, devices, f"camera:{name}", open_camera(camera_cfg, f"{station}/{name}"),
                             open_timeout_s)
        if camera is not None:
            devices.cameras[name] = camera
            _follow_camera(devices, f"camera:{name}", camera)
    for name, seal_cfg in cfg.seals.items():
        seals = await _open(stack, devices, f"seal:{name}",
                            open_seal_reader(seal_cfg, f"{station}/{name}", _shared_reader(devices, seal_cfg)),
                            open_timeout_s)
        if seals is not None:
            devices.seals[name] = seals
    return devices


async def _mark_plc_link(devices: Devices, plc: ModbusPlc) -> None:
    """The PLC's link once it is up, or as it stands after PLC_LINK_S. A Modbus client opens with no PLC behind it
    (or one whose program is stopped: its heartbeat must be seen to move), so the open alone said ok until the
    flow read its first state; the flow marks the link from then on (its LinkChanged events)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PLC_LINK_S
    try:
        async with asyncio.timeout(PLC_LINK_S):
            state = await plc.read_state()
            while not state.link_ok and loop.time() < deadline - 0.05:
                await asyncio.sleep(0.05)
                state = await plc.read_state()
    except TimeoutError:
        devices.mark("plc", "lost", f"the PLC driver finished no poll within {PLC_LINK_S:g} s of opening")
        return
    devices.mark("plc", "ok" if state.link_ok else "lost", state.link_reason)


def _follow_camera(devices: Devices, key: str, camera: CameraBase) -> None:
    """Keep the camera's state current (a lost stream shows degraded while it reconnects)."""
    camera.on_health = lambda state, detail: devices.mark(key, state, detail)
    devices.mark(key, camera.health.state, camera.health.detail)


def _shared_reader(devices: Devices, cfg: SealReaderConfig) -> LlrpReader | None:
    """The station's UHF reader a seal-llrp reader names (None: it has its own, or that reader did not open)."""
    from drivers.rfid.llrp import LlrpReader
    from drivers.seal import LlrpSealConfig

    if isinstance(cfg, LlrpSealConfig) and isinstance(cfg.reader, str):
        reader = devices.readers.get(cfg.reader)
        return reader if isinstance(reader, LlrpReader) else None
    return None


async def _follow_reader(devices: Devices, key: str, reader: Any) -> None:
    """Wait (bounded) for the reader's port to open, then keep its state current (lost, degraded, ok)."""
    reader.on_health = lambda state, detail: devices.mark(key, state, detail)
    deadline = asyncio.get_running_loop().time() + READER_OPEN_S
    while not reader.link_ok and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    devices.mark(key, reader.health.state, reader.health.detail)


async def _follow_scanner_link(devices: Devices, scanner: Scanner, ready_timeout_s: float) -> None:
    """Wait (bounded) for the controller's first session, then keep the screen's state current."""
    scanner.on_link_change = lambda up, reason: devices.mark("scanner", "ok" if up else "lost", reason)
    deadline = asyncio.get_running_loop().time() + ready_timeout_s
    while not scanner.link_up and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    if not scanner.link_up:
        devices.mark("scanner", "lost", f"no firmware session within {ready_timeout_s:.1f} s of start")


async def _open(stack: AsyncExitStack, devices: Devices, name: str, manager: Any, timeout_s: float) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            device = await stack.enter_async_context(manager)
    except (DriverError, OSError, TimeoutError) as exc:
        why = str(exc) or f"{name} did not open within {timeout_s:g} s"
        devices.not_opened[name] = why
        devices.mark(name, "lost", why)
        return None
    devices.mark(name, "ok")
    return device
