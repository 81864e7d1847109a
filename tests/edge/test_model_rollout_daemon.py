"""The station daemon (`edge run`, a real process) with `[rollout]`: a signed package from the hub over a real
Mosquitto runs on canary beside the active model on the station's live items and is promoted, so later records
name the new model, also after a restart; restarts during a canary are a crash loop and roll back by themselves."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from central_sync.commands import generate_keypair, load_private_key
from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto, free_port
from central_sync.model_delivery import Criteria, ModelDelivery, ModelRepo, Target
from model_rollout_kit import package
from polling import until
from test_daemon import _count, _write_config

ROOT = Path(__file__).resolve().parents[2]
STATION = "xray-test"


def model_of_latest(db: Path) -> str | None:
    """The model version the newest record names."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT record FROM inspections ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None
    model = json.loads(row[0]).get("model") if row else None
    return model["version"] if model else None


def slot_state(tmp: Path) -> dict:
    path = tmp / "data" / "models" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


@contextmanager
def station(config: Path) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


@asynccontextmanager
async def fleet(tmp: Path, crash_limit: int = 2) -> AsyncIterator[tuple[Path, ModelRepo, int]]:
    """A broker, the hub's sender (headers signed with its command key) and a station config with `[rollout]`
    pinning the model-signing key and `[commands]` the hub's key."""
    generate_keypair(tmp / "models.key", tmp / "models.pub")
    hub_key = generate_keypair(tmp / "hub.key", tmp / "hub.pub")
    with Mosquitto(tmp / "broker") as broker:
        port = free_port()
        config = _write_config(tmp, port, package(tmp / "active", "2.0.0"))
        with config.open("a") as fh:
            fh.write(f'\n[sync]\nport = {broker.port}\nstatus_period_s = 0.5\n\n'
                     f'[rollout]\nkeys = {{ "models-1" = "{tmp / "models.pub"}" }}\ncrash_limit = {crash_limit}\n\n'
                     f'[commands]\nhub_public_key = "{tmp / "hub.pub"}"\n')
        repo = ModelRepo(tmp / "hub-models")
        async with ModelDelivery(BrokerConfig(port=broker.port), "hub-t", repo, poll_s=0.2, key=hub_key):
            yield config, repo, port


def stage(tmp: Path, repo: ModelRepo, version: str, **criteria: Any) -> None:
    name = repo.upload(package(tmp / f"src-{version}", version))
    repo.sign(name, load_private_key(tmp / "models.key"), "models-1")
    repo.stage(name, Target(stations=(STATION,)), Criteria(**criteria), [STATION])


async def test_the_daemon_promotes_a_canary_on_live_items_and_keeps_it_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "data" / "station.db"
    async with fleet(tmp_path) as (config, repo, port):
        with station(config):
            await until(lambda: model_of_latest(db), "records of the active model", in_thread=True, timeout=90,
                        check=lambda v: v == "2.0.0")
            stage(tmp_path, repo, "2.1.0", min_items=3, min_agreement=0.9, p95_ms=60_000)
            await until(lambda: slot_state(tmp_path).get("phase"), "promoted on live items", in_thread=True,
                        timeout=120, check=lambda p: p == "promoted")
            # at least 3 items, and one the active model flagged (the demo's bags are mostly clean)
            assert re.search(r"of \d+ items and flagged (\d+) of the \1 items it flagged", slot_state(tmp_path)["reason"])
            await until(lambda: model_of_latest(db), "records of the promoted model", in_thread=True, timeout=60,
                        check=lambda v: v == "2.1.0")
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert 'edge_model_rollouts_total{outcome="installed"} 1.0' in metrics
            assert 'edge_model_rollouts_total{outcome="promoted"} 1.0' in metrics
        with station(config):  # the promoted slot is the station's model from now on
            count = _count(db)
            await until(lambda: _count(db), "records after the restart", in_thread=True, timeout=90, check=lambda n: n > count + 2)
            assert model_of_latest(db) == "2.1.0" and slot_state(tmp_path)["active"] == "A"


async def test_restarts_of_the_daemon_during_a_canary_roll_it_back(tmp_path: Path) -> None:
    async with fleet(tmp_path, crash_limit=1) as (config, repo, _):
        with station(config) as proc:
            stage(tmp_path, repo, "2.2.0", min_items=100_000, p95_ms=60_000)
            await until(lambda: slot_state(tmp_path).get("phase"), "the candidate on canary", in_thread=True,
                        timeout=90, check=lambda p: p == "canary")
            proc.kill()  # a crash
        with station(config) as proc:
            await until(lambda: slot_state(tmp_path).get("starts"), "the start counted", in_thread=True, timeout=60,
                        check=lambda n: n == 1)
            assert slot_state(tmp_path)["phase"] == "canary"  # within the limit: the canary resumes
            proc.kill()
        with station(config):
            await until(lambda: slot_state(tmp_path).get("phase"), "rolled back", in_thread=True, timeout=60,
                        check=lambda p: p == "rolled_back")
            state = slot_state(tmp_path)
            assert state["candidate"] is None and state["active"] is None
            assert "started 2 times during the canary (limit 1): a crash loop" in state["reason"]
            db = tmp_path / "data" / "station.db"
            count = _count(db)
            await until(lambda: _count(db), "the active model inspects on", in_thread=True, timeout=90, check=lambda n: n > count + 2)
            assert model_of_latest(db) == "2.0.0"
