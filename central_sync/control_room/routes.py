"""HTTP routes of the control room: pages, sign-in, board, alerts, actions, KPIs, commands, audit.

Every request of a signed-in user is written to the audit log (views included), as is every
refused sign-in. Permissions per role are the table in auth.py.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
import structlog

from appliance.validation import QueryTime
from central_sync import blobs, pki
from central_sync.control_room import audit, auth, kpi, queries, svg
from central_sync.control_room.db import execute, transact
from central_sync.control_room.feed import LiveFeed
from central_sync.control_room.i18n import LANGS, page_messages, pick_lang, t
from central_sync.control_room.images import ImageUnreadable, cached_png
from central_sync.control_room.refusals import Refused, forbidden
from central_sync.control_room.case_routes import build_case_router
from central_sync.control_room.command_routes import build_command_router
from central_sync.control_room.model_routes import build_model_router
from central_sync.control_room.retention_routes import build_retention_router
from central_sync.control_room.risk_routes import build_risk_router
from central_sync.hub.search import MORE_HEADER, Match

NEXT_HEADER = "X-Next-Before"
"""The `before` of the next older page of a control-room alert search (a record id)."""
from central_sync.riskhub.feed import feed_router

if TYPE_CHECKING:
    from starlette.routing import Mount

    from central_sync.control_room.service import ControlRoom
    from central_sync.hub.store import Cursor

log = structlog.get_logger("control_room")

STATIC = Path(__file__).parent / "static"
MAX_TEXT = 2000
"""The most characters an alert action's text (a comment) may have."""
COOKIE = "cr_session"
KEEPALIVE_S = 15.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(_Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Lang(_Body):
    lang: Literal["en", "zh-Hant", "zh-Hans"]


class Action(_Body):
    kind: Literal["ack", "assign", "escalate", "comment"]
    assignee: str | None = Field(None, max_length=64)
    text: str = ""  # at most MAX_TEXT characters, checked by the route: a refusal the page can translate


class NewUser(_Body):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Literal["operator", "supervisor", "admin"]
    password: str = Field(min_length=8, max_length=256)
    lang: Literal["en", "zh-Hant", "zh-Hans"] | None = None
    replace: bool = False  # an existing user is replaced (role, password; its sessions end) only when asked


def api_reader(room: ControlRoom) -> Callable[[Request], str | None]:
    """The hub's /api session check: a signed-in user who may view, audited like the UI's reads."""
    def check(request: Request) -> str | None:
        token = request.cookies.get(COOKIE)
        user = auth.session_user(room.store, token, room.cfg) if token else None
        if user is None or not user.can("view"):
            return None
        audit.append(room.store, user.username, "get:api", request.url.path, dict(request.query_params))
        return user.username
    return check


def build_router(room: ControlRoom) -> APIRouter:
    store, cfg = room.store, room.cfg
    r = APIRouter()

    def user_of(request: Request) -> auth.User:
        token = request.cookies.get(COOKIE)
        user = auth.session_user(store, token, cfg) if token else None
        if user is None:
            raise Refused(401, "signin_required", "no control-room session: sign in first")
        return user

    def need(permission: str) -> Callable[..., auth.User]:
        def dep(request: Request, user: auth.User = Depends(user_of)) -> auth.User:
            if not user.can(permission):
                audit.append(store, user.username, "refused", request.url.path, {"need": permission})
                raise forbidden(user.role, permission)
            audit.append(store, user.username, f"{request.method.lower()}:{permission}", request.url.path,
                         dict(request.query_params))
            return user
        return dep

    def lang_of(user: auth.User) -> str:
        return pick_lang(user.lang, cfg.default_lang)

    @r.get("/", include_in_schema=False)
    def root(request: Request) -> RedirectResponse:  # the query (?wall=1) goes along
        return RedirectResponse("/cr/" + (f"?{request.url.query}" if request.url.query else ""))

    @r.get("/cr/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @r.get("/cr/api/i18n/{lang}")
    def messages(lang: str, response: Response) -> dict:
        chosen = pick_lang(lang, cfg.default_lang)  # a tag or a browser's preference list
        response.headers["Content-Language"] = chosen
        return page_messages(chosen)

    @r.post("/cr/api/login")
    def login(body: Login, request: Request, response: Response) -> dict:
        client = request.client.host if request.client else "unknown"
        if wait := room.guard.wait_s(body.username, client):  # refused unseen: neither checked nor audited
            raise HTTPException(429, t("error.signin_refused", cfg.default_lang),
                                headers={"Retry-After": str(max(1, round(wait)))})
        try:
            user = auth.authenticate(store, body.username, body.password)
        except auth.AccountError:
            audit.append(store, body.username, "sign_in_refused", "session", {"client": client})
            if room.guard.failed(body.username, client) in ("locked", "client_limit"):
                audit.append(store, body.username, "sign_in_throttled", "session", {"client": client})
            raise HTTPException(401, t("error.signin_refused", cfg.default_lang)) from None
        room.guard.succeeded(user.username, client)
        token = auth.open_session(store, user)
        audit.append(store, user.username, "sign_in", "session", {"role": user.role})
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=cfg.secure_cookie,
                            max_age=int(cfg.session_max_s))
        return me_view(user)

    @r.post("/cr/api/logout")
    def logout(request: Request, response: Response, user: auth.User = Depends(user_of)) -> dict:
        auth.close_session(store, request.cookies[COOKIE])
        audit.append(store, user.username, "sign_out", "session")
        response.delete_cookie(COOKIE)
        return {"ok": True}

    def me_view(user: auth.User) -> dict:
        return {"username": user.username, "role": user.role, "lang": lang_of(user), "langs": list(LANGS),
                "can": sorted(p for p in auth.PERMISSIONS if user.can(p))}

    @r.get("/cr/api/me")
    def me(user: auth.User = Depends(user_of)) -> dict:
        return me_view(user)

    @r.post("/cr/api/me/lang")
    def set_lang(body: Lang, user: auth.User = Depends(need("view"))) -> dict:
        auth.set_lang(store, user.username, body.lang)
        return {"lang": body.lang}

    @r.get("/cr/api/stations")
    def stations(user: auth.User = Depends(need("view"))) -> list[dict]:
        return room.feed.stations()

    @r.get("/cr/api/people")
    def people(user: auth.User = Depends(need("view"))) -> dict[str, str]:
        """Officers' names by badge, where the hub knows them (central_sync/control_room/queries.py people)."""
        return queries.people(store)

    @r.get("/cr/api/pki")
    def pki_warnings(user: auth.User = Depends(need("view"))) -> dict:
        """The CRL's time left and the certificates expiring soon; `enabled` false without a CA."""
        if cfg.pki_dir is None:
            return {"enabled": False, "crl": None, "expiring": []}
        return {"enabled": True, **pki.report(pki.Authority(cfg.pki_dir))}

    @r.get("/cr/api/alerts")
    def alerts(response: Response, station: str | None = None, q: str | None = None, ident_kind: str | None = None,
               since: QueryTime | None = None, until: QueryTime | None = None, verdict: str | None = None,
               state: str | None = None, limit: int = Query(100, ge=1, le=1000), match: Match = "prefix",
               scope: Literal["alerts", "all"] = "alerts", before: str | None = Query(None, max_length=200),
               user: auth.User = Depends(need("view"))) -> list[dict]:
        page, more, after = queries.search_page(store, station, q, ident_kind, since, until, verdict, state, limit,
                                                match, alerts_only=scope == "alerts", before=before)
        response.headers[MORE_HEADER] = "true" if more else "false"
        if after is not None:
            response.headers[NEXT_HEADER] = after  # the `before` of the next older page
        return page

    @r.get("/cr/api/search-reports")
    def search_reports(q: str | None = Query(None, max_length=200), outcome: str | None = None,
                       station: str | None = None, limit: int = Query(100, ge=1, le=1000),
                       user: auth.User = Depends(need("view"))) -> list[dict]:
        """Vehicle search reports (their latest versions) by plate, container or report words, and outcome."""
        if outcome is not None and outcome not in queries.SEARCH_OUTCOMES:
            allowed = ", ".join(queries.SEARCH_OUTCOMES)
            raise Refused(422, "search.bad_outcome", f"outcome {outcome[:64]!r} is not one of {allowed}",
                          outcome=outcome[:64], allowed=allowed)
        return queries.search_reports(store, q, outcome, station, limit)

    @r.get("/cr/api/search-reports/{record_id}/photos/{sha256}")
    def search_photo(record_id: str, sha256: str, user: auth.User = Depends(need("view"))) -> Response:
        """A photo of the record's search report, synced by its station (central_sync/blobs.py); one the hub
        holds that is not a JPEG or PNG within the photo limit is refused and counted (`photo_refused`)."""
        data = queries.report_photo(store, record_id, sha256)
        if data is None:
            raise Refused(404, "search.photo_unknown", f"no search photo {sha256[:64]!r} of record {record_id[:128]!r}"
                          " at the hub", photo=sha256[:64], record=record_id[:128])
        fault = blobs.photo_fault(len(data), data[:16])
        if fault is not None:
            code, vals = fault
            problem = blobs.PHOTO_FAULTS[code].format(**vals)
            room.counters["photo_refused"] += 1
            log.warning("control_room.photo_refused", record=record_id, photo=sha256, detail=problem)
            raise Refused(415, f"search.photo_{code}", f"search photo {sha256[:12]} is refused: {problem}",
                          photo=sha256[:12], **vals)
        return Response(data, media_type=blobs.photo_type(data) or "image/jpeg",
                        headers={"Cache-Control": "private, max-age=3600"})

    def alert_or_404(record_id: str) -> dict:
        view = queries.one_alert(store, record_id)
        if view is None:
            raise Refused(404, "alert_unknown", f"no inspection {record_id[:128]!r} at the hub", record=record_id[:128])
        return view

    @r.get("/cr/api/alerts/{record_id}")
    def alert(record_id: str, user: auth.User = Depends(need("view"))) -> dict:
        return alert_or_404(record_id)

    @r.get("/cr/api/alerts/{record_id}/image.png")
    def image(record_id: str, user: auth.User = Depends(need("view"))) -> Response:
        rec = alert_or_404(record_id)["record"]
        sha = (rec.get("scan") or {}).get("sha256")
        data = store.image(sha) if sha else None
        if data is None:
            raise Refused(404, "no_image", f"the hub holds no scan image of inspection {record_id[:128]!r} yet",
                          record=record_id[:128])
        try:
            png = cached_png(sha, data, tuple(tuple(d["box"]) for d in rec["detections"]))
        except ImageUnreadable as exc:
            room.counters["image_unreadable"] += 1
            log.warning("control_room.image_unreadable", record=record_id, scan=sha, detail=str(exc))
            raise Refused(422, "image_unreadable", f"the scan of inspection {record_id[:128]!r} cannot be read: {exc}",
                          record=record_id[:128]) from exc
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    def assignees() -> list[str]:
        return [u for (u,) in execute(store, "SELECT username FROM cr_users WHERE active=1 ORDER BY username")]

    @r.get("/cr/api/assignees")
    def list_assignees(user: auth.User = Depends(need("assign"))) -> list[str]:
        """Who an alert can be assigned to: the control room's active users (a picker, not free text)."""
        return assignees()

    def check_text(body: Action) -> None:
        """A comment has text; no text is over MAX_TEXT characters (the page showed pydantic's JSON)."""
        if body.kind == "comment" and not body.text.strip():
            raise Refused(422, "comment_empty", "a comment needs text; nothing was recorded")
        if len(body.text) > MAX_TEXT:
            raise Refused(422, "text_too_long", f"the text has {len(body.text)} characters, at most {MAX_TEXT} are"
                          " allowed; nothing was recorded", length=len(body.text), max=MAX_TEXT)

    def acknowledge(row: tuple) -> None:
        """The alert's one acknowledgement; Refused(409) naming who acknowledged it when someone already did."""
        def insert(cur: Cursor) -> list[tuple]:
            # PostgreSQL: an ack another hub process is committing is not in this statement's snapshot; wait for it
            store.wait_for_writers(cur, "cr_actions", writes=True)
            cur.execute(store.sql("INSERT INTO cr_actions (id, record_id, kind, actor, at, assignee, text)"
                                  " SELECT ?,?,?,?,?,?,? WHERE NOT EXISTS (SELECT 1 FROM cr_actions WHERE record_id = ?"
                                  " AND kind = 'ack') RETURNING id"), (*row, row[1]))
            return cur.fetchall()
        done = transact(store, insert)
        if not done:
            (by,) = execute(store, "SELECT actor FROM cr_actions WHERE record_id = ? AND kind = 'ack' ORDER BY at"
                            " LIMIT 1", (row[1],))[0]
            raise Refused(409, "already_acknowledged", f"alert {row[1]} was acknowledged already by {by};"
                          " nothing was recorded", by=by)

    @r.post("/cr/api/alerts/{record_id}/actions")
    def act(record_id: str, body: Action, request: Request, user: auth.User = Depends(need("act"))) -> dict:
        if body.kind == "assign" and not user.can("assign"):  # need("act")'s line reads like a success: say so
            audit.append(store, user.username, "refused", request.url.path, {"need": "assign"})
            raise forbidden(user.role, "assign")
        if body.kind == "assign" and body.assignee not in assignees():
            name = (body.assignee or "")[:64]
            raise Refused(422, "unknown_assignee", f"{name!r} is not an active user of this control room; nothing was"
                          " recorded", name=name)
        check_text(body)
        alert_or_404(record_id)
        row = (uuid.uuid4().hex, record_id, body.kind, user.username, time.time(), body.assignee, body.text)
        if body.kind == "ack":
            acknowledge(row)
        else:
            execute(store, "INSERT INTO cr_actions (id, record_id, kind, actor, at, assignee, text) VALUES (?,?,?,?,?,?,?)", row)
        audit.append(store, user.username, f"alert_{body.kind}", record_id, {"assignee": body.assignee, "text": body.text})
        return {"record_id": record_id, "kind": body.kind, "actor": user.username, "at": row[4],
                "assignee": body.assignee, "text": body.text}

    @r.get("/cr/api/events")
    async def events(request: Request, user: auth.User = Depends(need("view"))) -> StreamingResponse:
        token = request.cookies[COOKIE]
        still_signed_in = lambda: auth.session_user(store, token, cfg) is not None  # noqa: E731 - also keeps the session alive
        return StreamingResponse(_stream(room.feed, request, still_signed_in), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def kpi_range(since: datetime | None, until: datetime | None) -> tuple[float, float]:
        end = until.timestamp() if until else time.time()
        return (since.timestamp() if since else end - 24 * 3600), end

    def kpi_figures(since: datetime | None, until: datetime | None) -> dict:
        period = kpi_range(since, until)
        return kpi.compute(*queries.kpi_inputs(store, *period), queries.tip_inputs(store, *period))

    @r.get("/cr/api/kpi")
    def kpis(since: QueryTime | None = None, until: QueryTime | None = None, user: auth.User = Depends(need("kpi"))) -> dict:
        figures = kpi_figures(since, until)
        lang = lang_of(user)
        empty, station = t("kpi.no_data", lang), (t("kpi.axis_station", lang), "")
        figures["charts"] = {
            "throughput": svg.lines(figures["hourly"], t("kpi.chart_throughput", lang),
                                    (t("kpi.axis_hour", lang), t("kpi.axis_items", lang)), empty),
            **{c: svg.bars({s["station"]: s[c] for s in figures["summary"]}, t(f"kpi.{c}", lang), axes=station, empty=empty)
               for c in ("suspect_rate", "manual_rate", "agreement")},
        }
        return figures

    @r.get("/cr/api/kpi.csv")
    def kpis_csv(since: QueryTime | None = None, until: QueryTime | None = None, user: auth.User = Depends(need("kpi"))) -> Response:
        return csv_response(kpi.to_csv(kpi_figures(since, until)), "kpi.csv")

    def csv_response(text: str, name: str) -> Response:
        return Response(text, media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def tip_figures(since: datetime | None, until: datetime | None, per_officer: bool) -> list[dict]:
        return kpi.tip_rows(queries.tip_inputs(store, *kpi_range(since, until)), per_officer)

    def tip_charts(rows: list[dict], name: Callable[[dict], str], lang: str) -> dict:
        return {c: svg.bars({name(row): row[c] for row in rows}, t(f"kpi.col.{c}", lang), axes=(t("kpi.axis_station", lang), ""),
                            empty=t("kpi.no_data", lang)) for c in ("tip_hit_rate", "tip_miss_rate")}

    @r.get("/cr/api/kpi/tip")
    def tip_kpis(since: QueryTime | None = None, until: QueryTime | None = None,
                 user: auth.User = Depends(need("tip_kpi"))) -> dict:
        rows = tip_figures(since, until, per_officer=False)
        return {"stations": rows, "charts": tip_charts(rows, lambda row: row["station"], lang_of(user))}

    @r.get("/cr/api/kpi/tip.csv")
    def tip_kpis_csv(since: QueryTime | None = None, until: QueryTime | None = None,
                     user: auth.User = Depends(need("tip_kpi"))) -> Response:
        return csv_response(kpi.rows_csv(tip_figures(since, until, per_officer=False), kpi.TIP_STATION_COLS), "tip.csv")

    @r.get("/cr/api/kpi/tip/officers")
    def tip_officers(since: QueryTime | None = None, until: QueryTime | None = None,
                     user: auth.User = Depends(need("staff_kpi"))) -> dict:
        rows = tip_figures(since, until, per_officer=True)
        return {"officers": rows, "charts": tip_charts(rows, lambda row: f"{row['station']} {row['officer']}", lang_of(user))}

    @r.get("/cr/api/kpi/tip/officers.csv")
    def tip_officers_csv(since: QueryTime | None = None, until: QueryTime | None = None,
                         user: auth.User = Depends(need("staff_kpi"))) -> Response:
        return csv_response(kpi.rows_csv(tip_figures(since, until, per_officer=True), kpi.TIP_OFFICER_COLS), "tip-officers.csv")

    @r.get("/cr/api/audit")
    def audit_list(limit: int = Query(200, ge=1, le=5000), before: int | None = Query(None, ge=1, le=2**63 - 1),
                   user: auth.User = Depends(need("audit"))) -> list[dict]:
        """The newest entries, or with `before` (a seq) the next older page."""
        return audit.entries(store, limit, before=before)

    @r.get("/cr/api/audit/verify")
    def audit_verify(user: auth.User = Depends(need("audit"))) -> dict:
        checked, broken, why = audit.verify(store)
        return {"checked": checked, "first_broken": broken, "why": why}

    @r.post("/cr/api/users")
    def new_user(body: NewUser, user: auth.User = Depends(need("users"))) -> dict:
        try:
            made, existed = auth.put_user(store, body.username, body.role, body.password, body.lang, body.replace)
        except auth.AccountError as exc:
            raise Refused(409, f"user.{exc.code}", str(exc), **exc.vals) from exc
        audit.append(store, user.username, "user.replace" if existed else "user.create", body.username,
                     {"role": body.role, "lang": body.lang, "existed": existed, "sessions_ended": existed})
        return {"username": made.username, "role": made.role, "replaced": existed}

    r.include_router(build_command_router(room, need))
    r.include_router(build_risk_router(room, need))
    r.include_router(build_model_router(room, need))
    r.include_router(build_case_router(room, need))
    r.include_router(build_retention_router(room, need))
    r.include_router(feed_router(store))  # the customs declaration system's POST /api/declarations
    r.routes.append(_static())
    return r


def _static() -> Mount:
    from starlette.routing import Mount
    return Mount("/cr/static", app=StaticFiles(directory=STATIC), name="cr-static")


async def _stream(feed: LiveFeed, request: Request, still_signed_in: Callable[[], bool]) -> AsyncIterator[str]:
    """SSE: `event: <type>` and one JSON line per event; every KEEPALIVE_S a comment, after checking
    that the session is still valid (a wall display that only watches stays signed in; a session
    ended elsewhere ends its streams)."""
    q = feed.subscribe()
    try:
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(q.get(), KEEPALIVE_S)
            except TimeoutError:
                if not await asyncio.to_thread(still_signed_in):
                    return
                yield ": keepalive\n\n"
                continue
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
    finally:
        feed.unsubscribe(q)
