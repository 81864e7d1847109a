"""Shared state of the web app and the request dependencies: session user, permission checks."""

from __future__ import annotations

import asyncio
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


async def current_user(request: Request, st: WebState = Depends(state)) -> auth.User:
    token = request.cookies.get(COOKIE)
    user = await st.db(lambda s: auth.session_user(s.conn, token, st.policy)) if token else None
    if user is None:
        raise HTTPException(401, "not_signed_in")
    return user


def require(permission: str) -> Callable[..., Awaitable[auth.User]]:
    """A dependency that answers 403 unless the signed-in user's role has `permission`."""

    async def check(user: auth.User = Depends(current_user)) -> auth.User:
        if not user.can(permission):
            raise HTTPException(403, "forbidden")
        return user

    return check


def lang_of(request: Request, st: WebState, user: auth.User | None = None) -> str:
    return pick_lang(request.query_params.get("lang") or (user.lang if user else None), st.cfg.default_lang)
