"""The control room's TIP view in headless Chromium: an operator sees the TIP figures per station and
no per-officer figures; a supervisor also sees them per officer. Screenshots in test-artifacts/control_room/."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from central_sync import protocol as p
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store

from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


def tip_message(n: int, officer: str, outcome: str) -> tuple[str, bytes]:
    at = datetime.now(UTC) - timedelta(minutes=5)
    body = p.TipOutcome(station="gate-1", officer=officer, record_id=f"item-{n}", projection=n, threat="knife-0",
                        label=None if outcome == "false_alarm" else "knife", outcome=outcome, shown_at=at,
                        responded_at=at + timedelta(seconds=3), decision_ms=3000.0).model_dump_json().encode()
    return p.topic("gate-1", "tip"), p.encode_envelope("gate-1", "tip", n, n, f"item-{n}", body, 0.0)


async def sign_in(page, user: str) -> None:
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#signin-form button[type=submit]")


@asynccontextmanager
async def signed_in(app, user: str):
    """The control-room `app` served locally and a 1400×900 Chromium page signed in as `user` (yielded)."""
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with serving(app) as port, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(f"http://127.0.0.1:{port}/")
        await sign_in(page, user)
        yield page
        await browser.close()


async def test_tip_view_per_station_for_operators_per_officer_for_supervisors(tmp_path):
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig()) as room:
        Ingestor(store, "hub-t", lambda *a: None).handle(
            [tip_message(1, "B-17", "hit"), tip_message(2, "B-17", "miss"), tip_message(3, "B-22", "hit"),
             tip_message(4, "B-22", "hit")])
        for name, role in (("op1", "operator"), ("sup1", "supervisor")):
            auth.add_user(store, name, role, PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"http://127.0.0.1:{port}/")
            await sign_in(page, "op1")
            await expect(page.locator("#nav button[data-view=kpi]")).to_be_hidden()
            await page.click("#nav button[data-view=tip]")
            row = page.locator("#tip-table tr").nth(1)
            await expect(row).to_contain_text("gate-1")
            await expect(row.locator("td").nth(1)).to_have_text("4")  # projections answered
            await expect(row.locator("td").nth(4)).to_have_text("75%")  # hit rate
            await expect(page.locator("#tip-charts svg")).to_have_count(2)
            await expect(page.locator("#tip-staff")).to_be_hidden()
            await page.screenshot(path=ARTIFACTS / "tip_operator.png")
            await page.click("#signout")
            await sign_in(page, "sup1")
            await page.click("#nav button[data-view=tip]")
            await expect(page.locator("#tip-staff")).to_be_visible()
            await expect(page.locator("#tip-officers tr")).to_have_count(3)
            await expect(page.locator("#tip-officers tr").nth(1)).to_contain_text("B-17")
            await expect(page.locator("#tip-officers tr").nth(1).locator("td").nth(5)).to_have_text("50%")
            await page.screenshot(path=ARTIFACTS / "tip_supervisor.png")
            await browser.close()
