"""In-process publish/subscribe of station events (decided inspections, health changes).

Each subscriber gets its own bounded queue; a subscriber too slow to keep up loses its oldest
events and the loss is counted on it (`dropped`), never blocking the publisher.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass(frozen=True)
class Event:
    topic: str  # "inspection", "review", "health", "alarm"
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    queue: asyncio.Queue[Event]
    dropped: int = 0

    async def get(self) -> Event:
        return await self.queue.get()


@dataclass
class EventBus:
    maxsize: int = 256
    _subs: set[Subscription] = field(default_factory=set)

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        event = Event(topic, data)
        for sub in self._subs:
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    @contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        sub = Subscription(asyncio.Queue(self.maxsize))
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
