"""The control room's identity search in headless Chromium: records carrying plates, a container code, UHF
tags and a tampered seal reach the hub through its real ingest; the officer searches alerts or every
inspection, by prefix and exactly, by kind, and sees each identity with its kind, a seal's state and a
conflict marked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from central_sync import protocol as p
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.control_room.i18n import catalogue
from central_sync.devtools import make_record
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import HubStore, open_store
from central_sync.schema import Identity, SealStatus, Verdict
from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD, fill, serving, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]

IDENTS = {
    1: [Identity(kind="plate", value="AB1234"), Identity(kind="plate", value="粤Z·A123港"),
        Identity(kind="container", value="CSQU3054383"),
        Identity(kind="seal", value="HKEL0001234", seal=SealStatus(state="tampered"))],
    2: [Identity(kind="plate", value="AB12"), Identity(kind="rfid_tid", value="E2801160200073F1A2B3C4D5"),
        Identity(kind="rfid_epc", value="300833B2DDD9014000000001",
                 conflict="EPCs 300833B2DDD9014000000001 and 300833B2DDD90140000000FF were read from the one tag TID "
                          "E2801160200073F1A2B3C4D5")],
    3: [Identity(kind="container", value="MSCU1234566")],
    4: [Identity(kind="plate", value="ZZ9999")],  # a clear inspection: no alert
}


def seed(store: HubStore) -> dict[int, str]:
    now = datetime.now(UTC)
    verdicts = {1: (Verdict.MANUAL, "seal_not_intact"), 4: (Verdict.CLEAR, "clear")}
    recs = [make_record("gate-1", n).model_copy(update={
        "identities": IDENTS[n], "decided_at": now - timedelta(minutes=n),
        "verdict": verdicts.get(n, (Verdict.SUSPECT,))[0], "reason": verdicts.get(n, (0, "detection"))[1]})
        for n in IDENTS]
    topic = lambda r: "inspection" if r.verdict == Verdict.CLEAR else "alert"  # noqa: E731
    Ingestor(store, "hub-t", lambda *a: None).handle(
        [(p.topic(r.station, topic(r)), p.encode_envelope(r.station, topic(r), n, r.seq, r.id, r.to_json().encode(), 0.0))
         for n, r in enumerate(recs, 1)])
    return {r.seq: r.id for r in recs}


async def test_search_by_identity_prefix_exact_and_kind(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        ids = seed(store)
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "op1")
            await page.click("#nav button[data-view=alerts]")
            cards = page.locator("article.alert")

            async def search(q: str, expected: list[int], kind: str = "", match: str = "prefix",
                             everything: bool = False) -> None:
                """Search, then wait until exactly the expected records are listed."""
                await page.set_checked("#filters input[name=scope]", everything)
                await page.fill("#filters input[name=q]", q)
                await page.select_option("#filters select[name=ident_kind]", kind)
                await page.select_option("#filters select[name=match]", match)
                async with page.expect_response(lambda r: "/cr/api/alerts?" in r.url):
                    await page.click("#filters button[type=submit]")
                await expect(cards).to_have_count(len(expected))
                for n in expected:
                    await expect(page.locator(f'article[data-id="{ids[n]}"]')).to_be_visible()

            await search("ab12", [1, 2])
            await search("AB12", [2], match="exact")
            await search("粤ZA123", [1])
            await search("HKEL", [1], "seal")
            await search("HKEL", [], "plate")
            await search("E28011602000", [2], "rfid_tid")
            await search("MSCU1234566", [3], "container", "exact")
            await search("ZZ99", [])
            await search("ZZ99", [4], everything=True)

            await search("CSQU", [1])
            card = page.locator(f'article[data-id="{ids[1]}"]')
            await expect(card.locator(".reason")).to_have_text("Declared seal missing, opened or tampered")
            await expect(card.locator('.ident[data-kind="seal"]')).to_have_text("E-seal HKEL0001234 (tampered)")
            await search("3008", [2], "rfid_epc")
            epc = page.locator(f'article[data-id="{ids[2]}"] .ident[data-kind="rfid_epc"]')
            await expect(epc).to_have_class("ident conflict")
            await expect(epc).to_have_attribute("title", IDENTS[2][2].conflict or "")
            await page.screenshot(path=ARTIFACTS / "identity-search.png")
            await page.context.browser.close()


async def test_a_broad_search_shows_its_newest_page_and_says_there_are_more(tmp_path: Path) -> None:
    """101 alerts whose plates start with "B": the search "B" lists the newest 100 and says more match; a
    narrower one lists all it finds and says nothing."""
    from playwright.async_api import async_playwright, expect
    store = open_store(str(tmp_path / "hub.sqlite3"))
    now = datetime.now(UTC)
    recs = [make_record("gate-1", n, Verdict.SUSPECT).model_copy(update={
        "identities": [Identity(kind="plate", value=f"B{n}")], "decided_at": now - timedelta(seconds=n)})
        for n in range(1, 102)]
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        Ingestor(store, "hub-t", lambda *a: None).handle(
            [(p.topic("gate-1", "alert"), p.encode_envelope("gate-1", "alert", n, r.seq, r.id, r.to_json().encode(), 0.0))
             for n, r in enumerate(recs, 1)])
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "op1")
            await page.click("#nav button[data-view=alerts]")
            note, cards = page.locator("#search-more"), page.locator("article.alert")
            # no search set: 101 alerts are no broad search to narrow (the note stood over every busy hub's list)
            await expect(cards).to_have_count(100)
            await expect(page.locator("#alert-more")).to_be_visible()
            await expect(note).to_be_hidden()
            for q, count, more in (("B", 100, True), ("B10", 2 + 1, False)):  # B10, B100, B101
                await page.fill("#filters input[name=q]", q)
                async with page.expect_response(lambda r: "/cr/api/alerts?" in r.url):
                    await page.click("#filters button[type=submit]")
                await expect(cards).to_have_count(count)
                if more:
                    await expect(note).to_have_text("More inspections match than are shown: the newest 100 are shown. "
                                                    "Narrow the search (a longer prefix, a kind, a station or a time range).")
                    await expect(page.locator(f'article[data-id="{recs[100].id}"]')).to_have_count(0)  # the oldest
                    # a change of language says it anew (it stayed in English under a Chinese page)
                    await page.select_option("#lang", "zh-Hant")
                    await expect(note).to_have_text(fill(catalogue("zh-Hant")["filter.more_results"], n="100"))
                    await page.select_option("#lang", "en")
                    await expect(note).to_contain_text("More inspections match")
                else:
                    await expect(note).to_be_hidden()
            await page.context.browser.close()


async def test_a_search_is_kept_in_the_address_for_a_reload_and_a_shared_link(tmp_path: Path) -> None:
    """A search for plate-kind "AB12" exactly, from an hour ago, was lost on reload (the view was kept in the
    address, the filters were not): the reload listed every alert and the form was empty. Now the filters are in the
    address beside the view: the reload, and the same link opened by another user, show the same form and the same
    one alert; **Clear** takes them out of the address."""
    from playwright.async_api import async_playwright, expect
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        ids = seed(store)
        for name in ("op1", "op2"):
            auth.add_user(store, name, "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "op1")
            await page.click("#nav button[data-view=alerts]")
            cards = page.locator("article.alert")
            await expect(cards).to_have_count(3)
            since = (datetime.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
            await page.fill("#filters input[name=q]", "AB12")
            await page.select_option("#filters select[name=ident_kind]", "plate")
            await page.select_option("#filters select[name=match]", "exact")
            await page.fill("#filters input[name=since]", since)
            await page.click("#filters button[type=submit]")
            await expect(cards).to_have_count(1)
            await expect(page).to_have_url(re.compile(r"q=AB12.*#alerts$"))
            link = page.url

            async def same_search(p) -> None:
                await expect(p.locator("#filters input[name=q]")).to_have_value("AB12")
                await expect(p.locator("#filters select[name=ident_kind]")).to_have_value("plate")
                await expect(p.locator("#filters select[name=match]")).to_have_value("exact")
                await expect(p.locator("#filters input[name=since]")).to_have_value(since)
                await expect(p.locator("article.alert")).to_have_count(1)
                await expect(p.locator(f'article[data-id="{ids[2]}"]')).to_be_visible()

            await page.reload()
            await same_search(page)
            other = await (await page.context.browser.new_context(locale="en-GB")).new_page()
            await other.goto(link)
            await other.fill("input[name=username]", "op2")
            await other.fill("input[name=password]", PASSWORD)
            await other.click("#signin-form button[type=submit]")
            await same_search(other)
            await page.click("#filters button[type=reset]")
            await expect(cards).to_have_count(3)
            await expect(page).to_have_url(re.compile(r"/cr/#alerts$"))


async def test_a_search_shows_new_alerts_the_hub_would_find_for_it(tmp_path: Path) -> None:
    """The hub keys identities with look-alikes folded (a plate read АВ1234 with Cyrillic А and В is AB1234) and
    without slashes, underscores, every dash and invisible characters, but the page matched the alerts arriving live
    against a search by the form the hub had before: a wall searching plate AB1234 exactly hid the new alerts read
    АВ1234 (Cyrillic), AB–1234 (en dash) and AB/1234, which the same search finds after a reload. Now the page matches
    them as the hub does: all three are shown as they arrive."""
    from playwright.async_api import async_playwright, expect
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        ids = seed(store)
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "op1", "/cr/?q=AB1234&match=exact#alerts")
            cards = page.locator("article.alert")
            await expect(cards).to_have_count(1)
            await expect(page.locator(f'article[data-id="{ids[1]}"]')).to_be_visible()
            now = datetime.now(UTC)
            plates = {5: "АВ1234", 6: "AB\u20131234", 7: "AB/1234", 8: "AB12345"}  # the last: another plate
            recs = [make_record("gate-1", n, Verdict.SUSPECT).model_copy(update={
                "identities": [Identity(kind="plate", value=v)], "decided_at": now}) for n, v in plates.items()]
            Ingestor(store, "hub-t", lambda *a: None).handle(
                [(p.topic(r.station, "alert"), p.encode_envelope(r.station, "alert", r.seq, r.seq, r.id,
                                                                  r.to_json().encode(), 0.0)) for r in recs])
            for r in recs[:3]:
                await expect(page.locator(f'article[data-id="{r.id}"]')).to_be_visible()
            await expect(cards).to_have_count(4)
            await page.reload()
            await expect(cards).to_have_count(4)  # what the hub's search finds
            await page.context.browser.close()
