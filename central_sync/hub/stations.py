"""A station's state as the control room sees it: online, degraded, offline, with its backlog."""

from __future__ import annotations

import json
import time

STALE_FACTOR = 3.0
DEGRADED_BACKLOG_S = 300.0


def station_view(row: tuple, now: float | None = None, stale_s: float = 30.0) -> dict:
    """Derive the state from the last status message (retained, Last Will, periodic figures)."""
    station, state, session, status_json, status_at, seen_at = row
    now = time.time() if now is None else now
    status = json.loads(status_json)
    backlog = status.get("backlog", {})
    oldest = [b["oldest_at"] for b in backlog.values() if b.get("oldest_at")]
    age = (now - min(oldest)) if oldest else 0.0
    if state == "offline" or now - status_at > stale_s:
        derived = "offline"
    elif age > DEGRADED_BACKLOG_S or status.get("counters", {}).get("parked", 0) or _ack_stalled(status, backlog, now):
        derived = "degraded"
    else:
        derived = "online"
    return {"station": station, "state": derived, "reported_state": state, "session": session,
            "status_at": status_at, "seen_at": seen_at, "backlog": backlog, "oldest_backlog_age_s": round(age, 1),
            "last_ack_at": status.get("last_ack_at"), "last_error": status.get("last_error"),
            "counters": status.get("counters", {}), "risk_version": status.get("risk_version"),
            "risk_stale": bool(status.get("risk_stale")), "lane": status.get("lane"),
            "device_faults": status.get("device_faults", []), "condition": condition(derived, status),
            "models": status.get("models"),
            "software_version": status.get("software_version")}


CONDITIONS = ("offline", "latched", "stopped", "held", "fault", "degraded", "idle", "running", "online")
"""The board's colour, worst first: a station connected but latched, stopped, held, with a device at fault or
idle is not shown as fine; `online` is an older station that reports no lane."""


def condition(state: str, status: dict) -> str:
    """One word for the board: offline first, then the lane's state, then device faults, then the link's state."""
    lane = (status.get("lane") or {}).get("state")
    if state == "offline":
        return "offline"
    if lane in ("latched", "stopped", "held"):
        return lane
    if status.get("device_faults"):
        return "fault"
    if state == "degraded":
        return "degraded"
    return lane or "online"


def _ack_stalled(status: dict, backlog: dict, now: float) -> bool:
    rows = sum(b.get("rows", 0) for b in backlog.values())
    last = status.get("last_ack_at")
    return rows > 0 and last is not None and now - last > DEGRADED_BACKLOG_S
