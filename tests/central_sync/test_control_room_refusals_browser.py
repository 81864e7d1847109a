"""The hub's refusals on the control room's screen, in headless Chromium: each refusal carries a code the page
translates (central_sync/control_room/refusals.py), so a supervisor reading Chinese reads no English sentence.
Screenshots go to test-artifacts/control_room/.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.i18n import catalogue
from central_sync.hub.api import create_app
from central_sync.hub.store import open_store
from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD, seed_hub, serving, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


@asynccontextmanager
async def supervisor_page(tmp_path):
    """A hub (SQLite) with its control room, two stations seeded, and a page signed in as supervisor sup1."""
    from playwright.async_api import async_playwright
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        seed_hub(store)
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            yield store, await signed_in_page(pw, port)


async def test_a_command_refused_by_the_hub_reads_in_the_language_shown(tmp_path):
    """A hub without a signing key refuses every command (503): in zh-Hant the page showed "未能發送:" and the hub's
    English sentence; now the sentence of its code, in the language shown, and anew when the language changes."""
    from playwright.async_api import expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with supervisor_page(tmp_path) as (store, page):
        await page.select_option("#lang", "zh-Hant")
        await page.click("#nav button[data-view=commands]")
        await page.wait_for_selector("#commands[data-loaded]", state="attached")
        await page.select_option("#cmd-station", "gate-1")
        await page.click("#form-request_diag button[type=submit]")
        await page.click("#cmd-confirm-yes")
        zh = catalogue("zh-Hant")
        said = zh["commands.failed"].replace("{error}", zh["error.command.disabled"].replace("{station}", "gate-1"))
        await expect(page.locator("#cmd-msg")).to_have_text(said)
        await page.screenshot(path=ARTIFACTS / "command-refused-zh-Hant.png")
        await page.select_option("#lang", "en")
        await expect(page.locator("#cmd-msg")).to_have_text(
            "Not sent: Commands are disabled: the hub has no signing key or no broker link. Nothing was sent to gate-1.")


async def test_an_empty_or_over_long_comment_is_refused_in_one_translated_sentence(tmp_path):
    """**Comment** with no text recorded an empty "Comment by sup1"; a comment over 2000 characters brought up the
    hub's validation JSON in an alert box. Now the page refuses the empty one (so does the hub) and shows the hub's
    refusal of the long one as one sentence under the card's buttons, in the language shown; nothing is recorded."""
    from playwright.async_api import expect
    async with supervisor_page(tmp_path) as (store, page):
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        await page.select_option("#lang", "zh-Hant")
        await page.click("#nav button[data-view=alerts]")
        card = page.locator("article.alert").first
        zh = catalogue("zh-Hant")
        await card.locator(".act-comment").click()
        await expect(card.locator(".act-msg")).to_have_text(zh["error.comment_empty"])
        await card.locator(".act-text").fill("x" * 2001)
        await card.locator(".act-comment").click()
        await expect(card.locator(".act-msg")).to_have_text(
            zh["error.text_too_long"].replace("{length}", "2001").replace("{max}", "2000"))
        await page.screenshot(path=ARTIFACTS / "comment-refused-zh-Hant.png")
        assert dialogs == [] and store.query("SELECT kind, text FROM cr_actions") == []
        await card.locator(".act-text").fill("seal photographed")
        await card.locator(".act-comment").click()
        await expect(card.locator(".action-comment")).to_contain_text("seal photographed")
        await expect(card.locator(".act-text")).to_have_value("")  # recorded: the field is free for the next one
        await expect(page.locator("article.alert").first.locator(".act-msg")).to_be_hidden()


async def test_a_hold_refused_by_the_hub_reads_in_the_language_shown(tmp_path):
    """A hold on a record the hub does not hold was refused with a sentence the hub had translated into the
    user's saved language around its English reason ("無可扣留：record nope is not in the hub database: nothing to
    hold。"). Now the refusal's code is translated on the page: all Chinese but the record's id."""
    from playwright.async_api import expect
    async with supervisor_page(tmp_path) as (store, page):
        await page.select_option("#lang", "zh-Hant")
        await page.click("#nav button[data-view=retention]")
        await page.select_option("#hold-form select[name=kind]", "record")
        await page.fill("#hold-form input[name=value]", "nope")
        await page.fill("#hold-form input[name=reason]", "法院命令 7")
        await page.click("#hold-form button[type=submit]")
        await expect(page.locator("#hold-msg")).to_have_text(
            catalogue("zh-Hant")["error.hold.unknown_record"].replace("{record}", "nope"))
        await page.screenshot(path=ARTIFACTS / "hold-refused-zh-Hant.png")
        assert store.query("SELECT count(*) FROM legal_holds") == [(0,)]
