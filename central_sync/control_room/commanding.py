"""What the control room knows of a station's command settings, and the checks before a command is signed.

A station reports its effective settings (edge.commands: per-class thresholds, TIP rate, model,
last applied command, `changed_at`) in two places: in every status (the hub's `stations` table)
and in every command result (kept here in `cr_station_settings`). The newer by `changed_at` wins,
so a change shows as soon as its result arrives and a restarted hub still knows the values.

Before a command is signed the hub checks, each refusal one sentence with the values:
the station is known to this hub; the arguments are well formed (central_sync.commands); a
threshold names a class the station's model has and lies in (0, MAX_THRESHOLD] (0.99: a threshold of 1
turns the class's detection off, which no command may do). It records the values the
command replaces (`previous`), which is what an undo sends back.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from central_sync import commands as c
from central_sync.control_room.db import execute
from central_sync.control_room.refusals import Refused
from central_sync.hub.store import HubStore

UNDOABLE = ("set_thresholds", "set_tip_rate", "switch_model")
# an argument's problems with a sentence of their own (error.command.arg.<problem>); any other is command.bad_args
ARG_PROBLEMS = ("missing", "extra_forbidden", "greater_than", "greater_than_equal", "less_than", "less_than_equal",
                "too_short", "too_long")


def known_stations(store: HubStore) -> list[str]:
    return sorted(store.station_ids())


def check_station(store: HubStore, station: str) -> None:
    known = known_stations(store)
    if station not in known:
        raise Refused(404, "command.unknown_station", f"station {station!r} is not known to this hub"
                      f" (known: {', '.join(known) or 'none'}); nothing was sent", station=station,
                      known=", ".join(known) or "-")


def all_settings(store: HubStore) -> dict[str, dict[str, Any]]:
    """Per station, its newest reported settings (from its status or from a command result)."""
    best: dict[str, tuple[tuple[float, float], dict[str, Any]]] = {}

    def offer(station: str, settings: dict[str, Any] | None, at: float) -> None:
        if not settings:
            return
        key = (_seconds(settings.get("changed_at")), at)
        if station not in best or key > best[station][0]:
            best[station] = (key, {**settings, "reported_at": at})

    for station, _, _, status_json, status_at, _ in store.stations():
        offer(station, json.loads(status_json).get("settings"), status_at)
    for station, settings, at in execute(store, "SELECT station, settings, at FROM cr_station_settings"):
        offer(station, json.loads(settings), at)
    return {station: settings for station, (_, settings) in best.items()}


def _seconds(value: object) -> float:
    """A settings time as the station writes it (epoch seconds); 0 for anything else (a station's status is its
    own: a string there compared with a command result's number failed the live feed and every command)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else 0.0  # type: ignore[arg-type]


def settings_of(store: HubStore, station: str) -> dict[str, Any] | None:
    return all_settings(store).get(station)


def remember_settings(store: HubStore, station: str, settings: dict[str, Any]) -> None:
    """A command result's settings (paho's thread)."""
    execute(store, "INSERT INTO cr_station_settings (station, settings, changed_at, at) VALUES (?,?,?,?)"
                   " ON CONFLICT (station) DO UPDATE SET settings=excluded.settings, changed_at=excluded.changed_at,"
                   " at=excluded.at", (station, json.dumps(settings), _seconds(settings.get("changed_at")) or None,
                                       time.time()))


def check_args(station: str, op: str, args: dict[str, Any], settings: dict[str, Any] | None) -> dict[str, Any]:
    """The validated arguments; Refused(422) names the value and what is allowed."""
    asked = args.get("thresholds") if op == "set_thresholds" else None
    for name, value in asked.items() if isinstance(asked, dict) else ():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and not 0 < value <= c.MAX_THRESHOLD:  # 1.0 lets nothing through: detection of the class off
            raise Refused(422, "command.threshold_range", f"threshold {value} for {name} is outside"
                          f" (0, {c.MAX_THRESHOLD}]: a command may not turn the detection of a class off; nothing was"
                          f" sent to {station}", value=value, cls=name, max=c.MAX_THRESHOLD, station=station)
    try:
        clean = c.check_args(op, args)
    except c.CommandFormatError as exc:
        code = f"command.arg.{exc.problem}" if exc.problem in ARG_PROBLEMS else "command.bad_args"
        raise Refused(422, code, f"{exc}; nothing was sent to {station}", field=exc.field, value=exc.value or "-",
                      limit=exc.limit, station=station) from exc
    if op == "set_thresholds":
        classes = sorted((settings or {}).get("thresholds") or {})
        for name in clean["thresholds"]:
            if classes and name not in classes:
                raise Refused(422, "command.unknown_class", f"the model on {station} has no class {name!r}"
                              f" (it has {', '.join(classes)}); nothing was sent", station=station, cls=name,
                              classes=", ".join(classes))
    return clean


def previous_values(op: str, args: dict[str, Any], settings: dict[str, Any] | None) -> dict[str, Any]:
    """What the command replaces, as far as the station has reported it (None where unknown)."""
    s = settings or {}
    if op == "set_thresholds":
        return {"thresholds": {k: (s.get("thresholds") or {}).get(k) for k in args["thresholds"]}}
    if op == "set_tip_rate":
        return {"rate": s.get("tip_rate")}
    if op == "switch_model":
        return {"sha256": (s.get("model") or {}).get("sha256")}
    return {}


def undo_args(cmd_id: str, op: str, outcome: str | None, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The arguments that restore what command `cmd_id` replaced; Refused(409) when there is nothing to restore."""
    if op not in UNDOABLE:
        raise Refused(409, "command.not_undoable", f"command {cmd_id} ({op}) changes no setting and cannot be undone",
                      id=cmd_id, op=op)
    if outcome != "applied":
        raise Refused(409, "command.not_applied", f"command {cmd_id} was not applied (outcome {outcome or 'pending'});"
                      " there is nothing to undo", id=cmd_id, outcome=outcome or "pending")
    prev = previous or {}
    unknown = [k for k, v in ((prev.get("thresholds") or {}) if op == "set_thresholds" else prev).items() if v is None]
    if not prev or unknown:
        many = len(unknown) > 1
        names = ", ".join(unknown) or op
        raise Refused(409, "command.previous_unknown", f"the value{'s' if many else ''} that command {cmd_id} replaced"
                      f" ({names}) {'were' if many else 'was'} not reported by the station; set"
                      f" {'them' if many else 'it'} by hand", id=cmd_id, names=names)
    return prev
