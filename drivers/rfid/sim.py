"""Simulated EM4100 reader writing frames into a pseudo-terminal (drivers.pty: `port`, `unplug()`, `replug()`)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Self

from drivers.pty import PtyPort
from drivers.rfid.codec import encode_frame
from drivers.rfid.config import RfidSim


class Em4100Sim:
    """A 125 kHz reader: repeats a tag's frame every `repeat_ms` while the tag is presented."""

    def __init__(self, cfg: RfidSim) -> None:
        self.cfg = cfg
        self.pty = PtyPort("usb-EM4100_Reader-if00", "rfid-sim-")
        self.port = self.pty.port
        self._tasks: set[asyncio.Task[None]] = set()
        self.frames_sent = 0

    async def __aenter__(self) -> Self:
        self.replug()
        for p in self.cfg.schedule:
            self._spawn(self._later(p.at_s, p.tag_hex, p.seconds))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.pty.close()

    @property
    def bytes_dropped(self) -> int:
        return self.pty.bytes_dropped

    def replug(self) -> None:
        """Attach a fresh pty (drivers.pty)."""
        self.pty.replug()

    def unplug(self) -> None:
        """Close the pty and remove its link: the reader's next read fails."""
        self.pty.unplug()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (garbage, split frames); dropped while unplugged or full."""
        self.pty.send_raw(data)

    def present(self, tag_hex: str, seconds: float) -> asyncio.Task[None]:
        """Hold a tag to the reader for `seconds` (frames repeat every repeat_ms)."""
        return self._spawn(self._hold(bytes.fromhex(tag_hex), seconds))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name="rfid-sim")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _later(self, at_s: float, tag_hex: str, seconds: float) -> None:
        await asyncio.sleep(at_s)
        await self._hold(bytes.fromhex(tag_hex), seconds)

    async def _hold(self, raw: bytes, seconds: float) -> None:
        frame = encode_frame(raw, crlf=self.cfg.crlf)
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            self.send_raw(frame)
            self.frames_sent += 1
            await asyncio.sleep(self.cfg.repeat_ms / 1000)

