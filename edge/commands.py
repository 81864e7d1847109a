"""The station side of signed hub commands: verify, refuse replays, apply, record, report back.

    async with CommandReceiver(sync_cfg, station, store, handlers, cfg) as rx:
        ...                                   # rx.counters for metrics

Checks, in order, each a stable reason code on refusal: the signature against the pinned hub key
(`bad_signature`, `bad_format`), the station named (`wrong_station`), the validity window with
`max_clock_skew_s` of slack (`not_yet_valid`, `expired`, `ttl_too_long`), the nonce never seen
before (`replayed`; nonces live in the station database until their command has expired), a
handler for the operation (`unsupported`); a command the full queue cannot take is refused before them
(`queue_full`). Then the daemon's handler applies it (`applied`, or
`failed` with the handler's message). Every command is recorded in `station_commands`.

Every result carries the station's effective settings (`settings()`: the daemon's thresholds, TIP
rate and model, and the last applied command), which the station also puts in its status and its
/health, so the control room shows what is in force. A `request_diag` handler returns an
awaitable: the run is started, reported `applied` at once, and its report is sent afterwards as a
second result (reason `report`); one run at a time (edge/diag/remote.py runs the plan).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Awaitable, Callable

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field

from central_sync import commands as c
from central_sync.config import BrokerConfig
from edge.errors import EdgeError
from central_sync.retention import TOPIC as RETENTION_TOPIC
from edge.retention import StationRetention
from edge.store import Store

log = structlog.get_logger("edge.commands")

DDL = """
CREATE TABLE IF NOT EXISTS cmd_nonces (
    nonce TEXT PRIMARY KEY, cmd_id TEXT NOT NULL, expires_at REAL NOT NULL, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS station_commands (
    row INTEGER PRIMARY KEY, cmd_id TEXT NOT NULL, received_at REAL NOT NULL, op TEXT NOT NULL,
    args TEXT NOT NULL, issuer TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cmd_reports (
    cmd_id TEXT PRIMARY KEY, at REAL NOT NULL, outcome TEXT NOT NULL, report TEXT NOT NULL);
"""
MAX_REPORT = 48 * 1024  # bytes of report JSON sent back; a longer one loses its measurement details, then its notes

Handler = Callable[..., object]  # plain or async; what it returns (or its awaitable gives) is reported as text


class CommandsConfig(BaseModel):
    """`[commands]` of the station config; without `hub_public_key` no command is accepted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hub_public_key: Path | None = None
    max_clock_skew_s: float = Field(30.0, ge=0, le=3600)
    max_ttl_s: float = Field(3600.0, gt=0, le=7 * 86400, description="refuse commands valid for longer")
    queue_max: int = Field(32, ge=1, le=1000)
    handler_timeout_s: float = Field(30.0, gt=0, le=600, description="handlers start work, they do not wait for it")
    diag_timeout_s: float = Field(600.0, gt=0, le=3600, description="a requested diagnostic run reports by then")


@dataclass(frozen=True, slots=True)
class CommandHandlers:
    """The daemon's callbacks (plain or async, called on the event loop); an absent one refuses its
    operation. They return promptly (a diagnostic run is started, not awaited) and raise to refuse."""

    set_thresholds: Handler | None = None   # (thresholds: dict[str, float])
    set_tip_rate: Handler | None = None     # (rate: float)
    request_diag: Handler | None = None     # (plan: str, lang: str); may return an awaitable of the run's report (a dict)
    switch_model: Handler | None = None     # (sha256: str); raise if the station holds no such model
    settings: Callable[[], dict[str, Any]] | None = None  # effective values: thresholds, tip_rate, model


class CommandRefused(EdgeError):
    """A hub command refused with a stable reason code; `detail` says why, with the values."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class CommandProcessor:
    """Checks and applies one envelope at a time; its own SQLite connection to the station database."""

    def __init__(self, db_path: Path, station: str, key: Ed25519PublicKey | None, cfg: CommandsConfig,
                 handlers: CommandHandlers) -> None:
        self.station, self.key, self.cfg, self.handlers = station, key, cfg, handlers
        self._conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._conn.executescript(DDL)
        self._lock = threading.Lock()
        self.on_report: Callable[[c.CommandResult], None] | None = None  # the receiver publishes a run's report
        self.diag: asyncio.Task | None = None
        self._diag_id = ""
        self._closed = False
        self._last: dict[str, Any] = {"last_command": None, "changed_at": None}

    def close(self) -> None:
        if self.diag is not None:
            self.diag.cancel()
        with self._lock:
            self._closed = True
            self._conn.close()

    def settings(self) -> dict[str, Any]:
        """The effective settings (the daemon's `settings` handler) and the last applied command.

        Called from the sync thread for every status as well: a failing handler is logged, never raised."""
        try:
            base = dict(self.handlers.settings()) if self.handlers.settings is not None else {}
        except Exception as exc:  # the daemon's callback: its failure must not stop a status or a result
            log.warning("commands.settings_failed", error=repr(exc))
            base = {"error": f"the station could not read its settings: {exc}"}
        with self._lock:
            if self._closed:  # the receiver has stopped; a last status still reads what was in force
                return {**base, **self._last}
            row = self._conn.execute("SELECT cmd_id, received_at, op, args, issuer FROM station_commands"
                                     " WHERE outcome='applied' AND reason='applied' ORDER BY row DESC LIMIT 1").fetchone()
        last = None if row is None else {"id": row[0], "at": row[1], "op": row[2], "args": json.loads(row[3]),
                                         "issuer": row[4]}
        self._last = {"last_command": last, "changed_at": row[1] if row else None}
        return {**base, **self._last}

    async def process(self, data: bytes, now: float | None = None) -> c.CommandResult:
        """Verify, apply and record one envelope; the result to report back."""
        now = time.time() if now is None else now
        cmd = None
        try:
            cmd = self._verify(data)
            self._check(cmd, now)
            await asyncio.to_thread(self._claim_nonce, cmd, now)
            outcome, reason, detail = await self._apply(cmd)
        except CommandRefused as why:
            outcome, reason, detail = "rejected", why.reason, why.detail
        return await self._answer(data, cmd, outcome, reason, detail, now)

    async def refuse(self, data: bytes, why: CommandRefused) -> c.CommandResult:
        """The answer to an envelope refused before its checks (the receiver's queue full), recorded as any refusal."""
        return await self._answer(data, None, "rejected", why.reason, why.detail, time.time())

    async def _answer(self, data: bytes, cmd: c.Command | None, outcome: c.Outcome, reason: str, detail: str,
                      now: float) -> c.CommandResult:
        """Record one envelope's result and return it with the settings in force (`cmd` None: not verified)."""
        head = {"id": cmd.id, "station": cmd.station, "op": cmd.op} if cmd else c.peek(data)
        result = c.CommandResult(id=head["id"], station=self.station, op=head["op"], outcome=outcome,
                                 reason=reason, detail=detail[:500], at=time.time())
        await asyncio.to_thread(self._record, result, cmd, now)
        result = result.model_copy(update={"settings": await asyncio.to_thread(self.settings)})
        log.info("commands.done", id=result.id, op=result.op, outcome=outcome, reason=reason)
        return result

    def _verify(self, data: bytes) -> c.Command:
        if self.key is None:
            raise CommandRefused("no_key", "this station has no pinned hub key and accepts no commands")
        try:
            return c.verify(self.key, data)
        except c.CommandError as exc:
            raise CommandRefused(exc.code, str(exc)) from exc

    def _check(self, cmd: c.Command, now: float) -> None:
        skew = self.cfg.max_clock_skew_s
        if cmd.station != self.station:
            raise CommandRefused("wrong_station", f"command {cmd.id} is for station {cmd.station}, this is {self.station}")
        if cmd.expires_at - cmd.issued_at > self.cfg.max_ttl_s:
            raise CommandRefused("ttl_too_long", f"command {cmd.id} is valid for {cmd.expires_at - cmd.issued_at:.0f} s,"
                                          f" more than {self.cfg.max_ttl_s:.0f} s")
        if cmd.issued_at > now + skew:
            raise CommandRefused("not_yet_valid", f"command {cmd.id} was issued {cmd.issued_at - now:.1f} s in the future")
        if cmd.expires_at < now - skew:
            raise CommandRefused("expired", f"command {cmd.id} expired {now - cmd.expires_at:.1f} s ago")

    def _claim_nonce(self, cmd: c.Command, now: float) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM cmd_nonces WHERE expires_at < ?", (now - 2 * self.cfg.max_clock_skew_s,))
                cur = self._conn.execute("INSERT INTO cmd_nonces VALUES (?,?,?,?) ON CONFLICT DO NOTHING",
                                         (cmd.nonce, cmd.id, cmd.expires_at, now))
            finally:
                self._conn.execute("COMMIT")
        if cur.rowcount == 0:
            raise CommandRefused("replayed", f"command {cmd.id} reuses nonce {cmd.nonce} already seen")

    async def _apply(self, cmd: c.Command) -> tuple[c.Outcome, str, str]:
        handler = getattr(self.handlers, cmd.op)
        if handler is None:
            raise CommandRefused("unsupported", f"this station does not handle {cmd.op}")
        args = c.check_args(cmd.op, cmd.args)
        if cmd.op == "request_diag":
            return self._start_diag(cmd, handler, args["plan"], args["lang"])
        try:
            async with asyncio.timeout(self.cfg.handler_timeout_s):
                out = handler(*args.values())
                if inspect.isawaitable(out):
                    out = await out
        except TimeoutError:
            return "failed", "handler_timeout", f"{cmd.op} did not finish within {self.cfg.handler_timeout_s:g} s"
        except Exception as exc:  # the daemon's handler refused or failed: reported, never fatal
            return "failed", "handler_failed", f"{cmd.op} failed: {exc}"
        return "applied", "applied", "" if out is None else str(out)

    def _start_diag(self, cmd: c.Command, handler: Handler, plan: str, lang: str) -> tuple[c.Outcome, str, str]:
        """Start the run (one at a time); its report follows as a second result."""
        if self.diag is not None and not self.diag.done():
            return "failed", "handler_failed", f"diagnostic run {self._diag_id} is still running; its report comes first"
        try:
            out = handler(plan, lang)
        except Exception as exc:  # the daemon refused to start the run: reported, never fatal
            return "failed", "handler_failed", f"request_diag failed: {exc}"
        if not inspect.isawaitable(out):
            return "applied", "applied", "" if out is None else str(out)
        self._diag_id = cmd.id
        self.diag = asyncio.create_task(self._report(cmd, out), name=f"diag-{cmd.id}")
        return "applied", "applied", f"diagnostic run ({plan}) started; its report follows"

    async def _report(self, cmd: c.Command, run: Awaitable[object]) -> c.CommandResult:
        """Await the run, record its report and hand it to `on_report`; a failed run is reported too."""
        try:
            async with asyncio.timeout(self.cfg.diag_timeout_s):
                got = await run
            report: dict[str, Any] = dict(got) if isinstance(got, dict) else {"outcome": "ERROR", "detail": repr(got)}
        except TimeoutError:
            report = {"outcome": "ERROR", "detail": f"the run did not finish within {self.cfg.diag_timeout_s:g} s"}
        except Exception as exc:  # the run's supervisor: any failure is the report, the receiver goes on
            log.exception("commands.diag_failed", id=cmd.id)
            report = {"outcome": "ERROR", "detail": f"{type(exc).__name__}: {exc}"}
        report = shrink_report(report)
        outcome: c.Outcome = "failed" if report.get("outcome") in ("ERROR", None) else "applied"
        detail = f"diagnostic run {report.get('outcome')}: " + ", ".join(
            f"{p.get('name')} {p.get('outcome')}" for p in report.get("phases", []))
        result = c.CommandResult(id=cmd.id, station=self.station, op=cmd.op, outcome=outcome, reason="report",
                                 detail=(detail if report.get("phases") else f"{detail}{report.get('detail', '')}")[:500],
                                 at=time.time(), report=report)
        await asyncio.to_thread(self._record_report, result)
        result = result.model_copy(update={"settings": await asyncio.to_thread(self.settings)})
        log.info("commands.diag_report", id=cmd.id, outcome=report.get("outcome"))
        if self.on_report is not None:
            self.on_report(result)
        return result

    def _record_report(self, result: c.CommandResult) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO cmd_reports (cmd_id, at, outcome, report) VALUES (?,?,?,?)"
                               " ON CONFLICT DO NOTHING", (result.id, result.at, str((result.report or {}).get("outcome")),
                                                           json.dumps(result.report)))
            self._conn.execute("INSERT INTO station_commands (cmd_id, received_at, op, args, issuer, outcome, reason, detail)"
                               " VALUES (?,?,?,?,?,?,?,?)", (result.id, result.at, result.op, "{}", "", result.outcome,
                                                            result.reason, result.detail))

    def report(self, cmd_id: str) -> dict[str, Any] | None:
        """The stored report of a diagnostic run the hub requested."""
        with self._lock:
            row = self._conn.execute("SELECT report FROM cmd_reports WHERE cmd_id=?", (cmd_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def _record(self, result: c.CommandResult, cmd: c.Command | None, now: float) -> None:
        args = json.dumps(cmd.args, sort_keys=True) if cmd else "{}"
        with self._lock:
            self._conn.execute("INSERT INTO station_commands (cmd_id, received_at, op, args, issuer, outcome, reason, detail)"
                               " VALUES (?,?,?,?,?,?,?,?)", (result.id, now, result.op, args, cmd.issuer if cmd else "",
                                                            result.outcome, result.reason, result.detail))

    def history(self, limit: int = 100) -> list[tuple]:
        """Recent commands, newest first: (cmd_id, received_at, op, issuer, outcome, reason, detail)."""
        with self._lock:
            return self._conn.execute("SELECT cmd_id, received_at, op, issuer, outcome, reason, detail FROM station_commands"
                                      " ORDER BY row DESC LIMIT ?", (limit,)).fetchall()


def shrink_report(report: dict[str, Any], limit: int = MAX_REPORT) -> dict[str, Any]:
    """The report within `limit` bytes of JSON: measurement details go first, then notes, then measurements."""
    for drop in ("detail", "notes", "measurements"):
        if len(json.dumps(report, default=str)) <= limit:
            break
        phases = [dict(p) for p in report.get("phases", [])]
        for p in phases:
            if drop == "detail":
                p["measurements"] = [{k: v for k, v in m.items() if k != "detail"} for m in p.get("measurements", [])]
            else:
                p.pop(drop, None)
        report = {**report, "phases": phases, "shortened": True}
    return json.loads(json.dumps(report, default=str))


class CommandReceiver:
    """Subscribes to the station's signed-command topic, processes one at a time, reports results."""

    def __init__(self, sync_cfg: BrokerConfig, station: str, store: Store | Path, handlers: CommandHandlers,
                 cfg: CommandsConfig, retention: StationRetention | None = None) -> None:
        """retention: the store's retention state, which takes the hub's retained, signed state on this link."""
        self.station, self.cfg, self.retention = station, cfg, retention
        key = c.load_public_key(cfg.hub_public_key) if cfg.hub_public_key else None
        db_path = store.db_path if isinstance(store, Store) else Path(store)
        self.processor = CommandProcessor(db_path, station, key, cfg, handlers)
        topics = [c.cmd_topic(station)] + ([RETENTION_TOPIC] if retention is not None else [])
        self.link = c.CommandLink(sync_cfg, f"{station}-cmd", topics, self._arrived, link="cmd")
        self.processor.on_report = self._send_report
        self.counters: Counter[str] = Counter()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=cfg.queue_max)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._refusals: set[asyncio.Task] = set()  # answers to commands the full queue could not take

    async def __aenter__(self) -> "CommandReceiver":
        self._loop = asyncio.get_running_loop()
        await self.link.__aenter__()
        self._task = asyncio.create_task(self._work(), name=f"commands-{self.station}")
        if self.processor.key is None:
            log.warning("commands.no_key", station=self.station)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.processor.diag is not None:  # a run still going is abandoned; its devices are the daemon's
            self.processor.diag.cancel()
            await asyncio.gather(self.processor.diag, return_exceptions=True)
        await self.link.__aexit__(exc_type, exc, tb)
        for task in [t for t in (self._task, *self._refusals) if t is not None]:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.processor.close()

    def _send_report(self, result: c.CommandResult) -> None:
        try:
            self.link.publish(c.result_topic(self.station), result.model_dump_json().encode())
        except c.CommandError as exc:  # the receiver is closing: the report stays in cmd_reports
            log.warning("commands.report_not_sent", id=result.id, error=str(exc))
            self.counters["reports_not_sent"] += 1
            return
        self.counters["reports"] += 1

    def _arrived(self, topic: str, payload: bytes) -> None:
        if topic == RETENTION_TOPIC and self.retention is not None:
            self.counters[f"retention_{self.retention.receive(self.processor.key, payload)}"] += 1
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._enqueue, payload)

    def _enqueue(self, payload: bytes) -> None:
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.counters["dropped_queue_full"] += 1
            log.warning("commands.dropped", station=self.station, reason="queue_full", queue_max=self.cfg.queue_max)
            self._refuse_queue_full(payload)

    def _refuse_queue_full(self, payload: bytes) -> None:
        """Answer a command the full queue cannot take `rejected`, `queue_full` (the hub showed "expired without a
        report"); at most queue_max such answers under way, past that the command is only counted and logged."""
        if len(self._refusals) >= self.cfg.queue_max:
            return
        why = CommandRefused("queue_full", f"the station's command queue is full ({self.cfg.queue_max} waiting,"
                                           " [commands] queue_max); the command was not applied: send it again")
        task = asyncio.create_task(self._answered(self.processor.refuse(payload, why), len(payload)),
                                   name=f"commands-{self.station}-refusal")
        self._refusals.add(task)
        task.add_done_callback(self._refusals.discard)

    async def _work(self) -> None:
        while True:
            payload = await self._queue.get()
            await self._answered(self.processor.process(payload), len(payload))

    async def _answered(self, answer: Awaitable[c.CommandResult], size: int) -> None:
        """Publish and count one envelope's result; a defect on one message is counted and logged, and the worker
        goes on (it ended, and later commands went unanswered)."""
        try:
            result = await answer
        except Exception:  # the supervisor of one message's answer
            self.counters["failed"] += 1
            log.exception("commands.failed", station=self.station, bytes=size)
            return
        self.counters[result.outcome] += 1
        self.link.publish(c.result_topic(self.station), result.model_dump_json().encode())
