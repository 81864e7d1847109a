"""The control room's models view in headless Chromium, against a real broker, hub ingest and station: an admin
stages a roll-out to one station, watches its canary progress and agreement, and sees it promoted; a
supervisor sees the view but cannot stage. Screenshot in test-artifacts/control_room/."""

from __future__ import annotations

from pathlib import Path

import pytest

from central_sync.config import BrokerConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from model_rollout_kit import STATION, live_items, open_rig, package
from polling import until

from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving
from test_control_room_tip_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def test_an_admin_stages_a_roll_out_and_watches_the_canary_promote(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with open_rig(tmp_path, poll_s=0.2) as rig, \
            Hub(BrokerConfig(port=rig.broker.port), store, "hub-b"), \
            ControlRoom(store, None, ControlRoomConfig(models_dir=rig.repo.folder)) as room, rig.station() as rollout:
        auth.add_user(store, "admin1", "admin", PASSWORD)
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        name = rig.repo.upload(package(tmp_path / "src", "2.1.0"))
        rig.repo.sign(name, rig.key, "models-2026")
        await until(store.station_ids, "the hub knows the station", in_thread=True, check=lambda s: s == [STATION])
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            await page.goto(f"http://127.0.0.1:{port}/")
            await sign_in(page, "admin1")
            await page.click("#nav button[data-view=models]")
            row = page.locator(f"#models-stations tr[data-station={STATION}]")
            await expect(row).to_contain_text("test-det 2.0.0")
            form = page.locator("#models-form")
            await form.locator("select[name=package]").select_option(name)
            await form.locator("select[name=target]").select_option("station")
            await form.locator("select[name=station]").select_option(STATION)
            await form.locator("input[name=min_items]").fill("3")
            await form.locator("input[name=p95_ms]").fill("60000")
            await form.locator("button[type=submit]").click()
            await expect(page.locator("#models-msg")).to_contain_text(f"Roll-out 1 staged: {name} to {STATION}")
            # on canary once the candidate is loaded: the phase is written before it loads, and an item the
            # inspection hands over before that is not compared (a slow load under load made this test flaky)
            await until(lambda: (rollout.state.phase, rollout.runner), "the station put the candidate on canary",
                        check=lambda pr: pr[0] == "canary" and pr[1] is not None)
            assert await live_items(rollout, 2) == 2
            await until(lambda: store.stations()[0][3], "the station reported its canary", in_thread=True,
                        check=lambda status: '"items":2' in status)
            await page.click("#nav button[data-view=models]")
            await expect(row.locator("td.progress")).to_have_text("2 / 3 items")
            await expect(row.locator("td.agreement")).to_have_text("100%")
            await expect(row).to_contain_text("candidate on canary")
            await page.screenshot(path=ARTIFACTS / "models_canary.png")
            await live_items(rollout, 1, seed=7)
            await until(lambda: store.stations()[0][3], "the station reported the promotion", in_thread=True,
                        check=lambda status: '"phase":"promoted"' in status)
            await page.click("#nav button[data-view=models]")
            await expect(row).to_have_attribute("data-phase", "promoted")
            await expect(row).to_contain_text("test-det 2.1.0")
            await page.select_option("#lang", "zh-Hant")
            await expect(row).to_contain_text("已提升")
            await page.context.clear_cookies()
            await page.goto(f"http://127.0.0.1:{port}/")
            await sign_in(page, "sup1")
            await page.click("#nav button[data-view=models]")
            await expect(row).to_contain_text("test-det 2.1.0")
            await expect(page.locator("#models-form")).to_be_hidden()
            await browser.close()
