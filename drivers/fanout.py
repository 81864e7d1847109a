"""Device events to every subscriber: one bounded queue each, never blocking the driver.

A subscriber too slow to keep up loses events (counted on the device and logged), as the style
asks of every queue: the driver's poll loop must never wait for a consumer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, Self, TypeVar

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


class EventDevice(Generic[T]):
    """A driver that runs one task (`_run`) while it is open and fans its events out to subscribers.

    Readers of every family (EM4100 serial, LLRP, e-seals) are this: `async with` opens and closes
    the task, `events()` subscribes from now on with a bounded queue.
    """

    task_prefix = "device"

    def __init__(self, name: str, dropped_event: str, queue: int) -> None:
        self.name = name
        self._events: Fanout[T] = Fanout(name, dropped_event, queue)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name=f"{self.task_prefix}-{self.name}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def events(self) -> AsyncIterator[T]:
        """The device's events from now on (bounded queue)."""
        async for event in self._events.subscribe():
            yield event

    async def _run(self) -> None:
        raise NotImplementedError
