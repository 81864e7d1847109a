"""Sign-in with badge + PIN, sign-out, the signed-in user, language, badge reader feed, catalogues."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from appliance.signin_guard import SignInGuard
from edge import audit, auth
from edge.events import Event
from edge.store import Store
from edge.web import sse
from edge.web.deps import COOKIE, WebState, current_user, state
from edge.web.i18n import LANGS, page_messages, pick_lang

router = APIRouter()


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    badge: str = Field(max_length=64)
    pin: str = Field(max_length=32)


class LangChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str


def _me(user: auth.User) -> dict[str, Any]:
    perms = sorted(p for p in auth.PERMISSIONS if user.can(p))
    return {"badge": user.badge, "name": user.name, "role": user.role, "lang": user.lang, "permissions": perms}


def _signin(store: Store, body: SignIn, policy: auth.SessionPolicy) -> auth.User | None:
    try:
        user = auth.authenticate(store.conn, body.badge, body.pin, policy)
    except auth.AuthError:
        return None
    audit.append(store.conn, user.badge, "signin", "station", {"role": user.role})
    return user


def _close_tip(st: WebState, badge: str) -> Callable[[Store], None]:
    """TIP projections left open by an earlier session (a closed tab): seen ones are misses, others not shown."""
    return lambda s: st.tip.close_all(s.conn, badge)


def audit_refusal(store: Store, badge: str, client: str, outcome: str, guard: SignInGuard,
                  obj: str = "station") -> None:
    """A wrong badge + PIN (a sign-in, or a signature on a search report: `obj` its record) is audited in
    aggregate: a pair's first in the window, and each lock or client limit."""
    if outcome == "first":
        audit.append(store.conn, badge, "signin.refused", obj, {"client": client})
    elif outcome in ("locked", "client_limit"):
        audit.append(store.conn, badge, f"signin.{outcome}", obj,
                     {"client": client, "refused_so_far": guard.counters["failed"]})


@router.post("/api/signin")
async def signin(body: SignIn, request: Request, response: Response, st: WebState = Depends(state)) -> dict[str, Any]:
    client = request.client.host if request.client else "unknown"
    badge = body.badge.strip().upper()[:32]
    if wait := st.guard.wait_s(badge, client):  # refused unseen: no PIN check, no audit row, only counted
        raise HTTPException(429, "signin_locked", headers={"Retry-After": str(max(1, round(wait)))})
    user = await st.db(_signin, body, st.policy)
    if user is None:
        await st.db(audit_refusal, badge, client, st.guard.failed(badge, client), st.guard)
        raise HTTPException(401, "signin_refused")
    st.guard.succeeded(badge, client)
    await st.db(_close_tip(st, user.badge))
    token = await st.db(lambda s: auth.open_session(s.conn, user))
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=st.cfg.secure_cookie,
                        max_age=int(st.policy.max_s))
    return _me(user)


@router.post("/api/signout")
async def signout(request: Request, response: Response, st: WebState = Depends(state),
                  user: auth.User = Depends(current_user)) -> dict[str, bool]:
    token = request.cookies[COOKIE]

    def close(s: Store) -> None:
        auth.close_session(s.conn, token)
        audit.append(s.conn, user.badge, "signout", "station")
        _close_tip(st, user.badge)(s)

    await st.db(close)
    response.delete_cookie(COOKIE)
    return {"ok": True}


@router.get("/api/me")
async def me(user: auth.User = Depends(current_user)) -> dict[str, Any]:
    return _me(user)


@router.post("/api/me/lang")
async def set_lang(body: LangChoice, st: WebState = Depends(state),
                   user: auth.User = Depends(current_user)) -> dict[str, str]:
    if body.lang not in LANGS:
        raise HTTPException(422, "unknown_language")
    await st.db(lambda s: auth.set_lang(s.conn, user.badge, body.lang))
    return {"lang": body.lang}


@router.get("/api/i18n/{lang}")
async def messages(lang: str, st: WebState = Depends(state)) -> dict[str, Any]:
    chosen = pick_lang(lang, st.cfg.default_lang)
    return {"lang": chosen, "langs": list(LANGS), "station": st.ctx.station_id, "panels": list(st.ctx.panels),
            "default": st.cfg.default_lang, "messages": page_messages(chosen)}


async def _badge_event(event: Event) -> sse.Mapped:
    if event.topic != "badge":
        return None
    return "badge", {"badge": str(event.data.get("badge", ""))}, None


@router.get("/api/badge-stream")
async def badge_stream(request: Request, st: WebState = Depends(state)) -> StreamingResponse:
    """The badge reader's reads, to pre-fill the sign-in form (a badge only identifies; the PIN signs in)."""
    if request.client is None or request.client.host not in st.cfg.badge_feed_clients:
        raise HTTPException(403, "forbidden")
    return StreamingResponse(sse.stream(st.ctx.events, _badge_event, st.stopping), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
