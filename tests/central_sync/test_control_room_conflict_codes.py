"""A conflict's code and values reach the hub with the record (its real ingest, on SQLite and PostgreSQL), come back
to the control room as sent, and the alert's conflicting read is titled in the operator's language; an older record
without codes keeps its English sentence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central_sync import protocol as p
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import make_record
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import HubStore
from central_sync.schema import Identity, InspectionRecord, Verdict
from edge.identity import fuse
from test_control_room_browser import ARTIFACTS, CHROMIUM, PASSWORD, serving, signed_in_page

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]

OLD = "plates AB1234 and CD5678 of jurisdiction HK were read on one vehicle"  # a record from before the codes


def ingest(store: HubStore) -> tuple[InspectionRecord, InspectionRecord]:
    """Two alerts through the hub's ingest: one whose plates conflict (coded by edge.identity), an older one whose
    plate has the sentence only."""
    now = datetime.now(UTC)
    coded = make_record("gate-1", 1, Verdict.SUSPECT).model_copy(update={"decided_at": now, "identities": fuse([
        Identity(kind="plate", value="CD5678"), Identity(kind="plate", value="AB1234")])})
    body = make_record("gate-1", 2, Verdict.SUSPECT).model_copy(update={
        "decided_at": now - timedelta(minutes=1), "identities": [Identity(kind="plate", value="AB1234", conflict=OLD)]})
    old = body.to_json().replace(',"conflicts":[]', "")  # as a station from before the codes sends it
    assert '"conflicts"' not in old
    Ingestor(store, "hub-t", lambda *a: None).handle([
        (p.topic("gate-1", "alert"), p.encode_envelope("gate-1", "alert", n, r.seq, r.id, data, 0.0))
        for n, (r, data) in enumerate(((coded, coded.to_json().encode()), (body, old.encode())), 1)])
    return coded, body


async def test_a_conflicts_code_reaches_the_hub_and_its_title_is_translated(store: HubStore) -> None:
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        coded, old = ingest(store)
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port, "op1")
            await page.click("#nav button[data-view=alerts]")
            served = await (await page.request.get(f"http://127.0.0.1:{port}/cr/api/alerts?limit=10")).json()
            idents = {a["id"]: a["record"]["identities"] for a in served}
            assert [i["conflicts"] for i in idents[coded.id]] == [[{
                "code": "plates_one_jurisdiction", "values": {"plates": "AB1234, CD5678", "jurisdiction": "HK"}}]] * 2
            assert [i["conflicts"] for i in idents[old.id]] == [[]]  # validated by the hub: no codes
            plate = lambda r: page.locator(f'article[data-id="{r.id}"] .ident[data-kind="plate"]')  # noqa: E731
            await expect(plate(coded)).to_have_count(2)
            await expect(plate(coded).first).to_have_attribute(  # said from its code, in the catalogue's English
                "title", "plates AB1234 and CD5678 of jurisdiction Hong Kong were read on one vehicle")
            await expect(plate(old)).to_have_attribute("title", OLD)
            await page.select_option("#lang", "zh-Hant")
            await expect(page.locator("html")).to_have_attribute("lang", "zh-Hant")
            for n in range(2):
                await expect(plate(coded).nth(n)).to_have_attribute("title", "同一車輛讀到香港的多個車牌：AB1234及CD5678")
                await expect(plate(coded).nth(n)).to_contain_text("讀數互相矛盾")
            await expect(plate(old)).to_have_attribute("title", OLD)
            await page.screenshot(path=ARTIFACTS / "conflict-codes-zh-Hant.png")
