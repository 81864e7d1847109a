"""Commands from the control room in headless Chromium (issue 21 item 7), against a real Mosquitto, the
real hub and a station wired as the daemon wires it (edge/daemon.py: its publisher, its command
receiver, a real detector's thresholds, the TIP engine, the simulated conveyor's devices):
pick a station, see the current value, confirm a change that names it, see it applied and in force,
undo it; a misspelt station and an unknown class are refused by the hub; a diagnostic run comes back
as a report shown on the page. Screenshots go to test-artifacts/control_room/.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from central_sync import commands as c
from central_sync.config import BrokerConfig
from central_sync.control_room import ControlRoom, ControlRoomConfig, auth, commanding
from central_sync.devtools import Mosquitto
from central_sync.hub.api import create_app
from central_sync.hub.service import Hub
from central_sync.hub.store import open_store
from edge.diag.core import Outcome, PhaseResult
from edge.diag.records import phase_dict
from models.testgraphs import write_package
from command_station import command_station
from polling import until
from test_control_room_browser import ARGS, ARTIFACTS, CHROMIUM, PASSWORD, serving

STATION = "conveyor-01"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")]


async def sign_in(page, port: int, user: str) -> None:
    await page.goto(f"http://127.0.0.1:{port}/cr/")
    await page.fill("input[name=username]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await page.click("#nav button[data-view=commands]")
    await page.wait_for_selector("#commands[data-loaded]", state="attached")


async def post(page, path: str, body: dict) -> dict:
    """A request as the signed-in page makes it: status and detail."""
    return await page.evaluate("""async ([path, body]) => {
        const r = await fetch(path, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
        return {status: r.status, body: await r.json()};
    }""", [path, body])


async def test_commands_from_the_control_room(tmp_path):
    from playwright.async_api import async_playwright, expect
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    package = write_package(tmp_path / "model", "cpe-fcos-v1", 128, thresholds=(0.30, 0.5))
    store = open_store(str(tmp_path / "hub.sqlite3"))
    with Mosquitto(tmp_path / "broker") as broker:
        broker_cfg = BrokerConfig(port=broker.port)
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(Hub(broker_cfg, store, "hub-t"))
            room = await stack.enter_async_context(ControlRoom(store, broker_cfg, ControlRoomConfig(
                signing_key=tmp_path / "hub.key", stale_s=30.0, client_id="cr-cmd-test", secure_cookie=False)))
            station = await command_station(stack, tmp_path, broker.port, package)
            engine, tip, rx = station.engine, station.tip, station.rx
            for name, role in (("op1", "operator"), ("sup1", "supervisor")):
                auth.add_user(store, name, role, PASSWORD)
            port = await stack.enter_async_context(serving(room.install(create_app(store, hub.stats))))
            await until(lambda: (commanding.settings_of(store, STATION) or {}).get("thresholds"),
                        "the station's settings at the hub", timeout=20, in_thread=True)

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = await browser.new_page(viewport={"width": 1400, "height": 1100})

                # an operator sees what is in force and the list, but no form
                await sign_in(page, port, "op1")
                await page.select_option("#cmd-station", STATION)
                await expect(page.locator("#cmd-in-force")).to_contain_text("metal 0.30, organic 0.50")
                await expect(page.locator("#cmd-panel")).to_be_hidden()
                await expect(page.locator("#form-set_thresholds")).to_be_hidden()
                await page.click("#signout")

                # the picker offers the stations the hub knows, nothing typed
                await sign_in(page, port, "sup1")
                options = await page.locator("#cmd-station option").evaluate_all("os => os.map(o => o.value)")
                assert options == ["", STATION]
                await expect(page.locator("#cmd-current")).to_be_hidden()  # no station chosen: no empty panel
                await page.select_option("#cmd-station", STATION)
                await page.select_option("#cmd-thr-class", "metal")
                await expect(page.locator("#cmd-thr-now")).to_have_text("0.30")
                await expect(page.locator("#cmd-tip-now")).to_have_text("3%")
                # a reload keeps the station chosen (kept in the address; the view came back with none)
                await page.reload()
                await page.wait_for_selector("#commands[data-loaded]", state="attached")
                await expect(page.locator("#cmd-station")).to_have_value(STATION)
                await expect(page.locator("#cmd-tip-now")).to_have_text("3%")

                # a value out of range is refused on the page; Cancel sends nothing
                await page.fill("#cmd-thr-new", "1.5")
                await page.click("#form-set_thresholds button[type=submit]")
                await expect(page.locator("#cmd-msg")).to_have_text("Threshold 1.5 is not between 0.01 and 0.99: a command may not turn the detection of a class off.")
                await expect(page.locator("#cmd-confirm")).not_to_be_visible()
                await page.fill("#cmd-thr-new", "0.25")
                await page.click("#form-set_thresholds button[type=submit]")
                await expect(page.locator("#cmd-confirm-text")).to_have_text("Set metal threshold on conveyor-01 from 0.30 to 0.25?")
                await page.click("#cmd-confirm-no")
                await expect(page.locator("#cmd-msg")).to_have_text("Cancelled; nothing was sent.")
                assert store.query("SELECT count(*) FROM cr_commands") == [(0,)]

                # confirmed: applied at the station, in force on the page, recorded with what it replaced
                await page.click("#form-set_thresholds button[type=submit]")
                await expect(page.locator("#cmd-confirm")).to_be_visible()
                await page.screenshot(path=ARTIFACTS / "command-confirm.png")
                await page.click("#cmd-confirm-yes")
                first = page.locator("#command-table tr").nth(1)
                await expect(first).to_contain_text("applied", timeout=15000)
                await expect(first).to_contain_text("metal 0.25")
                await expect(first).to_contain_text("metal 0.30")  # the value it replaced
                assert engine.detector is not None and engine.detector.thresholds["metal"] == 0.25
                await expect(page.locator("#cmd-in-force")).to_contain_text("metal 0.25")
                await expect(page.locator("#cmd-last-applied")).to_contain_text("metal 0.25, by sup1")
                await expect(page.locator("#cmd-thr-now")).to_have_text("0.25")
                health = rx.processor.settings()  # what the station's /health shows under "commands"
                assert health["thresholds"]["metal"] == 0.25 and health["last_command"]["issuer"] == "sup1"
                await until(lambda: (json.loads(store.stations()[0][3]).get("settings") or {}).get("thresholds", {}).get("metal"),
                            "the change in the station's status", check=lambda v: v == 0.25, timeout=10, in_thread=True)
                await page.screenshot(path=ARTIFACTS / "command-applied.png")

                # undo: one click and a confirmation, its own audited command, the old value back
                first_id = await first.get_attribute("data-id")
                await first.locator("button.cmd-undo").click()
                await expect(page.locator("#cmd-confirm-text")).to_have_text(
                    "Undo: Set metal threshold on conveyor-01 from 0.25 to 0.30?")
                await page.click("#cmd-confirm-yes")
                await expect(page.locator("#command-table tr").nth(1)).to_contain_text("(undo)")
                await expect(page.locator("#command-table tr").nth(1)).to_contain_text("applied", timeout=15000)
                await expect(page.locator("#cmd-thr-now")).to_have_text("0.30")
                assert engine.detector.thresholds["metal"] == pytest.approx(0.30, abs=1e-6)  # held as float32
                undo_of = store.query("SELECT x.undo_of FROM cr_command_context x JOIN cr_commands c ON c.id = x.id"
                                      " ORDER BY c.issued_at DESC LIMIT 1")[0][0]
                assert first_id and undo_of == first_id
                assert [r[0] for r in store.query("SELECT action FROM cr_audit WHERE action LIKE 'command_%' ORDER BY seq")] == [
                    "command_sent", "command_undo"]

                # the TIP rate form, in percent
                await page.fill("#cmd-tip-new", "2")
                await page.click("#form-set_tip_rate button[type=submit]")
                await expect(page.locator("#cmd-confirm-text")).to_have_text("Set the TIP rate on conveyor-01 from 3% to 2%?")
                await page.click("#cmd-confirm-yes")
                await expect(page.locator("#cmd-tip-now")).to_have_text("2%", timeout=15000)
                assert tip.cfg.rate == 0.02

                # in Chinese the view carries no English word, only data (ids, class names, the model's name)
                await page.select_option("#lang", "zh-Hant")
                await expect(page.locator("#commands h2")).to_have_text("向站點發出的指令")
                await page.wait_for_selector("#commands[data-loaded]", state="attached")
                text = await page.inner_text("#commands")
                left = {w for w in re.findall(r"[A-Za-z]{2,}", re.sub(r"conveyor-01|test-det|metal|organic|sup1|SHA|TIP|edge diag", " ", text))}
                assert left == set(), f"English left on the commands view: {sorted(left)}"
                await page.screenshot(path=ARTIFACTS / "commands-zh-Hant.png")
                await page.select_option("#lang", "en")
                await expect(page.locator("#commands h2")).to_have_text("Commands to stations")

                # the hub refuses a misspelt station and a class the model does not have, in one sentence
                bad = await post(page, "/cr/api/commands", {"station": "conveyor-0l", "op": "set_tip_rate", "args": {"rate": 0.1}})
                assert bad == {"status": 404, "body": {"detail": "station 'conveyor-0l' is not known to this hub"
                                                                 " (known: conveyor-01); nothing was sent",
                                                       "code": "command.unknown_station",  # the page translates it
                                                       "vals": {"station": "conveyor-0l", "known": "conveyor-01"}}}
                bad = await post(page, "/cr/api/commands", {"station": STATION, "op": "set_thresholds", "args": {"thresholds": {"gun": 0.3}}})
                assert bad["status"] == 422 and "has no class 'gun' (it has metal, organic)" in bad["body"]["detail"]
                assert room.counters == {"command_refused_404": 1, "command_refused_422": 1}
                assert store.query("SELECT count(*) FROM cr_commands WHERE station <> ?", (STATION,)) == [(0,)]

                # a diagnostic run: the read-only phases on the station's devices, the report shown
                await page.select_option("#cmd-diag-plan", "quick")
                await page.click("#form-request_diag button[type=submit]")
                await expect(page.locator("#cmd-confirm-text")).to_have_text(
                    "Run the quick diagnostic plan on conveyor-01? Nothing moves and the lane keeps running.")
                await page.click("#cmd-confirm-yes")
                report = page.locator("#cmd-report")
                await expect(report).to_be_visible(timeout=30000)
                for phase in ("links", "hub"):
                    await expect(report.locator(f'.cmd-phase[data-phase="{phase}"]')).to_have_attribute("data-outcome", "PASS")
                # the clock phase measures this machine's clock (a drifting virtual machine fails it): the report's
                # outcome is the clock's, the other phases passing
                clock = await report.locator('.cmd-phase[data-phase="clock"]').get_attribute("data-outcome")
                assert clock in ("PASS", "FAIL")
                await expect(report).to_have_attribute("data-outcome", clock)
                await expect(report).to_contain_text("links.plc_round_trip_ms")
                await expect(report).to_contain_text("safety")  # named among the phases run on site only
                assert "null" not in await report.inner_text()
                # a phase that failed with a reason says it once: its diagnoses repeat the reason (as `edge diag` knows)
                failed = PhaseResult("inference", "Inference timing", Outcome.ERROR, reason="The model could not be opened.")
                await page.evaluate("([c]) => showReport(c.id, c)", [{"id": "x", "station": STATION, "report": {
                    "outcome": "ERROR", "plan": "full", "started": "2026-01-01T00:00:00Z", "ended": "2026-01-01T00:00:01Z",
                    "phases": [phase_dict(failed, [])], "not_run": []}}])
                await expect(report.locator('.cmd-phase[data-phase="inference"]')).to_contain_text("could not be opened")
                assert (await report.inner_text()).count("The model could not be opened.") == 1
                await page.screenshot(path=ARTIFACTS / "command-diag-report.png", full_page=True)
                await browser.close()
    got = store.query("SELECT outcome FROM cr_command_reports")
    assert got == [(clock,)]


async def test_a_command_refused_for_a_full_queue_is_sent_again_with_one_touch(tmp_path):
    """A station whose command queue was full refused a TIP rate of 4 % `queue_full` ("send it again"), and the page
    offered nothing but retyping it. Now its row has **Send again**: one touch sends the same op and args under a new
    id, audited as sent with the command it sends again, applied at the station; the row offers it no more and the
    hub refuses a second send of the same command."""
    from playwright.async_api import async_playwright, expect
    from edge.commands import CommandHandlers, CommandReceiver, CommandsConfig
    from central_sync.config import SyncConfig
    from central_sync.devtools import open_station_db
    from test_control_room_browser import seed_hub, signed_in_page
    c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    busy, release, applied = asyncio.Event(), asyncio.Event(), []

    async def slow(rate: float) -> None:  # the first command holds the station's one worker until released
        busy.set()
        await release.wait()
        applied.append(rate)

    open_station_db(tmp_path / "gate-1.db").close()
    with Mosquitto(tmp_path / "broker") as broker:
        async with AsyncExitStack() as stack:
            hub = await stack.enter_async_context(Hub(BrokerConfig(port=broker.port), store, "hub-t"))
            room = await stack.enter_async_context(ControlRoom(store, BrokerConfig(port=broker.port), ControlRoomConfig(
                signing_key=tmp_path / "hub.key", stale_s=7200, client_id="cr-resend", secure_cookie=False)))
            rx = await stack.enter_async_context(CommandReceiver(
                SyncConfig(port=broker.port), "gate-1", tmp_path / "gate-1.db", CommandHandlers(set_tip_rate=slow),
                CommandsConfig(hub_public_key=tmp_path / "hub.pub", queue_max=1)))
            await rx.link.ready()
            seed_hub(store)
            auth.add_user(store, "sup1", "supervisor", PASSWORD)
            port = await stack.enter_async_context(serving(room.install(create_app(store, hub.stats))))
            async with async_playwright() as pw:
                page = await signed_in_page(pw, port)
                await page.click("#nav button[data-view=commands]")
                await page.wait_for_selector("#commands[data-loaded]", state="attached")
                await page.select_option("#cmd-station", "gate-1")
                rows = page.locator("#command-table tr")
                for n, rate in enumerate(("2", "3", "4"), 1):  # taken by the worker, waiting in the queue, refused
                    await page.fill("#cmd-tip-new", rate)
                    await page.click("#form-set_tip_rate button[type=submit]")
                    await page.click("#cmd-confirm-yes")
                    await expect(rows).to_have_count(n + 1)
                    if n == 1:
                        await asyncio.wait_for(busy.wait(), 10)
                refused = rows.nth(1)
                await expect(refused).to_contain_text("station's command queue was full: send it again", timeout=10000)
                release.set()
                await expect(rows.filter(has_text="applied")).to_have_count(2, timeout=10000)
                await page.screenshot(path=ARTIFACTS / "command-queue-full.png")
                first_id = await refused.get_attribute("data-id")
                await refused.locator("button.cmd-resend").click()
                await expect(rows).to_have_count(5)
                again = rows.nth(1)
                await expect(again).to_contain_text("(sent again)")
                await expect(again).to_contain_text("applied", timeout=10000)
                await expect(page.locator(f'#command-table tr[data-id="{first_id}"] button.cmd-resend')).to_have_count(0)
                assert applied == [0.02, 0.03, 0.04]
                sent = [json.loads(d) for (d,) in store.query("SELECT detail FROM cr_audit WHERE action = 'command_sent'"
                                                              " ORDER BY seq")]
                assert len(sent) == 4 and sent[-1]["resend_of"] == first_id and sent[-1]["id"] != first_id
                assert (sent[-1]["op"], sent[-1]["args"]) == ("set_tip_rate", {"rate": 0.04})
                twice = await post(page, f"/cr/api/commands/{first_id}/resend", {})
                assert twice["status"] == 409 and twice["body"]["code"] == "command.already_resent"
                assert store.query("SELECT count(*) FROM cr_commands") == [(4,)]


async def test_a_command_to_an_offline_station_says_it_will_most_likely_expire(tmp_path):
    """At 1024×768 a supervisor set the TIP rate of gate-3, shown Offline: the confirmation and the message after it
    ("Sent; waiting for the station's report.") read as for a station online, though a station gets only the commands
    sent while it is connected (a clean MQTT session): the station coming back did not apply it, and the command
    expired without a report five minutes later. Now the confirmation says the station is offline and what follows,
    and the message after sending names the time the command expires and says to send it again once it is online."""
    from playwright.async_api import async_playwright, expect
    from edge.commands import CommandHandlers, CommandReceiver, CommandsConfig
    from central_sync import protocol as p
    from central_sync.config import SyncConfig
    from central_sync.devtools import open_station_db
    from central_sync.hub.ingest import Ingestor
    from test_control_room_browser import signed_in_page
    c.generate_keypair(tmp_path / "hub.key", tmp_path / "hub.pub")
    store = open_store(str(tmp_path / "hub.sqlite3"))
    applied: list[float] = []
    open_station_db(tmp_path / "gate-3.db").close()
    with Mosquitto(tmp_path / "broker") as broker:
        async with AsyncExitStack() as stack:
            room = await stack.enter_async_context(ControlRoom(store, BrokerConfig(port=broker.port), ControlRoomConfig(
                signing_key=tmp_path / "hub.key", stale_s=7200, client_id="cr-offline", secure_cookie=False)))
            Ingestor(store, "hub-t", lambda *a: None).handle([(p.topic("gate-3", "status"), p.StatusMsg(
                station="gate-3", state="offline", session=1, at=time.time()).model_dump_json().encode())])
            auth.add_user(store, "sup1", "supervisor", PASSWORD)
            port = await stack.enter_async_context(serving(room.install(create_app(store))))
            async with async_playwright() as pw:
                page = await signed_in_page(pw, port)
                await page.set_viewport_size({"width": 1024, "height": 768})
                await page.click("#nav button[data-view=commands]")
                await page.wait_for_selector("#commands[data-loaded]", state="attached")
                await page.select_option("#cmd-station", "gate-3")
                await page.fill("#cmd-tip-new", "5")
                await page.click("#form-set_tip_rate button[type=submit]")
                await expect(page.locator("#cmd-confirm-note")).to_have_text(
                    "gate-3 is offline: a station gets only the commands sent while it is connected, so this one will"
                    " most likely expire without a report. Send it once the station shows online.")
                await page.screenshot(path=ARTIFACTS / "command-offline-confirm-1024.png")
                await page.click("#cmd-confirm-yes")
                await expect(page.locator("#cmd-msg")).to_contain_text("Sent, but gate-3 is offline")
                expires = store.query("SELECT expires_at FROM cr_commands")[0][0]
                until_text = await page.evaluate("(s) => fmtTime(s)", expires)
                await expect(page.locator("#cmd-msg")).to_contain_text(f"will most likely expire at {until_text} without a report")
                await page.screenshot(path=ARTIFACTS / "command-offline-sent-1024.png")
                # the station comes back: the command sent while it was away does not reach it
                rx = await stack.enter_async_context(CommandReceiver(
                    SyncConfig(port=broker.port), "gate-3", tmp_path / "gate-3.db",
                    CommandHandlers(set_tip_rate=applied.append), CommandsConfig(hub_public_key=tmp_path / "hub.pub")))
                await rx.link.ready()
                await asyncio.sleep(2)
                assert applied == [] and store.query("SELECT outcome FROM cr_commands") == [(None,)]
                # online again, the same form reads as before: no note
                Ingestor(store, "hub-t", lambda *a: None).handle([(p.topic("gate-3", "status"), p.StatusMsg(
                    station="gate-3", state="online", session=2, at=time.time()).model_dump_json().encode())])
                await page.click("#nav button[data-view=board]")
                await page.click("#nav button[data-view=commands]")
                await page.wait_for_selector("#commands[data-loaded]", state="attached")
                await page.click("#form-set_tip_rate button[type=submit]")
                await expect(page.locator("#cmd-confirm-text")).to_be_visible()
                await expect(page.locator("#cmd-confirm-note")).to_be_hidden()
                await page.click("#cmd-confirm-yes")
                await expect(page.locator("#cmd-msg")).to_have_text("Sent; waiting for the station's report.")
                await until(lambda: applied, "the command applied at the station back online", timeout=10, in_thread=True)
                # once the station answered, the message says so (it went on saying it waited for the station's report)
                await expect(page.locator("#cmd-msg")).to_have_text("Command to gate-3: applied.", timeout=15000)
