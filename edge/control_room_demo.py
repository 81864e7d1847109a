"""The control room live with three simulated stations: broker, hub, control room, publishers.

    python -m edge.control_room_demo [--port 8090] [--seconds 0] [--lang en]

Each station writes records into its own outbox (as the station store does) at a few per second:
some suspect with a detection box, some manual (budget missed, device fault), reviews a few
seconds after an alert; each station verifies and applies signed commands from the hub. Sign in
as `operator`, `supervisor` or `admin` with the password printed at start.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sqlite3
import tempfile
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import structlog
import uvicorn

from central_sync import commands as c
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import Mosquitto, open_station_db
from edge.commands import CommandHandlers, CommandReceiver, CommandsConfig
from edge.config import StationConfig, StationSection
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.outbox import Lane, enqueue
from central_sync.publisher import Publisher
from central_sync.schema import DetectionOut, Identity, InspectionRecord, ItemKind, ModelRef, Review, ScanRef, Verdict
from models.scan import Scan

log = structlog.get_logger("edge.control_room_demo")
PASSWORD = "demo-password"
STATIONS = {"gate-1": ItemKind.CONTAINER, "conveyor-1": ItemKind.BAGGAGE, "xray-1": ItemKind.PARCEL}
LABELS = ("knife", "firearm", "cigarettes", "drugs", "currency")
MODEL = ModelRef(name="cpe-detector", version="1.4.0", sha256="ab" * 32)


def demo_scan(rng: np.random.Generator, box: tuple[int, int, int, int] | None) -> Scan:
    """A container of organic clutter with a dense object where `box` is."""
    high = np.full((240, 360), 62000, np.float32)
    high[30:210, 20:340] *= 0.55
    for _ in range(6):
        y, x = rng.integers(40, 180), rng.integers(30, 300)
        high[y:y + rng.integers(10, 40), x:x + rng.integers(10, 60)] *= rng.uniform(0.4, 0.8)
    if box:
        x0, y0, x1, y1 = box
        high[y0:y1, x0:x1] *= 0.08
    high = np.clip(high + rng.normal(0, 300, high.shape), 50, 65535)
    low = 65535 * (high / 65535) ** 1.3
    return Scan(high=high.astype(np.uint16), low=low.astype(np.uint16), meta={"pixel_mm": 2.0, "source": "demo"})


def make_item(station: str, seq: int, rng: np.random.Generator, scans: Path) -> InspectionRecord:
    roll = rng.random()
    verdict = Verdict.SUSPECT if roll < 0.2 else Verdict.MANUAL if roll < 0.28 else Verdict.CLEAR
    reason = {"suspect": "detection", "clear": "clear"}.get(verdict.value) or str(rng.choice(["budget_missed", "device_fault"]))
    box = (int(rng.integers(60, 250)), int(rng.integers(50, 150)), 0, 0) if verdict == Verdict.SUSPECT else None
    box = (box[0], box[1], box[0] + 50, box[1] + 30) if box else None
    scan = demo_scan(rng, box)
    sha = scan.sha256()
    (scans / sha[:2]).mkdir(parents=True, exist_ok=True)
    (scans / sha[:2] / f"{sha}.npz").write_bytes(scan.to_bytes())
    now = datetime.now(UTC)
    idents = [Identity(kind="rfid", value=f"E200{rng.integers(10**7, 10**8)}", source="rfid0")]
    if STATIONS[station] == ItemKind.CONTAINER:
        idents += [Identity(kind="container", value=f"MSCU{rng.integers(10**6, 10**7)}"),
                   Identity(kind="plate", value=f"HK{rng.integers(1000, 9999)}")]
    return InspectionRecord(
        id=f"{now:%Y%m%d%H%M%S}-{station}-{seq:09d}-{uuid.uuid4().hex[:6]}", seq=seq, station=station, lane="L1",
        kind=STATIONS[station], started_at=now - timedelta(milliseconds=int(rng.integers(150, 900))), decided_at=now,
        identities=idents, scan=ScanRef(sha256=sha, size=0, shape=scan.shape), model=MODEL, verdict=verdict, reason=reason,
        detections=[DetectionOut(label=str(rng.choice(LABELS)), score=float(rng.uniform(0.5, 0.98)), box=box)] if box else [],
        latencies_ms={"detect": float(rng.uniform(40, 300))}, budget_ms=800.0)


async def run_station(station: str, db: Path, scans: Path, pub: Publisher, stop: asyncio.Event, rate_s: float) -> None:
    """Enqueue records as the station store does; review some alerts a few seconds later."""
    rng = np.random.default_rng(abs(hash(station)) % 2**32)
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    seq = 0
    try:
        while not stop.is_set():
            seq += 1
            rec = await asyncio.to_thread(make_item, station, seq, rng, scans)
            _enqueue(conn, rec)
            pub.notify()
            if rec.verdict == Verdict.SUSPECT and rng.random() < 0.7:
                asyncio.get_running_loop().call_later(float(rng.uniform(3, 10)), _review, conn, rec, rng, pub)
            await asyncio.sleep(float(rng.exponential(rate_s)))
    finally:
        conn.close()


def _enqueue(conn: sqlite3.Connection, rec: InspectionRecord) -> None:
    body = rec.to_json()
    conn.execute("BEGIN")
    if rec.verdict == Verdict.SUSPECT:
        enqueue(conn, Lane.ALERT, "alert", rec.id, rec.seq, body)
    enqueue(conn, Lane.RECORD, "inspection", rec.id, rec.seq, body)
    if rec.scan is not None:
        enqueue(conn, Lane.IMAGE, "blob", rec.id, rec.seq, rec.scan.sha256)
    conn.execute("COMMIT")


def _review(conn: sqlite3.Connection, rec: InspectionRecord, rng: np.random.Generator, pub: Publisher) -> None:
    outcome: Literal["threat_confirmed", "false_alarm"] = "threat_confirmed" if rng.random() < 0.6 else "false_alarm"
    review = Review(officer=f"B-{rng.integers(10, 40)}", decided_at=datetime.now(UTC), outcome=outcome)
    conn.execute("BEGIN")
    enqueue(conn, Lane.RECORD, "review", rec.id, rec.seq, rec.model_copy(update={"review": review}).to_json())
    conn.execute("COMMIT")
    pub.notify()


def _status_settings(rx: CommandReceiver) -> dict:
    return {"settings": rx.processor.settings()}


class DemoSettings:
    """What a demo station's commands change, kept and reported as a station does (edge.commands);
    a requested diagnostic run is the real remote plan (edge/diag/remote.py) on a station without devices."""

    def __init__(self, station: str, work: Path, sync: SyncConfig) -> None:
        self.station = station
        self.thresholds = {label: 0.5 for label in LABELS} | {"firearm": 0.3, "knife": 0.35}
        self.tip_rate = 0.03
        kind = {ItemKind.CONTAINER: "gantry", ItemKind.BAGGAGE: "conveyor"}.get(STATIONS[station], "xray")
        # a demo station has no devices, which a real station's config refuses: built unchecked, for the diag run only
        self.config = StationConfig.model_construct(station=StationSection(
            id=station, kind=kind, item_kind=STATIONS[station], budget_ms=2000, data_dir=work / station), sync=sync)

    def settings(self) -> dict:
        return {"thresholds": dict(self.thresholds), "tip_rate": self.tip_rate,
                "model": {"name": MODEL.name, "version": MODEL.version, "sha256": MODEL.sha256}}

    def set_thresholds(self, thresholds: dict[str, float]) -> None:
        unknown = sorted(set(thresholds) - set(self.thresholds))
        if unknown:
            raise ValueError(f"the demo model has no classes {unknown}; it has {sorted(self.thresholds)}")
        self.thresholds.update(thresholds)

    def set_tip_rate(self, rate: float) -> None:
        self.tip_rate = rate

    def switch_model(self, sha256: str) -> None:
        raise ValueError(f"station {self.station} holds no model with sha256 {sha256[:12]}")

    def handlers(self) -> CommandHandlers:
        from edge.devices import Devices
        from edge.diag.remote import run_remote

        return CommandHandlers(set_thresholds=self.set_thresholds, set_tip_rate=self.set_tip_rate,
                               switch_model=self.switch_model, settings=self.settings,
                               request_diag=lambda plan, lang: run_remote(self.config, Devices(), None, plan,
                                                                                 lang=lang))


async def demo(work: Path, port: int, seconds: float, lang: str, rate_s: float = 2.0) -> None:
    c.generate_keypair(work / "hub.key", work / "hub.pub")
    store = open_store(str(work / "hub.sqlite3"))
    stop = asyncio.Event()
    with Mosquitto(work / "broker") as broker:
        broker_cfg, sync = BrokerConfig(port=broker.port), SyncConfig(port=broker.port, status_period_s=2.0)
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(Hub(broker_cfg, store, "hub-demo"))
            room = await stack.enter_async_context(ControlRoom(store, broker_cfg, ControlRoomConfig(
                signing_key=work / "hub.key", default_lang=lang, client_id="hub-demo-cr", stale_s=10,
                secure_cookie=False)))  # a plain-HTTP demo
            for role in auth.ROLES:
                auth.add_user(store, {"admin": "admin"}.get(role, role), role, PASSWORD, lang)
            async with asyncio.TaskGroup() as tasks:
                for station in STATIONS:
                    db, scans = work / f"{station}.db", work / f"{station}-scans"
                    open_station_db(db).close()
                    rx = await stack.enter_async_context(CommandReceiver(
                        sync, station, db, DemoSettings(station, work, sync).handlers(),
                        CommandsConfig(hub_public_key=work / "hub.pub")))
                    pub = await stack.enter_async_context(Publisher(
                        sync, station, db, scans, extra_status=functools.partial(_status_settings, rx)))
                    tasks.create_task(run_station(station, db, scans, pub, stop, rate_s), name=f"demo-{station}")
                server = uvicorn.Server(uvicorn.Config(room.install(create_app(store, hub.stats)), host="127.0.0.1",
                                                       port=port, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
                serving = tasks.create_task(server.serve(), name="web")
                print(f"control room: http://127.0.0.1:{port}/  users operator, supervisor, admin; password {PASSWORD!r}")
                try:
                    await (asyncio.sleep(seconds) if seconds else asyncio.Event().wait())
                finally:
                    stop.set()
                    server.should_exit = True
                    await serving
    store.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m edge.control_room_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: until Ctrl-C)")
    ap.add_argument("--lang", default="en", choices=("en", "zh-Hant", "zh-Hans"))
    ap.add_argument("--rate", type=float, default=2.0, help="mean seconds between items per station")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cr-demo-") as tmp:
        try:
            asyncio.run(demo(Path(tmp), args.port, args.seconds, args.lang, args.rate))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
