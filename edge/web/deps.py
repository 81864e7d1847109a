"""Shared state of the web app and the request dependencies: session user, permission checks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, TypeVar, TypeVarTuple, Unpack

from fastapi import Depends, HTTPException, Request

from appliance.version import version
from appliance.signin_guard import SignInGuard
from edge import audit, auth, tip
from edge.context import StationContext
from edge.store import Store, StoreWriter
from edge.tip import TipEngine
from edge.web.config import WebConfig
from edge.web.i18n import pick_lang

COOKIE = "cpe_session"

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass
class WebState:
    ctx: StationContext
    cfg: WebConfig
    tip: TipEngine
    policy: auth.SessionPolicy
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    bad_events: int = 0  # inspection events that did not validate as records (logged, skipped)
    writer: StoreWriter | None = None  # the screen's own connection: opened at start-up or first use
    _opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    guard: SignInGuard = field(default_factory=lambda: SignInGuard(300.0, 20, 5, 300.0))  # wrong PINs, per client

    async def open(self) -> StoreWriter:
        """Open the screen's own connection to the station database on its own thread, so that
        screen traffic never queues in front of the pipeline's commits (WAL: readers never block),
        and create the screen's tables."""
        async with self._opening:
            if self.writer is not None:
                return self.writer
            daemon = self.ctx.store.store
            store = Store(daemon.data_dir, daemon.limits, daemon.station)
            store.retention = daemon.retention  # the hub's holds as the daemon received them
            writer = StoreWriter(store)
            await writer.__aenter__()
            await writer.call(ensure_schema, writer.store)
            await asyncio.to_thread(self.tip.ensure_library)
            self.writer = writer
            return writer

    async def close(self) -> None:
        if self.writer is not None:
            await self.writer.__aexit__(None, None, None)
            self.writer = None

    async def db(self, fn: Callable[[Store, Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
        """Run `fn(store, *args)` on the screen's store thread (SQLite never blocks the event loop)."""
        writer = self.writer or await self.open()  # served without lifespan events: open on first use
        if writer.store.full is not None:  # a write of the screen's found the database full: look for room again
            await writer.call(Store.check_space, writer.store)
        return await writer.call(fn, writer.store, *args)

    async def audit(self, actor: str, action: str, obj: str, detail: dict[str, Any] | None = None) -> None:
        await self.db(lambda s: audit.append(s.conn, actor, action, obj, detail))


def ensure_schema(store: Store) -> None:
    """Create the web app's own tables (web_users, web_sessions, tip_events, audit_log)."""
    for module in (auth, tip, audit):
        module.ensure_schema(store.conn)


def station_health(ctx: StationContext) -> dict[str, Any]:
    """ctx.health(), with the conveyor belt's latch (ctx.belt) or the gantry's lane (ctx.lane_control)
    when the station has one."""
    health = {**ctx.health(), "version": version()}  # the station's release, as `edge --version` says
    if ctx.belt is not None:
        health = {**health, "belt": ctx.belt.belt_status()}
    if ctx.lane_control is not None:
        health = {**health, "vehicle_lane": ctx.lane_control.lane_status()}
    return health


def state(request: Request) -> WebState:
    return request.app.state.web


IDLE_HEADER = "X-Idle-S"
"""Sent by the station screen with each request: seconds since the user last touched the screen (a touch, a key, the
wheel). The screen asks by itself every few seconds (the lane, the belt) and for each new item (its images): the
session's idle timer runs from the user's own last act, so a screen left alone signs out after `session_idle_min`."""


def _acted_at(request: Request) -> float | None:
    """When the user last acted, from the screen's IDLE_HEADER (now less its seconds), or None without one (a
    request of the user's own: the idle timer restarts now). A value that is no finite number ≥ 0 is ignored."""
    raw = request.headers.get(IDLE_HEADER)
    try:
        idle = float(raw) if raw is not None else None
    except ValueError:
        return None
    return time.time() - idle if idle is not None and 0 <= idle < 10**7 else None


async def _signed_in(request: Request, st: WebState, touch: bool) -> auth.User:
    token = request.cookies.get(COOKIE)
    acted = _acted_at(request)
    user = await st.db(lambda s: auth.session_user(s.conn, token, st.policy, touch=touch, active_at=acted)) \
        if token else None
    if user is None:
        raise HTTPException(401, "not_signed_in")
    return user


async def current_user(request: Request, st: WebState = Depends(state)) -> auth.User:
    """The signed-in user; the request restarts the session's idle timer (from the act IDLE_HEADER says)."""
    return await _signed_in(request, st, touch=True)


async def viewing_user(request: Request, st: WebState = Depends(state)) -> auth.User:
    """The signed-in user, the idle timer left as it is: an image the screen loads as an item arrives is no act of
    the user's (a browser's image request carries no IDLE_HEADER)."""
    return await _signed_in(request, st, touch=False)


def require(permission: str, touch: bool = True) -> Callable[..., Awaitable[auth.User]]:
    """A dependency that answers 403 unless the signed-in user's role has `permission` (`touch`: the request restarts
    the idle timer, see current_user and viewing_user)."""

    async def check(user: auth.User = Depends(current_user if touch else viewing_user)) -> auth.User:
        if not user.can(permission):
            raise HTTPException(403, "forbidden")
        return user

    return check


def lang_of(request: Request, st: WebState, user: auth.User | None = None) -> str:
    return pick_lang(request.query_params.get("lang") or (user.lang if user else None), st.cfg.default_lang)
