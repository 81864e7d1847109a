"""The control room's search report panel in headless Chromium: reports signed on a real station store reach the hub
through its real ingest (the station's own outbox rows); the operator finds them by plate, by goods and by outcome,
in English and in Traditional Chinese."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import cv2
import numpy as np
import pytest

from central_sync import protocol as p
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import HubStore, open_store
from edge.search_report import add_photo, sign
from polling import until
from search_report_kit import PLATE, form, open_station, photo
from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving

PNG = photo(".png")  # named by the report, never synced here

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


def deliver(db: Path, store: HubStore) -> int:
    """Hand the station's outbox rows to the hub's ingest, as the publisher would; the number delivered."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, kind, record_id, seq, payload FROM outbox WHERE kind <> 'blob'"
                            " ORDER BY id").fetchall()
    Ingestor(store, "hub-t", lambda *a: None).handle(
        [(p.topic("gantry-1", kind), p.encode_envelope("gantry-1", kind, msg, seq, rid, bytes(body), 0.0))
         for msg, kind, rid, seq, body in rows])
    return len(rows)


def deliver_photo(store: HubStore, data: bytes) -> None:
    """One search photo as the station's sender sends it: a chunk on the blob topic (central_sync/blobs.py)."""
    sha = hashlib.sha256(data).hexdigest()
    header = p.BlobChunkHeader(station="gantry-1", msg=9000, seq=1, record_id="r", sha256=sha, index=0, count=1,
                               size=len(data), chunk_sha256=sha)
    Ingestor(store, "hub-t", lambda *a: None).handle([(p.blob_topic("gantry-1", sha, 0), p.encode_chunk(header, data))])


async def test_the_operator_finds_reports_by_plate_goods_and_outcome(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    st = open_station(tmp_path / "data")
    clean, seized = st.vehicle("KT 4411"), st.vehicle("LM 8080")
    ok, jpeg = cv2.imencode(".jpg", np.full((60, 80, 3), (40, 90, 200), np.uint8))
    synced, pending = add_photo(st.store, jpeg.tobytes(), "image/jpeg"), add_photo(st.store, PNG, "image/png")
    sign(st.store, clean.id, form(photos=[synced, pending]))
    sign(st.store, seized.id, form(seizure=True))
    store = open_store(str(tmp_path / "hub.sqlite3"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        assert deliver(st.store.db_path, store) == 4
        deliver_photo(store, jpeg.tobytes())  # the other photo has not reached the hub yet
        auth.add_user(store, "op1", "operator", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = await browser.new_page(viewport={"width": 1024, "height": 768}, locale="en-GB")
            await page.goto(f"http://127.0.0.1:{port}/cr/")
            await page.fill("input[name=username]", "op1")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#signin-form button[type=submit]")
            await page.click("#nav button[data-view=search-reports]")
            rows = page.locator("#search-table tr")
            await expect(rows).to_have_count(3)  # the header and both reports

            async def find(q: str = "", outcome: str = "") -> None:
                await page.fill("#search-form input[name=q]", q)
                await page.select_option("#search-form select[name=outcome]", outcome)
                await page.click("#search-form button[type=submit]")

            await find("LM 80")
            await expect(rows).to_have_count(2)
            await expect(rows.nth(1)).to_contain_text("LM 8080")
            await expect(rows.nth(1)).to_contain_text("Seizure awaiting countersignature")
            await expect(rows.nth(1)).to_contain_text("cigarettes 2402.20 40 cartons")
            await find("cigarettes")
            await expect(rows).to_have_count(2)
            await find(outcome="nothing_found")
            await expect(rows.nth(1)).to_contain_text("KT 4411")
            await expect(rows.nth(1)).to_contain_text("Nothing found")
            photo = rows.nth(1).locator("img.search-photo")
            await expect(photo).to_have_count(1)  # the synced photo, shown through the control room's own origin
            await until(lambda: photo.evaluate("(img) => img.complete && img.naturalWidth"), "the photo loaded",
                        check=lambda width: width == 80)
            assert await photo.get_attribute("alt") == synced[:12]
            await expect(rows.nth(1)).to_contain_text("not synced yet")
            await find("no such goods")
            await expect(page.locator("#search-none")).to_be_visible()
            await page.select_option("#lang", "zh-Hant")
            await find(PLATE)
            await expect(rows).to_have_count(3)
            await expect(page.locator("#search-table")).to_contain_text("檢取待覆核")
            await page.screenshot(path=str(ARTIFACTS / "control_room_search_reports.png"), full_page=True)
            await browser.close()
    st.store.close()
    store.close()
