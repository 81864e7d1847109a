"""More of the hub's refusals on the control room's screen, in headless Chromium: a model roll-out and a search photo
refused read in the language shown, not in the hub's English. Screenshots go to test-artifacts/control_room/."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.i18n import catalogue
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from central_sync.model_delivery import ModelRepo
from edge.search_report import sign
from models.testgraphs import write_package
from search_report_kit import form, on_disk, open_station
from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD, fill, seed_hub, serving, signed_in_page
from test_control_room_more_refusals import JUNK, hold
from test_search_report_browser import deliver

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def test_a_refused_roll_out_reads_in_the_language_shown(tmp_path: Path) -> None:
    """A roll-out to 10 % of the stations while the hub knows none: in zh-Hant the page said "未能安排部署：a roll-out
    to a percentage of stations needs known stations; the hub knows none yet"; now the sentence of its code."""
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    repo = ModelRepo(tmp_path / "models")
    package = repo.upload(write_package(tmp_path / "src", version="3.0.0"))
    repo.sign(package, Ed25519PrivateKey.generate(), "models-1")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(models_dir=repo.folder)) as room:
        auth.add_user(store, "adm1", "admin", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "adm1")
            await page.select_option("#lang", "zh-Hant")
            await page.click("#nav button[data-view=models]")
            await page.wait_for_selector("#models[data-loaded]", state="attached")
            await page.select_option("#models-target", "percent")
            await page.click("#models-form button[type=submit]")
            zh = catalogue("zh-Hant")
            await expect(page.locator("#models-msg")).to_have_text(
                fill(zh["models.stage_failed"], error=fill(zh["error.models.no_stations"], percent="10")))
            await page.screenshot(path=ARTIFACTS / "rollout-refused-zh-Hant.png")
    assert repo.rollouts() == []
    store.close()


async def test_a_refused_search_photo_says_why_in_the_language_shown(tmp_path: Path) -> None:
    """A photo the hub holds that is no JPEG or PNG (damaged on the station's disk, sent all the same) showed as a
    broken image; now its refusal's sentence stands in its place, in the language shown."""
    from playwright.async_api import async_playwright, expect
    st = open_station(tmp_path / "data")
    junk_sha = on_disk(st.store, JUNK)
    sign(st.store, st.vehicle().id, form(photos=[junk_sha]))
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        deliver(st.store.db_path, store)
        hold(store, JUNK)
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "op1")
            await page.select_option("#lang", "zh-Hant")
            await page.click("#nav button[data-view=search-reports]")
            zh = catalogue("zh-Hant")
            refused = page.locator("#search-table .photo-refused")
            await expect(refused).to_have_text(fill(zh["error.search.photo_not_photo"], photo=junk_sha[:12],
                                                    head="6e6f7420616e2069"))
            await expect(page.locator("#search-table img.search-photo")).to_have_count(0)
            await page.screenshot(path=ARTIFACTS / "search-photo-refused-zh-Hant.png")
    st.store.close()
    store.close()


async def test_an_acknowledged_alert_offers_no_acknowledge(tmp_path: Path) -> None:
    """The card of an acknowledged alert still offered Acknowledge, and a touch recorded a second one; now it is
    offered until the alert is acknowledged, then gone (the others stay)."""
    from playwright.async_api import async_playwright, expect
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        seed_hub(store)
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "sup1")
            await page.click("#nav button[data-view=alerts]")
            card = page.locator("article.alert").first
            await card.locator("button.act-ack").click()
            await expect(card.locator(".action-ack")).to_contain_text("sup1")
            await expect(page.locator("article.alert").first.locator("button.act-ack")).to_have_count(0)
            await expect(page.locator("article.alert").first.locator("button.act-escalate")).to_have_count(1)
            await page.reload()
            await page.click("#nav button[data-view=alerts]")
            await expect(page.locator("article.alert.acknowledged")).to_have_count(1)
            await expect(page.locator("article.alert.acknowledged button.act-ack")).to_have_count(0)
            await expect(page.locator("article.alert:not(.acknowledged) button.act-ack")).to_have_count(1)
    assert store.query("SELECT kind, actor FROM cr_actions") == [("ack", "sup1")]
    store.close()


async def test_a_draft_decided_meanwhile_says_its_decision_in_the_language_shown(tmp_path: Path) -> None:
    """An administrator approving a draft another had approved meanwhile read "未完成：草稿 d… 已有決定（approved）。":
    the decision was the hub's code; now it is the decision's word in the language shown."""
    from playwright.async_api import async_playwright, expect
    from central_sync.riskhub import authoring
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        for name, role in (("sup1", "supervisor"), ("adm1", "admin"), ("adm2", "admin")):
            auth.add_user(store, name, role, PASSWORD)
        draft = authoring.propose(store, "sup1", "random.set", {"rate": 0.03, "stale_rate": 0.2, "per_lane": {}})
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "adm1")
            await page.select_option("#lang", "zh-Hant")
            await page.click("#nav button[data-view=approvals]")
            row = page.locator(f'#drafts-table tr[data-draft="{draft.id}"]')
            await expect(row.locator("button.approve")).to_have_count(1)

            async def approved_meanwhile(route) -> None:  # at another desk, as this click's request is on its way
                authoring.approve(store, draft.id, "adm2")
                await route.continue_()

            # approved in the store before the click, a refresh of the list could take the row (and its button) away
            # first: the click then waited 30 s for a button no longer there (seen once in a full run)
            await page.route(f"**/drafts/{draft.id}/approve", approved_meanwhile)
            await row.locator("button.approve").click()
            zh = catalogue("zh-Hant")
            await expect(page.locator("#approvals-msg")).to_have_text(fill(zh["approvals.refused"], error=fill(
                zh["error.risk.already_decided"], draft=draft.id, decision=zh["decision.approved"])))
            await page.screenshot(path=ARTIFACTS / "draft-decided-zh-Hant.png")
    store.close()


async def test_the_live_indicator_stays_in_the_header_row_on_the_wall(tmp_path: Path) -> None:
    """At 2560×1440 in wall mode a supervisor's (and an administrator's) header was 4 px too wide, so "live" wrapped
    alone under the title, where nobody looks; now it stays beside the wall toggle on the title's row."""
    from playwright.async_api import async_playwright, expect
    store = open_store(str(tmp_path / "hub.sqlite3"))
    row = """() => { const [h, w, l] = ['header h1', '#wall-toggle', '#live'].map((s) => document.querySelector(s)
      .getBoundingClientRect()); return {live_top: l.top, title_bottom: h.bottom, toggle_right: w.right, live_left: l.left,
      scroll: document.documentElement.scrollWidth}; }"""
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        auth.add_user(store, "adm1", "admin", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "sup1", "/cr/?wall=1")
            await page.set_viewport_size({"width": 2560, "height": 1440})
            await expect(page.locator("#live")).to_have_class("live-on")
            for user in ("sup1", "adm1"):
                if user == "adm1":
                    await page.click("#signout")
                    await page.fill("input[name=username]", user)
                    await page.fill("input[name=password]", PASSWORD)
                    await page.click("#signin-form button[type=submit]")
                    await expect(page.locator("#me")).to_contain_text(user)
                for lang in ("en", "zh-Hant"):
                    await page.select_option("#lang", lang)
                    await expect(page.locator("#live")).to_have_text(catalogue(lang)["live.on"])
                    got = await page.evaluate(row)
                    assert got["live_top"] < got["title_bottom"] and got["live_left"] > got["toggle_right"], (user, lang, got)
                    assert got["scroll"] <= 2560, (user, lang, got)
            await page.screenshot(path=ARTIFACTS / "wall-header-2560x1440.png", clip={"x": 0, "y": 0, "width": 2560, "height": 120})
    store.close()
