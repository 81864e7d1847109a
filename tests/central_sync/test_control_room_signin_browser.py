"""Signing in to the control room while the page's own session check is still on its way, in headless Chromium: the
check's 401 (answered before the sign-in) signed the operator out again right after they signed in; now a refusal
answers only the session its request was sent in. Screenshots go to test-artifacts/control_room/."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.i18n import catalogue
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, seed_hub, serving

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def test_a_sign_in_made_while_the_page_checks_its_session_stays_signed_in(tmp_path: Path) -> None:
    """A slow hub: the page's start asks /cr/api/me (no cookie yet: 401) and the answer comes only after the operator,
    whose browser filled the form at once, has signed in. The late 401 signed them out (sign-in form back, the page in
    the browser's language); now they stay signed in, in their saved language (zh-Hant), with the alerts listed, and a
    401 to a request of the new session still signs out."""
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    signed_in, answered = asyncio.Event(), asyncio.Event()
    checks: list[int] = []

    async def late_session_check(route) -> None:
        if checks:  # later checks (the stream's reconnect) go to the hub as they are
            await route.continue_()
            return
        response = await route.fetch()  # answered now, before the sign-in: no session
        checks.append(response.status)
        await signed_in.wait()
        await route.fulfill(response=response)
        answered.set()

    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        seed_hub(store)
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        auth.set_lang(store, "sup1", "zh-Hant")
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": 1024, "height": 768}, locale="en-GB")
            await page.route("**/cr/api/me", late_session_check)
            await page.goto(f"http://127.0.0.1:{port}/cr/")
            await page.fill("input[name=username]", "sup1")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#signin-form button[type=submit]")
            await expect(page.locator("#me")).to_contain_text("sup1")
            signed_in.set()
            await asyncio.wait_for(answered.wait(), 10)
            # the late answer is handled before the page's next round trip to the hub is
            assert await page.evaluate("() => fetch('/cr/api/stations').then((r) => r.status)") == 200
            await page.wait_for_timeout(300)
            assert checks == [401]
            await expect(page.locator("#signin")).to_be_hidden()
            await expect(page.locator("#nav")).to_be_visible()
            await expect(page.locator("#lang")).to_have_value("zh-Hant")
            await expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
            await page.click("#nav button[data-view=alerts]")
            await expect(page.locator("article.alert").first).to_be_visible()
            await page.screenshot(path=ARTIFACTS / "signin-during-session-check-1024x768.png")
            # a session that ends is still an end: its next 401 shows the sign-in form
            await page.context.clear_cookies()
            await page.click("#nav button[data-view=board]")
            await page.evaluate("() => api('/cr/api/stations').catch(() => null)")
            await expect(page.locator("#signin")).to_be_visible()
            await expect(page.locator("#signin-form h2")).to_have_text(catalogue("zh-Hant")["signin.title"])
    store.close()
