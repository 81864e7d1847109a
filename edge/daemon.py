"""The station daemon: one AsyncExitStack of IO objects and one TaskGroup of named tasks.

Start-up order: store, model, devices, sync, web; READY=1 once every driver reached a defined
state (connected, or explicitly degraded); then the station flow runs until stopped. A task
that fails ends the TaskGroup and the process (systemd restarts it); nothing is swallowed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn

from appliance import sdnotify
from appliance.serving import stop_on_signals, until_listening
from appliance.https import uvicorn_tls, warn_plain_http
from appliance.version import version
from edge.config import CONFIG_ERROR_EXIT, StationConfig, unreadable_files
from edge.datadir import data_dir_lock
from edge.context import StationContext
from edge.detector import station_facts
from edge.devices import Devices, open_devices
from edge.events import EventBus
from edge.metrics import StationMetrics
from edge.model_rollout import Rollout, load_station_engine, open_rollout, run_rollout
from edge.risk import RiskCheck, RiskReceiver, RiskRuntime
from edge.lane_report import LaneReport, activity as lane_activity
from edge.logging import drain_logs
from edge import search_report
from edge.seals import seal_expectation
from edge.stations import FlowParts, InspectorParts, beltlatch
from edge.stations.kinds import KINDS
from edge.errors import EdgeError, HistoryUnavailable, StationUnusable, StoreCorrupt
from edge.history import VehicleHistory, hub_client, open_history
from edge.store import STORE_CORRUPT_EXIT, Store, StoreLimits, StoreWriter
from appliance.watchdog import Progress, watchdog
from models.pool import InferencePool

if TYPE_CHECKING:
    from central_sync.publisher import Publisher
    from central_sync.config import SyncConfig
    from edge.commands import CommandReceiver
    from edge.tip import TipEngine
    from models.shadow import ShadowRunner

log = structlog.get_logger()

HOUSEKEEPING_S = 5.0
FIGURES_EVERY = 12  # housekeeping rounds between disk and retention figures (a minute)
RESTART_DELAY_S = 5.0
SHUTDOWN_S = 20.0
MB = 1024 * 1024


async def run_stations(configs: list[StationConfig], *, stop: asyncio.Event | None = None) -> None:
    """Run stations in one process, sharing one fair inference pool, until stopped.

    A station whose database is corrupt is not restarted (the file is kept as evidence), nor one that cannot
    start until its config or host is mended (StationUnusable: its port, data_dir or certificate); the others
    run on, and the first such error is raised once every station has ended (exit STORE_CORRUPT_EXIT, 78).
    """
    guard = None
    if stop is None:  # the real daemon: signals stop it, and a stuck stop ends the process
        stop = stop_on_signals()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        guard = asyncio.create_task(_bound_shutdown(stop, configs), name="shutdown-guard")
    try:
        corrupt = await _run_all(configs, stop)
    finally:
        if guard is not None:
            guard.cancel()
    if corrupt:
        raise corrupt[0]


class Stations:
    """What the process tells systemd for all its stations: READY=1 once every station has come to its first
    outcome, ready, failed (restarted by its supervisor) or ended for good (one station's READY said nothing of the
    others; a station failing at every start must not hold READY back, or systemd would stop the healthy ones with
    it), WATCHDOG=1 only while no running station's task is stalled (one station's watchdog kept the process alive
    while another hung), STATUS naming each station."""

    def __init__(self, ids: list[str]) -> None:
        self.waiting, self.status = set(ids), dict.fromkeys(ids, "starting")
        self.progress: dict[str, Progress] = {}  # the running stations'
        self.told_ready = False

    def ready(self, station: str, status: str) -> None:
        self._set(station, status)

    def ended(self, station: str, why: str) -> None:
        self._set(station, f"station {station} stopped: {why}")

    def failed(self, station: str, why: str) -> None:
        self._set(station, f"station {station} failed, restarting in {RESTART_DELAY_S:g} s: {why}")

    def _set(self, station: str, status: str) -> None:
        self.status[station] = status
        self.waiting.discard(station)
        ready = not self.waiting and not self.told_ready
        self.told_ready = self.told_ready or ready
        shown = next(iter(self.status.values())) if len(self.status) == 1 else \
            "; ".join(f"{s}: {t}" for s, t in self.status.items())
        sdnotify.notify(("READY=1\n" if ready else "") + f"STATUS={shown}")

    def stalled(self) -> list[str]:
        return sorted(f"{s}:{name}" for s, progress in self.progress.items() for name in progress.stalled())


async def _run_all(configs: list[StationConfig], stop: asyncio.Event) -> list[StoreCorrupt | StationUnusable]:
    workers = max(c.model.pool_workers for c in configs)
    corrupt: list[StoreCorrupt | StationUnusable] = []
    stations = Stations([c.station.id for c in configs])
    async with InferencePool(workers, max(c.station.queue_size for c in configs)) as pool:
        async with asyncio.TaskGroup() as tasks:
            runs = [tasks.create_task(_supervise(config, pool, stop, corrupt, stations), name=f"station:{config.station.id}")
                    for config in configs]
            if (period := sdnotify.watchdog_period_s()) is not None:
                dog = tasks.create_task(watchdog(stations, period), name="watchdog")
                await asyncio.wait(runs)
                dog.cancel()
    return corrupt


async def _supervise(config: StationConfig, pool: InferencePool, stop: asyncio.Event,
                     corrupt: list[StoreCorrupt | StationUnusable], stations: Stations) -> None:
    """Restart a failed station after a pause, so that one station's fault never stops the others.

    Its devices are closed on the way out (safe state); items meanwhile are not inspected, and the
    failure is logged with its traceback. A corrupt database ends the station for good: restarting
    cannot mend it, and the file is never overwritten.
    """
    while not stop.is_set():
        try:
            await run_station(config, pool, stop, stations)
            return
        except StoreCorrupt as exc:
            log.error("station.store_corrupt", station=config.station.id, error=str(exc),
                      exit_status=STORE_CORRUPT_EXIT,
                      action="move the database aside or restore it from backup, then start the station")
            stations.ended(config.station.id, str(exc))
            corrupt.append(exc)
            return
        except StationUnusable as exc:  # restarting cannot mend it: said once, in one sentence, not every 5 s
            log.error("station.unusable", station=config.station.id, error=str(exc), exit_status=CONFIG_ERROR_EXIT)
            stations.ended(config.station.id, str(exc))
            corrupt.append(exc)
            return
        except Exception as exc:  # the station's top-level supervisor: log, pause, start the station afresh
            log.exception("station.failed", station=config.station.id, restart_in_s=RESTART_DELAY_S)
            stations.failed(config.station.id, f"{type(exc).__name__}: {exc}"[:300])
        try:
            await asyncio.wait_for(stop.wait(), RESTART_DELAY_S)
        except TimeoutError:
            continue


async def _open_history(stack: AsyncExitStack, config: StationConfig) -> VehicleHistory | None:
    """The vehicle history service when a hub URL is configured; a token that cannot be read leaves the
    station without the hub (its cache still answers), logged: history is never a reason not to inspect."""
    if not config.history.hub_url:
        return None
    try:
        client = await stack.enter_async_context(hub_client(config.history))
    except HistoryUnavailable as exc:
        log.error("history.no_hub", error=str(exc))
        client = None
    return open_history(config.history, config.station.data_dir, client)


async def run_station(config: StationConfig, pool: InferencePool, stop: asyncio.Event, stations: Stations) -> None:
    """Run one station until `stop` is set; it tells `stations` when it is ready, and is watched while it runs."""
    st = config.station
    kind = KINDS[st.kind]
    metrics, events, progress = StationMetrics(), EventBus(), Progress()
    async with AsyncExitStack() as stack:
        # first what only an operator can mend, before the store, the model and the devices are opened
        listener = stack.enter_context(_station_listener(config))
        _check_data_dir(st.id, st.data_dir)
        stack.enter_context(data_dir_lock(st.id, st.data_dir))
        limits = StoreLimits(config.store.reserve_mb * MB, config.store.scan_cap_mb * MB, config.store.retention_days)
        store = await stack.enter_async_context(StoreWriter(Store(st.data_dir, limits, st.id)))
        await store.call(store.store.sweep_orphans)  # under data_dir's lock, before anything is written
        await _alarm_unreadable_files(config, store)
        rollout = await open_rollout(config)  # a promoted model's slot replaces [model] dir (unless it does not load)
        engine = await load_station_engine(rollout, config.model, st.id, store, pool, station_facts(config))
        await run_rollout(stack, config, rollout, engine, pool, metrics)
        devices = await open_devices(stack, config.devices, st.id)
        metrics.follow_devices(devices)
        risk = await _open_risk(config, metrics)
        snapshot: dict[str, Any] = {}
        lane_report = LaneReport()
        status_parts: list[Callable[[], dict]] = [risk.status] if risk is not None else []  # more StatusMsg fields
        status_parts += [lane_report.status, store.store.retention.status, lambda: {"storage": snapshot.get("storage")}]
        if rollout is not None:
            status_parts.append(rollout.status)
        publisher = await _open_publisher(stack, config, store, status_parts)
        shadow = await _open_shadow(stack, config, pool, store)
        if shadow is not None:
            metrics.follow_shadow(shadow.stats)
        history = await _open_history(stack, config) if kind.name == "gantry" else None
        inspection = InspectorParts(st.id, st.lane, st.budget_ms, engine, store, events, metrics,
                                    after_commit=publisher.notify if publisher is not None else None,
                                    shadow=rollout or shadow,
                                    seals=seal_expectation(config),
                                    risk=RiskCheck(risk, st.id, st.kind, history.facts if history else None)
                                    if risk is not None else None, dense_alert_mm2=config.model.dense_alert_mm2)
        flow = kind.flow(FlowParts(config, devices, inspection, events, progress, history))
        lane_report.follow(flow.belt, flow.lane_control, devices)
        live_health: dict[str, Callable[[], Any]] = {}  # parts of /health read when asked (the commands' settings)
        screen_stop = asyncio.Event()  # this station's screen only: a failed station must not stop the others
        ctx = StationContext(st.id, st.kind, st.lane, st.budget_ms, store, events,
                             health=lambda: {**_health(engine, devices, publisher, metrics, snapshot, shadow),
                                             **{k: f() for k, f in live_health.items()}},
                             settings=config, belt=flow.belt, lane_control=flow.lane_control, panels=kind.panels,
                             stopping=screen_stop, cameras=search_report.camera_photos(devices.cameras))
        server, tip = _web_server(config, ctx, metrics)
        receiver = await _open_command_receiver(stack, config, store, engine, tip, devices, pool)
        if receiver is not None:  # what the hub's commands put in force, in the status and on /health
            status_parts.append(lambda: {"settings": receiver.processor.settings()})
            live_health["commands"] = receiver.processor.settings
            live_health["command_counts"] = lambda: dict(receiver.counters)  # a technician sees forged or bad ones
            metrics.follow_commands(lambda: dict(receiver.counters))
        await _open_risk_receiver(stack, config, store, risk)
        async with asyncio.TaskGroup() as tasks:
            endless = [tasks.create_task(flow.run(), name="flow"),
                       tasks.create_task(_housekeeping(store, publisher, metrics, devices, progress, snapshot, pool,
                                                       risk, lane_report), name="housekeeping")]
            tasks.create_task(_serve(server, listener, screen_stop), name="web")
            await until_listening(server)
            stations.progress[st.id] = progress
            stack.callback(stations.progress.pop, st.id, None)
            stations.ready(st.id, _ready_status(devices, engine))
            scheme = "https" if config.http.cert_file else "http"
            log.info("station.ready", station=st.id, kind=st.kind, web=f"{scheme}://{config.http.host}:{config.http.port}/",
                     devices=devices.states(), model=engine.model.name if engine.model else None, version=version())
            await stop.wait()
            log.info("station.stopping", station=st.id)
            flow.stopped_on_request()
            sdnotify.notify("STOPPING=1")
            screen_stop.set()
            server.should_exit = True
            for task in endless:
                task.cancel()


def dump_tasks() -> None:
    """SIGUSR1: log every task with the line it waits on (for a technician or a stuck stop)."""
    for task in asyncio.all_tasks():
        frames = task.get_stack(limit=8)
        where = [f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}" for f in frames]
        log.warning("daemon.task", task=task.get_name(), waiting_at=where)


async def _bound_shutdown(stop: asyncio.Event, configs: list[StationConfig]) -> None:
    """A stop that has not finished within SHUTDOWN_S names what holds it up and ends the process.

    Everything committed is already durable; systemd would kill the process at TimeoutStopSec
    anyway, without saying why. The stop did not finish, so it was not clean: a conveyor's belt file
    says so again, and the start systemd makes after exit 70 keeps the belt latched (`restarted`) for a
    supervisor instead of running it as after a clean stop.
    """
    await stop.wait()
    await asyncio.sleep(SHUTDOWN_S)
    log.error("daemon.shutdown_stuck", after_s=SHUTDOWN_S)
    dump_tasks()
    for config in configs:
        try:
            beltlatch.not_clean(config.station.data_dir / beltlatch.FILE_NAME)
        except OSError as exc:
            log.error("conveyor.belt_file_write_failed", station=config.station.id, error=str(exc))
    drain_logs()  # os._exit runs no atexit: the lines naming what held the stop up are written first
    os._exit(70)


async def _open_shadow(stack: AsyncExitStack, config: StationConfig, pool: InferencePool,
                       store: StoreWriter) -> ShadowRunner | None:
    """A candidate model beside the active one (model.shadow_dir): compared, never deciding. One that does not load
    is an alarm (`shadow_unavailable`), never a stop: the station inspects with its own model."""
    folder = config.model.shadow_dir
    if folder is None:
        await store.call(store.store.clear_alarm, "shadow_unavailable")
        return None
    from models.errors import ModelError
    from models.runtime import load_detector
    from models.shadow import ShadowRunner

    try:
        candidate = await asyncio.to_thread(load_detector, folder, intra_op_threads=config.model.threads,
                                            max_tile_px=config.model.max_tile_px)
    except ModelError as exc:
        why = (f"the shadow model in {folder} is not loaded, so it compares nothing (verdicts are the station's"
               f" model's): {exc}")
        log.error("model.shadow_unavailable", station=config.station.id, error=why)
        await store.call(store.store.raise_alarm, "shadow_unavailable", why)
        return None
    await store.call(store.store.clear_alarm, "shadow_unavailable")
    return await stack.enter_async_context(ShadowRunner(candidate, pool))


async def _open_publisher(stack: AsyncExitStack, config: StationConfig, store: StoreWriter,
                          status_parts: list[Callable[[], dict]]) -> Publisher | None:
    """status_parts: more StatusMsg fields (the risk run, the lane, the retention state
    and the disk figures housekeeping last took, the models, the commands' settings), read on the
    publisher's thread at every status."""
    if config.sync is None:
        return None
    from central_sync.publisher import Publisher

    return await stack.enter_async_context(
        Publisher(config.sync, config.station.id, store.store.db_path, store.store.scans_dir,
                  extra_status=lambda: {k: v for part in status_parts for k, v in part().items()}))


async def _open_risk(config: StationConfig, metrics: StationMetrics) -> RiskRuntime | None:
    """The risk bundle the station runs, reloaded from data_dir/risk/ (none: every item at least amber)."""
    if config.risk is None:
        return None
    runtime = await asyncio.to_thread(RiskRuntime.start, config.station.id, config.risk, config.station.data_dir)
    metrics.follow_risk(lambda: dict(runtime.counters), runtime.status)
    return runtime


async def _open_risk_receiver(stack: AsyncExitStack, config: StationConfig, store: StoreWriter,
                              risk: RiskRuntime | None) -> None:
    """Bundles from the hub, or a standing alarm when they cannot be received: inspection goes on on the last good one."""
    if risk is None or config.sync is None:
        return
    from central_sync.errors import SyncError

    try:
        await stack.enter_async_context(RiskReceiver(config.sync, config.station.id, risk))
    except (SyncError, OSError, ValueError) as exc:
        log.error("risk.unavailable", station=config.station.id, error=str(exc))
        await store.call(store.store.raise_alarm, "risk_unavailable", f"risk bundles from the hub are off: {exc}")
    else:
        await store.call(store.store.clear_alarm, "risk_unavailable")


async def _risk_alarms(store: StoreWriter, risk: RiskRuntime) -> None:
    """A standing alarm while the station has no bundle or runs on an expired one (the control room sees
    the same in the station's status)."""
    status = risk.status()
    if status["risk_version"] is None:
        await store.call(store.store.raise_alarm, "risk_no_bundle",
                         "no risk bundle has been received: every item is at least amber (the officer decides)")
    else:
        await store.call(store.store.clear_alarm, "risk_no_bundle")
    if status["risk_stale"]:
        expired = datetime.fromtimestamp(status["risk_expires_at"], timezone.utc).isoformat(timespec="seconds")
        await store.call(store.store.raise_alarm, "risk_stale",
                         f"risk bundle {status['risk_version']} expired at {expired}: it runs on at the raised random rate")
    else:
        await store.call(store.store.clear_alarm, "risk_stale")


def _web_server(config: StationConfig, ctx: StationContext,
                metrics: StationMetrics) -> tuple[uvicorn.Server, TipEngine]:
    """The screen's server, and its TIP engine (the hub's commands steer the same one)."""
    from fastapi import Response

    from edge.web.app import create_app, make_tip_engine, web_config

    http = config.http
    tls = http.cert_file is not None
    cfg = web_config(ctx)
    if tls and not cfg.secure_cookie:  # served over TLS: the session cookie never goes out in clear
        cfg = cfg.model_copy(update={"secure_cookie": True})
    tip = make_tip_engine(ctx, cfg)
    app = create_app(ctx, cfg, tip_engine=tip)

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    warn_plain_http(http.host, http.port, f"station screen {config.station.id}", tls)
    server_config = uvicorn.Config(app, host=http.host, port=http.port, log_level="warning", access_log=False,
                                   lifespan="on", timeout_graceful_shutdown=2, **uvicorn_tls(http.cert_file, http.key_file))
    return uvicorn.Server(server_config), tip  # its signal hand-over: appliance.serving


def _station_listener(config: StationConfig) -> socket.socket:
    """The screen's socket, or StationUnusable naming http.host and http.port (taken, refused, no such address)."""
    http = config.http
    try:
        return _listen(http.host, http.port)
    except OSError as exc:
        raise StationUnusable(f"station {config.station.id}'s screen cannot listen on http.host {http.host} "
                              f"http.port {http.port}: {exc.strerror or exc}") from exc


def _check_data_dir(station: str, data_dir: Path) -> None:
    """StationUnusable unless the station can make and write files in `data_dir` (and its database, if any)."""
    probe = data_dir / f".write-probe-{os.getpid()}"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
        for name in ("station.db", "station.db-wal", "station.db-shm"):
            if (data_dir / name).exists() and not os.access(data_dir / name, os.R_OK | os.W_OK):
                raise PermissionError(13, "not readable and writable by this user", str(data_dir / name))
    except OSError as exc:
        raise StationUnusable(f"station {station}'s data_dir {data_dir} cannot be written: "
                              f"{exc.strerror or exc} ({exc.filename or data_dir})") from exc


def _listen(host: str, port: int) -> socket.socket:
    """The screen's listening socket, bound here (SO_REUSEADDR) so that a restarted station binds it again."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


async def _serve(server: uvicorn.Server, listener: socket.socket, screen_stop: asyncio.Event) -> None:
    """Serve the screen; cancelled (another task failed), it still shuts down: listener, streams, connections. Cancelled
    while the app was starting (a station failing at once), the app's lifespan is ended too: left waiting, its task was
    destroyed by the garbage collector at any later moment, closing the screen's store inside whatever call it
    interrupted — once inside the store's own thread pool's submit, whose lock it then waited for: the whole process
    (every station on it) hung and ignored SIGTERM."""
    try:
        await server.serve(sockets=[listener])
    except asyncio.CancelledError:
        screen_stop.set()
        if server.started:
            await server.shutdown(sockets=[listener])
        elif (lifespan := getattr(server, "lifespan", None)) is not None:
            await lifespan.shutdown()
        raise
    except OSError as exc:  # the certificate or key cannot be read or do not match (uvicorn loads them first)
        if server.started or server.config.ssl_certfile is None:
            raise
        raise StationUnusable(f"the station screen cannot serve HTTPS with http.cert_file {server.config.ssl_certfile} "
                              f"and http.key_file {server.config.ssl_keyfile}: {exc}") from exc
    except SystemExit as exc:  # uvicorn's way of saying the app's start-up failed: a station fault, not the process's
        where = listener.getsockname()
        raise EdgeError(f"the station screen on {where} failed to start (uvicorn status {exc.code})") from exc


async def _alarm_unreadable_files(config: StationConfig, store: StoreWriter) -> None:
    """Files the config names that cannot be read: an alarm, never a stop (the sync is not needed to inspect)."""
    problems = unreadable_files(config)
    if not problems:
        await store.call(store.store.clear_alarm, "config_files")
        return
    message = "; ".join(f"{key}: {problem}" for key, problem in problems)
    log.error("station.config_files_unreadable", station=config.station.id, problems=message)
    await store.call(store.store.raise_alarm, "config_files", message)


async def _open_command_receiver(stack: AsyncExitStack, config: StationConfig, store: StoreWriter, engine: Any,
                                 tip: TipEngine, devices: Devices, pool: InferencePool) -> CommandReceiver | None:
    """Signed commands from the hub, or a standing alarm when they cannot be received: inspection goes on."""
    if config.sync is None:
        return None
    from central_sync.errors import SyncError

    try:
        receiver = await _enter_command_receiver(stack, config, config.sync, store, engine, tip, devices, pool)
    except (SyncError, OSError, ValueError) as exc:
        log.error("commands.unavailable", station=config.station.id, error=str(exc))
        await store.call(store.store.raise_alarm, "commands_unavailable",
                         f"signed commands from the hub are off: {exc}")
        return None
    await store.call(store.store.clear_alarm, "commands_unavailable")
    return receiver


async def _enter_command_receiver(stack: AsyncExitStack, config: StationConfig, sync: SyncConfig, store: StoreWriter,
                                  engine: Any, tip: TipEngine, devices: Devices, pool: InferencePool) -> CommandReceiver:
    """Thresholds, TIP rate, active model and a diagnostic run of the read-only phases, steered by the hub."""
    from edge.commands import CommandHandlers, CommandReceiver
    from edge.diag.remote import run_remote

    def set_tip_rate(rate: float) -> None:
        tip.cfg = tip.cfg.model_copy(update={"rate": rate})

    def lane_busy() -> bool:  # the model is working or items wait for it: no CPU-heavy phase now
        stats = pool.stats()
        return stats["running"] > 0 or sum(stats["queued"].values()) > 0

    def request_diag(plan: str, lang: str) -> Awaitable[dict]:
        return run_remote(config, devices, engine.detector, plan, lane_busy=lane_busy, lang=lang)

    handlers = CommandHandlers(set_thresholds=engine.set_thresholds, set_tip_rate=set_tip_rate,
                               switch_model=engine.switch_model,
                               request_diag=request_diag, settings=lambda: command_settings(engine, tip))
    return await stack.enter_async_context(CommandReceiver(sync, config.station.id, store.store, handlers,
                                                           config.commands, retention=store.store.retention))


def command_settings(engine: Any, tip: TipEngine) -> dict[str, Any]:
    """What the hub's commands set, as in force now: per-class thresholds, TIP rate, the active model."""
    detector = engine.detector
    model = engine.model
    return {"thresholds": {k: round(float(v), 6) for k, v in detector.thresholds.items()} if detector is not None else {},
            "tip_rate": tip.cfg.rate,
            "model": {"name": model.name, "version": model.version, "sha256": model.sha256} if model else None}


async def _housekeeping(store: StoreWriter, publisher: Any, metrics: StationMetrics, devices: Devices,
                        progress: Progress, snapshot: dict[str, Any], pool: InferencePool,
                        risk: RiskRuntime | None = None, lane_report: LaneReport | None = None) -> None:
    """Retention, gauges, the health snapshot, the lane's activity for the hub and liveness, every few seconds."""
    progress.register("housekeeping")
    rounds = 0
    while True:
        await store.call(store.store.check_space)
        if risk is not None:
            await _risk_alarms(store, risk)
        await store.call(store.store.prune)
        if rounds % FIGURES_EVERY == 0:  # counting records per verdict reads an index: not every round
            snapshot["storage"] = await store.call(store.store.figures)
        rounds += 1
        backlog = await store.call(store.store.outbox_backlog)
        snapshot["alarms"] = [list(a) for a in await store.call(store.store.standing_alarms)]
        if lane_report is not None:
            lane_report.activity = await store.call(lane_activity, store.store)
        snapshot["store"] = {"records": store.store.counters.records, "backlog": backlog, "full": store.store.full,
                             "scans_dropped": dict(store.store.counters.scans_dropped)}
        for lane in ("alert", "record", "image"):
            metrics.outbox_backlog.labels(lane).set(backlog.get(lane, 0))
        metrics.queue_depth.labels("inference").set(pool.stats()["queued"].get(store.store.station, 0))
        for name, state in devices.states().items():
            metrics.device_up.labels(name).set(1 if state["state"] == "ok" else 0)
        progress.beat("housekeeping")
        await asyncio.sleep(HOUSEKEEPING_S)


def _health(engine: Any, devices: Devices, publisher: Any, metrics: StationMetrics, snapshot: dict,
            shadow: Any = None) -> dict:
    model = engine.model
    return {
        "devices": devices.states(),
        "model": {"state": ("degraded" if engine.problem else "ok") if model else "lost",
                  "name": model.name if model else None,
                  "version": model.version if model else None, "detail": engine.problem or ""},
        "sync": publisher.stats() if publisher is not None else {"state": "disabled"},
        "budget_misses": metrics.budget_misses_total(),
        "shadow": shadow.stats() if shadow is not None else None,
        **snapshot,
    }


def _ready_status(devices: Devices, engine: Any) -> str:
    degraded = [n for n, s in devices.states().items() if s["state"] != "ok"]
    parts = ["devices connected" if not degraded else f"degraded: {', '.join(degraded)}"]
    if engine.model is None or engine.problem:
        parts.append(f"NO MODEL for this station's scans: every item goes to manual ({engine.problem})")
    else:
        parts.append("model loaded")
    return "; ".join(parts)
