"""The lane's state in the station's status to the hub (central_sync.protocol.LaneState, issue 21): the
control room's board shows a latched belt, a held lane or an idle one and the devices at fault, not only
whether the station is connected.

The housekeeping task reads the store's figures (`activity`, on the store's thread); the publisher's
thread builds the report from them and the belt's or lane's in-memory state (`LaneReport.status`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.context import BeltControl, LaneControl
from edge.store import Store

IDLE_S = 600.0
"""A running lane with no item for this long is shown idle (since its last item)."""


@dataclass(frozen=True)
class Activity:
    """The store's figures: items decided in the last hour, items waiting for an officer, the last item's time."""

    items_last_hour: int = 0
    queue_depth: int = 0
    last_item_at: float | None = None


def activity(store: Store, now: float | None = None) -> Activity:
    """Read on the store's thread (StoreWriter.call)."""
    conn = store.conn
    now = time.time() if now is None else now
    hour = conn.execute("SELECT count(*) FROM inspections WHERE decided_at >= ?", (datetime.fromtimestamp(now - 3600.0, tz=UTC).isoformat(),)).fetchone()[0]
    queue = conn.execute("SELECT count(*) FROM inspections WHERE verdict IN ('suspect', 'manual')"
                         " AND reviewed = 0").fetchone()[0]
    last = conn.execute("SELECT decided_at FROM inspections ORDER BY seq DESC LIMIT 1").fetchone()
    return Activity(int(hour), int(queue), datetime.fromisoformat(last[0]).timestamp() if last else None)


def lane_state(belt: dict[str, Any] | None, vehicle_lane: dict[str, Any] | None, act: Activity, started_at: float,
               now: float) -> dict[str, Any]:
    """The LaneState fields from a conveyor's belt_status(), a gantry's lane_status() (either may be None) and
    the store's activity: latched and stopped come first, then held, then idle (no item for IDLE_S)."""
    figures = {"items_per_hour": act.items_last_hour, "queue_depth": act.queue_depth, "last_item_at": act.last_item_at}
    if belt is not None and belt.get("latched"):
        return {"state": "latched", "reason": belt.get("reason"), "since": _seconds(belt.get("since")), **figures}
    if belt is not None and not belt.get("running"):
        return {"state": "stopped", "reason": None, "since": None, **figures}
    if vehicle_lane is not None and vehicle_lane.get("state") == "held":
        since = now - float(vehicle_lane.get("oldest_s") or 0.0)
        return {"state": "held", "reason": "waiting_for_officer", "since": since, **figures}
    last = act.last_item_at if act.last_item_at is not None else started_at
    if now - last >= IDLE_S:
        return {"state": "idle", "reason": None, "since": last, **figures}
    return {"state": "running", "reason": None, "since": None, **figures}


def _seconds(at: object) -> float | None:
    """The belt's `since` (ISO 8601, edge/stations/beltlatch.py) in seconds since the epoch."""
    return datetime.fromisoformat(at).timestamp() if isinstance(at, str) else None


def device_faults(states: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Every device whose state is not `ok`, with its detail sentence."""
    return [{"device": name, "state": str(s.get("state")), "detail": str(s.get("detail") or "")}
            for name, s in sorted(states.items()) if s.get("state") != "ok"]


class LaneReport:
    """The status fields `lane` and `device_faults`; `follow` once the station's flow exists, `activity`
    refreshed by housekeeping. Before `follow` the lane is not reported (the hub shows connection only)."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.activity = Activity()
        self._belt: BeltControl | None = None
        self._lane: LaneControl | None = None
        self._devices: Any = None

    def follow(self, belt: BeltControl | None, lane: LaneControl | None, devices: Any) -> None:
        self._belt, self._lane, self._devices = belt, lane, devices

    def status(self) -> dict[str, Any]:
        if self._devices is None:
            return {}
        belt = self._belt.belt_status() if self._belt is not None else None
        lane = self._lane.lane_status() if self._lane is not None else None
        return {"lane": lane_state(belt, lane, self.activity, self.started_at, time.time()),
                "device_faults": device_faults(self._devices.states())}
