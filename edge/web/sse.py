"""Server-sent events from the station's event bus.

Frames that carry an `id` let a browser that reconnects (network blip, daemon restart) send
Last-Event-ID; the route replays what it missed from the store before going live again.
A stream ends within a second of `stopping` being set, so that the server can shut down.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, Awaitable, Callable

from edge.events import Event, EventBus

KEEPALIVE_S = 15.0
POLL_S = 1.0  # how often a waiting stream looks at `stopping`
RETRY_MS = 1000  # the browser's reconnection delay

# Turns a bus event into (sse event name, payload, frame id or None), or None to skip it.
Mapped = tuple[str, dict[str, Any], int | None] | None
Mapper = Callable[[Event], Awaitable[Mapped]]


def frame(name: str, data: dict[str, Any], frame_id: int | None = None) -> str:
    head = f"id: {frame_id}\n" if frame_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


async def stream(bus: EventBus, mapper: Mapper, stopping: asyncio.Event,
                 still_allowed: Callable[[], Awaitable[bool]] | None = None,
                 replay: Callable[[], Awaitable[list[Event]]] | None = None) -> AsyncIterator[str]:
    """Frames for replayed then live events until the client leaves, the app stops or the session ends."""
    loop = asyncio.get_running_loop()
    checked = sent = loop.time()
    with bus.subscribe() as sub:  # subscribed before the replay is read: nothing falls in between
        yield f"retry: {RETRY_MS}\n" + frame("hello", {})
        for missed in await replay() if replay else []:
            if (mapped := await mapper(missed)) is not None:
                yield frame(*mapped)
        while not stopping.is_set():
            event: Event | None
            try:
                async with asyncio.timeout(POLL_S):
                    event = await sub.get()
            except TimeoutError:
                event = None
            now = loop.time()
            if still_allowed is not None and now - checked >= KEEPALIVE_S:
                checked = now
                if not await still_allowed():
                    yield frame("signed_out", {})
                    return
            if event is None:
                if now - sent >= KEEPALIVE_S:
                    sent = now
                    yield ": keepalive\n\n"
                continue
            if (mapped := await mapper(event)) is not None:
                sent = now
                yield frame(*mapped)
            if sub.dropped:
                yield frame("dropped", {"count": sub.dropped})
                sub.dropped = 0
