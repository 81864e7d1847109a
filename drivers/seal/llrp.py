"""E-seals read over LLRP: UHF seal tags whose user memory holds their state (drivers/seal/memory.py).

The adapter follows an LLRP reader's tag reads (drivers.rfid.llrp, reading 16 words of user
memory): a read whose memory is a seal's becomes a report on the board; a tag that is not a seal
is ignored; a seal's memory that breaks the layout is counted and logged, and reading goes on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from drivers.rfid.llrp.client import UhfRead
from drivers.seal.config import LlrpSealConfig
from drivers.seal.errors import SealFormatError
from drivers.seal.memory import decode_memory
from drivers.seal.state import RejectLog, SealBoard, SealEvent, SealReaderTask

if TYPE_CHECKING:
    from drivers.rfid.llrp import LlrpReader
    from drivers.seal.sim import LlrpSealSim



class LlrpSealReader(SealReaderTask):
    """Seals among an LLRP reader's tags; async context manager running one task over the reader's reads."""

    def __init__(self, cfg: LlrpSealConfig, name: str, reader: LlrpReader) -> None:
        super().__init__(name)
        self.cfg, self.reader = cfg, reader
        self.malformed = RejectLog(name)
        self.board = SealBoard(name, cfg.removal_after_ms / 1000)
        self.tid_of: dict[str, str] = {}
        """The TID of each seal's tag (hex), as last read."""
        self.sim: LlrpSealSim | None = None

    @property
    def link_ok(self) -> bool:
        return self.reader.link_ok

    @property
    def link_reason(self) -> str:
        return self.reader.link_reason

    @property
    def rejects(self) -> dict[str, int]:
        """Malformed seal memories by reason."""
        return dict(self.malformed.rejects)

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._follow_reads(), name=f"seal-{self.name}-reads")
            tasks.create_task(self._sweep(), name=f"seal-{self.name}-removal")

    async def _follow_reads(self) -> None:
        async for read in self.reader.reads():
            self.read(read)

    async def _sweep(self) -> None:
        """Seals not heard for the removal time leave (a subscription is never cut by a time limit: that
        would end it)."""
        loop = asyncio.get_running_loop()
        while True:
            due = self.board.next_removal()
            await asyncio.sleep(self.board.removal_s if due is None else max(0.0, due - loop.time()))
            self._emit(self.board.silent(loop.time()))

    def read(self, read: UhfRead) -> None:
        """One tag read: a seal's report goes to the board; a malformed seal memory is counted."""
        if read.user is None:
            return
        try:
            report = decode_memory(bytes.fromhex(read.user))
        except SealFormatError as exc:
            self.malformed.count(exc.reason, f"seal tag TID {read.tid} at reader {self.reader.name}: {exc}")
            return
        if report is not None:
            if read.tid is not None:
                self.tid_of[report.seal_id] = read.tid
            self._emit(self.board.report(report.heard(self.name, read.t)))

    def _emit(self, events: list[SealEvent]) -> None:
        for event in events:
            self._events.emit(event)
