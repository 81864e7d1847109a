"""Server-sent events from the station's event bus."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Awaitable, Callable

from edge.events import Event

KEEPALIVE_S = 15.0

# Turns a bus event into (sse event name, payload), or None to skip it for this subscriber.
Mapper = Callable[[Event], Awaitable[tuple[str, dict[str, Any]] | None]]


def frame(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


async def stream(bus: Any, mapper: Mapper, stopping: asyncio.Event,
                 still_allowed: Callable[[], Awaitable[bool]] | None = None) -> AsyncIterator[str]:
    """Frames for every mapped event until the client leaves, the app stops or the session ends."""
    loop = asyncio.get_running_loop()
    checked = loop.time()
    with bus.subscribe() as sub:
        yield frame("hello", {"dropped": 0})
        while not stopping.is_set():
            event = None
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    event = await sub.get()
            except TimeoutError:
                pass
            if still_allowed is not None and loop.time() - checked >= KEEPALIVE_S:
                checked = loop.time()
                if not await still_allowed():
                    yield frame("signed_out", {})
                    return
            if event is None:
                yield ": keepalive\n\n"
                continue
            mapped = await mapper(event)
            if mapped is not None:
                yield frame(*mapped)
            if sub.dropped:
                yield frame("dropped", {"count": sub.dropped})
                sub.dropped = 0
