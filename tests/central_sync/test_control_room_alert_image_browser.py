"""An alert card's scan image the hub refuses, in headless Chromium: a scan it holds but cannot read (422
image_unreadable) is said at once in the language the page shows, in the image's place, with no more tries; a scan
it does not hold yet (404 no_image) is still tried again. Screenshots go to test-artifacts/control_room/."""

from __future__ import annotations

import asyncio

import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.i18n import catalogue
from central_sync.devtools import make_record
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from central_sync.schema import Verdict
from test_control_room_api import ingest
from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD, serving, signed_in_page
from test_control_room_last_refusals import JUNK_SCAN, hold

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def test_an_unreadable_scan_is_said_at_once_in_the_language_shown(tmp_path):
    """An alert whose scan blob is no scan file: the card's image was tried again five times at 2 s, then read
    "影像尚未收到" (not yet received), and image_unreadable's sentence never appeared; now the zh-Hant sentence with
    the record's id stands in the image's place after one look at the hub's answer. An alert whose scan the hub
    does not hold yet is still an image, tried again."""
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        bad = make_record("gate-1", 1, Verdict.SUSPECT, scan_sha=hold(store, JUNK_SCAN))
        missing = make_record("gate-1", 2, Verdict.SUSPECT, scan_sha="cd" * 32)  # not held yet
        ingest(store, [(r.station, "alert", r.seq, r.id, r.to_json().encode()) for r in (bad, missing)])
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        retried: list[str] = []  # images asked for again (?t=…)
        missing_retried = asyncio.Event()

        def count(request) -> None:
            if "/image.png?t=" in request.url:
                retried.append(request.url)
                if missing.id in request.url:
                    missing_retried.set()

        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port)
            page.on("request", count)
            await page.select_option("#lang", "zh-Hant")
            await page.click("#nav button[data-view=alerts]")
            card = page.locator(f'article.alert[data-id="{bad.id}"]')
            await expect(card.locator(".image-refused")).to_have_text(
                catalogue("zh-Hant")["error.image_unreadable"].replace("{record}", bad.id))
            await expect(card.locator("img")).to_have_count(0)
            await page.screenshot(path=ARTIFACTS / "alert-image-unreadable-zh-Hant.png")
            await asyncio.wait_for(missing_retried.wait(), 15)
            other = page.locator(f'article.alert[data-id="{missing.id}"]')
            await expect(other.locator("img")).to_have_count(1)
            await expect(other.locator(".image-refused")).to_have_count(0)
            assert not [u for u in retried if bad.id in u], retried
    store.close()
