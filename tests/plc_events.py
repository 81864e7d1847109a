"""The events a PLC driver reports while a block runs, collected into a list (tests of the drivers)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

E = TypeVar("E")


@contextlib.asynccontextmanager
async def plc_events(plc: Any, kind: type[E], keep: Callable[[E], bool] = lambda ev: True) -> AsyncIterator[list[E]]:
    """Every event of `kind` that `keep` accepts, from `plc.events()`, appended as it comes while the block runs."""
    events: list[E] = []

    async def collect() -> None:
        async for ev in plc.events():
            if isinstance(ev, kind) and keep(ev):
                events.append(ev)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)  # subscribed before the block runs
    try:
        yield events
    finally:
        task.cancel()
