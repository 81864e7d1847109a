"""Watching a PLC: wait for a state, collect events from the moment of subscription."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from drivers.plc import PlcEvent, PlcState

POLL_S = 0.005


async def wait_state(plc: Any, pred: Callable[[PlcState], bool], timeout_s: float) -> PlcState | None:
    """The first polled state satisfying `pred` within timeout_s, else None."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while True:
        st = await plc.read_state()
        if pred(st):
            return st
        if loop.time() >= end:
            return None
        await asyncio.sleep(POLL_S)


class EventTap:
    """Subscribes to a PLC's events on entry and keeps them; `wait` finds one matching."""

    def __init__(self, plc: Any) -> None:
        self.plc = plc
        self.events: list[PlcEvent] = []
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventTap:
        self._task = asyncio.create_task(self._pump(), name="diag-plc-events")
        for _ in range(3):  # let the generator run up to its queue: the subscription now exists
            await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _pump(self) -> None:
        async for ev in self.plc.events():
            self.events.append(ev)
            self._new.set()

    async def wait(self, pred: Callable[[PlcEvent], bool], timeout_s: float, start: int = 0) -> PlcEvent | None:
        """The first event (from index `start`) matching `pred` within timeout_s, else None."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        i = start
        while True:
            while i < len(self.events):
                if pred(self.events[i]):
                    return self.events[i]
                i += 1
            self._new.clear()
            left = end - loop.time()
            if left <= 0:
                return None
            try:
                async with asyncio.timeout(left):
                    await self._new.wait()
            except TimeoutError:
                return None


def request_timeout(plc: Any) -> float:
    """I/O bound of one confirmed PLC request: the write (with retries) plus the read-back window."""
    c = plc.cfg
    return c.timeout_ms / 1000 * (c.retries + 1) * 2 + c.readback_timeout_ms / 1000 + 0.5
