"""Serial transport for line readers: pyserial opens and configures the port, the fd is read
non-blocking through the event loop (`loop.add_reader`), so nothing blocks the loop."""

from __future__ import annotations

import asyncio
import os
from typing import Self

import serial
import structlog

from drivers.errors import LinkLost

log = structlog.get_logger()

READ_CHUNK = 4096
QUEUE_CHUNKS = 256


class SerialTransport:
    """An open serial port; `read()` returns the next chunk or raises LinkLost (unplug, EIO)."""

    def __init__(self, port: str, baudrate: int, *, device: str) -> None:
        self.port, self.baudrate, self.device = port, baudrate, device
        self._ser: serial.Serial | None = None
        self._q: asyncio.Queue[bytes | Exception] = asyncio.Queue(QUEUE_CHUNKS)
        self.overflows = 0
        """Chunks dropped because QUEUE_CHUNKS were waiting to be decoded (logged at the 1st, 2nd, 4th ...)."""
        self._lost: LinkLost | None = None

    async def __aenter__(self) -> Self:
        try:
            # exclusive=True is only an advisory lock; dsrdtr/rtscts off.
            self._ser = serial.Serial(self.port, self.baudrate, timeout=0, exclusive=True)
        except (serial.SerialException, OSError) as e:
            raise LinkLost(f"reader {self.device} could not open {self.port} at {self.baudrate} baud: {e}",
                           device=self.device) from e
        probe = self._read_once(probe=True)  # a port that opens but cannot be read (EIO, hung up) is not back
        if isinstance(probe, LinkLost):
            self.close()
            raise probe
        if probe:
            self._q.put_nowait(probe)
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

    def _read_once(self, probe: bool = False) -> bytes | LinkLost | None:
        """What the port has now: bytes, None (nothing yet) or the loss.

        A raw tty (VMIN=0) reads b"" when it has nothing: that is end of file only after the fd
        was reported readable, not for the probe right after opening.
        """
        assert self._ser is not None
        try:
            data = os.read(self._ser.fileno(), READ_CHUNK)
        except BlockingIOError:
            return None
        except OSError as e:
            return LinkLost(f"reader {self.device} lost port {self.port}: {e}", device=self.device)
        if not data and probe:
            return None
        if not data:
            return LinkLost(f"reader {self.device} port {self.port} closed", device=self.device)
        return data

    def _on_readable(self) -> None:
        data = self._read_once()
        if data is None:
            return
        if isinstance(data, LinkLost):
            self._lost = data  # kept aside: a full queue must not swallow the loss
            if self._ser is not None:
                asyncio.get_running_loop().remove_reader(self._ser.fileno())
        try:
            self._q.put_nowait(data)
        except asyncio.QueueFull:
            if isinstance(data, bytes):
                self._overflow(data)

    def _overflow(self, data: bytes) -> None:
        self.overflows += 1
        if self.overflows & (self.overflows - 1) == 0:
            log.warning("rfid.serial_overflow", reader=self.device, port=self.port, dropped=self.overflows,
                        detail=f"reader {self.device} on {self.port} dropped {len(data)} bytes: {QUEUE_CHUNKS} "
                               f"chunks were waiting to be decoded ({self.overflows} chunks dropped so far)")

    async def read(self) -> bytes:
        """Next chunk of bytes; LinkLost once the chunks read before the loss are taken."""
        if self._q.empty() and self._lost is not None:
            raise self._lost
        item = await self._q.get()
        if isinstance(item, Exception):
            raise item
        return item
