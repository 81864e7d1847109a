"""Simulated e-seal readers: an ES1 serial reader on a pseudo-terminal, and seal tags in an LLRP reader's field.

Both play the same schedule (config `SealSim.schedule`): a seal comes into range at `at_s` for
`seconds`, and may record an event meanwhile (`event_at_s`: opened, tampered). Tests drive them
directly: `present(seal, seconds)`, `event(seal_id, state)` (the seal records it: new state,
time, counter + 1), and for the serial one `send_raw(bytes)` (garbage, a broken line).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Coroutine
from typing import Any, Self

from drivers.pty import PtyPort
from drivers.rfid.llrp.sim import LlrpSim
from drivers.seal.codec import encode_line
from drivers.seal.config import SealSim, SimSealPlan
from drivers.seal.memory import encode_memory
from drivers.seal.state import SealReport, SealState, SimSeal, event_time
from drivers.simlane import Described, follow

LANE_HOLD_S = 24 * 3600.0
"""A lane item's seal stays in range until the item leaves (its task is cancelled then)."""


def report_of(seal: SimSeal) -> SealReport:
    """What the simulated seal reports about itself."""
    return SealReport(seal.seal_id, seal.state, seal.battery_pct, seal.battery_low, event_time(seal.last_event_s),
                      seal.events)


class _SealSimBase:
    """The schedule and the seals in range; subclasses say how a seal is shown to the reader."""

    def __init__(self, cfg: SealSim) -> None:
        self.cfg = cfg
        self.seals: dict[str, SimSeal] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lane_seals: dict[int, asyncio.Task[None]] = {}

    def start_schedule(self) -> None:
        if self.cfg.schedule:
            self._spawn(self._run_schedule())
        if self.cfg.lane:
            self._spawn(follow(self.cfg.lane, self._lane_entered, self._lane_left))

    def _lane_entered(self, item: Described) -> None:
        if item.seal_id:
            self._lane_seals[item.number] = self._spawn(self._lane_seal(item))

    def _lane_left(self, item: Described) -> None:
        task = self._lane_seals.pop(item.number, None)
        if task is not None:
            task.cancel()

    async def _lane_seal(self, item: Described) -> None:
        """An item's seal in range while the item is inside the lane; one tampered in the lane records it."""
        seal = SimSeal(item.seal_id, item.seal_state)
        task = self.present(seal, LANE_HOLD_S)
        try:
            if item.seal_tampered_in_lane:
                await asyncio.sleep(self.cfg.lane_tamper_after_s)
                self.event(seal.seal_id, "tampered")
            await task
        finally:
            task.cancel()

    async def _run_schedule(self) -> None:
        """The configured seals come and go; the whole schedule again every `repeat_s` when set."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            for plan in self.cfg.schedule:
                self._spawn(self._play(plan))
            if self.cfg.repeat_s is None:
                return
            await asyncio.sleep(start + self.cfg.repeat_s - loop.time())

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def present(self, seal: SimSeal, seconds: float, tid: str | None = None,
                epc: str | None = None) -> asyncio.Task[None]:
        """A seal in range for `seconds`; a seal tag's TID and EPC default to ones made from its number."""
        self.seals[seal.seal_id] = seal
        digest = hashlib.sha256(seal.seal_id.encode()).hexdigest().upper()
        tid, epc = tid or "E2801170" + digest[:16], epc or "3034" + digest[16:36]
        return self._spawn(self._in_range(seal, seconds, tid, epc))

    def event(self, seal_id: str, state: SealState) -> None:
        """The seal records an event now (opened, tampered, resealed)."""
        seal = self.seals[seal_id]
        seal.event(state, int(time.time()))
        self._changed(seal)

    async def _play(self, plan: SimSealPlan) -> None:
        await asyncio.sleep(plan.at_s)
        seal = SimSeal(plan.seal_id, plan.state, plan.battery_pct)
        task = self.present(seal, plan.seconds, plan.tid, plan.epc)
        if plan.event_at_s is not None and plan.event_at_s < plan.seconds:
            await asyncio.sleep(plan.event_at_s)
            self.event(seal.seal_id, plan.event_state)
        await task

    async def _in_range(self, seal: SimSeal, seconds: float, tid: str, epc: str) -> None:
        raise NotImplementedError

    def _changed(self, seal: SimSeal) -> None:
        """A seal's state changed (an event): the next report carries it."""

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name="seal-sim")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class SerialSealSim(_SealSimBase):
    """A fixed ES1 reader: writes a line per seal in range every `repeat_ms` into a pty (`port`)."""

    def __init__(self, cfg: SealSim) -> None:
        super().__init__(cfg)
        self.pty = PtyPort("usb-ESeal_Reader-if00", "seal-sim-")
        self.port = self.pty.port
        self.lines_sent = 0

    async def __aenter__(self) -> Self:
        self.pty.replug()
        self.start_schedule()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self.pty.close()

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are (a malformed line, noise)."""
        self.pty.send_raw(data)

    async def _in_range(self, seal: SimSeal, seconds: float, tid: str, epc: str) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        try:
            while loop.time() < end:
                self.pty.send_raw(encode_line(report_of(seal)))
                self.lines_sent += 1
                await asyncio.sleep(self.cfg.repeat_ms / 1000)
        finally:
            self.seals.pop(seal.seal_id, None)


class LlrpSealSim(_SealSimBase):
    """Seal tags in a simulated LLRP reader's field, their state in user memory (drivers/seal/memory.py)."""

    def __init__(self, cfg: SealSim, llrp: LlrpSim, antenna: int = 1) -> None:
        super().__init__(cfg)
        self.llrp, self.antenna = llrp, antenna
        self.tid_of: dict[str, str] = {}

    async def __aenter__(self) -> Self:
        self.start_schedule()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _in_range(self, seal: SimSeal, seconds: float, tid: str, epc: str) -> None:
        self.tid_of[seal.seal_id] = tid
        try:
            await self.llrp.present(epc, tid, self.antenna, seconds, user=encode_memory(report_of(seal)).hex())
        finally:
            self.seals.pop(seal.seal_id, None)

    def _changed(self, seal: SimSeal) -> None:
        self.llrp.write_user(self.tid_of[seal.seal_id], encode_memory(report_of(seal)).hex())
