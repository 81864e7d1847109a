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
from typing import Any

import structlog

from drivers.errors import DriverError
from edge.config import StationConfig
from models.errors import ModelError

log = structlog.get_logger()

SAFE_IO_TIMEOUT_S = 2.0


def is_twin(cfg: StationConfig) -> bool:
    """True when every configured device is a simulator."""
    d = cfg.devices
    kinds = [x.kind for x in (d.plc, d.scanner, d.source) if x is not None] + [r.kind for r in d.readers.values()]
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
                         if r.kind == "sim" else r for n, r in d.readers.items()}
    return cfg.model_copy(update={"devices": d.model_copy(update=update)})


@dataclass
class DiagStation:
    """Opened devices by role, what could not be opened, and the loaded detector."""

    cfg: StationConfig
    twin: bool
    plc: Any = None
    scanner: Any = None
    source: Any = None
    readers: dict[str, Any] = field(default_factory=dict)
    detector: Any = None
    problems: dict[str, str] = field(default_factory=dict)
    twin_item: int | None = None
    baseline_path: Path | None = None
    reference_tag: str | None = None

    @property
    def emulator(self) -> Any:
        return getattr(self.scanner, "emulator", None)

    @property
    def name(self) -> str:
        return self.cfg.station.id

    async def open(self, stack: AsyncExitStack, open_timeout_s: float = 10.0) -> None:
        """Open every configured device on `stack`; a device that fails is recorded, not fatal."""
        from drivers.plc import open_plc
        from drivers.retrofit import open_source
        from drivers.rfid import open_reader
        from drivers.xray import open_scanner

        d, sid = self.cfg.devices, self.name
        if d.plc is not None:
            self.plc = await self._enter(stack, "plc", open_plc(d.plc, f"{sid}/plc"), open_timeout_s)
        if d.scanner is not None:
            self.scanner = await self._enter(stack, "scanner", open_scanner(d.scanner, f"{sid}/scanner"),
                                             open_timeout_s)
        if d.source is not None:
            self.source = await self._enter(stack, "source", open_source(d.source, f"{sid}/source"),
                                            open_timeout_s)
        for name, rcfg in d.readers.items():
            reader = await self._enter(stack, f"reader {name}", open_reader(rcfg, f"{sid}/{name}"), open_timeout_s)
            if reader is not None:
                self.readers[name] = reader

    async def _enter(self, stack: AsyncExitStack, role: str, manager: Any, timeout_s: float) -> Any:
        try:
            async with asyncio.timeout(timeout_s):
                return await stack.enter_async_context(manager)
        except (DriverError, OSError, TimeoutError) as exc:
            self.problems[role] = str(exc) or f"did not open within {timeout_s:g} s"
            log.warning("diag.device_not_opened", device=role, error=self.problems[role])
            return None

    async def load_model(self) -> None:
        """Verify and load the station's model off the event loop; a failure is recorded."""
        from models.cli import default_model_dir
        from models.runtime import load_detector

        m = self.cfg.model
        try:
            model_dir = m.dir if m.dir is not None else default_model_dir()
            self.detector = await asyncio.to_thread(load_detector, model_dir, intra_op_threads=m.threads,
                                                    providers=list(m.providers), thresholds=m.thresholds or None)
        except ModelError as exc:
            self.problems["model"] = str(exc)

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
