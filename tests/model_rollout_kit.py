"""A model roll-out rig over a real Mosquitto (tests/edge/test_model_rollout.py, the control room's browser test):
the hub's package folder and sender, and a station composed as the daemon composes it (slots read first, the
engine on the active slot, the canary, the package receiver, the status publisher)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.commands import generate_keypair, load_public_key
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.devtools import Mosquitto, open_station_db
from central_sync.model_delivery import Criteria, ModelDelivery, ModelRepo, Target
from central_sync.publisher import Publisher
from edge.config import ModelSection
from edge.detector import Engine
from edge.model_rollout import Rollout, RolloutConfig
from edge.risk import RiskReceiver
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import scatter, write_package
from polling import until

STATION = "gate-1"
KEY_ID = "models-2026"
OVERLAP = 32


def package(root: Path, version: str, *, corrupt: bool = False) -> Path:
    """A test-graph package of `version`; its model's bytes differ by version (same detections), or are garbage."""
    write_package(root, version=version)
    model = onnx.load_from_string((root / "model.onnx").read_bytes())
    model.doc_string = f"build {version}"
    data = b"\x08\x07corrupt" * 64 if corrupt else model.SerializeToString()
    (root / "model.onnx").write_bytes(data)
    manifest = root / "manifest.toml"
    manifest.write_text(re.sub(r'sha256 = "[0-9a-f]+"', f'sha256 = "{hashlib.sha256(data).hexdigest()}"',
                               manifest.read_text()))
    return root


@dataclass
class Rig:
    broker: Mosquitto
    hub: ModelDelivery
    repo: ModelRepo
    key: Ed25519PrivateKey
    tmp: Path
    pool: InferencePool

    def stage(self, version: str, *, key: Ed25519PrivateKey | None = None, key_id: str = KEY_ID,
              allow_downgrade: bool = False, corrupt: bool = False, after: str | None = None, send: bool = True,
              **criteria: Any) -> int:
        """Upload, sign and stage a package for the station; `after` spoils it once staged: "unsign", "tamper";
        the hub sends it unless `send` is False (the test takes `self.repo.offer(...)` in hand)."""
        name = self.repo.upload(package(self.tmp / f"src-{version}", version, corrupt=corrupt))
        self.repo.sign(name, key or self.key, key_id, allow_downgrade=allow_downgrade)
        record = self.repo.stage(name, Target(stations=(STATION,)), Criteria(**criteria), known=[STATION])
        if not send:
            return record.id
        folder = self.repo.package_dir(name)
        if after == "unsign":
            (folder / "signature.json").unlink()
        elif after == "tamper":  # the model is replaced after the admin signed it
            (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes() + b"\x00")
        self.hub.check()
        return record.id

    @asynccontextmanager
    async def station(self, crash_limit: int = 2, more_keys: dict[str, Path] | None = None,
                      pins_hub_key: bool = True, thresholds: dict[str, float] | None = None) -> AsyncIterator[Rollout]:
        """The station as the daemon composes it: slots read first, the engine on the active slot (under
        `[model] thresholds`), then the canary; it pins the hub's command key (which signs the roll-out headers)
        unless told not to."""
        cfg = RolloutConfig(keys={KEY_ID: self.tmp / "models.pub", **(more_keys or {})}, crash_limit=crash_limit)
        hub_key = load_public_key(self.tmp / "hub.pub") if pins_hub_key else None
        rollout = await asyncio.to_thread(Rollout.start, STATION, cfg, self.tmp / "data", hub_key)
        section = rollout.model_section(ModelSection(dir=self.tmp / "active"))
        assert section.dir is not None
        detector = await asyncio.to_thread(load_detector, section.dir, overlap=OVERLAP, thresholds=thresholds)
        engine = Engine(detector, self.pool, thresholds=dict(thresholds or {}))
        rollout.attach(engine, self.pool)
        await rollout.resume()
        open_station_db(self.tmp / "station.db").close()
        sync = SyncConfig(port=self.broker.port, status_period_s=0.2)
        async with RiskReceiver(BrokerConfig(port=self.broker.port), STATION, rollout, leaf="model") as rx, \
                Publisher(sync, STATION, self.tmp / "station.db", self.tmp / "scans", extra_status=rollout.status):
            await rx.link.ready()
            yield rollout

    def answered(self, rollout_id: int) -> tuple[str, str | None] | None:
        ack = self.hub.acks.get(STATION)
        return (ack.outcome, ack.code) if ack is not None and ack.version == rollout_id else None


async def live_items(rollout: Rollout, n: int, seed: int = 0) -> int:
    """`n` decided scans handed to the canary as the inspection does; how many it took."""
    taken = 0
    for i in range(n):
        high, low, _ = scatter(300, 260, 4, seed=seed + i)
        scan = Scan(high, low)
        engine = rollout.engine
        assert engine is not None and engine.detector is not None
        active = await asyncio.to_thread(engine.detector.detect, scan)
        runner = rollout.runner
        taken += rollout.submit(STATION, scan, active)
        if runner is not None:
            await until(lambda: not runner._tasks, "the canary comparison finished", interval=0.005)
    return taken


def slots(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "data" / "models").iterdir() if p.is_dir())


@asynccontextmanager
async def open_rig(tmp_path: Path, poll_s: float = 3600.0) -> AsyncIterator[Rig]:
    """A broker, the hub's package folder and sender (headers signed with its command key, hub.key), and an active
    model 2.0.0 for the station."""
    package(tmp_path / "active", "2.0.0")
    key = generate_keypair(tmp_path / "models.key", tmp_path / "models.pub")
    hub_key = generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    repo = ModelRepo(tmp_path / "hub-models")
    with Mosquitto(tmp_path / "broker") as broker:
        async with InferencePool() as pool, \
                ModelDelivery(BrokerConfig(port=broker.port), "hub-t", repo, resend_s=30, poll_s=poll_s,
                              key=hub_key) as hub:
            await hub.delivery.link.ready()
            yield Rig(broker, hub, repo, key, tmp_path, pool)
