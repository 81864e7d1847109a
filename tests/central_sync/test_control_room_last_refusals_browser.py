"""The control room's last refusals on its screen, in headless Chromium: an assignee no longer known and an alert the
hub no longer holds read in the language the page shows, not in English nor in the user's saved language.
Screenshots go to test-artifacts/control_room/."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.db import execute
from central_sync.control_room.i18n import catalogue
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD, seed_hub, serving, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


@asynccontextmanager
async def zh_hant_page(tmp_path):
    """A hub (SQLite) with its control room, two stations seeded, users sup1 and op1, and a page signed in as sup1
    showing zh-Hant, on the alerts."""
    from playwright.async_api import async_playwright
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        seed_hub(store)
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port)
            await page.select_option("#lang", "zh-Hant")
            await page.click("#nav button[data-view=alerts]")
            yield store, page
    store.close()


async def test_an_assignee_no_longer_known_reads_in_the_language_shown(tmp_path):
    """sup1's page in zh-Hant, their other screen switched to English (the language saved): assigning op1, made
    inactive since the page listed them, read "“op1” is not a user of this control room: choose a person from the
    list." (the hub's sentence in the saved language); now the page's zh-Hant sentence."""
    from playwright.async_api import expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with zh_hant_page(tmp_path) as (store, page):
        card = page.locator("article.alert").first
        await expect(card.locator(".act-assignee option[value=op1]")).to_be_attached()
        auth.set_lang(store, "sup1", "en")
        execute(store, "UPDATE cr_users SET active=0 WHERE username='op1'")
        await card.locator(".act-assignee").select_option("op1")
        await card.locator(".act-assign").click()
        await expect(card.locator(".act-msg")).to_have_text(
            catalogue("zh-Hant")["error.unknown_assignee"].replace("{name}", "op1"))
        await page.screenshot(path=ARTIFACTS / "assignee-refused-zh-Hant.png")
        assert execute(store, "SELECT count(*) FROM cr_actions") == [(0,)]


async def test_an_alert_the_hub_no_longer_holds_reads_in_the_language_shown(tmp_path):
    """Acknowledging an alert the hub let go of since the page showed it (pruned) read "no inspection '…'" in
    English under the card's buttons; now the zh-Hant sentence with the record's id."""
    from playwright.async_api import expect
    async with zh_hant_page(tmp_path) as (store, page):
        card = page.locator("article.alert").first
        rid = await card.get_attribute("data-id")
        execute(store, "DELETE FROM records WHERE id=?", (rid,))
        await card.locator(".act-ack").click()
        await expect(card.locator(".act-msg")).to_have_text(
            catalogue("zh-Hant")["error.alert_unknown"].replace("{record}", rid))
        await page.screenshot(path=ARTIFACTS / "alert-unknown-zh-Hant.png")
        assert execute(store, "SELECT count(*) FROM cr_actions") == [(0,)]
