"""The control room in headless Chromium against a real Mosquitto, the real hub and real station
publishers: an alert appears live (commit-to-screen time printed and written to
test-artifacts/control_room/latency.json), acknowledging it is recorded, a station that goes
offline turns red, and a signed command reaches a station while forged, expired and replayed ones
are refused there. Screenshots go to test-artifacts/control_room/.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync import commands as c
from central_sync import protocol as p
from central_sync.hub.ingest import Ingestor
from central_sync.config import BrokerConfig, SyncConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth
from central_sync.devtools import add_record, free_port, make_record, open_station_db
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from central_sync.outbox import Lane, enqueue
from central_sync.publisher import Publisher
from central_sync.schema import DetectionOut, Identity, Review, Verdict
from edge.commands import CommandHandlers, CommandReceiver, CommandsConfig
from models.scan import Scan
from polling import until

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "control_room"
PASSWORD = "correct horse"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


def fill(template: str, **vals: str) -> str:
    """A catalogue sentence with its {placeholders} filled, as the page fills them."""
    for k, v in vals.items():
        template = template.replace("{" + k + "}", v)
    return template


def write_scan(scans: Path) -> str:
    """A bag with a steel-like block, stored as the station stores scans."""
    high = np.full((240, 320), 60000, np.uint16)
    high[60:180, 40:280] = 30000
    high[100:140, 120:200] = 4000
    low = (65535 * (high / 65535) ** 1.25).astype(np.uint16)  # organic-like dual-energy ratio
    scan = Scan(high=high, low=low, meta={"pixel_mm": 2.0})
    sha = scan.sha256()
    (scans / sha[:2]).mkdir(parents=True, exist_ok=True)
    (scans / sha[:2] / f"{sha}.npz").write_bytes(scan.to_bytes())
    return sha


@asynccontextmanager
async def serving(app, port: int | None = None):
    """The app on `port` (a free local one by default; yielded) for the block's duration."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, "web server up", timeout=10, in_thread=True)
        yield port
    finally:
        server.should_exit = True
        await task


async def signed_in_page(pw, port: int, user: str = "sup1", path: str = "/cr/"):
    """A Chromium page (1400 x 1000, en-GB) signed in to the control room on `port` as `user`, opened at `path`; its
    browser closes with the playwright context."""
    browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    await page.goto(f"http://127.0.0.1:{port}{path}")
    # the page's own start first (its session check, answered 401, ends by showing the sign-in form): a sign-in sent
    # before that check was answered was undone by it (#lang never shown; seen once in a loaded fresh-clone CI)
    await page.wait_for_function("() => Object.keys(S.msgs).length > 0")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    return page


async def test_control_room_live(tmp_path):
    from central_sync.devtools import Mosquitto
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    applied: list = []
    store = open_store(str(tmp_path / "hub.sqlite3"))
    with Mosquitto(tmp_path / "broker") as broker:
        broker_cfg = BrokerConfig(port=broker.port)
        sync = SyncConfig(port=broker.port, status_period_s=0.5)
        cfg = ControlRoomConfig(signing_key=tmp_path / "hub.key", stale_s=3.0, client_id="cr-test")
        dbs, scans = {}, tmp_path / "scans"
        scans.mkdir()
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(Hub(broker_cfg, store, "hub-t"))
            room = await stack.enter_async_context(ControlRoom(store, broker_cfg, cfg))
            pubs = {}
            for st in ("gate-1", "gate-2", "gate-3"):
                dbs[st] = tmp_path / f"{st}.db"
                open_station_db(dbs[st]).close()
                pubs[st] = stack.push_async_exit(Publisher(sync, st, dbs[st], scans))
                await pubs[st].__aenter__()
            rx = await stack.enter_async_context(CommandReceiver(
                sync, "gate-1", dbs["gate-1"], CommandHandlers(set_tip_rate=applied.append),
                CommandsConfig(hub_public_key=tmp_path / "hub.pub")))
            for name, role in (("op1", "operator"), ("sup1", "supervisor")):
                auth.add_user(store, name, role, PASSWORD)
            port = await stack.enter_async_context(serving(room.install(create_app(store, hub.stats))))
            await until(lambda: len(store.stations()) == 3, "three stations reported", timeout=20, in_thread=True)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(f"http://127.0.0.1:{port}/")
                await page.fill("input[name=username]", "op1")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("#signin-form button[type=submit]")
                for st in ("gate-1", "gate-2", "gate-3"):
                    await expect(page.locator(f'.station[data-station="{st}"]')).to_have_attribute("data-state", "online", timeout=15000)
                await expect(page.locator("#live")).to_have_class("live-on")
                await page.screenshot(path=ARTIFACTS / "board.png")

                # an alert raised on gate-1 appears on the alert feed, live
                await page.click("#nav button[data-view=alerts]")
                rec = make_record("gate-1", 1, Verdict.SUSPECT, scan_sha=write_scan(scans)).model_copy(update={
                    "identities": [Identity(kind="container", value="MSCU7654321")],
                    "detections": [DetectionOut(label="knife", score=0.91, box=(120, 100, 200, 140))]})
                conn = sqlite3.connect(dbs["gate-1"], isolation_level=None)
                add_record(conn, rec)
                enqueue(conn, Lane.IMAGE, "blob", rec.id, rec.seq, rec.scan.sha256)  # the image goes on its own lane
                pubs["gate-1"].notify()
                card = page.locator(f'article[data-id="{rec.id}"]')
                await expect(card).to_be_visible(timeout=20000)
                await expect(card.locator(".reason")).to_have_text("Possible threat detected")
                await expect(card).to_contain_text("MSCU7654321")
                assert (await page.evaluate("window.crLatency"))[0]["id"] == rec.id
                await until(lambda: store.image(rec.scan.sha256), "scan image at the hub", timeout=20, in_thread=True)
                await expect(card.locator("img")).to_have_js_property("naturalWidth", 320, timeout=15000)
                await page.screenshot(path=ARTIFACTS / "alert.png")
                for n in range(2, 12):  # more alerts, from two stations, for the latency figure
                    more = make_record("gate-1" if n % 2 else "gate-3", n, Verdict.SUSPECT)
                    with sqlite3.connect(dbs[more.station], isolation_level=None) as other:
                        add_record(other, more)
                    pubs[more.station].notify()
                    await asyncio.sleep(0.15)
                await until(lambda: page.evaluate("window.crLatency.length"), "11 alerts on screen",
                            check=lambda n: n >= 11, timeout=60)
                figures = sorted(x["seconds"] for x in await page.evaluate("window.crLatency"))
                summary = {"alerts": len(figures), "min_s": figures[0], "median_s": figures[len(figures) // 2], "max_s": figures[-1]}
                print(f"\ncontrol room: commit-to-screen latency over {len(figures)} alerts: min {figures[0] * 1000:.0f} ms,"
                      f" median {summary['median_s'] * 1000:.0f} ms, max {figures[-1] * 1000:.0f} ms")
                (ARTIFACTS / "latency.json").write_text(json.dumps(summary))

                # acknowledging it is recorded, with user and time
                await card.locator("button.act-ack").click()
                await expect(page.locator(f'article[data-id="{rec.id}"] .action-ack')).to_contain_text("op1")
                rows = store.query("SELECT kind, actor FROM cr_actions WHERE record_id=?", (rec.id,))
                assert rows == [("ack", "op1")]
                assert store.query("SELECT actor FROM cr_audit WHERE action='alert_ack' AND object=?", (rec.id,)) == [("op1",)]
                # escalated and acknowledged: the card says both (it showed only the acknowledged border, and the
                # wall hides the history, so an escalated alert looked handled)
                await page.locator(f'article[data-id="{rec.id}"] button.act-escalate').click()
                marks = page.locator(f'article[data-id="{rec.id}"] h3 .alert-mark')
                await expect(marks).to_have_text(["escalated", "acknowledged"])

                # the officer's decision at the station arrives on the same card, and leaves a comment being typed as it was
                await page.locator(f'article[data-id="{rec.id}"] .act-text').fill("called the station about the")
                decision = Review(officer="B-17", decided_at=datetime.now(UTC), outcome="threat_confirmed", label="knife")
                conn.execute("BEGIN")
                enqueue(conn, Lane.RECORD, "review", rec.id, rec.seq, rec.model_copy(update={"review": decision}).to_json())
                conn.execute("COMMIT")
                pubs["gate-1"].notify()
                await expect(page.locator(f'article[data-id="{rec.id}"] .review')).to_contain_text("Officer B-17: threat confirmed",
                                                                                                     timeout=15000)
                await expect(page.locator(f'article[data-id="{rec.id}"] .act-text')).to_have_value("called the station about the")
                # ...and in its title, so the wall (which hides the history) no longer shows a decided alert as open
                await expect(marks).to_have_text(["escalated", "acknowledged", "threat confirmed"])
                await page.click("#wall-toggle")
                await expect(page.locator(f'article[data-id="{rec.id}"] .review')).to_be_hidden()
                await expect(marks.last).to_be_visible()
                # each mark whole on one line at any card width ("threat" and "confirmed" were split on narrow wall cards)
                split = await page.locator(f'article[data-id="{rec.id}"]').evaluate("""(card) => {
                  const widths = []; for (let w = 300; w <= 700; w += 4) { card.style.width = w + 'px';
                    if ([...card.querySelectorAll('.alert-mark')].some((m) => m.getClientRects().length > 1)) widths.push(w); }
                  card.style.width = ''; return widths; }""")
                assert split == [], f"a mark split over two lines at card widths {split} px"
                await page.click("#wall-toggle")

                # a station going offline turns red
                await page.click("#nav button[data-view=board]")
                await pubs["gate-2"].__aexit__(None, None, None)
                gate2 = page.locator('.station[data-station="gate-2"]')
                await expect(gate2).to_have_attribute("data-state", "offline", timeout=15000)
                await expect(gate2).to_have_css("border-left-color", "rgb(214, 39, 40)")  # retried: cards are rebuilt
                await page.screenshot(path=ARTIFACTS / "offline.png")

                # a supervisor's signed command is applied; forged, expired and replayed ones are refused
                spy: asyncio.Queue = asyncio.Queue()
                loop = asyncio.get_running_loop()
                async with c.CommandLink(broker_cfg, "spy", [c.cmd_topic("gate-1")],
                                         lambda t, p: loop.call_soon_threadsafe(spy.put_nowait, p)) as link:
                    await link.ready()
                    await page.click("#signout")
                    await page.fill("input[name=username]", "sup1")
                    await page.fill("input[name=password]", PASSWORD)
                    await page.click("#signin-form button[type=submit]")
                    await page.click("#nav button[data-view=commands]")
                    await page.wait_for_selector("#commands[data-loaded]", state="attached")
                    await page.select_option("#cmd-station", "gate-1")
                    await page.fill("#cmd-tip-new", "3")
                    await page.click("#form-set_tip_rate button[type=submit]")
                    await page.click("#cmd-confirm-yes")
                    await expect(page.locator("#command-table")).to_contain_text("applied", timeout=15000)
                    await page.screenshot(path=ARTIFACTS / "commands.png")
                    genuine = await asyncio.wait_for(spy.get(), 5)
                    for data in (genuine, c.sign(key, c.new_command("gate-1", "set_tip_rate", {"rate": 0.5}, "mallory")),
                                 c.sign(room.key, c.new_command("gate-1", "set_tip_rate", {"rate": 0.5}, "sup1", ttl_s=5, now=time.time() - 3600))):
                        link.publish(c.cmd_topic("gate-1"), data)
                    await until(lambda: rx.counters["rejected"] == 3, "three refusals at the station",
                                timeout=15, in_thread=True)
                assert applied == [0.03]
                reasons = [r[0] for r in sqlite3.connect(dbs["gate-1"]).execute("SELECT reason FROM station_commands ORDER BY row")]
                assert reasons == ["applied", "replayed", "bad_signature", "expired"]
                assert store.query("SELECT outcome, reason FROM cr_commands") == [("applied", "applied")]

                # a supervisor assigns the alert to a person picked from the control room's users, not typed
                await page.click("#nav button[data-view=alerts]")
                card = page.locator(f'article[data-id="{rec.id}"]')
                picker = card.locator("select.act-assignee")
                assert await picker.locator("option").all_inner_texts() == ["Assign to…", "op1", "sup1"]
                await card.locator("button.act-assign").click()  # nobody picked: nothing is sent
                await picker.select_option("op1")
                await card.locator("button.act-assign").click()
                await expect(card.locator(".action-assign")).to_contain_text("op1")
                assert store.query("SELECT kind, actor, assignee FROM cr_actions WHERE kind='assign'") == [("assign", "sup1", "op1")]
                await browser.close()
            conn.close()



ALLOWED_LATIN = {"English", "TIP", "CSV"}
DATA = re.compile(r"gate-\d|MSCU\d+|sup1|L1|B-17|\bms\b")


def seed_hub(store) -> None:
    """Records, a review and station statuses through the hub's real ingest path."""
    now = datetime.now(UTC)
    recs = [make_record(st, n, v).model_copy(update={
        "decided_at": now - timedelta(minutes=n), "started_at": now - timedelta(minutes=n, seconds=1),
        "identities": [Identity(kind="container", value=f"MSCU{n:07d}")],
        "detections": [DetectionOut(label="knife", score=0.8, box=(1, 1, 5, 5))] if v == Verdict.SUSPECT else []})
        for n, (st, v) in enumerate((("gate-1", Verdict.SUSPECT), ("gate-1", Verdict.CLEAR), ("gate-2", Verdict.MANUAL),
                                     ("gate-2", Verdict.SUSPECT)), 1)]
    review = Review(officer="B-17", decided_at=now, outcome="false_alarm")
    msgs = [(p.topic(r.station, "alert" if r.verdict == Verdict.SUSPECT else "inspection"),
             p.encode_envelope(r.station, "alert", n, r.seq, r.id, r.to_json().encode(), 0.0)) for n, r in enumerate(recs)]
    msgs.append((p.topic("gate-1", "review"), p.encode_envelope("gate-1", "review", 9, 1, recs[0].id, review.model_dump_json().encode(), 0.0)))
    msgs += [(p.topic(st, "status"), p.StatusMsg(station=st, state="online", session=1, at=time.time() + 3600).model_dump_json().encode())
             for st in ("gate-1", "gate-2")]
    Ingestor(store, "hub-t", lambda *a: None).handle(msgs)


async def english_words(page) -> list[str]:
    text = DATA.sub(" ", await page.evaluate("document.querySelector('header').innerText + ' ' + "
                                             "[...document.querySelectorAll('.view')].filter(v => !v.hidden).map(v => v.innerText).join(' ')"))
    return sorted({w for w in re.findall(r"[A-Za-z]{2,}", text) if w not in ALLOWED_LATIN})


async def test_screens_switch_language_without_english_left(tmp_path):
    """Board, alerts and KPIs in zh-Hant and zh-Hans carry no English word, only data (ids, numbers)."""
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(stale_s=7200)) as room:
        seed_hub(store)
        auth.add_user(store, "sup1", "supervisor", PASSWORD)
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            page = await signed_in_page(pw, port)
            await expect(page.locator('.station[data-station="gate-2"]')).to_be_visible()
            assert "Stations" in await page.inner_text("#board h2")
            for lang, title in (("zh-Hant", "站點"), ("zh-Hans", "站点")):
                await page.select_option("#lang", lang)
                await expect(page.locator("#board h2")).to_have_text(title)
                for view, ready in (("board", ".station"), ("alerts", "article.alert .reason"), ("kpi", "#kpi-table td")):
                    await page.click(f"#nav button[data-view={view}]")
                    await expect(page.locator(ready).first).to_be_visible()
                    assert await english_words(page) == [], f"English left on {view} in {lang}"
                    await page.screenshot(path=ARTIFACTS / f"{view}-{lang}.png")
            await page.reload()  # the choice is remembered with the user
            await expect(page.locator("#board h2")).to_have_text("站点")
            await page.context.browser.close()


async def test_the_sign_in_page_speaks_the_language_the_hub_resolves_for_the_browser(tmp_path):
    """The page sends the browser's preferences; the hub's one rule (region variants, then its default) picks."""
    from playwright.async_api import async_playwright, expect

    from central_sync.control_room.i18n import catalogue
    store = open_store(str(tmp_path / "hub.sqlite3"))
    async with ControlRoom(store, None, ControlRoomConfig(default_lang="zh-Hant")) as room:
        async with serving(room.install(create_app(store))) as port, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            for locale, lang in (("zh-HK", "zh-Hant"), ("zh-CN", "zh-Hans"), ("fr-FR", "zh-Hant"), ("en-GB", "en")):
                page = await browser.new_page(locale=locale)
                await page.goto(f"http://127.0.0.1:{port}/cr/")
                await expect(page.locator("#signin-form h2")).to_have_text(catalogue(lang)["signin.title"])
                assert await page.evaluate("document.documentElement.lang") == lang
                await page.close()
            await browser.close()
