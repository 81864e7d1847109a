"""The hub's machine API (FastAPI); `create_app(store)` so the control room's pages can be added.

Every /api route needs a service token or a signed-in control-room user (see api_auth.py);
only /healthz (liveness, no data) is open."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, TypeVar, TypeVarTuple, Unpack

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from appliance.validation import QueryTime, answer_invalid_requests
from central_sync.errors import HubStoreError
from central_sync.hub import history as hist
from central_sync.hub.api_auth import ServiceTokens, require_reader
from central_sync.hub.search import MORE_HEADER, Match, search_clause
from central_sync.hub.stations import station_view
from central_sync.hub.store import HubStore
from central_sync.protocol import SHA256_HEX

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

MAX_LIMIT = 1000
STORE_FAILED = "the hub database failed to answer; the hub's log says why (hub.api_store_error)"
"""The 503 body of any route whose store read failed: the database's own message names its host, schema or file
and its SQL, which are for the hub's log, not for every API client."""

log = structlog.get_logger("central_sync.hub.api")


@dataclass(frozen=True)
class IdentityQuery:
    """`q` matched against the records' identities (central_sync.hub.search): of one kind, exactly or as a prefix."""

    q: str | None = None
    kind: str | None = None
    match: Match = "prefix"


def _filters(store: HubStore, station: str | None, verdict: str | None, since: datetime | None,
             until: datetime | None, ident: IdentityQuery, alerts_only: bool) -> tuple[str, tuple]:
    clauses: list[str] = []
    args: list[object] = []
    for cond, clause, value in (
        (station, "station = ?", station), (verdict, "verdict = ?", verdict),
        (since, "decided_ts >= ?", since.timestamp() if since else None),
        (until, "decided_ts < ?", until.timestamp() if until else None),
        (alerts_only, "is_alert = ?", 1),
    ):
        if cond:
            clauses.append(clause)
            args.append(value)
    if ident.q:
        clause, more = search_clause(store, ident.q, ident.kind, ident.match)
        clauses.append(clause)
        args.extend(more)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", tuple(args)


def refuse_nul_bytes(request: Request) -> None:
    """FastAPI dependency of every route on the hub's app (its /api and the control room's): 422 for a query or
    path parameter holding a NUL character. No value the hub stores holds one, and PostgreSQL refuses it in a
    statement's text arguments: the search answered 503 ("hub database ... failed") as if the database were down,
    the control room's 500, while SQLite answered an empty page."""
    for where, params in (("path", list(request.path_params.items())), ("query", request.query_params.multi_items())):
        for name, value in params:
            if isinstance(value, str) and "\x00" in value:
                raise HTTPException(422, f"{where} parameter {name!r} holds a NUL character ({value[:40]!r}); "
                                         "no value at the hub does")


def create_app(store: HubStore, hub_stats: Callable[[], dict] | None = None, stale_s: float = 30.0,
               service_tokens: ServiceTokens | None = None) -> FastAPI:
    """The API over one hub store; `hub_stats` adds this process's ingest figures to /api/hub.

    Readers: holders of `service_tokens`, and signed-in users once the control room is installed
    (it sets `app.state.session_check`)."""
    app = FastAPI(title="Checkpoint Edge hub", version="1", dependencies=[Depends(refuse_nul_bytes)])
    answer_invalid_requests(app)
    app.add_exception_handler(HubStoreError, _store_failed)  # the control room's routes too: was 500
    app.state.store = store
    app.state.service_tokens = service_tokens or ServiceTokens()
    app.state.session_check = None
    api = APIRouter(dependencies=[Depends(require_reader)])

    def listing(response: Response, alerts_only: bool, station: str | None, verdict: str | None,
                since: datetime | None, until: datetime | None, ident: IdentityQuery, limit: int,
                offset: int) -> list[dict]:
        """One page, newest first; the MORE_HEADER says whether more rows match (one row more is fetched)."""
        where, args = _guard(_filters, store, station, verdict, since, until, ident, alerts_only)
        rows = _guard(store.records, where, args, limit + 1, offset)
        response.headers[MORE_HEADER] = "true" if len(rows) > limit else "false"
        return [{"record": json.loads(body), "alert": bool(alert), "committed_at": at, "hub": hub}
                for body, alert, at, hub in rows[:limit]]

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": _guard(store.ping)}

    @api.get("/api/hub")
    def hub() -> dict:
        return hub_stats() if hub_stats else {}

    @api.get("/api/stations")
    def stations() -> list[dict]:
        return [station_view(r, stale_s=stale_s) for r in _guard(store.stations)]

    @api.get("/api/inspections")
    def inspections(response: Response, station: str | None = None, verdict: str | None = None,
                    since: QueryTime | None = None, until: QueryTime | None = None,
                    q: str | None = Query(None, description="identity search"),
                    ident_kind: str | None = None, match: Match = "prefix",
                    limit: int = Query(100, ge=1, le=MAX_LIMIT), offset: int = Query(0, ge=0, le=2**62)) -> list[dict]:
        return listing(response, False, station, verdict, since, until, IdentityQuery(q, ident_kind, match), limit,
                       offset)

    @api.get("/api/inspections/{record_id}")
    def inspection(record_id: str) -> dict:
        rows = _guard(store.records, "WHERE id = ?", (record_id,), 1, 0)
        if not rows:
            raise HTTPException(404, f"no inspection {record_id!r}")
        body, alert, at, hub = rows[0]
        reviews = [json.loads(r) for r in _guard(store.reviews, record_id)]
        return {"record": json.loads(body), "alert": bool(alert), "committed_at": at, "hub": hub, "reviews": reviews}

    @api.get("/api/alerts")
    def alerts(response: Response, station: str | None = None, since: QueryTime | None = None,
               until: QueryTime | None = None, q: str | None = None, ident_kind: str | None = None,
               match: Match = "prefix", limit: int = Query(100, ge=1, le=MAX_LIMIT),
               offset: int = Query(0, ge=0, le=2**62)) -> list[dict]:
        return listing(response, True, station, None, since, until, IdentityQuery(q, ident_kind, match), limit,
                       offset)

    @api.get("/api/history/{kind}/{value}")
    def history(kind: str, value: str, since: QueryTime | None = Query(None, description="references decided "
                "at or after this time (default: max_age_days ago)"), max_age_days: float = Query(365.0, gt=0, le=3650),
                count: int = Query(3, ge=0, le=20), limit: int = Query(50, ge=1, le=hist.MAX_PASSES),
                type_count: int = Query(2, ge=0, le=hist.MAX_TYPE_REFERENCES, description="containers: references "
                                        "of other containers of the same size/type declared empty, at most"),
                size_type: str | None = Query(None, pattern=r"^[0-9LM][0-9][A-Z][0-9A-Z]$", description="containers: "
                                              "the ISO 6346 size/type code (default: the container's own newest)"),
                detector_px: int | None = Query(None, ge=1, le=100_000, description="the asking gantry's detector "
                                                "width (default: that of the container's own newest scan)")) -> dict:
        """A vehicle's passes (newest first) and its references: clean recent passes whose scan the hub holds;
        for a container, then clean passes of other containers of its size/type declared empty."""
        if kind not in hist.HISTORY_KINDS:
            raise HTTPException(422, f"history is kept by {', '.join(hist.HISTORY_KINDS)}, not by {kind!r}")
        passes = _guard(hist.passes, store, kind, value, limit)
        start = since.timestamp() if since else time.time() - max_age_days * 86400.0
        held = lambda sha: store.blob_state(sha)[0]  # noqa: E731
        refs = _guard(hist.references, passes, start, count, held)
        if kind == "container":
            refs += _guard(hist.same_type_empty, store, passes, start, type_count, held, size_type, detector_px, value)
        return {"kind": kind, "value": value, "passes": [p.to_json() for p in passes],
                "references": [p.to_json() for p in refs]}

    @api.get("/api/images/{sha256}")
    def image(sha256: str) -> Response:
        if not SHA256_HEX.match(sha256):
            raise HTTPException(422, f"{sha256!r} is not a lower-case sha256")
        data = _guard(store.image, sha256)
        if data is None:
            raise HTTPException(404, f"no image {sha256}")
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{sha256}.npz"'})

    app.include_router(api)
    return app


def _guard(fn: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
    try:
        return fn(*args)
    except HubStoreError as exc:
        log.error("hub.api_store_error", error=str(exc))
        raise HTTPException(503, STORE_FAILED) from exc


async def _store_failed(request: Request, exc: Exception) -> JSONResponse:
    """A route's store read failed (HubStoreError): 503 STORE_FAILED, the database's message to the log."""
    log.error("hub.api_store_error", path=request.url.path, error=str(exc))
    return JSONResponse(status_code=503, content={"detail": STORE_FAILED})
