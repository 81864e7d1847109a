"""Case routes: the live stream, case images, decisions, screening answers, queue, history, export."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from central_sync.schema import InspectionRecord
from edge import audit, auth, dicos
from edge.context import LaneControl
from edge.stations.lane import LaneDecision
from edge.events import Event
from edge.store import Store
from edge.web import cases, export, queries, render, sse
from edge.web.deps import COOKIE, WebState, lang_of, require, state
from models.errors import ScanFormatError

log = structlog.get_logger()
REPLAY_MAX = 100  # items a reconnecting screen is sent again, at most (the newest it missed)
MAX_SEQ = 2**63 - 1  # SQLite's largest integer: a larger one in a query failed the request with 500
router = APIRouter()
VIEWER = require("case.view")
FETCHED = require("case.view", touch=False)  # what the screen fetches by itself (the stream, images): no act of the user
DECIDER = require("case.decide")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


async def _call(st: WebState, fn: Callable[[Store, Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
    try:
        return await st.db(fn, *args)
    except cases.CaseError as exc:
        raise HTTPException(exc.status, exc.code) from exc


def _item_mapper(st: WebState, user: auth.User, last_seq: int) -> sse.Mapper:
    """Inspections (each once, in seq order, ids = seq for resuming) and reviews for one screen."""
    newest = last_seq

    async def mapper(event: Event) -> sse.Mapped:
        nonlocal newest
        if event.topic in ("review", "lane", "risk", "not_replayed"):
            return event.topic, event.data, None
        if event.topic != "inspection":
            return None
        try:
            record = InspectionRecord.model_validate(event.data)
        except ValidationError as exc:
            st.bad_events += 1
            log.warning("web.bad_inspection_event", error=str(exc).splitlines()[0], count=st.bad_events)
            return None
        if record.seq <= newest:  # already sent by the replay
            return None
        newest = record.seq
        await st.db(lambda s: st.tip.on_item(s, user.badge, record))
        stored = await st.db(queries.scan_stored, record.id)
        hold = await st.db(lambda s: s.hold_of(record))  # a held vehicle arriving shows its badge at once
        return "inspection", {**cases.summary(record, stored), "hold": hold}, record.seq

    return mapper


def _last_event_id(request: Request) -> int | None:
    value = request.headers.get("last-event-id", "")
    # ASCII digits only ('²' is a digit to str.isdigit, not to int), within what a seq can be
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


@router.get("/api/stream")
async def live(request: Request, after: int | None = Query(None, ge=0, le=MAX_SEQ), st: WebState = Depends(state),
               user: auth.User = Depends(FETCHED)) -> StreamingResponse:
    """Every decided inspection as it happens (server-sent events); a reconnecting browser gets
    what it missed (Last-Event-ID = the last seq it saw), up to the last REPLAY_MAX items, after one
    `not_replayed` event with the count of the older ones it missed when there are more. A reloaded page
    (a new stream, no Last-Event-ID) names the last seq it saw as `after`: the items waiting behind the
    one it held come again."""
    token = request.cookies[COOKIE]
    resume = _last_event_id(request)
    if resume is None:
        resume = after

    async def replay() -> list[Event]:
        if resume is None:
            return []
        records = await st.db(queries.after_seq, resume, REPLAY_MAX)
        older = await st.db(queries.count_between, resume, records[0].seq) if len(records) == REPLAY_MAX else 0
        note = [Event("not_replayed", {"count": older})] if older else []
        return note + [Event("inspection", r.model_dump(mode="json", by_alias=True)) for r in records]

    async def still_signed_in() -> bool:
        """The session still open and its user still one who may view cases (a role changed meanwhile, to a
        technician say, ends the stream as a sign-out does: it checked only that the session existed)."""
        now = await st.db(lambda s: auth.session_user(s.conn, token, st.policy, touch=False))
        return now is not None and now.can("case.view")

    mapper = _item_mapper(st, user, resume or 0)
    return StreamingResponse(sse.stream(st.ctx.events, mapper, st.stopping, still_signed_in, replay),
                             media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/api/cases/{record_id}")
async def case(record_id: str, st: WebState = Depends(state), user: auth.User = Depends(VIEWER)) -> dict:
    def load(s: Store) -> dict[str, Any]:
        record = cases.get_case(s, record_id)
        trail = [_trail_entry(e, user) for e in audit.entries(s.conn, record_id)]
        return {**cases.summary(record, queries.scan_stored(s, record_id)), "audit": trail, "hold": s.hold_of(record)}

    return await _call(st, load)


def _trail_entry(entry: audit.AuditEntry, user: auth.User) -> dict[str, Any]:
    """An audit entry of the case as this user may read it: without `audit.view` (an officer), without
    the TIP part of its detail, which says whether an image view held a projection (the officer would
    learn which images are the test by loading one and reading the case's trail)."""
    shown = entry.as_dict()
    if not user.can("audit.view"):
        shown["detail"] = {k: v for k, v in shown["detail"].items() if k != "tip"}
    return shown


@router.get("/api/cases/{record_id}/image.png")
async def image(record_id: str, request: Request, mode: str = Query("colour"), st: WebState = Depends(state),
                user: auth.User = Depends(FETCHED)) -> Response:
    """The scan as the officer sees it (TIP projection included while one awaits an answer); audited."""
    if mode not in render.VIEW_MODES:
        raise HTTPException(422, "unknown_view_mode")
    record, source = await _call(st, cases.image_source, st.tip, user, record_id, mode)
    try:
        png = await asyncio.to_thread(cases.draw, record, source, st.tip, mode, lang_of(request, st, user))
    except ScanFormatError as exc:
        log.error("web.scan_unreadable", record=record_id, error=str(exc))
        raise HTTPException(500, "scan_unreadable") from exc
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/cases/{record_id}/scan.bin")
async def scan_data(record_id: str, st: WebState = Depends(state), user: auth.User = Depends(FETCHED)) -> Response:
    """The scan as raw dual-energy data for the screen's image tools (edge/web/scandata.py); audited as a view."""
    record, source = await _call(st, cases.image_source, st.tip, user, record_id, "data")
    try:
        body = await asyncio.to_thread(cases.scan_data, record, source, st.tip)
    except ScanFormatError as exc:
        log.error("web.scan_unreadable", record=record_id, error=str(exc))
        raise HTTPException(500, "scan_unreadable") from exc
    return Response(body, media_type="application/octet-stream",
                    headers={"Cache-Control": "no-store", "Content-Encoding": "gzip"})


@router.get("/api/cases/{record_id}/crops/{sha256}.png")
async def crop(record_id: str, sha256: str, st: WebState = Depends(state),
               user: auth.User = Depends(FETCHED)) -> Response:
    """The evidence crop of one of the record's identities (the camera's view of the plate or code it read)."""
    png = await _call(st, cases.identity_crop, record_id, sha256)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/api/cases/{record_id}/reference.png")
async def reference(record_id: str, mode: str = Query("colour"), st: WebState = Depends(state),
                    user: auth.User = Depends(FETCHED)) -> Response:
    """The vehicle's reference pass the record was compared with (issue 19), drawn as its scan is; audited."""
    if mode not in render.VIEW_MODES:
        raise HTTPException(422, "unknown_view_mode")
    record, path = await _call(st, cases.reference_source, user, record_id)
    try:
        png = await asyncio.to_thread(cases.draw_reference, record, path, mode)
    except ScanFormatError as exc:
        log.error("web.reference_unreadable", record=record_id, error=str(exc))
        raise HTTPException(500, "scan_unreadable") from exc
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.post("/api/cases/{record_id}/decision")
async def decision(record_id: str, body: cases.Decision, st: WebState = Depends(state),
                   user: auth.User = Depends(DECIDER)) -> dict:
    """Store the officer's review; on a gantry, also release the vehicle or send it to the search bay
    (its gate opened by a request read back, audited whatever the outcome). A decision the lane refuses as it
    stands (held, the vehicle leaving) is refused before anything is stored: no review says a vehicle was released
    that did not move."""
    lane = _lane_for(st, user, body)
    if lane is not None and body.lane is not None:
        if not _in_lane(lane, record_id):
            raise HTTPException(409, "vehicle_not_in_lane")
        refused = lane.refusal(record_id, body.lane)
        if refused is not None:
            await _lane_audit(st, lane, user, record_id, body, refused)  # 409, nothing stored
    if body.outcome is None:
        record = await _call(st, cases.get_case, record_id)
    else:  # a vehicle still waiting may be decided again (its release did not happen)
        record, review = await _call(st, cases.decide, user, record_id, body, lane is not None)
        st.ctx.events.publish("review", {"id": record.id, "review": review.model_dump(mode="json")})
    if lane is None or body.lane is None:
        return cases.summary(record)
    result = await _move_vehicle(st, lane, user, record_id, body)
    return {**cases.summary(record), "lane": result.as_dict()}


async def _move_vehicle(st: WebState, lane: LaneControl, user: auth.User, record_id: str,
                        body: cases.Decision) -> LaneDecision:
    """Carry out the decision's way out for the vehicle, audited whatever the outcome; an HTTP error unless
    its gate is open or it is queued behind the vehicles ahead."""
    assert body.lane is not None
    result = await lane.decide_vehicle(record_id, body.lane, user.badge)
    await _lane_audit(st, lane, user, record_id, body, result)
    return result


async def _lane_audit(st: WebState, lane: LaneControl, user: auth.User, record_id: str, body: cases.Decision,
                      result: LaneDecision) -> None:
    """Audit what the lane made of the decision and show the lane; an HTTP error when it was refused or failed."""
    await st.audit(user.badge, "lane.release" if body.lane == "release" else "lane.search_bay", record_id,
                   {"result": result.outcome, "code": result.code, "message": result.message,
                    "outcome": body.outcome, "reason": body.note, "supervisor": body.outcome == "override"})
    st.ctx.events.publish("lane", lane.lane_status())
    if result.outcome in ("refused", "failed"):
        raise HTTPException(409 if result.outcome == "refused" else 502, result.code)


def _lane_for(st: WebState, user: auth.User, body: cases.Decision) -> LaneControl | None:
    """The station's vehicle lane when the decision moves a vehicle (checked: may this user move it so?)."""
    if body.lane is None:
        if body.outcome is None:
            raise HTTPException(422, "decision_needs_outcome")
        return None
    lane = st.ctx.lane_control
    if lane is None:
        raise HTTPException(404, "no_lane")
    refusal = cases.lane_refusal(user, body)
    if refusal is not None:
        raise HTTPException(refusal.status, refusal.code)
    return lane


def _in_lane(lane: LaneControl, record_id: str) -> bool:
    """The vehicle of this record waits in the lane (not already leaving it)."""
    vehicles = lane.lane_status().get("vehicles")
    return any(v["id"] == record_id and not v["leaving"] for v in vehicles) if isinstance(vehicles, list) else False


@router.get("/api/lane")
async def lane_state(st: WebState = Depends(state), user: auth.User = Depends(VIEWER)) -> dict:
    """The vehicles between scanner and barrier, first to leave first, and whether the lane is held."""
    if st.ctx.lane_control is None:
        raise HTTPException(404, "no_lane")
    return st.ctx.lane_control.lane_status()


@router.post("/api/cases/{record_id}/screen")
async def screening(record_id: str, body: cases.Screening, st: WebState = Depends(state),
                    user: auth.User = Depends(DECIDER)) -> dict:
    return await _call(st, cases.screen, st.tip, user, record_id, body)


@router.get("/api/queue")
async def queue(after_seq: int = Query(0, ge=0, le=MAX_SEQ), limit: int = Query(100, ge=1, le=500),
                st: WebState = Depends(state),
                user: auth.User = Depends(VIEWER)) -> dict:
    """The undecided items, oldest first, a page at a time (`after_seq`: the last seq of the page before)."""
    records, total = await st.db(lambda s: (queries.queue(s, limit, after_seq), queries.queue_size(s)))
    return {"items": [cases.summary(r) for r in records], "total": total}


@router.get("/api/history")
async def history(q: str = "", verdict: str | None = None, reviewed: bool | None = None,
                  since: str | None = None, until: str | None = None, officer: str | None = None,
                  before_seq: int | None = Query(None, ge=0, le=MAX_SEQ), st: WebState = Depends(state),
                  user: auth.User = Depends(VIEWER)) -> dict:
    try:
        since, until = (queries.utc_iso(v) if v else None for v in (since, until))
    except (ValueError, OverflowError) as exc:  # 9999-12-31T23:59:59-23:00 overflows in UTC
        raise HTTPException(422, "bad_time") from exc
    f = queries.HistoryFilter(q[:200], verdict, reviewed, since, until, officer, st.cfg.history_page_size,
                              before_seq)
    records = await st.db(queries.history, f)
    return {"items": [cases.summary(r) for r in records], "page_size": f.limit}  # a page shorter than that is the last


@router.get("/api/export.zip")
async def export_zip(st: WebState = Depends(state), user: auth.User = Depends(require("case.export"))) -> FileResponse:
    """Reviewed items with their scans as a COCO dataset, audited once the zip is written (as the other exports are:
    an export that failed was audited as done before its zip was begun)."""
    records = await st.db(queries.reviewed_with_scans)
    try:
        tmp = await asyncio.to_thread(_dataset_zip, records, (await st.open()).store.scan_path)
    except OSError as exc:  # the temporary folder gone, full or not writable
        log.warning("web.export_failed", actor=user.badge, items=len(records),
                    error=f"the dataset of {len(records)} reviewed items could not be written: {exc}")
        raise HTTPException(507, "export_not_written") from exc
    await st.audit(user.badge, "export.dataset", "station", {"items": len(records), "bytes": tmp.stat().st_size})
    return FileResponse(tmp, media_type="application/zip", filename=f"{st.ctx.station_id}-reviewed.zip",
                        background=BackgroundTask(tmp.unlink, missing_ok=True))


def _dataset_zip(records: list[InspectionRecord], scan_path: Callable[[str], Path]) -> Path:
    """The dataset zip in a temporary file (removed again when it cannot be written whole)."""
    fd, name = tempfile.mkstemp(prefix="cpe-export-", suffix=".zip")
    os.close(fd)
    tmp = Path(name)
    try:
        return export.write_zip(records, scan_path, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@router.get("/api/cases/{record_id}/dicos.zip")
async def export_dicos(record_id: str, st: WebState = Depends(state),
                       user: auth.User = Depends(require("case.export"))) -> Response:
    """The record as DICOS (DX images and threat detection reports, docs/dicos.md), audited."""
    try:
        record, path = await st.db(dicos.locate, record_id)
        files = await asyncio.to_thread(dicos.scan_file_dicos, record, path)
    except dicos.DicosExportError as exc:
        log.warning("web.dicos_refused", record=record_id, reason=str(exc))
        raise HTTPException(404, "dicos_unavailable") from exc
    data = dicos.zip_bytes(files)
    await st.audit(user.badge, "export.dicos", record_id, {"bytes": len(data)})
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{record_id}-dicos.zip"'})
