"""The real station daemon with a retrofit file drop: a DICOS DX pair becomes one inspected item with the
scan's pixels; a hostile `.dcm` becomes a manual record and an alarm while the station runs on."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx

from central_sync.devtools import free_port
from edge.store import Store
from models.dicos import HIGH, LOW, DxSeries, dicos_uid, dx_dataset, file_bytes
from models.scan import Scan, load_scan
from models.testgraphs import write_package
from polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, port: int, model: Path) -> Path:
    config = tmp / "station.toml"
    config.write_text(f"""
[station]
id = "xray-dicos"
kind = "xray"
item_kind = "baggage"
budget_ms = 5000
data_dir = "{tmp / 'data'}"

[model]
dir = "{model}"

[http]
port = {port}

[web.tip]
enabled = false

[devices.source]
kind = "filedrop"
folder = "{tmp / 'drop'}"
settle_ms = 50
poll_ms = 20
""")
    return config


def _rows(db: Path) -> list[tuple[str, str, str | None]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT id, reason, scan_sha256 FROM inspections ORDER BY seq").fetchall()
    except sqlite3.OperationalError:
        return []


def _alarms(port: int) -> dict[str, str]:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("alarms", []))
    except httpx.HTTPError:
        return {}


def test_a_dicos_pair_is_inspected_and_a_hostile_file_is_a_manual_record(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port, write_package(tmp_path / "model", "cpe-fcos-v1", 128))
    scan = load_scan(sorted((ROOT / "examples" / "scans").glob("*.npz"))[0])
    series = DxSeries(dicos_uid("e2e", "series"), dicos_uid("e2e", "frame"), datetime.now(timezone.utc))
    drop = tmp_path / "drop"
    drop.mkdir()
    for energy in (HIGH, LOW):
        part = drop / f"bag-{energy.split()[0].lower()}.dcm.part"
        part.write_bytes(file_bytes(dx_dataset(scan, energy, series, dicos_uid("e2e", energy), 1)))
        part.rename(part.with_suffix(""))
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "run", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        db = tmp_path / "data" / "station.db"
        [(first, _, sha)] = wait_until(lambda: _rows(db), "the pair inspected as one item", timeout=90, interval=0.2)
        assert sha is not None
        with Store(tmp_path / "data", station="xray-dicos") as store:
            stored = load_scan(store.scan_path(sha))
        assert (stored.high == scan.high).all() and (stored.low == scan.low).all()
        assert stored.meta["pixel_mm"] == 1.0 and stored.meta["kvp"] == 160.0
        (drop / "huge.dcm").write_bytes(_huge(scan, series))
        rows = wait_until(lambda: _rows(db), "a record for the hostile file", check=lambda r: len(r) == 2,
                          timeout=60, interval=0.2)
        assert rows[1][1] == "scan_incomplete" and rows[1][2] is None
        alarm = wait_until(lambda: _alarms(port).get("scan_rejected"), "the alarm on /healthz", timeout=60,
                           interval=0.2)
        assert "huge.dcm declares 65535 x 65535 pixels" in alarm and rows[1][0] in alarm
        assert (drop / "rejected" / "huge.dcm").exists() and proc.poll() is None
        assert sorted(p.name for p in (drop / "processed").iterdir()) == ["bag-high.dcm", "bag-low.dcm"]
        assert first == rows[0][0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def _huge(scan: Scan, series: DxSeries) -> bytes:
    ds = dx_dataset(scan, HIGH, series, dicos_uid("e2e", "huge"), 3)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns = 65535, 65535
    return file_bytes(ds)
