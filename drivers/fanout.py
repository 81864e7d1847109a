"""Device events to every subscriber: one bounded queue each, never blocking the driver.

A subscriber too slow to keep up loses events (counted on the device and logged), as the style
asks of every queue: the driver's poll loop must never wait for a consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger()
T = TypeVar("T")


class Fanout(Generic[T]):
    def __init__(self, device: str, dropped_event: str, maxsize: int) -> None:
        self.device, self.dropped_event, self.maxsize = device, dropped_event, maxsize
        self.dropped = 0
        self._queues: list[asyncio.Queue[T]] = []

    def emit(self, event: T) -> None:
        for queue in self._queues:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning(self.dropped_event, device=self.device, dropped=self.dropped)

    async def subscribe(self) -> AsyncIterator[T]:
        """Events from now on, for as long as the caller iterates."""
        queue: asyncio.Queue[T] = asyncio.Queue(self.maxsize)
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)
