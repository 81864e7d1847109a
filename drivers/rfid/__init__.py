"""Tag readers: the `TagReader` interface, its events, and the `open_reader` factory.

`kind = "sim"` starts a simulated EM4100 reader on a new pseudo-terminal and runs the real
serial reader on it; the simulator is reachable as `reader.sim`. `kind = "llrp"` opens a UHF
reader over LLRP (drivers/rfid/llrp), or its TCP simulator when the config has a `[sim]` table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from drivers.rfid.codec import Em4100Decoder, Em4100Tag, encode_frame
from drivers.rfid.config import LlrpConfig, Presentation, ReaderConfig, RfidConfig, RfidSim
from drivers.rfid.reader import (
    Em4100SerialReader,
    ReaderEvent,
    ReaderHealth,
    ReaderLink,
    TagId,
    TagRemoved,
    TagSeen,
)
from drivers.rfid.sim import Em4100Sim

if TYPE_CHECKING:
    from drivers.rfid.llrp import LlrpReader

__all__ = ["Em4100Decoder", "Em4100SerialReader", "Em4100Sim", "Em4100Tag", "LlrpConfig", "Presentation",
           "ReaderConfig",
           "ReaderEvent", "ReaderHealth", "ReaderLink", "RfidConfig", "RfidSim", "TagId", "TagReader",
           "TagRemoved", "TagSeen",
           "encode_frame", "open_reader"]


class TagReader(Protocol):
    """Any tag reader (125 kHz serial, UHF over LLRP): a stream of tag events."""

    name: str
    link_ok: bool
    health: ReaderHealth

    def events(self) -> AsyncIterator[ReaderEvent]: ...


@asynccontextmanager
async def open_reader(cfg: ReaderConfig, name: str) -> AsyncIterator[Em4100SerialReader | LlrpReader]:
    """Open the configured reader (or start its simulator and read it) for the block's duration."""
    if isinstance(cfg, LlrpConfig):
        from drivers.rfid.llrp import open_llrp_reader

        async with open_llrp_reader(cfg, name) as llrp:
            yield llrp
        return
    if cfg.kind != "sim":
        async with Em4100SerialReader(cfg, name) as reader:
            yield reader
        return
    async with Em4100Sim(cfg.sim) as sim, Em4100SerialReader(cfg, name, port=sim.port) as reader:
        reader.sim = sim
        yield reader
