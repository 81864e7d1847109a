"""Acquisitions: how a scan reaches the inspector, whole or line block by line block."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from models.scan import Scan


class WholeScan:
    """A scan that arrives complete (retrofit file drop, video capture)."""

    def __init__(self, scan: Scan) -> None:
        self._scan = scan

    async def blocks(self) -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        yield self._scan.high, self._scan.low

    def result(self) -> Scan:
        return self._scan


class LineScan:
    """A line scanner's stream (drivers.xray.ScanStream): blocks as lines arrive."""

    def __init__(self, stream) -> None:
        self._stream = stream

    async def blocks(self) -> AsyncIterator[tuple[np.ndarray, np.ndarray]]:
        async for block in self._stream:
            yield block.high, block.low

    def result(self) -> Scan:
        return self._stream.result()
