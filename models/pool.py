"""The inference pool shared by all stations on a machine: bounded, fair, deadline-aware.

Jobs wait in one bounded queue per station and are dispatched round-robin over the stations to
worker threads (onnxruntime releases the GIL). On submission the pool computes when the job
would finish: the in-flight remainder, plus what round-robin puts ahead of it (the station's own
queue and, from every other station, at most as many jobs as this one has ahead of it plus one),
spread over the workers, plus the job's own cost. If that is past the deadline the job is refused
at once with DeadlineUnreachable, so the item goes to `manual` now instead of after queueing.
Background jobs (shadow models) run only while no live job runs or waits: one submitted to a busy
pool is refused (PoolBusy), unless it `waits` (the later parts of a background task begun, e.g. the
next row of a shadow scan); then it queues behind every live job. A live job waits for at most the
background job in progress, so background work comes in small parts.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field

from models.errors import ModelError

log = structlog.get_logger("models.pool")


class DeadlineUnreachable(ModelError):
    """The job cannot finish before its deadline; refused without queueing."""

    def __init__(self, station: str, expected_s: float, left_s: float) -> None:
        self.station, self.expected_s, self.left_s = station, expected_s, left_s
        super().__init__(
            f"inference for station {station} would take {expected_s * 1e3:.0f} ms including the queue "
            f"but only {left_s * 1e3:.0f} ms remain before its deadline"
        )


class PoolOverloaded(ModelError):
    """The station's queue is full; refused without queueing."""

    def __init__(self, station: str, limit: int) -> None:
        self.station, self.limit = station, limit
        super().__init__(f"inference queue of station {station} is full ({limit} jobs waiting)")


class PoolBusy(ModelError):
    """A background job was skipped because the pool had other work."""

    def __init__(self, station: str) -> None:
        self.station = station
        super().__init__(f"background inference for station {station} skipped: the pool is busy")


class PoolConfig(BaseModel):
    """Pool settings the machine config composes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(default=1, ge=1, le=64)
    queue_per_station: int = Field(default=8, ge=1, le=10_000)


@dataclass(eq=False)
class _Job:
    station: str
    fn: Callable[[], Any]
    cost: float
    deadline: float | None
    future: asyncio.Future
    started: float = 0.0
    background: bool = False


@dataclass
class _Counts:
    by_station: dict[str, Counter] = field(default_factory=dict)

    def add(self, station: str, what: str, n: int = 1) -> None:
        self.by_station.setdefault(station, Counter())[what] += n


class InferencePool:
    """Fair, bounded, deadline-aware runner of blocking inference calls (use as async context manager)."""

    def __init__(self, workers: int = 1, queue_per_station: int = 8) -> None:
        self.workers = workers
        self.queue_per_station = queue_per_station
        self._executor: ThreadPoolExecutor | None = None
        self._queues: dict[str, deque[_Job]] = {}
        self._rotation: deque[str] = deque()
        self._running: set[_Job] = set()
        self._background: deque[_Job] = deque()  # run only while no live job runs or waits
        self._counts = _Counts()

    @classmethod
    def from_config(cls, cfg: PoolConfig) -> InferencePool:
        return cls(cfg.workers, cfg.queue_per_station)

    async def __aenter__(self) -> InferencePool:
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="inference")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for q in (*self._queues.values(), self._background):
            for job in q:
                job.future.cancel()
            q.clear()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)

    def expected_finish(self, station: str, cost: float, now: float | None = None) -> float:
        """Loop time at which a job of `cost` seconds submitted now for `station` would finish."""
        now = asyncio.get_running_loop().time() if now is None else now
        inflight = sum(max(j.started + j.cost - now, 0.0) for j in self._running)
        own = self._queues.get(station, ())
        ahead = sum(j.cost for j in own)
        rank = len(own) + 1
        for name, q in self._queues.items():
            if name != station:
                ahead += sum(j.cost for _, j in zip(range(rank), q))
        idle = self.workers - len(self._running)
        wait = 0.0 if idle > 0 and not ahead else (inflight + ahead) / self.workers
        return now + wait + cost

    async def run(self, station: str, fn: Callable[[], Any], *, deadline: float | None = None,
                  cost: float = 0.0, background: bool = False, waits: bool = False) -> Any:
        """Run `fn()` in a worker thread and return its result; raises DeadlineUnreachable/PoolOverloaded/PoolBusy.

        `background`: only while no live job runs or waits; refused (PoolBusy) on a busy pool unless it `waits`.
        """
        if self._executor is None:
            raise RuntimeError("InferencePool used outside 'async with'")
        loop = asyncio.get_running_loop()
        self._counts.add(station, "submitted")
        if background and not waits and (self._running or any(self._queues.values())):
            self._counts.add(station, "skipped_busy")
            raise PoolBusy(station)
        if background:
            return await self._queued(_Job(station, fn, cost, None, loop.create_future(), background=True),
                                      self._background)
        queue = self._queues.setdefault(station, deque())
        if len(queue) >= self.queue_per_station:
            self._counts.add(station, "refused_overload")
            log.warning("pool.overloaded", station=station, queued=len(queue))
            raise PoolOverloaded(station, self.queue_per_station)
        now = loop.time()
        if deadline is not None:
            finish = self.expected_finish(station, cost, now)
            if finish > deadline:
                self._counts.add(station, "refused_deadline")
                log.info("pool.deadline_unreachable", station=station, expected_ms=round((finish - now) * 1e3),
                         left_ms=round((deadline - now) * 1e3))
                raise DeadlineUnreachable(station, finish - now, deadline - now)
        if station not in self._rotation:
            self._rotation.append(station)
        return await self._queued(_Job(station, fn, cost, deadline, loop.create_future()), queue)

    async def _queued(self, job: _Job, queue: deque[_Job]) -> Any:
        queue.append(job)
        self._dispatch()
        try:
            return await job.future
        except asyncio.CancelledError:
            if job in queue:
                queue.remove(job)
                self._counts.add(job.station, "cancelled")
            raise

    async def detect(self, station: str, detector: Any, scan: Any, *, deadline: float | None = None) -> Any:
        """`detector.detect(scan)` in the pool at the cost `detector.estimate_seconds(scan.shape)`."""
        return await self.run(station, lambda: detector.detect(scan), deadline=deadline,
                              cost=detector.estimate_seconds(scan.shape))

    def _next_job(self) -> _Job | None:
        """Next job round-robin over stations with work; a background job only while no live job runs."""
        for _ in range(len(self._rotation)):
            station = self._rotation[0]
            self._rotation.rotate(-1)
            q = self._queues.get(station)
            while q:
                job = q.popleft()
                if not job.future.done():
                    return job
        while self._background and not any(not j.background for j in self._running):
            job = self._background.popleft()
            if not job.future.done():
                return job
        return None

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while len(self._running) < self.workers:
            job = self._next_job()
            if job is None:
                return
            if job.deadline is not None and loop.time() + job.cost > job.deadline:
                self._counts.add(job.station, "refused_deadline")
                job.future.set_exception(DeadlineUnreachable(job.station, job.cost, job.deadline - loop.time()))
                continue
            job.started = loop.time()
            self._running.add(job)
            inner = loop.run_in_executor(self._executor, job.fn)
            inner.add_done_callback(functools.partial(self._finished, job))

    def _finished(self, job: _Job, inner: asyncio.Future) -> None:
        loop = asyncio.get_running_loop()
        self._running.discard(job)
        c = self._counts
        c.add(job.station, "busy_ms", round((loop.time() - job.started) * 1e3))
        if inner.cancelled():
            job.future.cancel()
        elif (exc := inner.exception()) is not None:
            c.add(job.station, "failed")
            if not job.future.done():
                job.future.set_exception(exc)
        else:
            c.add(job.station, "completed")
            if job.deadline is not None and loop.time() > job.deadline:
                c.add(job.station, "finished_late")
            if not job.future.done():
                job.future.set_result(inner.result())
        self._dispatch()

    def stats(self) -> dict[str, Any]:
        """Counters per station plus queue depths, for metrics."""
        return {
            "workers": self.workers,
            "running": len(self._running),
            "queued": {s: len(q) for s, q in self._queues.items()},
            "background_queued": len(self._background),
            "stations": {s: dict(c) for s, c in self._counts.by_station.items()},
        }
