"""Four eyes in the control room, in headless Chromium: a supervisor drafts a watchlist and a rule
(the rule editor checks the JSON and shows the condition in words), an administrator approves both,
cannot approve a draft of her own, and publishes; the bundle handed to delivery opens with the hub's
key. At 1024×768 in Simplified Chinese and at 2560×1440 in English; screenshots go to
test-artifacts/riskhub/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from central_sync import commands
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.i18n import catalogue
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from central_sync.risk_delivery import Offer
from central_sync.riskhub.publish import RiskKey
from risk.bundle import open_bundle
from test_control_room_browser import ARGS, CHROMIUM, serving

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "riskhub"
PASSWORD = "correct horse"
RULE = {"id": "heavy-empty", "name": "Declared empty but heavy", "reason": "declared_empty_heavy", "score": 60,
        "lane": "red", "enabled": True, "when": {"all": [{"fact": "declaration.declared_empty", "op": "eq", "value": True},
                                                          {"fact": "declaration.weight_kg", "op": "gte", "value": 4500}]}}
if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def sign_in(page: Page, name: str) -> None:
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#nav:not([hidden])")


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 0, f"the page is {width} px wider than the window"


@pytest.mark.parametrize(("width", "height", "lang"), [(1024, 768, "zh-Hans"), (2560, 1440, "en")])
async def test_draft_approve_publish_in_the_browser(tmp_path: Path, width: int, height: int, lang: str) -> None:
    from playwright.async_api import async_playwright, expect
    expect.set_options(timeout=20_000)  # a loaded machine: waits for what the page shows, never a time limit on it
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    msg = catalogue(lang)
    commands.generate_keypair(tmp_path / "risk.key", tmp_path / "risk.pub")
    key = RiskKey.load(tmp_path / "risk.key")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    offers: list[Offer] = []
    cfg = ControlRoomConfig(risk_key=tmp_path / "risk.key", secure_cookie=False)
    async with ControlRoom(store, None, cfg, risk_deliver=offers.append) as room:
        auth.add_user(store, "sam", "supervisor", PASSWORD, lang)
        auth.add_user(store, "ada", "admin", PASSWORD, lang)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": width, "height": height})
            shot = lambda name: page.screenshot(path=ARTIFACTS / f"{name}-{width}x{height}-{lang}.png", full_page=True)  # noqa: E731
            await page.goto(f"http://127.0.0.1:{port}/")

            # the supervisor drafts a watchlist and a rule
            await sign_in(page, "sam")
            await expect(page.locator("#nav button[data-view=risk]")).to_have_text(msg["nav.risk"])
            await page.click("#nav button[data-view=risk]")
            await expect(page.locator("#risk[data-loaded]")).to_have_count(1)
            await page.fill("#risk-list-form input[name=id]", "plates-hot")
            await page.fill("#risk-list-form input[name=name]", "Plates of interest")
            await page.click("#risk-list-form button[type=submit]")
            await expect(page.locator("#risk-msg")).to_contain_text("watchlist:plates-hot")
            await page.fill("#risk-rule-json", json.dumps(RULE | {"lane": "purple"}))
            await page.click("#risk-rule-check")
            await expect(page.locator("#risk-rule-text")).to_have_class("note error")
            await page.fill("#risk-rule-json", json.dumps(RULE))
            await page.click("#risk-rule-check")
            words = msg["cmp.gte"]
            await expect(page.locator("#risk-rule-text")).to_contain_text(words)
            await page.click("#risk-rule-form button[type=submit]")
            await expect(page.locator("#risk-msg")).to_contain_text("rule:heavy-empty")
            await no_sideways_scroll(page)
            await shot("drafts")
            assert store.query("SELECT count(*) FROM risk_drafts WHERE status='pending'")[0][0] == 2
            await page.click("#signout")

            # the administrator approves both, but not her own draft
            await sign_in(page, "ada")
            await page.click("#nav button[data-view=risk]")
            await expect(page.locator("#risk[data-loaded]")).to_have_count(1)  # the page shows the current state
            await page.fill("#risk-random-form input[name=rate]", "0.03")
            await page.click("#risk-random-form button[type=submit]")
            await expect(page.locator("#risk-msg")).to_contain_text("random")
            await page.click("#nav button[data-view=approvals]")
            rows = page.locator("#drafts-table tr[data-draft]")
            await expect(rows).to_have_count(3)
            own = rows.filter(has_text=msg["draftop.random.set"])
            await expect(own).to_contain_text("rate=0.03")
            await expect(own).to_contain_text(msg["approvals.own_draft"])
            await expect(own.locator("button.approve")).to_have_count(0)
            await shot("approvals")
            for left in (2, 1):  # the table reloads after each decision
                await rows.locator("button.approve").first.click()
                await expect(rows).to_have_count(left)
                await expect(page.locator("#approvals-msg")).not_to_have_class("note error")
            await expect(page.locator("#changes-table")).to_contain_text("sam")
            await page.click("#nav button[data-view=risk]")
            await expect(page.locator("#risk-lists")).to_contain_text("plates-hot")
            await expect(page.locator("#risk-rules")).to_contain_text(words)
            await no_sideways_scroll(page)

            # and publishes: the bundle table shows it, delivery got bytes the stations' key opens
            await page.click("#nav button[data-view=bundles]")
            await page.click("#bundle-publish")
            await expect(page.locator("#bundle-msg")).to_contain_text("1")
            await expect(page.locator("#bundle-table")).to_contain_text(msg["bundlekind.snapshot"])
            await no_sideways_scroll(page)
            await shot("bundles")
            await browser.close()
    assert [o.version for o in offers] == [1]
    bundle = open_bundle(offers[0].snapshot, {key.key_id: key.private.public_key()}, now=time.time(), current=None)
    assert [r.id for r in bundle.rules] == ["heavy-empty"] and bundle.random.rate == 0.02
    approvers = store.query("SELECT a.approver, d.author FROM risk_approvals a JOIN risk_drafts d ON d.id = a.draft_id")
    assert sorted(approvers) == [("ada", "sam"), ("ada", "sam")]
