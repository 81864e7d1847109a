"""A null-modem cable made of two pseudo-terminals: bytes written to one end's path come out of
the other's. Lets a serial (RTU) server and client, which both open a path, talk in one process."""

from __future__ import annotations

import asyncio
import os
import tty
from typing import Self


class PtyLink:
    """Two pty pairs whose masters are relayed both ways through the event loop."""

    def __init__(self) -> None:
        self._pairs: list[tuple[int, int]] = []
        self.paths: tuple[str, str] = ("", "")
        self.bytes_relayed = 0

    async def __aenter__(self) -> Self:
        for _ in range(2):
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._pairs.append((master, slave))
        self.paths = (os.ttyname(self._pairs[0][1]), os.ttyname(self._pairs[1][1]))
        loop = asyncio.get_running_loop()
        (a, _), (b, _) = self._pairs
        loop.add_reader(a, self._relay, a, b)
        loop.add_reader(b, self._relay, b, a)
        return self

    async def __aexit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for master, slave in self._pairs:
            loop.remove_reader(master)
            os.close(master)
            os.close(slave)
        self._pairs = []

    def _relay(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
            os.write(dst, data)
            self.bytes_relayed += len(data)
        except (BlockingIOError, OSError):
            return
