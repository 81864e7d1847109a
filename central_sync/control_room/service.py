"""The control room inside `edge-hub run`: live feed, command link and the web UI's routes.

    async with ControlRoom(store, broker_cfg, ControlRoomConfig(...)) as room:
        app = room.install(create_app(store, hub.stats))
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import TracebackType

import structlog
from fastapi import FastAPI, Request, Response

from central_sync import commands as c
from central_sync.config import BrokerConfig
from central_sync.control_room import auth, commanding, db, refusals, retention_routes
from central_sync.control_room.config import ControlRoomConfig
from central_sync.control_room.feed import LiveFeed
from central_sync.errors import HubStoreError, WireFormatError
from central_sync.hub import retention as hub_retention
from central_sync.hub.store import HubStore
from central_sync.protocol import parse_topic
from central_sync.riskhub import publish
from central_sync.riskhub import tables as risk_tables
from central_sync.riskhub.publish import Deliver, RiskKey

log = structlog.get_logger("central_sync.control_room")
# The pages load their script, style and images from this server only and may not be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
                               " connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none';"
                               " form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ControlRoom:
    """Owns the feed task and the command link; `install(app)` adds the UI and its API to an app."""

    def __init__(self, store: HubStore, broker: BrokerConfig | None, cfg: ControlRoomConfig = ControlRoomConfig(),
                 risk_deliver: Deliver | None = None) -> None:
        self.store, self.cfg = store, cfg
        self.risk_key = RiskKey.load(cfg.risk_key, cfg.risk_key_id) if cfg.risk_key else None
        self.risk_deliver = risk_deliver  # hands a published bundle to the stations (central_sync/risk_delivery.py)
        self.feed = LiveFeed(store, cfg)
        self.counters: Counter[str] = Counter()  # commands refused before signing, by HTTP status; photo_refused
        self.state_refused: dict | None = None  # why the newest retention state was not published (too large)
        self.guard = auth.sign_in_guard(cfg)
        self.key = c.load_private_key(cfg.signing_key) if cfg.signing_key else None
        self.link = (c.CommandLink(broker, cfg.client_id, [c.result_topic("+")], self._result, link="cr")
                     if broker else None)
        self._task: asyncio.Task | None = None
        self._republisher: asyncio.Task | None = None
        self._retention: asyncio.Task | None = None

    async def __aenter__(self) -> "ControlRoom":
        await asyncio.to_thread(db.migrate, self.store)
        await asyncio.to_thread(risk_tables.migrate, self.store)
        await asyncio.to_thread(hub_retention.migrate, self.store)
        if self.risk_deliver is not None and (offer := await asyncio.to_thread(publish.latest_offer, self.store)):
            self.risk_deliver(offer)  # after a restart the stations still get the newest version
        self._task = asyncio.create_task(self._supervise_feed(), name="control-room-feed")
        if self.risk_key is not None:
            self._republisher = asyncio.create_task(self._republish(), name="risk-republish")
        if self.link is not None:
            await self.link.__aenter__()
        self._retention = asyncio.create_task(retention_routes.keep(self), name="retention")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.link is not None:
            await self.link.__aexit__(exc_type, exc, tb)
        for task in (self._task, self._republisher, self._retention):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _supervise_feed(self) -> None:
        """Keep the live feed running; a failure is logged with its traceback and the feed restarts."""
        while True:
            try:
                await self.feed.run()
            except Exception:  # the feed task's top-level supervisor: log, pause, restart
                log.exception("control_room.feed_failed", restart_in_s=1.0)
                self.feed.counters["feed_restarts"] += 1
                await asyncio.sleep(1.0)

    async def _republish(self, period_s: float = 60.0) -> None:
        """Publish the approved state again before the newest bundle expires, so stations never go stale
        while the hub runs; a failure is logged and tried again next period."""
        assert self.risk_key is not None
        while True:
            try:
                if await asyncio.to_thread(publish.due, self.store, time.time(), self.cfg.risk_republish_s):
                    out = await asyncio.to_thread(publish.publish, self.store, self.risk_key, "hub", self.risk_deliver,
                                                  expiry_s=self.cfg.risk_expiry_s)
                    log.info("risk.republished", version=out.version, expires_at=out.expires_at)
            except Exception:  # the republish task's top-level supervisor: log and try again next period
                log.exception("risk.republish_failed", retry_in_s=period_s)
            await asyncio.sleep(period_s)

    def install(self, app: FastAPI) -> FastAPI:
        from central_sync.control_room.routes import api_reader, build_router
        app.include_router(build_router(self))
        app.add_exception_handler(refusals.Refused, refusals.answer)  # its code and values with its sentence
        app.state.session_check = api_reader(self)  # signed-in users may read the hub's /api as well

        @app.middleware("http")
        async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            response = await call_next(request)
            response.headers.update(SECURITY_HEADERS)
            return response
        return app

    def send(self, station: str, op: c.Op, args: dict, issuer: str, previous: dict | None = None,
             undo_of: str | None = None, resend_of: str | None = None) -> c.Command:
        """Sign, record and publish one command; CommandError when it cannot be sent. `previous`: the
        values it replaces (commanding.previous_values); `undo_of`: the command an undo reverses; `resend_of`: the
        command a station refused `queue_full` that this one sends again (once: HubStoreError for a second)."""
        if self.key is None or self.link is None:
            raise c.CommandError("the hub has no signing key or no broker link; commands are disabled")
        cmd = c.new_command(station, op, args, issuer, ttl_s=self.cfg.command_ttl_s)
        db.transact(self.store, lambda cur: [
            cur.execute(self.store.sql("INSERT INTO cr_commands (id, station, op, args, issuer, issued_at, expires_at)"
                                       " VALUES (?,?,?,?,?,?,?)"), (cmd.id, station, op, json.dumps(cmd.args), issuer,
                                                                    cmd.issued_at, cmd.expires_at)),
            cur.execute(self.store.sql("INSERT INTO cr_command_context (id, previous, undo_of) VALUES (?,?,?)"),
                        (cmd.id, json.dumps(previous or {}), undo_of)),
            *([cur.execute(self.store.sql("INSERT INTO cr_command_resends (id, resend_of) VALUES (?,?)"),
                           (cmd.id, resend_of))] if resend_of else [])])
        try:
            self.link.publish(c.cmd_topic(station), c.sign(self.key, cmd))
        except c.CommandError:  # not published: not listed as sent (it showed "expired without a report" later)
            db.transact(self.store, lambda cur: [cur.execute(self.store.sql(f"DELETE FROM {table} WHERE id=?"), (cmd.id,))
                                                 for table in ("cr_command_resends", "cr_command_context", "cr_commands")])
            raise
        log.info("control_room.command_sent", id=cmd.id, station=station, op=op, issuer=issuer)
        return cmd

    def _result(self, topic: str, payload: bytes) -> None:
        """A station's report (paho's thread): the first one is stored on its command row (a later
        report of the same id is a replay the station refused, and only logged)."""
        try:
            station, _ = parse_topic(topic)
            res = c.CommandResult.model_validate_json(payload)
        except (WireFormatError, ValueError) as exc:
            log.warning("control_room.bad_result", topic=topic, error=str(exc))
            return
        if res.station != station:
            log.warning("control_room.bad_result", topic=topic, error=f"result names station {res.station}")
            return
        try:
            if res.settings:
                commanding.remember_settings(self.store, station, res.settings)
            if res.reason == "report":  # a diagnostic run's report, after its command was applied
                db.execute(self.store, "INSERT INTO cr_command_reports (id, station, outcome, report, at)"
                                       " SELECT id, station, ?, ?, ? FROM cr_commands WHERE id=? AND station=?"
                                       " ON CONFLICT (id) DO NOTHING",
                           (str((res.report or {}).get("outcome")), json.dumps(res.report or {}), time.time(),
                            res.id, station))
            else:
                db.execute(self.store, "UPDATE cr_commands SET outcome=?, reason=?, detail=?, result_at=?"
                                       " WHERE id=? AND station=? AND outcome IS NULL",
                           (res.outcome, res.reason, res.detail, time.time(), res.id, station))
        except HubStoreError as exc:
            log.error("control_room.result_not_stored", id=res.id, error=str(exc))
        log.info("control_room.command_result", id=res.id, station=station, outcome=res.outcome, reason=res.reason)
