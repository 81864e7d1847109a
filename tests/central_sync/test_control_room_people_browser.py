"""People by name in the control room (issue 21): an officer who signed a vehicle search report is named on the
alert his decision reached, "Officer Chan (0A1B2C3D)", not by badge alone. The station's own outbox rows reach
the hub through its real ingest; headless Chromium."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth, queries
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from central_sync.schema import Review
from edge.search_report import sign
from search_report_kit import OFFICER, SUPERVISOR, form, open_station
from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving
from test_control_room_tip_browser import sign_in
from test_search_report_browser import deliver

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def test_an_officer_known_from_a_signed_report_is_named(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    st = open_station(tmp_path / "data")
    searched, other = st.vehicle("KT 4411"), st.vehicle("LM 8080")
    sign(st.store, searched.id, form())
    st.store.add_review(other.id, Review(officer=OFFICER[0], decided_at=datetime.now(UTC), outcome="cleared"))
    st.store.add_review(searched.id, Review(officer=SUPERVISOR[0], decided_at=datetime.now(UTC), outcome="cleared"))
    store = open_store(str(tmp_path / "hub.sqlite3"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        deliver(st.store.db_path, store)
        assert queries.people(store) == {OFFICER[0]: OFFICER[1]}  # the supervisor never signed: no name known
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-GB")
            await page.goto(f"http://127.0.0.1:{port}/cr/")
            await sign_in(page, "op1")
            await page.click("#nav button[data-view=alerts]")
            await page.check("#filters input[name=scope]")  # the vans sent to search are manual, not alerts
            await page.click("#filters button[type=submit]")
            await expect(page.locator(f'article[data-id="{other.id}"] .review')).to_contain_text(
                f"{OFFICER[1]} ({OFFICER[0]})")
            await expect(page.locator(f'article[data-id="{searched.id}"] .review')).to_contain_text(f"Officer {SUPERVISOR[0]}:")
            await browser.close()
    st.store.close()
