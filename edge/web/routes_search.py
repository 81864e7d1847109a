"""Vehicle search report routes: diagrams, photos, signing and countersigning (badge + PIN), versions, printing.

Signing needs a signed-in screen (officer or supervisor) and the signer's own badge + PIN in the request: the
signer may be someone other than the screen's user (a supervisor countersigning at the officer's screen).
Wrong PINs count against the sign-in guard like a sign-in (per badge and client), so the signature form cannot
be used to guess PINs.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from central_sync import blobs
from central_sync.schema import InspectionRecord, SearchReport
from drivers.errors import LinkLost
from edge import audit, auth, search_print, search_report
from edge.search_report import Countersignature, ReportForm, SearchReportRefused
from edge.store import Store
from edge.web import cases
from edge.web.deps import WebState, lang_of, require, state
from edge.web.routes_auth import audit_refusal

log = structlog.get_logger()
router = APIRouter()
VIEWER = require("case.view")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")
MAX_PHOTO_BYTES = blobs.MAX_PHOTO_BYTES  # what the station keeps is what it may send to the hub
SHA256 = re.compile(r"^[0-9a-f]{64}$")
refusals: Counter[str] = Counter()  # refused signatures, countersignatures, photos and prints, by code


def _too_large(size: int) -> HTTPException:
    refusals["photo_too_large"] += 1
    log.warning("search_report.refused", code="photo_too_large", detail=f"a photo of {size} bytes is over the "
                f"limit of {MAX_PHOTO_BYTES}", count=refusals["photo_too_large"])
    return HTTPException(413, "photo_too_large")


def _refused(exc: SearchReportRefused | cases.CaseError) -> HTTPException:
    """The refusal as the screen gets it (its catalogue code), counted by code and logged in its sentence."""
    refusals[exc.code] += 1
    log.warning("search_report.refused", code=exc.code, detail=str(exc), count=refusals[exc.code])
    return HTTPException(exc.status, exc.code)


async def _call(st: WebState, fn: Callable[[Store, Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
    try:
        return await st.db(fn, *args)
    except (SearchReportRefused, cases.CaseError) as exc:
        raise _refused(exc) from exc


async def _checked_photo(data: bytes, content_type: str) -> None:
    """`search_report.check_photo` off the store's thread (decoding an 8 MB photo would hold the screen's queries)."""
    try:
        await asyncio.to_thread(search_report.check_photo, data, content_type)
    except SearchReportRefused as exc:
        raise _refused(exc) from exc


async def _signed(st: WebState, request: Request, badge: str, record_id: str, fn: Callable[[Store], T]) -> T:
    """Run a signing call under the sign-in guard: refused unseen while the badge is locked for this client; a
    wrong badge + PIN is audited as a sign-in's is (its object the record)."""
    client = request.client.host if request.client else "unknown"
    key = badge.strip().upper()[:32]
    if wait := st.guard.wait_s(key, client):
        raise HTTPException(429, "signin_locked", headers={"Retry-After": str(max(1, round(wait)))})
    try:
        result = await st.db(fn)
    except (SearchReportRefused, cases.CaseError) as exc:
        if exc.code == "signature_refused":
            await st.db(audit_refusal, key, client, st.guard.failed(key, client), st.guard, record_id)
        raise _refused(exc) from exc
    st.guard.succeeded(key, client)
    return result


@router.get("/api/search/diagrams")
async def diagrams(st: WebState = Depends(state), user: auth.User = Depends(VIEWER)) -> dict:
    """The vehicle diagrams, the methods and the station cameras a photo can be taken with."""
    return {"diagrams": search_report.diagrams(), "methods": list(search_report.METHODS),
            "cameras": sorted(st.ctx.cameras)}


@router.get("/api/cases/{record_id}/search-reports")
async def reports(record_id: str, st: WebState = Depends(state), user: auth.User = Depends(VIEWER)) -> dict:
    return search_report.view(await _call(st, cases.get_case, record_id))


@router.post("/api/cases/{record_id}/search-reports")
async def sign(record_id: str, body: ReportForm, request: Request, st: WebState = Depends(state),
               user: auth.User = Depends(require("case.decide"))) -> dict:
    """Sign a new version of the vehicle's report (badge + PIN of the signer in the body)."""
    report = await _signed(st, request, body.badge, record_id, lambda s: search_report.sign(s, cases.get_case(s, record_id).id, body))
    st.ctx.events.publish("search_report", {"id": record_id, "version": report.version})
    return search_report.view(await _call(st, cases.get_case, record_id))


@router.post("/api/cases/{record_id}/search-reports/{version}/countersign")
async def countersign(record_id: str, version: int, body: Countersignature, request: Request,
                      st: WebState = Depends(state), user: auth.User = Depends(VIEWER)) -> dict:
    """A supervisor's countersignature (badge + PIN in the body) on the latest version of a seizure report."""
    await _signed(st, request, body.badge, record_id,
                  lambda s: search_report.countersign(s, cases.get_case(s, record_id).id, version, body))
    st.ctx.events.publish("search_report", {"id": record_id, "version": version})
    return search_report.view(await _call(st, cases.get_case, record_id))


@router.post("/api/search-photos")
async def add_photo(request: Request, st: WebState = Depends(state),
                    user: auth.User = Depends(require("case.decide"))) -> dict:
    """Keep an uploaded photo (the request body, image/jpeg or image/png); its sha256 goes into the report."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > MAX_PHOTO_BYTES:  # refused before it is read into memory
        raise _too_large(int(announced))
    received = bytearray()
    async for part in request.stream():  # a body without a length (chunked) stops here too, not in memory
        received += part
        if len(received) > MAX_PHOTO_BYTES:
            raise _too_large(len(received))
    data = bytes(received)
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    await _checked_photo(data, kind)

    def keep(s: Store) -> str:
        sha = search_report.keep_photo(s, data)
        audit.append(s.conn, user.badge, "search.photo_added", sha, {"bytes": len(data), "type": kind})
        return sha

    return {"sha256": await _call(st, keep)}


@router.post("/api/search-photos/camera/{name}")
async def camera_photo(name: str, st: WebState = Depends(state),
                       user: auth.User = Depends(require("case.decide"))) -> dict:
    """Take a photo with a station camera now and keep it like an upload."""
    take = st.ctx.cameras.get(name)
    if take is None:
        raise HTTPException(404, "camera_unknown")
    try:
        data = await take()
    except LinkLost as exc:
        log.warning("camera.photo_failed", camera=name, error=str(exc))
        raise HTTPException(502, "camera_no_frame") from exc
    await _checked_photo(data, "image/jpeg")

    def keep(s: Store) -> str:
        sha = search_report.keep_photo(s, data)
        audit.append(s.conn, user.badge, "search.photo_added", sha, {"bytes": len(data), "camera": name})
        return sha

    return {"sha256": await _call(st, keep)}


@router.get("/api/search-photos/{sha256}")
async def photo(sha256: str, st: WebState = Depends(state), user: auth.User = Depends(VIEWER)) -> FileResponse:
    if not SHA256.match(sha256):
        raise HTTPException(404, "search_photo_missing")
    path = (await st.open()).store.photo_path(sha256)
    if not path.is_file():
        raise HTTPException(404, "search_photo_missing")
    with path.open("rb") as fh:
        head = fh.read(4)
    return FileResponse(path, media_type="image/png" if head.startswith(b"\x89PNG") else "image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})


@router.get("/api/cases/{record_id}/search-reports/{version}.html")
async def printable(record_id: str, version: int, request: Request, st: WebState = Depends(state),
                    user: auth.User = Depends(VIEWER)) -> HTMLResponse:
    record = await _call(st, cases.get_case, record_id)
    report = _version(record, version)
    html = search_print.render_html(record, report, lang_of(request, st, user), lambda sha: f"/api/search-photos/{sha}")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/api/cases/{record_id}/search-reports/{version}.pdf")
async def pdf(record_id: str, version: int, request: Request, st: WebState = Depends(state),
              user: auth.User = Depends(VIEWER)) -> Response:
    record = await _call(st, cases.get_case, record_id)
    report = _version(record, version)
    photo_path = (await st.open()).store.photo_path
    try:
        body = await asyncio.to_thread(search_print.render_pdf, record, report, lang_of(request, st, user), photo_path)
    except SearchReportRefused as exc:
        raise _refused(exc) from exc
    name = f"search-report-{record_id}-v{version}.pdf"
    return Response(body, media_type="application/pdf",
                    headers={"Cache-Control": "no-store", "Content-Disposition": f'inline; filename="{name}"'})


def _version(record: InspectionRecord, version: int) -> SearchReport:
    try:
        return search_print.find_version(record, version)
    except SearchReportRefused as exc:
        raise _refused(exc) from exc
