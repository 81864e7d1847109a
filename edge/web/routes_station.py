"""Station routes: health panel, belt state and restart, technician diagnostics, TIP, audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from edge import audit, auth, tip
from edge.store import Store
from edge.web import cases, queries, render
from edge.web.deps import WebState, require, state, station_health

router = APIRouter()


def _web_health(store: Store) -> dict[str, Any]:
    return {"queue": queries.queue_size(store), "alarms": store.standing_alarms()}


@router.get("/api/health")
async def health(st: WebState = Depends(state), user: auth.User = Depends(require("health"))) -> dict:
    """Devices, model, sync backlog, budget misses, last errors: the station health panel."""
    data = station_health(st.ctx)
    web = await st.db(_web_health)
    return {**data, "station": st.ctx.station_id, "station_kind": st.ctx.station_kind, "panels": list(st.ctx.panels),
            "lane": st.ctx.lane,
            "budget_ms": st.ctx.budget_ms, "queue": web["queue"],
            "alarms": data.get("alarms") or [list(a) for a in web["alarms"]],
            "tip_active": st.tip.active, "material_colour": render.has_material_colour()}


def _stranded(store: Store, ids: list[str]) -> list[dict[str, Any]]:
    """The items that were on the belt when it stopped: each record's summary, or its id while it is
    still being written."""
    out: list[dict[str, Any]] = []
    for record_id in ids:
        record = store.get(record_id)
        out.append(cases.summary(record) if record is not None else {"id": record_id, "pending": True})
    return out


@router.get("/api/belt")
async def belt_state(st: WebState = Depends(state), user: auth.User = Depends(require("case.view"))) -> dict:
    """The belt as the officer's live view shows it: running, stopped or latched (with the reason), and
    the items that were on it when it latched."""
    belt = st.ctx.belt
    if belt is None:  # not a conveyor: nothing to show (not an error: every screen asks)
        return {"present": False}
    status = belt.belt_status()
    ids = status.get("stranded") or []
    items = await st.db(_stranded, [str(i) for i in ids]) if isinstance(ids, list) else []
    return {**status, "present": True, "stranded": items}


@router.post("/api/belt/restart")
async def belt_restart(st: WebState = Depends(state), user: auth.User = Depends(require("belt.restart"))) -> dict:
    """Run the conveyor belt again after it latched stopped; every request is audited, whatever its outcome."""
    belt = st.ctx.belt
    if belt is None:
        raise HTTPException(404, "no_belt")
    result = await belt.restart_belt(user.badge)
    await st.audit(user.badge, "belt.restart", "belt", result.as_dict())
    if result.outcome != "running":
        raise HTTPException(409 if result.outcome == "refused" else 502, result.code)
    return {**result.as_dict(), "belt": belt.belt_status()}


class LaneConfirm(BaseModel):
    """The vehicles (record ids) the screen listed when the lane was checked: the lane must still hold those."""

    model_config = ConfigDict(extra="forbid")
    vehicles: list[Annotated[str, Field(max_length=64)]] = Field(max_length=64)


@router.post("/api/lane/confirm")
async def lane_confirm(body: LaneConfirm, st: WebState = Depends(state),
                       user: auth.User = Depends(require("lane.confirm"))) -> dict:
    """The lane held because its file could not be read, or because a vehicle may have left it undecided (an exit
    tailgate), was checked: it holds no vehicle but those the screen listed (`vehicles`, which may leave out the
    vehicles the lane names `missing`: they left undecided; 409 `lane_changed` when the station's list differs now).
    The hold ends; every request is audited, whatever its outcome."""
    lane = st.ctx.lane_control
    if lane is None:
        raise HTTPException(404, "no_lane")
    before = lane.lane_status()
    vehicles = before.get("vehicles")
    result = await lane.confirm_lane(user.badge, body.vehicles)
    await st.audit(user.badge, "lane.confirm", "lane", {
        **result.as_dict(), "held": before.get("unknown") or "", "confirmed": body.vehicles,
        "vehicles": [v["id"] for v in vehicles] if isinstance(vehicles, list) else []})
    st.ctx.events.publish("lane", lane.lane_status())
    if result.outcome != "confirmed":
        raise HTTPException(409 if result.outcome == "refused" else 502, result.code)
    return {**result.as_dict(), "lane": lane.lane_status()}


def _diagnostics(store: Store) -> dict[str, Any]:
    ok, broken = audit.verify_conn(store.conn)
    return {"schema_version": store.schema_version(), "records": store.count(),
            "outbox_backlog": store.outbox_backlog(), "audit_chain": {"ok": ok, "first_broken_seq": broken},
            "db_path": str(store.db_path)}


@router.get("/api/diagnostics")
async def diagnostics(st: WebState = Depends(state), user: auth.User = Depends(require("diagnostics"))) -> dict:
    """Technician view: store, outbox, audit chain, event bus, TIP library; never a case image."""
    data = await st.db(_diagnostics)
    bus = st.ctx.events
    return {**data, "counters": dict(vars(st.ctx.store.store.counters)), "health": st.ctx.health(),
            "event_subscribers": len(getattr(bus, "_subs", ())), "bad_events": st.bad_events,
            "tip_library": sorted(st.tip.threats),
            "material_colour": render.has_material_colour()}


@router.get("/api/tip/stats")
async def tip_stats(st: WebState = Depends(state), user: auth.User = Depends(require("case.view"))) -> dict:
    """Per-officer TIP statistics: supervisors see everyone, officers themselves."""
    officer = None if user.can("tip.stats.all") else user.badge
    return {"officers": await st.db(lambda s: tip.stats(s.conn, officer)), "active": st.tip.active,
            "rate": st.tip.cfg.rate, "dwell_s": st.tip.cfg.min_dwell_s}


@router.post("/api/cases/{record_id}/seen")
async def tip_seen(record_id: str, st: WebState = Depends(state), user: auth.User = Depends(require("case.view"))) -> dict:
    """The screen watched this item's image for the dwell (live view, page visible). Says nothing of TIP
    to the screen: the officer must not learn from it which images hold a projection."""
    await st.db(lambda s: st.tip.seen(s.conn, user.badge, record_id))
    return {"ok": True}


@router.post("/api/cases/{record_id}/left")
async def tip_left(record_id: str, st: WebState = Depends(state), user: auth.User = Depends(require("case.view"))) -> dict:
    """The officer moved on from this item: a projection seen and not answered is a miss, told with
    where the threat was (its box in scan pixels); one not seen is not counted."""
    result = await st.db(lambda s: st.tip.left(s.conn, user.badge, record_id))
    if result is None:
        return {"tip": False}
    return {"tip": True, "outcome": result.outcome, "label": result.label, "box": result.box}


@router.get("/api/audit")
async def audit_log(object: str | None = None, limit: int = Query(200, ge=1, le=1000), st: WebState = Depends(state),
                    user: auth.User = Depends(require("audit.view"))) -> dict:
    rows = await st.db(lambda s: audit.entries(s.conn, object, limit))
    return {"entries": [e.as_dict() for e in rows]}


@router.get("/api/audit/verify")
async def audit_verify(st: WebState = Depends(state), user: auth.User = Depends(require("audit.view"))) -> dict:
    broken = await st.db(lambda s: audit.first_break(s.conn))
    return {"ok": broken is None, "first_broken_seq": broken and broken.seq, "reason": broken and str(broken)}
