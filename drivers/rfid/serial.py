"""Serial transport for line readers: pyserial opens and configures the port, the fd is read
non-blocking through the event loop (`loop.add_reader`), so nothing blocks the loop."""

from __future__ import annotations

import asyncio
import os
from typing import Self

import serial

from drivers.errors import LinkLost

READ_CHUNK = 4096
QUEUE_CHUNKS = 256


class SerialTransport:
    """An open serial port; `read()` returns the next chunk or raises LinkLost (unplug, EIO)."""

    def __init__(self, port: str, baudrate: int, *, device: str) -> None:
        self.port, self.baudrate, self.device = port, baudrate, device
        self._ser: serial.Serial | None = None
        self._q: asyncio.Queue[bytes | Exception] = asyncio.Queue(QUEUE_CHUNKS)
        self.overflows = 0

    async def __aenter__(self) -> Self:
        try:
            # exclusive=True is only an advisory lock; dsrdtr/rtscts off.
            self._ser = serial.Serial(self.port, self.baudrate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise LinkLost(f"reader {self.device} could not open {self.port} at {self.baudrate} baud: {e}",
                           device=self.device) from e
        asyncio.get_running_loop().add_reader(self._ser.fileno(), self._on_readable)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and close the port."""
        if self._ser is not None:
            asyncio.get_running_loop().remove_reader(self._ser.fileno())
            self._ser.close()
            self._ser = None

    def _on_readable(self) -> None:
        assert self._ser is not None
        try:
            data: bytes | Exception = os.read(self._ser.fileno(), READ_CHUNK)
            if not data:
                data = LinkLost(f"reader {self.device} port {self.port} closed", device=self.device)
        except OSError as e:
            data = LinkLost(f"reader {self.device} lost port {self.port}: {e}", device=self.device)
        if isinstance(data, Exception):
            asyncio.get_running_loop().remove_reader(self._ser.fileno())
        try:
            self._q.put_nowait(data)
        except asyncio.QueueFull:
            self.overflows += 1

    async def read(self) -> bytes:
        """Next chunk of bytes."""
        item = await self._q.get()
        if isinstance(item, Exception):
            raise item
        return item
