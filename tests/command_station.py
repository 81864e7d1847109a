"""A station wired for hub commands as the daemon wires it (edge/daemon.py): its publisher, its command
receiver, a real detector's thresholds, the TIP engine and the simulated conveyor's devices, on `stack`.

    station = await command_station(stack, work, broker.port, package)   # work/hub.pub: the pinned key
    station.engine.detector.thresholds, station.tip.cfg.rate, station.rx.processor.settings()

Used by the control room's command tests and bench/bench_commands.py.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from central_sync.config import SyncConfig
from edge import daemon
from edge.commands import CommandReceiver, CommandsConfig
from edge.config import StationConfig, load_config
from edge.detector import Engine
from edge.devices import open_devices
from edge.store import Store, StoreWriter
from edge.tip import TipEngine
from edge.web.config import TipConfig
from models.pool import InferencePool
from models.runtime import load_detector

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CommandStation:
    config: StationConfig
    engine: Engine
    tip: TipEngine
    rx: CommandReceiver


async def command_station(stack: AsyncExitStack, work: Path, broker_port: int, package: Path,
                          status_period_s: float = 0.5, tip_rate: float = 0.03) -> CommandStation:
    example = load_config(ROOT / "examples" / "conveyor.toml")
    config = example.model_copy(update={
        "sync": SyncConfig(port=broker_port, status_period_s=status_period_s),
        "commands": CommandsConfig(hub_public_key=work / "hub.pub"),
        "station": example.station.model_copy(update={"data_dir": work / "station"})})
    station = config.station.id
    pool = await stack.enter_async_context(InferencePool(1, 4))
    writer = await stack.enter_async_context(StoreWriter(Store(config.station.data_dir, station=station)))
    engine = Engine(load_detector(package, overlap=32), pool)
    tip = TipEngine(TipConfig(rate=tip_rate), threats={})
    devices = await open_devices(stack, config.devices, station)
    status_parts: list = []
    await daemon._open_publisher(stack, config, writer, status_parts)
    rx = await daemon._open_command_receiver(stack, config, writer, engine, tip, devices, pool)
    assert rx is not None, "the command receiver did not open"
    status_parts.append(lambda: {"settings": rx.processor.settings()})
    return CommandStation(config, engine, tip, rx)
