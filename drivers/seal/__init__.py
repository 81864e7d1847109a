"""Electronic seals (e-seals, e-locks): each seal's number and state through one adapter per vendor family.

    serial.py   a fixed reader on a serial line speaking ES1 (codec.py; framed, CRC-checked, versioned)
    llrp.py     seals that are UHF tags with their state in user memory (memory.py), read over LLRP
    sim.py      a simulator for each: seals scheduled in and out of range, events (opened, tampered)

Every adapter gives `SealSeen` / `SealGone` events (state.py) from `events()`; malformed messages
are counted by reason (`rejects`) and never stop the reader. `open_seal_reader` opens the
configured one, or starts its simulator for `seal-serial-sim` and for a seal-llrp reader with a
`[reader.sim]` table (reachable as `reader.sim`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from drivers.errors import DriverError
from drivers.rfid.llrp import LlrpReader, open_llrp_reader
from drivers.seal.config import LlrpSealConfig, SealReaderConfig, SerialSealConfig
from drivers.seal.llrp import LlrpSealReader
from drivers.seal.serial import SerialSealReader
from drivers.seal.sim import LlrpSealSim, SerialSealSim
from drivers.seal.state import SealEvent, SealGone, SealReport, SealSeen

__all__ = ["LlrpSealConfig", "LlrpSealReader", "SealEvent", "SealGone", "SealReader", "SealReaderConfig",
           "SealReport", "SealSeen", "SerialSealConfig", "SerialSealReader", "open_seal_reader"]


class SealReader(Protocol):
    """Any e-seal reader: a stream of seal events, and its malformed messages by reason."""

    name: str

    @property
    def link_ok(self) -> bool: ...
    @property
    def link_reason(self) -> str: ...
    @property
    def rejects(self) -> dict[str, int]: ...
    def events(self) -> AsyncIterator[SealEvent]: ...


@asynccontextmanager
async def seals_on(cfg: LlrpSealConfig, name: str, uhf: LlrpReader) -> AsyncIterator[LlrpSealReader]:
    """The seals among an open LLRP reader's tags (and, on a simulated reader, the seals of `cfg.sim`)."""
    async with LlrpSealReader(cfg, name, uhf) as seals:
        if uhf.sim is None:
            yield seals
            return
        async with LlrpSealSim(cfg.sim, uhf.sim) as sim:
            seals.sim = sim
            yield seals


@asynccontextmanager
async def open_seal_reader(cfg: SealReaderConfig, name: str,
                           shared: LlrpReader | None = None) -> AsyncIterator[SerialSealReader | LlrpSealReader]:
    """Open the configured seal reader (or its simulator and the real adapter on it) for the block's duration;
    a seal-llrp reader that names a station reader uses that one (`shared`)."""
    if isinstance(cfg, LlrpSealConfig):
        if isinstance(cfg.reader, str):
            if shared is None:
                raise DriverError(f"seal reader {name} names tag reader {cfg.reader!r}, which is not open", device=name)
            async with seals_on(cfg, name, shared) as seals:
                yield seals
            return
        async with open_llrp_reader(cfg.reader, name) as uhf, seals_on(cfg, name, uhf) as on_own:
            yield on_own
        return
    if cfg.kind == "seal-serial":
        async with SerialSealReader(cfg, name) as reader:
            yield reader
        return
    async with SerialSealSim(cfg.sim) as serial_sim, SerialSealReader(cfg, name, port=serial_sim.port) as reader:
        reader.sim = serial_sim
        yield reader
