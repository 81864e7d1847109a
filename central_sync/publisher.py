"""The station's sync publisher: an async context manager around the sync thread.

    async with Publisher(cfg, station, db_path, scans_dir) as pub:
        ...
        pub.notify()          # optional: a new outbox row was committed, look now
        pub.stats()           # figures for metrics and the officer's screen

The thread owns the paho client and its own SQLite connection; nothing here blocks the caller's
event loop (entering starts the thread, leaving stops it in a worker thread).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from central_sync.config import SyncConfig
from central_sync.sender import SyncEngine


class Publisher:
    """Publishes the station's outbox to the hub; rows are deleted when the hub commits them."""

    def __init__(self, cfg: SyncConfig, station: str, db_path: Path, scans_dir: Path,
                 extra_status: Callable[[], dict] | None = None) -> None:
        self._engine = SyncEngine(cfg, station, Path(db_path), Path(scans_dir), extra_status)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def __aenter__(self) -> "Publisher":
        self._thread = threading.Thread(target=self._engine.run, args=(self._stop,),
                                        name=f"sync-{self._engine.station}", daemon=True)
        self._thread.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10.0)

    def notify(self) -> None:
        """Ask the thread to look for new outbox rows now (thread-safe, non-blocking)."""
        self._engine.wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict:
        """Figures: connected, session, window, max_payload, inflight, awaiting_ack, backlog
        (per lane: rows, bytes, oldest_seq, newest_seq, oldest_at, parked), last_ack_at,
        last_ack_age_s, last_error, counters (published, puback_ok, puback_0xNN, acked, rejected,
        parked, too_large, resend_timeout, resend_requested, watchdog_restarts, errors, ...)."""
        with self._engine.lock:
            snap = dict(self._engine.snapshot)
        last = snap.get("last_ack_at")
        snap["last_ack_age_s"] = None if last is None else round(time.time() - last, 3)
        snap["thread_alive"] = self.alive
        return snap
