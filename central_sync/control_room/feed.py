"""The live feed: one poller per hub process reads what was committed since it last looked and
fans it out to every open event stream (SSE), alongside the stations' state.

Several hub processes commit with their own clocks and threads, so a row may commit with an
earlier `committed_at` than one already seen: each look goes back `LOOKBACK_S` and skips ids
already sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, defaultdict, deque
from datetime import datetime
from typing import Any

import structlog

from central_sync.control_room.config import ControlRoomConfig
from central_sync.control_room import commanding
from central_sync.control_room.db import execute
from central_sync.errors import HubStoreError
from central_sync.hub.stations import station_view
from central_sync.hub.store import HubStore

log = structlog.get_logger("central_sync.control_room")
LOOKBACK_S = 2.0
WINDOW_S = 24 * 3600.0
COUNTED_REASONS = ("budget_missed", "device_fault")
QUEUE_MAX = 1000
STATION_REFRESH_S = 1.0

SOURCES = {  # name: (sql returning (id, ts, ...), what to emit)
    "records": "SELECT id, committed_at, station, is_alert, body, hub FROM records WHERE committed_at > ? ORDER BY committed_at LIMIT 5000",
    "reviews": "SELECT record_id || '/' || officer || '/' || decided_ts, committed_at, record_id, body FROM reviews"
               " WHERE committed_at > ? ORDER BY committed_at LIMIT 5000",
    "actions": "SELECT id, at, record_id, kind, actor, assignee, text FROM cr_actions WHERE at > ? ORDER BY at LIMIT 5000",
    "commands": "SELECT id || '/' || coalesce(outcome, ''), coalesce(result_at, issued_at), id, station, op, args, issuer,"
                " issued_at, outcome, reason, detail FROM cr_commands WHERE coalesce(result_at, issued_at) > ?"
                " ORDER BY coalesce(result_at, issued_at) LIMIT 5000",
}


class StationFigures:
    """Per station, from its records: model in use, budget misses and device faults in 24 h."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the poller adds, HTTP handlers read
        self.model: dict[str, str] = {}
        self.events: dict[str, deque[tuple[float, str]]] = defaultdict(deque)

    def add(self, record: dict) -> None:
        with self._lock:
            self._add(record)

    def _add(self, record: dict) -> None:
        station = record["station"]
        if record.get("model"):
            self.model[station] = f"{record['model']['name']} {record['model']['version']}"
        if record["reason"] in COUNTED_REASONS:
            self.events[station].append((datetime.fromisoformat(record["decided_at"]).timestamp(), record["reason"]))

    def view(self, station: str, now: float) -> dict:
        with self._lock:
            q = self.events[station] = deque(e for e in self.events[station] if e[0] >= now - WINDOW_S)
            counts = Counter(reason for _, reason in q)
            return {"model": self.model.get(station), **{f"{r}_24h": counts[r] for r in COUNTED_REASONS}}


class LiveFeed:
    """Polls the hub database every `poll_s` and broadcasts events to subscribers' queues."""

    def __init__(self, store: HubStore, cfg: ControlRoomConfig) -> None:
        self.store, self.cfg = store, cfg
        self.figures = StationFigures()
        self.subscribers: set[asyncio.Queue] = set()
        self.counters: Counter[str] = Counter()
        self._marks = {name: time.time() for name in SOURCES}
        self._seen: dict[str, dict[str, float]] = {name: {} for name in SOURCES}
        self._stations_sent = (0.0, "")

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_MAX)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self.subscribers.discard(q)

    def publish(self, event: dict) -> None:
        """Queue one event for every stream; a stream too slow to keep up loses it (counted)."""
        for q in list(self.subscribers):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                self.counters["events_dropped"] += 1

    async def run(self) -> None:
        await asyncio.to_thread(self._warm_up)
        while True:
            try:
                events = await asyncio.to_thread(self.poll)
            except HubStoreError as exc:
                self.counters["poll_errors"] += 1
                log.warning("control_room.poll_failed", error=str(exc))
                events = []
            except Exception:  # a defect reading what a station sent: the feed must live on for every other one
                self.counters["poll_errors"] += 1
                log.exception("control_room.poll_crashed")
                events = []
            for event in events:
                self.publish(event)
            await asyncio.sleep(self.cfg.poll_s)

    def _warm_up(self) -> None:
        """Station figures from the last 24 h of records (events before start-up are not re-sent)."""
        rows = execute(self.store, "SELECT body FROM records WHERE decided_ts > ? ORDER BY decided_ts",
                       (time.time() - WINDOW_S,))
        for (body,) in rows:
            self.figures.add(json.loads(body))

    def poll(self) -> list[dict]:
        events: list[dict] = []
        for name in SOURCES:
            for row in self._new_rows(name):
                events.extend(getattr(self, f"_on_{name}")(row))
        try:
            stations = self.stations()
        except Exception as exc:  # the rows above are read (their marks moved on): their events still go out
            self.counters["poll_errors"] += 1
            log.warning("control_room.stations_failed", error=f"{type(exc).__name__}: {exc}",
                        exc_info=not isinstance(exc, HubStoreError))
            return events
        text = json.dumps([(s["station"], s["state"], s["backlog_rows"], s["model"], s["budget_missed_24h"],
                            s["device_fault_24h"], s["lane"], s["device_faults"]) for s in stations])
        now = time.time()
        if text != self._stations_sent[1] or now - self._stations_sent[0] > STATION_REFRESH_S:
            self._stations_sent = (now, text)
            events.append({"type": "stations", "stations": stations})
        return events

    def _new_rows(self, name: str) -> list[tuple]:
        rows = execute(self.store, SOURCES[name], (self._marks[name] - LOOKBACK_S,))
        seen, fresh = self._seen[name], []
        for row in rows:
            if row[0] not in seen:
                seen[row[0]] = row[1]
                fresh.append(row)
            self._marks[name] = max(self._marks[name], row[1])
        floor = self._marks[name] - 4 * LOOKBACK_S
        for key in [k for k, ts in seen.items() if ts < floor]:
            del seen[key]
        return fresh

    def _on_records(self, row: tuple) -> list[dict]:
        _, committed, _, is_alert, body, hub = row
        record = json.loads(body)
        self.figures.add(record)
        return [{"type": "alert", "alert": alert_view(record, committed, hub, [], [])}] if is_alert else []

    def _on_reviews(self, row: tuple) -> list[dict]:
        return [{"type": "review", "record_id": row[2], "review": json.loads(row[3])}]

    def _on_actions(self, row: tuple) -> list[dict]:
        return [{"type": "action", "action": action_view((*row[2:], row[1]))}]

    def _on_commands(self, row: tuple) -> list[dict]:
        return [{"type": "command", "command": command_view(row[2:])}]

    def stations(self) -> list[dict]:
        """The board: the hub's station view plus figures from the records."""
        now = time.time()
        out = []
        settings = commanding.all_settings(self.store)  # what the hub's commands put in force, per station
        for row in self.store.stations():
            view = station_view(row, now=now, stale_s=self.cfg.stale_s)
            view["backlog_rows"] = sum(b.get("rows", 0) for b in view["backlog"].values())
            view["settings"] = settings.get(view["station"])
            out.append({**view, **self.figures.view(view["station"], now)})
        return out


def alert_view(record: dict, committed_at: float, hub: str, actions: list[dict], reviews: list[dict]) -> dict:
    """One alert as the feed and the list show it."""
    return {"id": record["id"], "record": record, "committed_at": committed_at, "hub": hub,
            "actions": actions, "reviews": reviews or ([record["review"]] if record.get("review") else [])}


def action_view(row: Any) -> dict:
    record_id, kind, actor, assignee, text, at = row
    return {"record_id": record_id, "kind": kind, "actor": actor, "assignee": assignee, "text": text, "at": at}


def command_view(row: Any) -> dict:
    keys = ("id", "station", "op", "args", "issuer", "issued_at", "outcome", "reason", "detail")
    view = dict(zip(keys, row))
    view["args"] = json.loads(view["args"])
    return view
