"""A self-contained station screen for demos and browser tests: real Store, real app, synthetic scans.

`python -m edge.web.demo --port 8080 --data /tmp/cpe-demo` serves the screen and publishes a
synthetic item every few seconds, as the daemon does (commit, then publish on the event bus).
Demo users: officer badge 0A1B2C3D PIN 1234, supervisor 5E6F7A8B PIN 5678, technician 9C0D1E2F PIN 9012.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar, TypeVarTuple, Unpack

import cv2
import numpy as np
import uvicorn

from central_sync.schema import DetectionOut, Identity, InspectionRecord, ItemKind, ScanRef, Verdict
from edge.auth import add_user
from edge.context import StationContext
from edge.events import EventBus
from edge.ids import new_id
from edge.store import Store, StoreWriter
from edge.tip import TipEngine
from edge.web.app import create_app, ensure_schema
from edge.web.config import TipConfig, WebConfig
from models.scan import AIR, Scan, load_scan

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEMO_USERS = (("0A1B2C3D", "Officer Chan", "officer", "1234"), ("5E6F7A8B", "Supervisor Lee", "supervisor", "5678"),
              ("9C0D1E2F", "Technician Wong", "technician", "9012"))


def synthetic_scan(rng: np.random.Generator, threat: bool, shape: tuple[int, int] = (360, 560),
                   dense: bool = False) -> tuple[Scan, list]:
    """A bag of clothes, a bottle, a laptop-like slab; with `threat`, a steel pistol shape; with `dense`, a
    6 mm lead block at (x 40-110, y 250-310) the beam cannot penetrate. Returns (scan, truth).

    Rendered through the simulator's physics (models.training) so the material colours are right."""
    from models.training.physics import ideal_transmission

    h, w = shape
    paths = {k: np.zeros(shape, np.float32) for k in ("textile", "water", "aluminium", "steel")}
    if dense:
        paths["lead"] = np.zeros(shape, np.float32)
        cv2.rectangle(paths["lead"], (40, 250), (110, 310), 6.0, -1)
    cv2.rectangle(paths["textile"], (40, 30), (w - 40, h - 30), 120.0, -1)
    cv2.ellipse(paths["water"], (int(rng.integers(120, 200)), 120), (40, 70), 0, 0, 360, 60.0, -1)
    cv2.rectangle(paths["aluminium"], (260, int(rng.integers(60, 120))), (480, 180), 6.0, -1)
    truth = []
    if threat:
        x, y = int(rng.integers(120, 380)), int(rng.integers(200, 260))
        cv2.rectangle(paths["steel"], (x, y), (x + 100, y + 18), 12.0, -1)
        cv2.rectangle(paths["steel"], (x + 58, y + 18), (x + 82, y + 60), 9.0, -1)
        truth.append({"label": "firearm", "box": [x, y, x + 100, y + 60]})
    high, low = ideal_transmission({k: cv2.GaussianBlur(v, (0, 0), 1.0) for k, v in paths.items()})
    out = [np.clip(t * (1 + rng.normal(0, 0.003, shape)) * AIR, 0, AIR).astype(np.uint16) for t in (high, low)]
    return Scan(high=out[0], low=out[1], meta={"pixel_mm": 1.0, "source": "demo", "truth": truth}), truth


def record_for(scan: Scan, verdict: Verdict, reason: str, truth: list, station: str = "demo-1",
               identities: list[Identity] | None = None, latency_ms: float = 180.0) -> InspectionRecord:
    """An inspection record as the daemon would write it (seq assigned by Store.commit)."""
    now = datetime.now(timezone.utc)
    dets = [DetectionOut(label=t["label"], score=0.91, box=tuple(t["box"])) for t in truth]
    tag = Identity(kind="rfid", value=f"E200{time.time_ns() // 1_000_000 % 10**8:08d}")
    return InspectionRecord(id=new_id(), seq=0, station=station, lane="1", kind=ItemKind.BAGGAGE,
                            started_at=now - timedelta(seconds=2), decided_at=now,
                            identities=identities or [tag],
                            scan=ScanRef(sha256=scan.sha256(), size=len(scan.to_bytes()), shape=scan.shape),
                            detections=dets, verdict=verdict, reason=reason,
                            latencies_ms={"acquire": 900.0, "detect": latency_ms - 1.0, "decide": 1.0, "actuate": 2.0},
                            budget_ms=400.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StationHarness:
    """Uvicorn on a free 127.0.0.1 port in a thread, with a real Store and an event bus to publish to."""

    def __init__(self, data_dir: Path, cfg: WebConfig | None = None, tip: TipEngine | None = None,
                 port: int | None = None) -> None:
        self.store = Store(Path(data_dir), station="demo-1").open()
        ensure_schema(self.store)
        self.writer = StoreWriter(self.store)
        self.events = EventBus()
        self.health: dict[str, Any] = {
            "devices": {"plc": {"state": "ok", "detail": ""}, "xray": {"state": "ok", "detail": ""}},
            "model": {"name": "demo", "version": "0", "state": "loaded"}, "sync": {"backlog": 0},
            "budget_misses": 0, "alarms": []}
        self.ctx = StationContext("demo-1", "conveyor", "1", 400.0, self.writer, self.events, lambda: self.health)
        self.app = create_app(self.ctx, cfg or WebConfig(), tip)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_graceful_shutdown=1, lifespan="on"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._serve, name="uvicorn", daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        finally:
            self.loop.run_until_complete(self.writer.__aexit__(None, None, None))  # closes the store and its thread
            self.loop.close()

    def __enter__(self) -> "StationHarness":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"station screen did not start on port {self.port} within 20 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def add_demo_users(self) -> None:
        for badge, name, role, pin in DEMO_USERS:
            self.call(add_user, badge, name, role, pin)

    def call(self, fn: Callable[[Store, Unpack[Ts]], T], *args: Unpack[Ts]) -> T:
        """Run `fn(store, *args)` on the daemon store's thread, as the daemon does."""
        return asyncio.run_coroutine_threadsafe(self.writer.call(fn, self.store, *args), self.loop).result(30)

    def commit(self, scan: Scan | None, record: InspectionRecord) -> InspectionRecord:
        ref = record.scan
        stored = False
        if scan is not None and ref is not None:
            stored = self.call(lambda s: s.put_scan(ref.sha256, scan.to_bytes()))
        return self.call(lambda s: s.commit(record, stored))

    def publish(self, topic: str, data: dict[str, Any]) -> float:
        """Publish on the bus from the server's loop; returns time.monotonic() at the call."""
        t0 = time.monotonic()
        self.loop.call_soon_threadsafe(self.events.publish, topic, data)
        return t0

    def publish_record(self, record: InspectionRecord) -> float:
        return self.publish("inspection", record.model_dump(mode="json", by_alias=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--data", type=Path, default=Path("/tmp/cpe-demo"))
    p.add_argument("--every", type=float, default=4.0, help="seconds between items")
    p.add_argument("--tip-rate", type=float, default=0.2)
    a = p.parse_args(argv)
    cfg = WebConfig(tip=TipConfig(rate=a.tip_rate))  # the library is built in the data dir on first start
    rng = np.random.default_rng()
    examples = sorted(Path(__file__).resolve().parents[2].glob("examples/scans/*.npz"))
    with StationHarness(a.data, cfg, port=a.port) as h:
        h.add_demo_users()
        users = ", ".join(f"{role} {badge} / {pin}" for badge, _, role, pin in DEMO_USERS)
        print(f"station screen at {h.url}  ({users})")
        while True:
            roll = rng.random()
            if examples:  # the simulator's example bags, their truth standing in for the detector
                scan = load_scan(examples[int(rng.integers(len(examples)))])
                truth = scan.meta.get("truth", [])
            else:
                scan, truth = synthetic_scan(rng, threat=roll < 0.3)
            verdict, reason = (Verdict.SUSPECT, "detection") if truth else \
                (Verdict.MANUAL, "budget_missed") if roll > 0.9 else (Verdict.CLEAR, "clear")
            h.publish_record(h.commit(scan, record_for(scan, verdict, reason, truth)))
            time.sleep(a.every)


if __name__ == "__main__":
    raise SystemExit(main())
