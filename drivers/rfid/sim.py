"""Simulated EM4100 reader writing frames into a pseudo-terminal.

The reader side opens `sim.port`, a symlink (like /dev/serial/by-id/...) to the pty's slave;
`unplug()` closes the pty (the reader gets EIO or end of file) and removes the symlink, and
`replug()` makes a new pty, usually under another /dev/pts name, and links it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import tty
from collections.abc import Coroutine
from typing import Any, Self

from drivers.rfid.codec import encode_frame
from drivers.rfid.config import RfidSim


class Em4100Sim:
    """A 125 kHz reader: repeats a tag's frame every `repeat_ms` while the tag is presented."""

    def __init__(self, cfg: RfidSim) -> None:
        self.cfg = cfg
        self._dir = tempfile.TemporaryDirectory(prefix="rfid-sim-")
        self.port = os.path.join(self._dir.name, "usb-EM4100_Reader-if00")
        self._fds: tuple[int, int] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.frames_sent = 0
        self.bytes_dropped = 0

    async def __aenter__(self) -> Self:
        self.replug()
        for p in self.cfg.schedule:
            self._spawn(self._later(p.at_s, p.tag_hex, p.seconds))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.unplug()
        self._dir.cleanup()

    def replug(self) -> None:
        """Attach a fresh pty and point the by-id style link at it."""
        self.unplug()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._fds = (master, slave)
        tmp = self.port + ".new"
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.port)

    def unplug(self) -> None:
        """Close the pty and remove the link, as udev removes /dev/serial/by-id: the reader's next read fails.

        Without removing the link, a reopen could reach whatever pty next gets the old /dev/pts number.
        """
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.port)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (garbage, split frames); dropped while unplugged or full."""
        if self._fds is None:
            self.bytes_dropped += len(data)
            return
        try:
            os.write(self._fds[0], data)
        except (BlockingIOError, OSError):
            self.bytes_dropped += len(data)

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

