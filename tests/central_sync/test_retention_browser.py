"""Legal holds and the case export in the control room, in headless Chromium against the real hub, a real
Mosquitto and a station's real command link: a supervisor exports an alert's case (asked why, a signed bundle
downloads and verifies), holds it and a vehicle (the station receives both, signed and retained), releases
a hold with a reason (the station lets it go), and every step is in the audit. Screenshot:
test-artifacts/control_room/retention.png."""

from __future__ import annotations

import asyncio
import hashlib
import json
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from central_sync import case_bundle
from central_sync import commands as c
from central_sync import protocol as p
from central_sync.config import BrokerConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, audit, auth
from central_sync.devtools import Mosquitto, make_record
from central_sync.hub.api import create_app
from central_sync.hub.ingest import Ingestor
from central_sync.hub.store import open_store
from central_sync.schema import Identity, Verdict
from edge.commands import CommandHandlers, CommandReceiver, CommandsConfig
from edge.store import Store
from polling import until
from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


def answer(page, text: str) -> None:
    """Answer the next prompt() with `text`."""
    page.once("dialog", lambda d: asyncio.ensure_future(d.accept(text)))


async def test_holds_and_case_export_in_the_control_room(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    rec = make_record("gate-1", 1, Verdict.SUSPECT)
    rec = rec.model_copy(update={"identities": [Identity(kind="plate", value="AB 1234", source="cam", status="read")]})
    with Mosquitto(tmp_path / "broker") as broker, Store(tmp_path / "gate-1") as station:
        broker_cfg = BrokerConfig(port=broker.port)
        async with AsyncExitStack() as stack:
            room = await stack.enter_async_context(ControlRoom(store, broker_cfg, ControlRoomConfig(
                signing_key=tmp_path / "hub.key", client_id="cr-ret")))
            Ingestor(store, "hub-t", lambda t, b: None).handle([(p.topic("gate-1", "alert"), p.encode_envelope(
                "gate-1", "alert", 1, rec.seq, rec.id, rec.to_json().encode(), 0.0))])
            rx = await stack.enter_async_context(CommandReceiver(
                broker_cfg, "gate-1", station, CommandHandlers(), CommandsConfig(hub_public_key=tmp_path / "hub.pub"),
                retention=station.retention))
            await rx.link.ready()
            auth.add_user(store, "sup1", "supervisor", PASSWORD)
            port = await stack.enter_async_context(serving(room.install(create_app(store))))
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = await browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
                await page.goto(f"http://127.0.0.1:{port}/")
                await page.fill("input[name=username]", "sup1")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("#signin-form button[type=submit]")
                await page.click("#nav button[data-view=alerts]")
                card = page.locator(f'article.alert[data-id="{rec.id}"]')

                # Export case: asks why, downloads the hub-signed bundle, which verifies against the hub's key
                answer(page, "court request 12")
                async with page.expect_download() as info:
                    await card.locator(".act-export").click()
                bundle = tmp_path / "case.zip"
                await (await info.value).save_as(bundle)
                result = case_bundle.verify(case_bundle.read_bundle(bundle),
                                            case_bundle.load_public_key(str(tmp_path / "hub.pub")))
                assert result.ok and result.manifest is not None and result.manifest.records == [rec.id]
                assert result.manifest.reason == "court request 12"
                manifest_sha = hashlib.sha256(case_bundle.read_bundle(bundle)[case_bundle.MANIFEST]).hexdigest()
                await expect(card.locator(".case-msg")).to_contain_text(manifest_sha[:16])

                # Hold the alert's case: the station receives the signed state and keeps the record
                answer(page, "court order 88")
                await card.locator(".act-hold").click()
                await expect(card.locator(".case-msg")).to_contain_text(rec.id)
                await until(lambda: station.hold_of(rec) == "record", "the station holds the record", timeout=10,
                            in_thread=True)

                # the retention view lists it; a vehicle hold placed there reaches the station too
                await page.click("#nav button[data-view=retention]")
                await expect(page.locator("#retention")).to_have_attribute("data-loaded", "1")
                await expect(page.locator("#retention-policy-form")).to_be_hidden()  # admins set the policy
                await page.select_option("#hold-form select[name=kind]", "plate")
                await page.fill("#hold-form input[name=value]", "AB1234")
                await page.fill("#hold-form input[name=reason]", "court order 90: the vehicle")
                await page.click("#hold-form button[type=submit]")
                await expect(page.locator("#hold-table tr[data-hold]")).to_have_count(2)
                await until(lambda: len(station.retention.holds.vehicles) == 1, "the station holds the vehicle",
                            timeout=10, in_thread=True)
                await page.screenshot(path=ARTIFACTS / "retention.png")

                # releasing the case's hold asks why; the station lets the record go (the plate still holds it)
                answer(page, "order 88 lifted")
                await page.locator(f'#hold-table tr[data-value="{rec.id}"] .hold-release').click()
                await expect(page.locator("#hold-table tr[data-hold]")).to_have_count(1)
                await until(lambda: not station.retention.holds.records, "the station released the record",
                            timeout=10, in_thread=True)
                assert station.hold_of(rec) == "plate"
                await browser.close()
    entries = [(e["actor"], e["action"], e["object"], json.loads(e["detail"])) for e in audit.entries(store)]
    mine = [(a, act, obj, d.get("reason")) for a, act, obj, d in entries
            if act in ("hold.place", "hold.release", "case.export")]
    assert sorted(mine, key=str) == sorted([
        ("sup1", "case.export", mine[[m[1] for m in mine].index("case.export")][2], "court request 12"),
        ("sup1", "hold.place", rec.id, "court order 88"),
        ("sup1", "hold.place", "plate:AB1234", "court order 90: the vehicle"),
        ("sup1", "hold.release", rec.id, "order 88 lifted")], key=str)
    store.close()
