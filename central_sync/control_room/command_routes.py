"""The control room's command routes: the stations one may command with their current settings, sending
a checked command, undoing one, the list and one command with its diagnostic report (docs/control-room.md).

    GET  /cr/api/commands/stations      known stations, state, effective settings
    POST /cr/api/commands               {station, op, args}: 404 unknown station, 422 bad value
    POST /cr/api/commands/{id}/undo     a new command restoring what {id} replaced (audited as command_undo)
    POST /cr/api/commands/{id}/resend   {id} refused `queue_full` by its station: the same op and args under a new
                                        id, once (audited as command_sent, or command_undo with the undo_of of an
                                        undo, with resend_of)
    GET  /cr/api/commands               newest first: outcome, previous values, undo_of, has_report
    GET  /cr/api/commands/{id}          one command with the diagnostic report when one came back
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from central_sync import commands as c
from central_sync.control_room import audit, auth, commanding
from central_sync.control_room.db import execute
from central_sync.control_room.refusals import Refused, forbidden
from central_sync.errors import HubStoreError

if TYPE_CHECKING:
    from central_sync.control_room.service import ControlRoom

COLUMNS = ("id", "station", "op", "args", "issuer", "issued_at", "outcome", "reason", "detail", "expires_at",
           "previous", "undo_of", "report_outcome", "resend_of", "resent_as")
SELECT = ("SELECT c.id, c.station, c.op, c.args, c.issuer, c.issued_at, c.outcome, c.reason, c.detail, c.expires_at,"
          " x.previous, x.undo_of, r.outcome, s.resend_of, a.id FROM cr_commands c"
          " LEFT JOIN cr_command_context x ON x.id = c.id LEFT JOIN cr_command_reports r ON r.id = c.id"
          " LEFT JOIN cr_command_resends s ON s.id = c.id LEFT JOIN cr_command_resends a ON a.resend_of = c.id")


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station: str = Field(min_length=1, max_length=64)
    op: c.Op
    args: dict = Field(default_factory=dict)


def build_command_router(room: ControlRoom, need: Callable[[str], Callable[..., auth.User]]) -> APIRouter:
    store = room.store
    r = APIRouter()

    def forbid_model_switch(user: auth.User, station: str, op: str) -> None:
        """A supervisor's model switch: refused, audited with the station and counted as any refusal (it was audited
        as a generic `refused` naming neither the station nor the operation, and not counted)."""
        if op == "switch_model" and not user.can("switch_model"):
            raise refused(user, station, op, forbidden(user.role, "switch_model"))

    def refused(user: auth.User, station: str, op: str, exc: HTTPException) -> HTTPException:
        room.counters[f"command_refused_{exc.status_code}"] += 1
        audit.append(store, user.username, "command_refused", station, {"op": op, "why": exc.detail})
        return exc

    def send(user: auth.User, station: str, op: c.Op, args: dict[str, Any], undo_of: str | None = None,
             resend_of: str | None = None) -> dict:
        if room.key is None or room.link is None:
            raise refused(user, station, op, Refused(503, "command.disabled", "the hub has no signing key or no broker link;"
                                                     f" commands are disabled; nothing was sent to {station}", station=station))
        try:
            commanding.check_station(store, station)
            settings = commanding.settings_of(store, station)
            clean = commanding.check_args(station, op, args, settings)
        except HTTPException as exc:
            raise refused(user, station, op, exc) from None
        previous = commanding.previous_values(op, clean, settings)
        try:
            cmd = room.send(station, op, clean, user.username, previous=previous, undo_of=undo_of, resend_of=resend_of)
        except HubStoreError as exc:  # two sent it again at once: the second finds it sent (cr_command_resends)
            if resend_of and one(resend_of)["resent_as"]:
                raise refused(user, station, op, already_resent(one(resend_of))) from exc
            raise
        except c.CommandError as exc:  # the broker link is not running: refused, audited and counted as any other
            raise refused(user, station, op, Refused(503, "command.not_sent", f"{exc}; nothing was sent to {station}",
                                                     station=station)) from exc
        audit.append(store, user.username, "command_undo" if undo_of else "command_sent", station,
                     {"id": cmd.id, "op": cmd.op, "args": cmd.args, "previous": previous, "undo_of": undo_of}
                     | ({"resend_of": resend_of} if resend_of else {}))
        return {"id": cmd.id, "expires_at": cmd.expires_at, "previous": previous, "undo_of": undo_of,
                "resend_of": resend_of}

    def already_resent(row: dict) -> Refused:
        return Refused(409, "command.already_resent", f"command {row['id']} was sent again already, as"
                       f" {row['resent_as']}; nothing was sent", id=row["id"], resent_as=row["resent_as"])

    @r.get("/cr/api/commands/stations")
    def stations(user: auth.User = Depends(need("view"))) -> list[dict]:
        settings = commanding.all_settings(store)
        states = {s["station"]: s["state"] for s in room.feed.stations()}
        return [{"station": s, "state": states.get(s), "settings": settings.get(s)}
                for s in commanding.known_stations(store)]

    @r.post("/cr/api/commands")
    def command(body: CommandIn, user: auth.User = Depends(need("command"))) -> dict:
        forbid_model_switch(user, body.station, body.op)
        return send(user, body.station, body.op, body.args)

    @r.post("/cr/api/commands/{cmd_id}/undo")
    def undo(cmd_id: str, user: auth.User = Depends(need("command"))) -> dict:
        row = one(cmd_id)
        forbid_model_switch(user, row["station"], row["op"])
        try:
            args = commanding.undo_args(cmd_id, row["op"], row["outcome"], row["previous"])
        except HTTPException as exc:
            raise refused(user, row["station"], row["op"], exc) from None
        return send(user, row["station"], row["op"], args, undo_of=cmd_id)

    @r.post("/cr/api/commands/{cmd_id}/resend")
    def resend(cmd_id: str, user: auth.User = Depends(need("command"))) -> dict:
        """A command its station refused `queue_full` (nothing was applied): the same op and args, signed anew."""
        row = one(cmd_id)
        forbid_model_switch(user, row["station"], row["op"])
        if (row["outcome"], row["reason"]) != ("rejected", "queue_full"):
            raise refused(user, row["station"], row["op"], Refused(
                409, "command.not_resendable", f"command {cmd_id} was not refused for a full queue (outcome"
                f" {row['outcome'] or 'pending'}, reason {row['reason'] or '-'}); only such a command is sent again",
                id=cmd_id, outcome=row["outcome"] or "pending"))
        if row["resent_as"]:
            raise refused(user, row["station"], row["op"], already_resent(row))
        # an undo sent again is still that undo (audited as command_undo, listed with the command it reverses)
        return send(user, row["station"], row["op"], row["args"], undo_of=row["undo_of"], resend_of=cmd_id)

    def view(row: tuple, now: float) -> dict:
        d = dict(zip(COLUMNS, row))
        d["args"] = json.loads(d["args"])
        d["previous"] = json.loads(d["previous"]) if d["previous"] else None
        d["outcome"] = d["outcome"] or ("no_report" if d["expires_at"] < now else None)
        d["has_report"] = d.pop("report_outcome") is not None
        d["undoable"] = d["op"] in commanding.UNDOABLE and d["outcome"] == "applied"
        d["resendable"] = (d["outcome"], d["reason"]) == ("rejected", "queue_full") and not d["resent_as"]
        return d

    def one(cmd_id: str) -> dict:
        rows = execute(store, f"{SELECT} WHERE c.id=?", (cmd_id,))
        if not rows:
            raise Refused(404, "command.unknown", f"no command {cmd_id!r} was sent from this hub", id=cmd_id)
        return view(rows[0], time.time())

    @r.get("/cr/api/commands")
    def command_list(limit: int = Query(100, ge=1, le=1000), user: auth.User = Depends(need("view"))) -> list[dict]:
        now = time.time()
        return [view(row, now) for row in execute(store, f"{SELECT} ORDER BY c.issued_at DESC LIMIT ?", (limit,))]

    @r.get("/cr/api/commands/{cmd_id}")
    def command_one(cmd_id: str, user: auth.User = Depends(need("view"))) -> dict:
        d = one(cmd_id)
        rows = execute(store, "SELECT report, at FROM cr_command_reports WHERE id=?", (cmd_id,))
        d["report"] = json.loads(rows[0][0]) if rows else None
        d["report_at"] = rows[0][1] if rows else None
        return d

    return r
