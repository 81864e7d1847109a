"""Station PLC: narrow interface (`Plc`), domain values and the `open_plc` factory.

`kind = "sim"` starts the simulator's Modbus server in-process on a free 127.0.0.1 port (or, with
`sim.transport = "rtu"`, as Modbus RTU on a pseudo-terminal pair) and connects the real Modbus
driver to it; the simulator is reachable as `plc.sim` (tests, twin).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from drivers.plc.config import PlcConfig, Point
from drivers.plc.modbus import ModbusPlc
from drivers.plc.sim import SimServer
from drivers.plc.state import (
    BeltMoved,
    EyeEdge,
    Light,
    LinkChanged,
    LinkFault,
    Plc,
    PlcEvent,
    PlcState,
    SafetyStatus,
)

__all__ = ["BeltMoved", "EyeEdge", "Light", "LinkChanged", "LinkFault", "ModbusPlc", "Plc", "PlcConfig",
           "PlcEvent", "PlcState", "Point", "SafetyStatus", "SimServer", "open_plc"]


@asynccontextmanager
async def open_plc(cfg: PlcConfig, name: str) -> AsyncIterator[ModbusPlc]:
    """Open the configured PLC (or start its simulator and connect to it) for the block's duration."""
    if cfg.kind != "sim":
        async with ModbusPlc(cfg, name) as plc:
            yield plc
        return
    rtu = cfg.sim.transport == "rtu"
    async with SimServer(cfg, rtu=rtu) as sim:
        link = {"kind": "modbus-rtu", "serial_port": sim.serial_port} if rtu else \
            {"kind": "modbus-tcp", "host": "127.0.0.1", "port": sim.port}
        real = cfg.model_copy(update=link)
        async with ModbusPlc(real, name) as plc:
            plc.sim = sim
            yield plc
