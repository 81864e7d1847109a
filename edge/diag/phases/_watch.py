"""Watching a PLC: wait for a state, collect events from the moment of subscription, log samples."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from drivers.plc import EyeEdge, ModbusPlc, PlcEvent, PlcState

POLL_S = 0.005


async def wait_state(plc: ModbusPlc, pred: Callable[[PlcState], bool], timeout_s: float) -> PlcState | None:
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

    def __init__(self, plc: ModbusPlc) -> None:
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

    async def wait_eye(self, index: int, blocked: bool, timeout_s: float, start: int = 0) -> EyeEdge | None:
        """The first edge of eye `index` to `blocked` (from event `start`) within timeout_s, else None."""
        ev = await self.wait(lambda e: isinstance(e, EyeEdge) and e.eye_index == index and e.blocked == blocked,
                             timeout_s, start)
        return ev if isinstance(ev, EyeEdge) else None


def request_timeout(plc: ModbusPlc) -> float:
    """I/O bound of one confirmed PLC request: the driver's own bound (writes, read-back window and the
    polls a slow PLC needs to show the feedback), with half a second to spare."""
    return plc.request_bound_s + 0.5


@dataclass(frozen=True)
class Bracket:
    """When a change happened as far as the samples show: after `lo`, at or before `hi` (loop time)."""

    lo: float
    hi: float

    @property
    def known(self) -> bool:
        return self.lo == self.hi


class SampleLog:
    """Every distinct PLC sample (by seq) from entry on, so that a change is bracketed by the samples around it.

    The PLC gives no timestamp of its inputs' changes: a change lies between the last sample
    without it and the first sample with it. Samples the log missed only widen the bracket."""

    def __init__(self, plc: ModbusPlc) -> None:
        self.plc = plc
        self.samples: list[PlcState] = []
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SampleLog:
        self._add(await self.plc.read_state())
        self._task = asyncio.create_task(self._poll(), name="diag-plc-samples")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def _add(self, st: PlcState) -> None:
        if not self.samples or st.seq != self.samples[-1].seq:
            self.samples.append(st)
            self._new.set()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            self._add(await self.plc.read_state())

    def first(self, pred: Callable[[PlcState], bool], start: int = 0) -> int | None:
        """Index of the first sample from `start` satisfying `pred`."""
        return next((i for i in range(start, len(self.samples)) if pred(self.samples[i])), None)

    async def wait(self, pred: Callable[[PlcState], bool], timeout_s: float, start: int = 0) -> int | None:
        """Index of the first sample from `start` satisfying `pred` within timeout_s, else None."""
        try:
            async with asyncio.timeout(timeout_s):
                while (i := self.first(pred, start)) is None:
                    self._new.clear()
                    await self._new.wait()
        except TimeoutError:
            return None
        return i

    def bracket(self, index: int, pred: Callable[[PlcState], bool]) -> Bracket | None:
        """Between the last sample before `index` where `pred` did not hold and sample `index` (None if none did)."""
        before = next((j for j in range(index - 1, -1, -1) if not pred(self.samples[j])), None)
        if before is None:
            return None
        return Bracket(self.samples[before].t, self.samples[index].t)
