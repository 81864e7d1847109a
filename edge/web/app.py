"""The station screen's FastAPI app: `create_app(ctx)`; the daemon serves it with uvicorn.

Routes (all JSON unless noted; every /api route but sign-in, catalogues and the badge feed needs a
session cookie, and each names the permission it needs, see edge/auth.py PERMISSIONS):
    GET  /healthz                        ctx.health() and the belt's latch (ctx.belt), no sign-in
    GET  /                               the screen (static/index.html)
    POST /api/signin, /api/signout       badge + PIN; GET /api/me; POST /api/me/lang
    GET  /api/i18n/{lang}                message catalogue
    GET  /api/badge-stream               SSE: badge reads, to the kiosk's own browser only
    GET  /api/stream                     SSE: inspections (id = seq, Last-Event-ID resumes: the newest 100 missed,
                                         `not_replayed` counts older ones), reviews
    GET  /api/cases/{id}                 record + its audit trail;  .../image.png?mode=  (audited)
    POST /api/cases/{id}/decision        review -> Store.add_review; on a gantry `lane` releases the vehicle or
                                         sends it to the search bay (read back, audited);  .../screen  TIP answer
    GET  /api/lane                       a gantry's vehicles between scanner and barrier, held or not
    GET  /api/queue, /api/history        awaiting decision; search and filters
    GET  /api/export.zip                 reviewed items as COCO + scans (supervisor)
    GET  /api/health, /api/diagnostics   health panel; technician diagnostics
    GET  /api/tip/stats, /api/audit, /api/audit/verify
    POST /api/belt/restart               run a conveyor belt latched stopped (supervisor; audited)
    POST /api/lane/confirm               end a gantry lane's hold for an unreadable lane file, the lane checked
                                         (supervisor or technician; audited)
    GET  /api/search/diagrams            vehicle diagrams (areas per vehicle type) for the search report
    GET|POST /api/cases/{id}/search-reports   a vehicle's search report versions; sign a new one (badge + PIN)
    POST /api/cases/{id}/search-reports/{v}/countersign   a supervisor's countersignature (badge + PIN)
    GET  /api/cases/{id}/search-reports/{v}.html|.pdf     the printable report;  POST|GET /api/search-photos

The daemon mounts /metrics itself. The app opens its own connection to the station database
(same file, WAL) on its own thread, so screen traffic never delays the pipeline's commits;
reviews are written through `Store.add_review`, which queues them in the outbox for the hub.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from appliance.signin_guard import SignInGuard
from appliance.validation import answer_invalid_requests
from edge import auth
from edge.context import StationContext
from edge.errors import DiskFull
from edge.tip import TipEngine
from edge.web import routes_auth, routes_cases, routes_case_bundle, routes_search, routes_station
from edge.web.config import WebConfig
from edge.web.deps import WebState, ensure_schema, station_health

log = structlog.get_logger("edge.web")

__all__ = ["create_app", "ensure_schema"]

STATIC = Path(__file__).parent / "static"
# Everything the page needs is served from here; nothing may load from elsewhere or frame the screen.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
                               " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _policy(cfg: WebConfig) -> auth.SessionPolicy:
    return auth.SessionPolicy(max_s=cfg.session_max_h * 3600, idle_s=cfg.session_idle_min * 60,
                              max_failed=cfg.max_failed_signins, lockout_s=cfg.lockout_s)


def web_config(ctx: StationContext, cfg: WebConfig | None = None) -> WebConfig:
    """The screen's settings: `cfg`, else the station config's [web], else defaults."""
    return cfg or (ctx.settings.web if ctx.settings is not None else None) or WebConfig()


def make_tip_engine(ctx: StationContext, cfg: WebConfig) -> TipEngine:
    """The screen's TIP engine, its library in [web.tip] library_dir or the station's data_dir."""
    return TipEngine(cfg.tip, folder=cfg.tip.library_dir or Path(ctx.store.store.data_dir) / "tip-library")


def create_app(ctx: StationContext, cfg: WebConfig | None = None, tip_engine: TipEngine | None = None) -> FastAPI:
    """The officer web app; settings from `cfg`, else `ctx.settings.web`, else defaults.

    Live streams never end by themselves: give the daemon's stop event as ctx.stopping (or set
    app.state.web.stopping, or serve with uvicorn's timeout_graceful_shutdown) so that the server can
    shut down while a screen is connected. The daemon passes the TIP engine it also steers from the hub
    (`tip_engine`); without one the app makes its own."""
    cfg = web_config(ctx, cfg)
    web = WebState(ctx, cfg, tip_engine or make_tip_engine(ctx, cfg), _policy(cfg),
                   guard=SignInGuard(cfg.signin_window_s, cfg.signin_client_max, cfg.max_failed_signins, cfg.lockout_s,
                                     cfg.signin_account_max))
    if ctx.stopping is not None:
        web.stopping = ctx.stopping  # the daemon's stop: live streams end so that uvicorn can shut down

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await web.open()
        try:
            yield
        finally:
            web.stopping.set()
            await web.close()

    app = FastAPI(title=f"Checkpoint Edge station {ctx.station_id}", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.web = web
    answer_invalid_requests(app)

    @app.exception_handler(DiskFull)
    async def disk_full(request: Request, exc: DiskFull) -> Response:
        """Nothing the screen would write can be written (the decision, the report): said so, not a 500."""
        log.error("web.disk_full", path=request.url.path, error=str(exc))
        return JSONResponse({"detail": "disk_full"}, status_code=507)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse(station_health(ctx))

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    for module in (routes_auth, routes_cases, routes_case_bundle, routes_search, routes_station):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
