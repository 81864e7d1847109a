"""The station under test: its devices opened from the config, the model, and the safe state.

In twin mode (every device of kind "sim") the simulators run without random traffic: a
technician runs diagnostics with the lane closed, and the twin's hand places what is needed.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from drivers.errors import DriverError
from edge.config import StationConfig
from edge.devices import OPEN_S, Devices, open_devices
from models.errors import ModelError

if TYPE_CHECKING:
    from drivers.camera import CameraBase
    from drivers.plc.modbus import ModbusPlc
    from drivers.retrofit import ImageSource
    from drivers.rfid import Em4100SerialReader
    from drivers.rfid.llrp import LlrpReader
    from drivers.xray import Scanner
    from models.runtime import Detector

log = structlog.get_logger()

SAFE_IO_TIMEOUT_S = 2.0


def is_twin(cfg: StationConfig) -> bool:
    """True when every configured device is a simulator."""
    d = cfg.devices
    kinds = [x.kind for x in (d.plc, d.scanner, d.source) if x is not None] + \
        ["sim" if getattr(r, "sim", None) is not None and r.kind == "llrp" else r.kind for r in d.readers.values()] + \
        [c.kind for c in d.cameras.values()]
    return bool(kinds) and all(k.startswith("sim") for k in kinds)


def quiet_twin(cfg: StationConfig) -> StationConfig:
    """The config with the simulators' own traffic (auto items and vehicles, scheduled tags) off."""
    d = cfg.devices
    update: dict[str, object] = {}
    if d.plc is not None and d.plc.kind == "sim":
        sim = d.plc.sim.model_copy(update={
            "conveyor": d.plc.sim.conveyor.model_copy(update={"auto_items": False}),
            "gantry": d.plc.sim.gantry.model_copy(update={"auto_vehicles": False})})
        update["plc"] = d.plc.model_copy(update={"sim": sim})
    update["readers"] = {n: r.model_copy(update={"sim": r.sim.model_copy(update={"schedule": ()})})
                         if r.sim is not None and (r.kind == "sim" or r.kind == "llrp") else r
                         for n, r in d.readers.items()}
    return cfg.model_copy(update={"devices": d.model_copy(update=update)})


@dataclass
class DiagStation:
    """The devices as `edge run` opens them (edge.devices.open_devices), what could not be opened, the detector."""

    cfg: StationConfig
    twin: bool
    devices: Devices = field(default_factory=Devices)
    detector: Detector | None = None
    model_problem: str = ""
    twin_item: int | None = None
    baseline_path: Path | None = None
    reference_tag: str | None = None

    @property
    def plc(self) -> ModbusPlc | None:
        return self.devices.plc

    @property
    def scanner(self) -> Scanner | None:
        return self.devices.scanner

    @property
    def source(self) -> ImageSource | None:
        return self.devices.source

    @property
    def readers(self) -> dict[str, Em4100SerialReader | LlrpReader]:
        return self.devices.readers

    @property
    def cameras(self) -> dict[str, CameraBase]:
        return self.devices.cameras

    @property
    def problems(self) -> dict[str, str]:
        """Why each device (by its station name: plc, scanner, source, reader:NAME) or the model is missing."""
        model = {"model": self.model_problem} if self.model_problem else {}
        return {**self.devices.not_opened, **model}

    @property
    def emulator(self) -> Any:
        return getattr(self.scanner, "emulator", None)

    @property
    def name(self) -> str:
        return self.cfg.station.id

    async def open(self, stack: AsyncExitStack, open_timeout_s: float = OPEN_S) -> None:
        """Open every configured device on `stack` as the daemon does; a device that fails is recorded."""
        self.devices = await open_devices(stack, self.cfg.devices, self.name, open_timeout_s)
        for role, why in self.devices.not_opened.items():
            log.warning("diag.device_not_opened", device=role, error=why)

    async def load_model(self) -> None:
        """Verify and load the station's model as the daemon does; a failure is recorded."""
        from edge.detector import open_detector, station_facts

        try:
            self.detector = await open_detector(self.cfg.model, station_facts(self.cfg))
        except ModelError as exc:
            self.model_problem = str(exc)

    async def make_safe(self) -> list[str]:
        """Request the PLC model's safe state (drivers.plc.config.SAFE_STATES); disarm the controller.

        Every request has its own I/O timeout; what could not be confirmed is returned (and logged)."""
        plc = self.plc
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if plc is not None:
            steps += [(req.says, functools.partial(plc.request_safe, req)) for req in plc.safe_state]
        if self.scanner is not None:
            steps.append(("controller disarm", self.scanner.disarm))
        bound = SAFE_IO_TIMEOUT_S if plc is None else SAFE_IO_TIMEOUT_S + plc.cfg.readback_timeout_ms / 1000
        failed: list[str] = []
        for what, call in steps:
            try:
                async with asyncio.timeout(bound):
                    await call()
            except (DriverError, TimeoutError) as exc:
                failed.append(f"{what}: {exc or f'no answer within {bound:g} s'}")
        if failed:
            log.warning("diag.safe_state_unconfirmed", station=self.name, failed=failed)
        return failed
