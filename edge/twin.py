"""`edge twin`: the station's digital twin, serving the endpoints a station config names.

For every device configured with a real kind, the matching simulator listens where the real
device would be: the PLC simulator on the configured Modbus TCP port (or a pty linked at the RTU
port path), the controller firmware emulator and the EM4100 reader simulator on ptys linked at
the configured serial paths, the LLRP reader simulator on the configured local TCP port, the e-seal
reader simulator (serial ES1) on a pty linked at its port path, and the vendor machine writing files
into the drop folder. Then
`edge run` with the unchanged config drives the twin exactly as it would drive the station.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from pathlib import Path

import structlog

from drivers.plc.config import PlcConfig
from drivers.plc.sim import SimServer
from drivers.retrofit.sim import drop_scans
from drivers.rfid.config import LlrpConfig, LlrpSim
from drivers.rfid.llrp.sim import LlrpSim as LlrpReaderSim
from drivers.rfid.sim import Em4100Sim
from drivers.seal.config import SerialSealConfig
from drivers.seal.sim import SerialSealSim
from edge.config import StationConfig
from edge.errors import EdgeError
from firmware_bridge.emulator import FirmwareEmulator
from models.scan import load_scan

log = structlog.get_logger()

LOOPBACK = ("127.0.0.1", "localhost")


class TwinError(EdgeError):
    """The config names an endpoint the twin cannot serve."""


async def serve_twin(config: StationConfig, stack: AsyncExitStack, scan_dir: Path) -> list[str]:
    """Start a simulator for each device of a real kind; returns what is served, one line each."""
    served: list[str] = []
    devices = config.devices
    scans = [load_scan(p) for p in sorted(scan_dir.glob("*.npz"))]
    if not scans:
        raise TwinError(f"the twin needs .npz scans to stream and {scan_dir} holds none")
    if devices.plc is not None and devices.plc.kind != "sim":
        served.append(await _plc(devices.plc, stack))
    if devices.scanner is not None and devices.scanner.kind == "firmware-serial":
        Path(devices.scanner.port).parent.mkdir(parents=True, exist_ok=True)
        emulator = FirmwareEmulator(scans, line_rate=devices.scanner.line_rate or 300.0,
                                    link=devices.scanner.port)
        await stack.enter_async_context(emulator)
        served.append(f"X-ray controller firmware emulator on {devices.scanner.port}")
    for name, reader in devices.readers.items():
        if reader.kind == "em4100-serial":
            sim = await stack.enter_async_context(Em4100Sim(reader.sim))
            _link(sim.port, reader.port, stack)
            served.append(f"EM4100 reader '{name}' on {reader.port}")
        elif isinstance(reader, LlrpConfig) and reader.sim is None:
            served.append(await _llrp(name, reader, stack))
    for name, seals in devices.seals.items():
        if isinstance(seals, SerialSealConfig) and seals.kind == "seal-serial":
            seal_sim = await stack.enter_async_context(SerialSealSim(seals.sim))
            _link(seal_sim.port, seals.port, stack)
            served.append(f"e-seal reader '{name}' on {seals.port}")
    if devices.source is not None and devices.source.kind == "filedrop" and devices.source.folder is not None:
        task = asyncio.create_task(drop_scans(devices.source.folder, scans, "npz", 4.0, repeat=True))
        stack.callback(task.cancel)
        served.append(f"vendor X-ray machine writing scans into {devices.source.folder}")
    return served


async def _plc(cfg: PlcConfig, stack: AsyncExitStack) -> str:
    if cfg.kind == "modbus-tcp":
        if cfg.host not in LOOPBACK:
            raise TwinError(f"the twin serves only on 127.0.0.1, and the PLC is configured at {cfg.host}")
        await stack.enter_async_context(SimServer(cfg, port=cfg.port))
        return f"PLC simulator ({cfg.model}) on Modbus TCP 127.0.0.1:{cfg.port}"
    server = await stack.enter_async_context(SimServer(cfg, rtu=True))
    _link(server.serial_port, cfg.serial_port, stack)
    return f"PLC simulator ({cfg.model}) on Modbus RTU at {cfg.serial_port}"


async def _llrp(name: str, cfg: LlrpConfig, stack: AsyncExitStack) -> str:
    """A simulated LLRP reader where the config expects the real one (loopback only), with its antennas."""
    if cfg.host not in LOOPBACK:
        raise TwinError(f"the twin serves only on 127.0.0.1, and LLRP reader '{name}' is configured at {cfg.host}")
    sim = LlrpReaderSim(LlrpSim(antennas=max(cfg.antennas)), host="127.0.0.1", port=cfg.port)
    await stack.enter_async_context(sim)
    return f"LLRP reader '{name}' ({max(cfg.antennas)} antennas) on TCP 127.0.0.1:{cfg.port}"


def _link(target: str, path: str, stack: AsyncExitStack) -> None:
    """Point the configured device path at the simulator's pty; refuse to replace a real device."""
    link = Path(path)
    if link.exists() and not link.is_symlink():
        raise TwinError(f"{path} exists and is not a link: the twin will not stand in for a real device")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(link.name + ".twin")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    tmp.replace(link)
    stack.callback(link.unlink, missing_ok=True)


async def run_twin(config: StationConfig, scan_dir: Path, ready: asyncio.Event | None = None) -> None:
    """Serve the twin until cancelled (Ctrl-C)."""
    async with AsyncExitStack() as stack:
        served = await serve_twin(config, stack, scan_dir)
        if not served:
            raise TwinError("every device in this config is already kind 'sim': edge run needs no twin")
        for line in served:
            print(f"twin: {line}", flush=True)
        log.info("twin.ready", station=config.station.id, served=len(served))
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
