"""Signed model roll-out over a real Mosquitto: the hub delivers a signed package in chunks, the station
verifies it before onnxruntime sees a byte, installs it into the inactive slot, runs it on canary beside
the active model on live scans and promotes it, or rolls back by itself (load failure, budget misses, a
crash loop); a downgrade needs the admin's signed flag."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import onnx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.commands import generate_keypair
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
              allow_downgrade: bool = False, corrupt: bool = False, after: str | None = None, **criteria: float) -> int:
        """Upload, sign and stage a package for the station; `after` spoils it once staged: "unsign", "tamper"."""
        name = self.repo.upload(package(self.tmp / f"src-{version}", version, corrupt=corrupt))
        self.repo.sign(name, key or self.key, key_id, allow_downgrade=allow_downgrade)
        record = self.repo.stage(name, Target(stations=(STATION,)), Criteria(**criteria), known=[STATION])
        folder = self.repo.package_dir(name)
        if after == "unsign":
            (folder / "signature.json").unlink()
        elif after == "tamper":  # the model is replaced after the admin signed it
            (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes() + b"\x00")
        self.hub.check()
        return record.id

    @asynccontextmanager
    async def station(self, crash_limit: int = 2) -> AsyncIterator[Rollout]:
        """The station as the daemon composes it: slots read first, the engine on the active slot, then the canary."""
        cfg = RolloutConfig(keys={KEY_ID: self.tmp / "models.pub"}, crash_limit=crash_limit)
        rollout = await asyncio.to_thread(Rollout.start, STATION, cfg, self.tmp / "data")
        section = rollout.model_section(ModelSection(dir=self.tmp / "active"))
        engine = Engine(await asyncio.to_thread(load_detector, section.dir, overlap=OVERLAP), self.pool)
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


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    package(tmp_path / "active", "2.0.0")
    key = generate_keypair(tmp_path / "models.key", tmp_path / "models.pub")
    repo = ModelRepo(tmp_path / "hub-models")
    with Mosquitto(tmp_path / "broker") as broker:
        async with InferencePool() as pool, \
                ModelDelivery(BrokerConfig(port=broker.port), "hub-t", repo, resend_s=30, poll_s=3600) as hub:
            await hub.delivery.link.ready()
            yield Rig(broker, hub, repo, key, tmp_path, pool)


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


async def test_a_candidate_is_promoted_after_n_agreeing_items_and_stays_active_after_a_restart(rig: Rig) -> None:
    async with rig.station() as rollout:
        rid = rig.stage("2.1.0", min_items=5, min_agreement=0.9, p95_ms=60_000)
        await until(lambda: rig.answered(rid), "the station acknowledged the package", check=lambda a: a == ("applied", None))
        status = rollout.status()["models"]
        assert status["phase"] == "canary" and status["candidate"] == "test-det 2.1.0" and status["active"] == "test-det 2.0.0"
        assert slots(rig.tmp) == ["A"]
        assert await live_items(rollout, 4) == 4
        assert rollout.engine is not None and rollout.engine.detector is not None
        assert rollout.engine.detector.info.version == "2.0.0"  # on canary the active model still decides
        assert rollout.status()["models"]["items"] == 4 and rollout.status()["models"]["agreement"] == 1.0
        await live_items(rollout, 1, seed=10)
        status = rollout.status()["models"]
        assert status["phase"] == "promoted" and status["active"] == "test-det 2.1.0" and status["candidate"] is None
        assert "agreed with the active model on 100.0% of 5 items" in status["reason"]
        assert rollout.engine.detector.info.version == "2.1.0"
        assert await live_items(rollout, 1) == 0  # nothing on canary any more
        await until(lambda: rig.hub.delivery.core.stations[STATION].runs, "the hub sees the roll-out answered",
                    check=lambda runs: runs == rid)
    async with rig.station() as again:
        assert again.state.active == "A" and again.state.phase == "promoted"
        assert again.engine is not None and again.engine.detector is not None
        assert again.engine.detector.info.version == "2.1.0"


@pytest.mark.parametrize(("how", "code"), [
    ({"after": "unsign"}, "unsigned"),
    ({"key": Ed25519PrivateKey.generate()}, "bad_signature"),
    ({"key_id": "models-2019"}, "unknown_key"),
    ({"after": "tamper"}, "sha_mismatch"),
])
async def test_a_package_that_is_not_properly_signed_is_refused_and_nothing_loads(rig: Rig, how: dict, code: str) -> None:
    async with rig.station() as rollout:
        rid = rig.stage("2.2.0", **how)
        await until(lambda: rig.answered(rid), "the refusal reached the hub", check=lambda a: a == ("refused", code))
        status = rollout.status()["models"]
        assert status["phase"] == "refused" and status["candidate"] is None and status["active"] == "test-det 2.0.0"
        assert "\n" not in status["reason"] and status["reason"].endswith("it is not installed")  # one sentence
        assert rollout.counters[f"refused_{code}"] == 1 and rollout.runner is None
        assert slots(rig.tmp) == []  # not a byte written into a slot, so none reached onnxruntime


async def test_a_signed_model_that_does_not_load_rolls_back_by_itself(rig: Rig) -> None:
    async with rig.station() as rollout:
        rid = rig.stage("2.3.0", corrupt=True)
        await until(lambda: rig.answered(rid), "the station answered", check=lambda a: a == ("refused", "load_failed"))
        status = rollout.status()["models"]
        assert status["phase"] == "rolled_back" and status["active"] == "test-det 2.0.0" and status["candidate"] is None
        assert "does not load" in status["reason"] and rollout.counters["rolled_back_load"] == 1
    async with rig.station() as again:  # the rollback is kept: the old model starts, no canary
        assert again.state.phase == "rolled_back" and again.runner is None
        assert again.engine is not None and again.engine.detector is not None
        assert again.engine.detector.info.version == "2.0.0"


async def test_a_candidate_missing_its_latency_budget_rolls_back(rig: Rig) -> None:
    async with rig.station() as rollout:
        rid = rig.stage("2.4.0", min_items=50, p95_ms=0.001, max_misses=2)
        await until(lambda: rig.answered(rid), "the station installed it", check=lambda a: a == ("applied", None))
        await live_items(rollout, 3)
        status = rollout.status()["models"]
        assert status["phase"] == "rolled_back" and status["active"] == "test-det 2.0.0"
        assert "latency budget of 0.001 ms on 3 items, more than the 2 allowed" in status["reason"]
        assert rollout.counters["rolled_back_canary"] == 1 and await live_items(rollout, 1) == 0


async def test_a_downgrade_is_refused_unless_the_admin_signed_it(rig: Rig) -> None:
    async with rig.station() as rollout:
        rid = rig.stage("1.9.0")
        await until(lambda: rig.answered(rid), "the refusal reached the hub", check=lambda a: a == ("refused", "downgrade"))
        assert "older than the active test-det 2.0.0" in rollout.status()["models"]["reason"] and slots(rig.tmp) == []
        rid = rig.stage("1.9.0", allow_downgrade=True)
        await until(lambda: rig.answered(rid), "the signed downgrade installed", check=lambda a: a == ("applied", None))
        assert rollout.status()["models"]["candidate"] == "test-det 1.9.0"


async def test_restarts_during_a_canary_count_as_a_crash_loop_and_roll_back(rig: Rig) -> None:
    async with rig.station(crash_limit=1) as rollout:
        rid = rig.stage("2.5.0", min_items=1000)
        await until(lambda: rig.answered(rid), "installed", check=lambda a: a == ("applied", None))
        assert rollout.state.phase == "canary"
    async with rig.station(crash_limit=1) as first:  # one start during the canary: within the limit
        assert first.state.phase == "canary" and first.state.starts == 1
        assert first.status()["models"]["candidate"] == "test-det 2.5.0"
    async with rig.station(crash_limit=1) as second:
        status = second.status()["models"]
        assert status["phase"] == "rolled_back" and status["candidate"] is None and status["active"] == "test-det 2.0.0"
        assert "started 2 times during the canary (limit 1): a crash loop" in status["reason"]
