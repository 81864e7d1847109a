"""The station daemon with `[risk]`: without a bundle every detector clear waits for the officer and an
alarm says why; the hub's bundle arrives over a real Mosquitto, is acknowledged, shown in the status and
the metrics, and from then on items are judged against it."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from central_sync.config import BrokerConfig
from central_sync.devtools import Mosquitto, free_port
from central_sync.risk_delivery import Offer, RiskAck, RiskDelivery
from models.testgraphs import write_package
from polling import until
from risk_bundles import envelope, pinned
from test_daemon import _write_config

ROOT = Path(__file__).resolve().parents[2]


def latest(db: Path) -> tuple[str, str, dict | None] | None:
    """The newest record's verdict, reason and risk."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT record FROM inspections ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return None
    if row is None:
        return None
    rec = json.loads(row[0])
    return rec["verdict"], rec["reason"], rec.get("risk")


def health(port: int) -> dict | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
    except httpx.HTTPError:
        return None


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as b:
        yield b


async def test_a_station_judges_by_the_bundle_the_hub_delivers(tmp_path: Path, broker: Mosquitto) -> None:
    port = free_port()
    config = _write_config(tmp_path, port, write_package(tmp_path / "model", "cpe-fcos-v1", 128))
    key = pinned(tmp_path).keys["risk-1"]
    with config.open("a") as fh:
        fh.write(f'\n[sync]\nport = {broker.port}\nstatus_period_s = 0.5\n\n'
                 f'[risk]\nkeys = {{ "risk-1" = "{key}" }}\nseed = "xray-test-seed"\n')
    acks: list[RiskAck] = []
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "data" / "station.db"
    try:
        before = await until(lambda: latest(db), "a record without a bundle", in_thread=True, timeout=90)
        assert before[2]["bundle"] is None and before[2]["lane"] in ("amber", "red")
        assert "no_bundle" in [f["kind"] for f in before[2]["rules"]] and before[0] != "clear"
        h = await until(lambda: health(port), "the no-bundle alarm", in_thread=True,
                        check=lambda h: h and "risk_no_bundle" in dict(h.get("alarms", [])))
        assert "at least amber" in dict(h["alarms"])["risk_no_bundle"]
        async with RiskDelivery(BrokerConfig(port=broker.port), "hub-t", lambda s, a, t: acks.append(a)) as hub:
            hub.offer(Offer(1, envelope(1)))
            await until(lambda: acks, "the station's ack")
            assert [(a.version, a.outcome) for a in acks] == [(1, "applied")]
            await until(lambda: hub.core.stations.get("xray-test"), "the status says version 1",
                        check=lambda st: st is not None and st.runs == 1)
        after = await until(lambda: latest(db), "a record judged on bundle 1", in_thread=True,
                            check=lambda r: r and r[2] and r[2]["bundle"] == 1)
        assert after[2]["random"]["seed"] == "xray-test-seed"
        assert after[2]["lane"] == "green"  # no identity on a parcel, random rate 0: the detector decides alone
        assert after[1] not in ("risk_amber", "risk_red")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'edge_risk_bundles_total{outcome="applied"} 1.0' in metrics
        assert "edge_risk_bundle_version 1.0" in metrics
        await until(lambda: health(port), "the no-bundle alarm cleared", in_thread=True,
                    check=lambda h: h and "risk_no_bundle" not in dict(h.get("alarms", [])))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert (tmp_path / "data" / "risk" / "000000000001-snapshot.cperb").exists()
