"""The station daemon with the hub's retention state: its status reports its disk figures and, once the hub's
signed state arrives over a real Mosquitto (retained, on the command link), the version it prunes by; after a
restart it still prunes by that version."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import commands as c
from central_sync import protocol as p
from central_sync import retention as r
from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto, free_port
from models.testgraphs import write_package
from polling import until
from test_daemon import _write_config

ROOT = Path(__file__).resolve().parents[2]


def start(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


async def test_the_station_reports_its_disk_and_the_retention_state_it_runs(tmp_path: Path) -> None:
    key = c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    config = _write_config(tmp_path, free_port(), write_package(tmp_path / "model", "cpe-fcos-v1", 128))
    statuses: list[p.StatusMsg] = []
    with Mosquitto(tmp_path / "broker") as broker:
        with config.open("a") as fh:
            fh.write(f'\n[sync]\nport = {broker.port}\nstatus_period_s = 0.5\n\n'
                     f'[commands]\nhub_public_key = "{tmp_path / "hub.pub"}"\n')
        cfg = BrokerConfig(port=broker.port)
        async with c.CommandLink(cfg, "hub-test", [f"{p.ROOT}/+/status"],
                                 lambda t, b: statuses.append(p.StatusMsg.model_validate_json(b))) as hub:
            await hub.ready()
            proc = start(config)
            try:
                first = await until(lambda: [s for s in statuses if s.storage is not None], "a status with figures",
                                    timeout=90)
                assert first[-1].retention_version is None  # no state yet: it keeps everything
                assert first[-1].storage.free_bytes > 0 and first[-1].storage.data_bytes > 0
                forged = r.sign(Ed25519PrivateKey.generate(), r.new_state(9, None, [], []))
                hub.publish(r.TOPIC, forged, retain=True)
                hub.publish(r.TOPIC, r.sign(key, r.new_state(2, r.RetentionPolicy(), [], [])), retain=True)
                await until(lambda: statuses[-1].retention_version, "the status names state 2", timeout=30,
                            check=lambda v: v == 2)
            finally:
                stop(proc)
            statuses.clear()
            echo: list[bytes] = []
            async with c.CommandLink(cfg, "hub-clear", [r.TOPIC], lambda t, b: echo.append(b)) as clearer:
                await clearer.ready()
                await until(lambda: echo, "the retained state")
                clearer.publish(r.TOPIC, b"", retain=True)  # the broker forgets it: only the station's file is left
                await until(lambda: b"" in echo, "the retained state cleared")
            proc = start(config)  # after a restart, without the retained message: the state kept on disk
            try:
                await until(lambda: [s for s in statuses if s.state == "online"], "online again", timeout=90)
                assert statuses[-1].retention_version == 2
            finally:
                stop(proc)
