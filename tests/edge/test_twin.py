"""The station twin: `edge run` with a config of real kinds drives the twin unchanged."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

from central_sync.devtools import free_port
from edge.config import load_config
from edge.daemon import run_stations
from edge.store import Store
from edge.twin import serve_twin
from models.testgraphs import write_package
from polling import until

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, model: Path) -> Path:
    path = tmp / "conveyor-real.toml"
    path.write_text(f"""
[station]
id = "conveyor-twin"
kind = "conveyor"
item_kind = "baggage"
budget_ms = 2000
data_dir = "{tmp / 'data'}"

[model]
dir = "{model}"

[http]
port = {free_port()}

[web.tip]
enabled = false

[conveyor]
belt_speed_m_s = 0.5

[devices.plc]
kind = "modbus-tcp"
model = "conveyor"
host = "127.0.0.1"
port = {free_port()}

[devices.plc.sim.conveyor]
auto_items = true
belt_speed_m_s = 0.5
item_gap_mean_m = 0.9
item_length_m = [0.3, 0.4]

[devices.scanner]
kind = "firmware-serial"
port = "{tmp / 'dev' / 'xray-controller'}"
line_rate = 600

[devices.readers.badge]
kind = "em4100-serial"
port = "{tmp / 'dev' / 'badge-reader'}"
""")
    return path


async def test_edge_run_drives_the_twin_unchanged(tmp_path):
    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    config = load_config(_config(tmp_path, model))
    stop = asyncio.Event()
    async with AsyncExitStack() as stack:
        served = await serve_twin(config, stack, ROOT / "examples" / "scans")
        assert len(served) == 3
        station = asyncio.create_task(run_stations([config], stop=stop))
        db = tmp_path / "data" / "station.db"
        await until(lambda: db.exists() and _decided_by_model(db) >= 2, "two items decided by the model",
                    timeout=120, interval=0.5)
        stop.set()
        await station
    with Store(tmp_path / "data") as store:
        records = store.recent(50)
    assert all(r.model is not None and r.model.name == "test-det" for r in records)


def _decided_by_model(db: Path) -> int:
    """Items the model decided (clear or suspect): PLC, controller and model all did their part."""
    import sqlite3
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return conn.execute("SELECT count(*) FROM inspections WHERE reason IN ('clear', 'detection')").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


async def test_the_twin_serves_an_llrp_reader_where_the_config_expects_it(tmp_path):
    from drivers.rfid import LlrpConfig, open_reader
    from edge.twin import TwinError

    port = free_port()
    config = load_config(_config(tmp_path, tmp_path)).model_copy(deep=True)
    uhf = LlrpConfig(kind="llrp", host="127.0.0.1", port=port, antennas=(1, 3), keepalive_s=0.5)
    devices = config.devices.model_copy(update={"plc": None, "scanner": None, "readers": {"uhf": uhf}})
    async with AsyncExitStack() as stack:
        served = await serve_twin(config.model_copy(update={"devices": devices}), stack, ROOT / "examples" / "scans")
        assert served == [f"LLRP reader 'uhf' (3 antennas) on TCP 127.0.0.1:{port}"]
        async with open_reader(uhf, "uhf") as reader:
            await until(lambda: reader.link_ok, "the station's client has a session with the twin")
    remote = devices.model_copy(update={"readers": {"uhf": uhf.model_copy(update={"host": "10.0.0.21"})}})
    async with AsyncExitStack() as stack:
        try:
            await serve_twin(config.model_copy(update={"devices": remote}), stack, ROOT / "examples" / "scans")
        except TwinError as exc:
            assert "LLRP reader 'uhf' is configured at 10.0.0.21" in str(exc)
        else:
            raise AssertionError("the twin served a reader configured on another host")


async def test_edge_run_reports_its_lane_to_the_hub(tmp_path):
    """The daemon's status to the hub carries the lane (edge/lane_report.py): the twin's items counted, its
    belt running, its devices at fault named (the badge reader's pty is not served)."""
    import json

    from central_sync.config import BrokerConfig
    from central_sync.devtools import Mosquitto
    from central_sync.hub.service import Hub
    from central_sync.hub.store import open_store

    model = write_package(tmp_path / "model", "cpe-fcos-v1", 128)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    with Mosquitto(tmp_path / "broker") as broker:
        path = _config(tmp_path, model)
        path.write_text(path.read_text() + f"\n[sync]\nhost = \"127.0.0.1\"\nport = {broker.port}\nstatus_period_s = 0.5\n")
        config = load_config(path)
        stop = asyncio.Event()
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(Hub(BrokerConfig(port=broker.port), store, "hub-t"))
            await serve_twin(config, stack, ROOT / "examples" / "scans")
            station = asyncio.create_task(run_stations([config], stop=stop))

            def lane() -> dict:
                rows = store.stations()
                return (json.loads(rows[0][3]).get("lane") or {}) if rows else {}
            await until(lambda: lane().get("items_per_hour", 0) >= 2 and lane().get("last_item_at"),
                        "the hub holds the station's lane with its items", timeout=120, interval=0.5, in_thread=True)
            stop.set()
            await station
    got = lane()
    assert got["state"] == "running" and got["queue_depth"] >= 0
    status = json.loads(store.stations()[0][3])
    assert {f["device"] for f in status["device_faults"]} <= {"reader:badge", "plc", "scanner"}
