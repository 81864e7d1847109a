"""UHF RFID readers over LLRP 1.0.1: codec (pure), asyncio client, TCP simulator, TID binding.

`open_llrp_reader` connects to the configured reader, or, for a config with a `[sim]` table,
starts the simulator on a free local port and connects to it (reachable as `reader.sim`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from drivers.rfid.config import LlrpConfig
from drivers.rfid.llrp.client import LlrpReader, UhfRead
from drivers.rfid.llrp.sim import LlrpSim

__all__ = ["LlrpReader", "LlrpSim", "UhfRead", "open_llrp_reader"]


@asynccontextmanager
async def open_llrp_reader(cfg: LlrpConfig, name: str) -> AsyncIterator[LlrpReader]:
    """Open the configured LLRP reader (or its simulator and a client of it) for the block's duration."""
    if cfg.sim is None:
        async with LlrpReader(cfg, name) as reader:
            yield reader
        return
    async with LlrpSim(cfg.sim) as sim, LlrpReader(cfg, name, host=sim.host, port=sim.port) as reader:
        reader.sim = sim
        yield reader
