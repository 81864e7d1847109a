"""The hub process: two MQTT connections, two ingest workers, gap checks; an async context manager.

Lanes: `priority` (alerts and station statuses) and `bulk` (records, reviews, image chunks). Each
lane has its own connection, bounded queue, worker thread and database connection, so an alert
is committed while a batch of routine records is still being written.
"""

from __future__ import annotations

import asyncio
import functools
import os
import queue
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import structlog

from appliance.watchdog import Progress
from central_sync.config import BrokerConfig
from central_sync.errors import HubStoreError
from central_sync.hub.gaps import GapChecker
from central_sync.hub.ingest import Ingestor, Limits
from central_sync.hub.link import HubLink
from central_sync.hub.store import HubStore
from central_sync.risk_delivery import RiskDelivery

log = structlog.get_logger("central_sync.hub")
LANES = ("priority", "bulk")
# How long starting a hub waits for the broker to grant its subscriptions (a station's message sent before that is
# lost at the broker and sent again after the station's ack timeout); past it the hub starts anyway, broker or not.
SUBSCRIBE_WAIT_S = 10.0


def default_hub_id() -> str:
    return f"hub-{socket.gethostname()}-{os.getpid()}"


@dataclass
class _Lane:
    inbox: queue.Queue[tuple[str, bytes]]
    link: HubLink
    ingestor: Ingestor


class Hub:
    """Runs ingest until the context exits; `stats()` for /api/hub and the logs."""

    def __init__(self, broker: BrokerConfig, store: HubStore, hub_id: str | None = None, batch_max: int = 500,
                 queue_max: int = 5000, gap_period_s: float = 5.0, stall_after_s: float | None = None,
                 limits: Limits = Limits()) -> None:
        self.store, self.hub_id = store, hub_id or default_hub_id()
        self.batch_max, self.gap_period_s = batch_max, gap_period_s
        # Liveness for the watchdog: every link and ingest thread beats on each turn of its loop.
        # A link waits at most reconnect_max_s between tries, so silence well beyond that is a hang.
        self.progress = Progress(stall_after_s=stall_after_s or max(60.0, 3 * broker.reconnect_max_s))
        links: dict[str, HubLink] = {}
        for name in LANES:
            inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=queue_max)
            self.progress.register(f"link-{name}")
            self.progress.register(f"ingest-{name}")
            beat = functools.partial(self.progress.beat, f"link-{name}")
            links[name] = HubLink(broker, self.hub_id, inbox, name, beat=beat)
        sender = links["priority"]  # acks and commands leave on the quieter connection
        self.lanes = {name: _Lane(link.inbox, link, Ingestor(store, self.hub_id, sender.send, sender.payload_limit, limits))
                      for name, link in links.items()}
        self.gaps = GapChecker(store, self.hub_id, sender.send, sender.payload_limit)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.risk: RiskDelivery | None = None  # risk bundles to stations, when the hub process runs them (cli.py)

    async def __aenter__(self) -> "Hub":
        await asyncio.to_thread(self.store.migrate)
        for name, lane in self.lanes.items():
            self._spawn(f"hub-{name}-link", lane.link.run)
            self._spawn(f"hub-{name}-ingest", functools.partial(self._supervise, lane=lane, name=name))
        try:
            subscribed = await asyncio.to_thread(self._wait_subscribed, SUBSCRIBE_WAIT_S)
        except BaseException:  # a start cancelled in the wait never reaches __aexit__: the threads are stopped here
            await self.__aexit__(None, None, None)
            raise
        if not subscribed:
            log.warning("hub.not_subscribed", hub=self.hub_id, waited_s=SUBSCRIBE_WAIT_S,
                        lanes=[name for name, lane in self.lanes.items() if not lane.link.subscribed.is_set()],
                        message="the broker has not granted every subscription yet: the hub runs on and keeps"
                                " trying, and stations send again what it missed")
        return self

    def _wait_subscribed(self, timeout_s: float) -> bool:
        """True once every lane's link is subscribed, within `timeout_s`; False at once when the hub is stopped
        meanwhile (a cancelled start: the thread this runs on cannot be cancelled)."""
        deadline = time.monotonic() + timeout_s
        for lane in self.lanes.values():
            while not lane.link.subscribed.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
                if self._stop.is_set() or time.monotonic() >= deadline:
                    return False
        return True

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._stop.set()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 10.0)

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _supervise(self, stop: threading.Event, lane: _Lane, name: str) -> None:
        """Top-level supervisor of one ingest worker: a failure is logged and the worker goes on."""
        while not stop.is_set():
            try:
                self._ingest_loop(stop, lane, gaps=name == "bulk")
            except Exception:  # supervisor: keep ingesting; unacknowledged messages are re-sent
                lane.ingestor.counters["worker_crashes"] += 1
                log.exception("hub.ingest_crashed", hub=self.hub_id, lane=name)
                stop.wait(1.0)
        self.store.close()

    def _ingest_loop(self, stop: threading.Event, lane: _Lane, gaps: bool) -> None:
        next_gap = time.monotonic() + self.gap_period_s
        while not stop.is_set():
            self.progress.beat(f"ingest-{lane.link.lane}")
            batch = self._take(lane.inbox)
            try:
                if batch:
                    lane.ingestor.handle(batch)
                if gaps and time.monotonic() >= next_gap:
                    next_gap = time.monotonic() + self.gap_period_s
                    self.gaps.check(self.seen_stations())
                    lane.ingestor.housekeep()  # incomplete image uploads past their age
            except HubStoreError as exc:  # not acknowledged: the stations re-send after their ack timeout
                lane.ingestor.counters["store_errors"] += 1
                log.error("hub.store_failed", hub=self.hub_id, messages=len(batch), error=str(exc))
                stop.wait(1.0)

    def _take(self, inbox: queue.Queue) -> list[tuple[str, bytes]]:
        try:
            batch = [inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < self.batch_max:
            try:
                batch.append(inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def seen_stations(self) -> set[str]:
        return set().union(*(lane.ingestor.stations for lane in self.lanes.values()))

    def stats(self) -> dict:
        links = [lane.link for lane in self.lanes.values()]
        counters: Counter[str] = Counter()
        for lane in self.lanes.values():
            counters.update(lane.ingestor.counters)
        return {"hub": self.hub_id, "connected": all(link.connected for link in links),
                "sessions": sum(link.sessions for link in links),
                "last_error": next((link.last_error for link in links if link.last_error), None),
                "queued": {name: lane.inbox.qsize() for name, lane in self.lanes.items()},
                "outbox_dropped": sum(link.outbox_dropped for link in links),
                "gap_seqs_asked": self.gaps.asked, "gap_seqs_given_up": self.gaps.given_up,
                "stalled": self.progress.stalled(), "counters": dict(counters),
                **({"risk": self.risk.stats()} if self.risk is not None else {})}
