"""Fixed e-seal reader on a serial line (protocol ES1, drivers/seal/codec.py), read through the event loop.

The port is opened with drivers.rfid.serial's transport (non-blocking, an unplug is LinkLost);
every valid line refreshes its seal on the board, a malformed one is counted and logged (1st,
2nd, 4th ...), and the reader keeps reading. A lost port drops every seal and is reopened every
`reconnect_delay_ms`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from drivers.errors import LinkLost
from drivers.rfid.serial import SerialTransport
from drivers.seal.codec import SealLineDecoder
from drivers.seal.config import SerialSealConfig
from drivers.seal.state import RejectLog, SealBoard, SealEvent, SealReaderTask

if TYPE_CHECKING:
    from drivers.seal.sim import SerialSealSim

log = structlog.get_logger()


class SerialSealReader(SealReaderTask):
    """An ES1 seal reader on a serial port; async context manager running one read task."""

    def __init__(self, cfg: SerialSealConfig, name: str, port: str | None = None) -> None:
        super().__init__(name)
        self.cfg = cfg
        self.port = port or cfg.port
        self.decoder = SealLineDecoder()
        self.malformed = RejectLog(name, self.decoder.rejects)
        self.board = SealBoard(name, cfg.removal_after_ms / 1000)
        self.link_ok, self.link_reason = False, f"seal reader {name} has not opened {self.port} yet"
        self.sim: SerialSealSim | None = None

    @property
    def rejects(self) -> dict[str, int]:
        """Malformed lines by reason."""
        return dict(self.decoder.rejects)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with SerialTransport(self.port, self.cfg.baudrate, device=self.name) as transport:
                    self._link(True, "")
                    await self._session(transport)
            except LinkLost as exc:
                self._emit(self.board.drop_all("link_lost", loop.time()))
                self._link(False, str(exc))
            await asyncio.sleep(self.cfg.reconnect_delay_ms / 1000)

    async def _session(self, transport: SerialTransport) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout_at(self.board.next_removal()):
                    chunk = await transport.read()
            except TimeoutError:
                chunk = b""
            now = loop.time()
            self._chunk(chunk, now)
            self._emit(self.board.silent(now))

    def _chunk(self, chunk: bytes, now: float) -> None:
        for report in self.decoder.feed(chunk):
            self._emit(self.board.report(report.heard(self.name, now)))
        self.malformed.check(self.decoder.last_error)

    def _emit(self, events: list[SealEvent]) -> None:
        for event in events:
            self._events.emit(event)

    def _link(self, ok: bool, reason: str) -> None:
        if (ok, reason) != (self.link_ok, self.link_reason):
            (log.info if ok else log.warning)("seal.link", reader=self.name, ok=ok, reason=reason)
        self.link_ok, self.link_reason = ok, reason

