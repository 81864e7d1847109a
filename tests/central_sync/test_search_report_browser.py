"""The control room's search report panel in headless Chromium: reports signed on a real station store reach the hub
through its real ingest (the station's own outbox rows); the operator finds them by plate, by goods and by outcome,
in English and in Traditional Chinese."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from central_sync import protocol as p
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import HubStore, open_store
from edge.search_report import sign
from search_report_kit import PLATE, form, open_station
from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


def deliver(db: Path, store: HubStore) -> int:
    """Hand the station's outbox rows to the hub's ingest, as the publisher would; the number delivered."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, kind, record_id, seq, payload FROM outbox ORDER BY id").fetchall()
    Ingestor(store, "hub-t", lambda *a: None).handle(
        [(p.topic("gantry-1", kind), p.encode_envelope("gantry-1", kind, msg, seq, rid, bytes(body), 0.0))
         for msg, kind, rid, seq, body in rows])
    return len(rows)


async def test_the_operator_finds_reports_by_plate_goods_and_outcome(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    st = open_station(tmp_path / "data")
    clean, seized = st.vehicle("KT 4411"), st.vehicle("LM 8080")
    sign(st.store, clean.id, form())
    sign(st.store, seized.id, form(seizure=True))
    store = open_store(str(tmp_path / "hub.sqlite3"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        assert deliver(st.store.db_path, store) == 4
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": 1024, "height": 768}, locale="en-GB")
            await page.goto(f"http://127.0.0.1:{port}/cr/")
            await page.fill("input[name=username]", "op1")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#signin-form button[type=submit]")
            await page.click("#nav button[data-view=search-reports]")
            rows = page.locator("#search-table tr")
            await expect(rows).to_have_count(3)  # the header and both reports

            async def find(q: str = "", outcome: str = "") -> None:
                await page.fill("#search-form input[name=q]", q)
                await page.select_option("#search-form select[name=outcome]", outcome)
                await page.click("#search-form button[type=submit]")

            await find("LM 80")
            await expect(rows).to_have_count(2)
            await expect(rows.nth(1)).to_contain_text("LM 8080")
            await expect(rows.nth(1)).to_contain_text("Seizure awaiting countersignature")
            await expect(rows.nth(1)).to_contain_text("cigarettes 2402.20 40 cartons")
            await find("cigarettes")
            await expect(rows).to_have_count(2)
            await find(outcome="nothing_found")
            await expect(rows.nth(1)).to_contain_text("KT 4411")
            await expect(rows.nth(1)).to_contain_text("Nothing found")
            await find("no such goods")
            await expect(page.locator("#search-none")).to_be_visible()
            await page.select_option("#lang", "zh-Hant")
            await find(PLATE)
            await expect(rows).to_have_count(3)
            await expect(page.locator("#search-table")).to_contain_text("檢取待覆核")
            await page.screenshot(path=str(ARTIFACTS / "control_room_search_reports.png"), full_page=True)
            await browser.close()
    st.store.close()
    store.close()
