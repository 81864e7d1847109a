"""The control room's board in headless Chromium against a real Mosquitto, the real hub and real station
publishers (issue 21): a station whose belt is latched, or that has had no item for 25 minutes, is not shown
as a fine "Online" station; the board names the latch's reason, the queue, the items per hour, the last
item's time (day before month, as the station writes it) and the devices at fault. A station of an older
release, whose status has no lane, is still accepted and shown by its connection. Screenshots in
test-artifacts/control_room/.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import pytest

from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import make_record, open_station_db
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.publisher import Publisher
from central_sync.schema import Verdict
from edge.devices import Devices
from edge.lane_report import Activity, LaneReport, activity
from edge.store import Store
from polling import until

from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving
from test_control_room_tip_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]
LATCHED_AT = datetime(2026, 3, 12, 9, 5, 7, tzinfo=UTC).isoformat()  # 12 March: "12/03/2026", never "3/12/26"


class LatchedBelt:
    """A conveyor belt as its flow reports it (edge/stations/conveyor.py belt_status) after an emergency stop."""

    def belt_status(self) -> dict[str, object]:
        return {"latched": True, "reason": "estop", "since": LATCHED_AT, "running": False, "run_confirmed": False,
                "restart_blocked_by": "belt_estop"}

    async def restart_belt(self, actor: str) -> object:
        raise AssertionError("not used")


def station_store(tmp_path, name: str, minutes_ago: list[tuple[float, Verdict]]) -> Store:
    """A station's own store with items decided that many minutes ago."""
    store = Store(tmp_path / name, station=name).open()
    now = datetime.now(UTC)
    for n, (minutes, verdict) in enumerate(minutes_ago, 1):
        rec = make_record(name, n, verdict)
        at = now - timedelta(minutes=minutes)
        store.commit(rec.model_copy(update={"started_at": at, "decided_at": at}), scan_stored=False)
    return store


async def test_a_latched_or_idle_station_is_not_shown_as_fine(tmp_path):
    from central_sync.devtools import Mosquitto
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    conveyor = LaneReport()
    belt_store = station_store(tmp_path, "conveyor-01", [(5, Verdict.SUSPECT), (20, Verdict.MANUAL), (50, Verdict.CLEAR),
                                                          (90, Verdict.CLEAR)])
    conveyor.activity = activity(belt_store)
    plc = Devices()
    plc.mark("plc", "lost", "PLC at 10.0.0.5:502 did not answer within 300 ms")
    plc.mark("scanner", "ok")
    conveyor.follow(LatchedBelt(), None, plc)
    gantry = LaneReport()
    gantry.activity = Activity(0, 0, datetime.now(UTC).timestamp() - 25 * 60)
    gantry.follow(None, None, Devices())
    with Mosquitto(tmp_path / "broker") as broker:
        sync = SyncConfig(port=broker.port, status_period_s=0.5)
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(Hub(BrokerConfig(port=broker.port), store, "hub-t"))
            room = await stack.enter_async_context(ControlRoom(store, None, ControlRoomConfig(stale_s=5.0)))
            for name, report in (("conveyor-01", conveyor.status), ("gantry-01", gantry.status), ("old-1", None)):
                open_station_db(tmp_path / f"{name}.db").close()
                await stack.enter_async_context(Publisher(sync, name, tmp_path / f"{name}.db", tmp_path / "scans",
                                                          extra_status=report))
            auth.add_user(store, "op1", "operator", PASSWORD)
            port = await stack.enter_async_context(serving(room.install(create_app(store, hub.stats))))
            await until(lambda: len(store.stations()) == 3, "three stations reported", timeout=20, in_thread=True)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(f"http://127.0.0.1:{port}/")
                await sign_in(page, "op1")
                card = page.locator('.station[data-station="conveyor-01"]')
                await expect(card).to_have_attribute("data-condition", "latched", timeout=15000)
                await expect(card).to_have_attribute("data-state", "online")  # connected, and still not fine
                await expect(card.locator(".state-badge")).to_have_text("Belt latched")
                await expect(card.locator(".lane-state")).to_contain_text("Latched stopped: emergency stop since ")
                await expect(card.locator(".lane-state")).to_contain_text("12/03/2026")
                await expect(card.locator(".queue-depth")).to_have_text("2")
                await expect(card.locator(".items-per-hour")).to_have_text("3")
                await expect(card.locator(".device-faults")).to_have_text("PLC: lost")
                await expect(card.locator('.fault[data-device="plc"]')).to_have_attribute("title", "PLC at 10.0.0.5:502 did not answer within 300 ms")
                # the board rebuilds its cards on every status: a retrying assertion, never a node read once (detached: "")
                await expect(card).to_have_css("border-left-color", "rgb(139, 0, 0)")  # dark red, not "Online" green
                idle = page.locator('.station[data-station="gantry-01"]')
                await expect(idle).to_have_attribute("data-condition", "idle")
                await expect(idle.locator(".lane-state")).to_contain_text("Idle since")
                await expect(idle.locator(".device-faults")).to_have_text("all working")
                await expect(idle).to_have_css("border-left-color", "rgb(107, 123, 140)")  # slate grey, not green
                old = page.locator('.station[data-station="old-1"]')
                await expect(old).to_have_attribute("data-condition", "online")
                await expect(old.locator(".lane-state")).to_have_text("not reported by this station")
                await page.screenshot(path=ARTIFACTS / "board_lane_states.png")
                await page.click("#nav button[data-view=commands]")  # an operator sees no command form ([hidden] wins)
                for n in range(await page.locator("[data-need=command]").count()):
                    await expect(page.locator("[data-need=command]").nth(n)).to_be_hidden()
                await page.click("#nav button[data-view=board]")
                await page.select_option("#lang", "zh-Hant")
                await expect(card.locator(".lane-state")).to_contain_text("緊急停止")
                await expect(card.locator(".device-faults")).to_have_text("PLC: 中斷")
                await expect(card.locator(".lane-state")).to_contain_text("12/3/2026")  # zh-HK: day before month
                await browser.close()
    belt_store.close()
