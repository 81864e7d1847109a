"""The hub process: MQTT link thread, ingest worker thread, gap checks; an async context manager."""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import threading
import time
from types import TracebackType

import structlog

from central_sync.config import BrokerConfig
from central_sync.errors import HubStoreError
from central_sync.hub.gaps import GapChecker
from central_sync.hub.ingest import Ingestor
from central_sync.hub.link import HubLink
from central_sync.hub.store import HubStore

log = structlog.get_logger("central_sync.hub")


def default_hub_id() -> str:
    return f"hub-{socket.gethostname()}-{os.getpid()}"


class Hub:
    """Runs ingest until the context exits; `stats()` for /api/hub and the logs."""

    def __init__(self, broker: BrokerConfig, store: HubStore, hub_id: str | None = None, batch_max: int = 500,
                 queue_max: int = 5000, gap_period_s: float = 5.0) -> None:
        self.store, self.hub_id = store, hub_id or default_hub_id()
        self.batch_max, self.gap_period_s = batch_max, gap_period_s
        self.inbox: queue.PriorityQueue[tuple[int, int, str, bytes]] = queue.PriorityQueue(maxsize=queue_max)
        self.link = HubLink(broker, self.hub_id, self.inbox, "priority")
        self.bulk = HubLink(broker, self.hub_id, self.inbox, "bulk")
        self.ingestor = Ingestor(store, self.hub_id, self.link.send, self.link.payload_limit)
        self.gaps = GapChecker(store, self.hub_id, self.link.send, self.link.payload_limit)
        self._carry: tuple | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    async def __aenter__(self) -> "Hub":
        await asyncio.to_thread(self.store.migrate)
        for name, target in (("link", self.link.run), ("bulk", self.bulk.run), ("ingest", self._ingest_loop)):
            thread = threading.Thread(target=target, args=(self._stop,), name=f"hub-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._stop.set()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 10.0)

    def _ingest_loop(self, stop: threading.Event) -> None:
        next_gap = time.monotonic() + self.gap_period_s
        while not stop.is_set():
            batch = self._take()
            try:
                if batch:
                    self.ingestor.handle(batch)
                if time.monotonic() >= next_gap:
                    next_gap = time.monotonic() + self.gap_period_s
                    self.gaps.check()
            except HubStoreError as exc:  # not acknowledged: the stations re-send after their ack timeout
                self.ingestor.counters["store_errors"] += 1
                log.error("hub.store_failed", hub=self.hub_id, messages=len(batch), error=str(exc))
                stop.wait(1.0)
        self.store.close()

    def _take(self) -> list[tuple[str, bytes]]:
        """Up to batch_max messages of one priority: alerts are committed on their own, at once."""
        try:
            first = self._carry or self.inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        self._carry = None
        batch = [first]
        while len(batch) < self.batch_max:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if item[0] != first[0]:
                self._carry = item
                break
            batch.append(item)
        return [(name, payload) for _, _, name, payload in batch]

    def stats(self) -> dict:
        return {"hub": self.hub_id, "connected": self.link.connected and self.bulk.connected,
                "sessions": self.link.sessions + self.bulk.sessions, "last_error": self.link.last_error or self.bulk.last_error, "queued": self.inbox.qsize(),
                "gap_seqs_asked": self.gaps.asked, "counters": dict(self.ingestor.counters)}
