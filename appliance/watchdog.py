"""Liveness: device tasks report progress; WATCHDOG=1 goes out only while all of them do."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from appliance import sdnotify

log = structlog.get_logger()


@dataclass
class Progress:
    """Last progress time per named task; `stalled()` names the tasks silent for too long."""

    stall_after_s: float = 10.0
    _last: dict[str, float] = field(default_factory=dict)

    def register(self, name: str) -> None:
        self._last[name] = time.monotonic()

    def beat(self, name: str) -> None:
        self._last[name] = time.monotonic()

    def stalled(self, now: float | None = None) -> list[str]:
        now = time.monotonic() if now is None else now
        return sorted(n for n, t in self._last.items() if now - t > self.stall_after_s)


async def follow_turns(progress: Progress, name: str, turns: Callable[[], Awaitable[int]], period_s: float) -> None:
    """Beat `name` whenever the counter `turns()` has moved since the last look.

    Liveness means "the task's loop turns" (a driver's poll count), not "something happened": an
    idle station, with no item and a belt stopped, is alive.
    """
    progress.register(name)
    last: int | None = None
    while True:
        count = await turns()
        if count != last:
            progress.beat(name)
            last = count
        await asyncio.sleep(period_s)


class Stalls(Protocol):
    """What a watchdog asks: the tasks silent for too long (a Progress, or a process's stations together)."""

    def stalled(self) -> list[str]: ...


async def watchdog(progress: Stalls, period_s: float, socket_path: str | None = None) -> None:
    """Send WATCHDOG=1 each period while the loop runs and no task is stalled."""
    reported: list[str] = []
    while True:
        await asyncio.sleep(period_s)
        stalled = progress.stalled()
        if stalled != reported:
            log.error("watchdog.stalled", tasks=stalled) if stalled else log.info("watchdog.recovered")
            reported = stalled
        if not stalled:
            sdnotify.notify("WATCHDOG=1", socket_path=socket_path)
