"""One version, from pyproject.toml: `edge --version`, `edge-hub --version`, the station's status
through a real Mosquitto to the hub, and the control room's stations board in headless Chromium."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from appliance.version import version
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import fill, open_station_db, outbox_rows
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.stations import station_view
from central_sync.hub.store import open_store
from central_sync.publisher import Publisher
from polling import until

from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD
from test_control_room_tip_browser import signed_in

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.mark.parametrize(("module", "prog"), [("edge.cli", "edge"), ("central_sync.hub.cli", "edge-hub")])
def test_both_commands_print_the_version_of_pyproject(module, prog):
    out = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == f"{prog} (checkpoint-edge) {PYPROJECT}", out
    assert version() == PYPROJECT


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
async def test_the_station_version_reaches_the_hub_and_the_stations_board(tmp_path, broker):
    from playwright.async_api import expect

    db = tmp_path / "station.db"
    conn = open_station_db(db)
    fill(conn, "gate-1", 1, 3)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    cfg = SyncConfig(port=broker.port, status_period_s=0.5)
    async with Hub(BrokerConfig(port=broker.port), store, "hub-v") as _hub, \
            Publisher(cfg, "gate-1", db, tmp_path / "scans"), \
            ControlRoom(store, None, ControlRoomConfig(secure_cookie=False)) as room:
        await until(lambda: outbox_rows(db) == 0, "outbox drained", timeout=30, in_thread=True)
        rows = await until(store.stations, "the station's status at the hub", timeout=15, in_thread=True)
        assert [station_view(row)["software_version"] for row in rows] == [PYPROJECT]
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with signed_in(room.install(create_app(store)), "op1") as page:
            await expect(page.locator('.station[data-station="gate-1"] dd.software')).to_have_text(PYPROJECT)
            await page.screenshot(path=ARTIFACTS / "board_version.png")
    conn.close()
