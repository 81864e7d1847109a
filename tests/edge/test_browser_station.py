"""The station screen in headless Chromium: sign in, a suspect scan arrives live, the officer marks it,
finds it in history and sees the audit entry; technicians see diagnostics and no case images.

Screenshots and the measured verdict-to-screen times go to test-artifacts/browser/.
"""

import contextlib
import json
import time

import numpy as np
import pytest

from central_sync.schema import Verdict
from edge import audit
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import StationHarness, record_for, synthetic_scan
from polling import until, wait_until
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, SUPERVISOR, TECHNICIAN, station  # noqa: F401

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = BROWSER_ONLY


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.set_default_timeout(10_000)
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def sign_in(page, station, who, via_reader=False):

    page.goto(station.url)
    page.wait_for_selector("body[data-ready='1']")
    if via_reader:
        page.wait_for_selector("body[data-badges='1']")  # the page listens to the reader (a read before is gone)
        station.publish("badge", {"badge": who[0]})
        expect(page.locator("#badge")).to_have_value(who[0])
    else:
        page.fill("#badge", who[0])
    for digit in who[1]:
        page.click(f"#keypad button:text-is('{digit}')")
    page.click("#signin-btn")
    page.wait_for_selector("#nav:not([hidden])")


def test_officer_sees_suspect_live_marks_it_finds_it_in_history_with_audit(station, page):
    sign_in(page, station, OFFICER, via_reader=True)
    page.wait_for_selector("body[data-live='1']")
    rng = np.random.default_rng(4)
    timings = []
    for i in range(3):
        scan, truth = synthetic_scan(rng, threat=True)
        rec = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
        published_ms = time.time() * 1000
        station.publish_record(rec)
        page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
        t = page.evaluate(f"window.cpeTimings['{rec.id}']")
        timings.append({k: round(t[k] - published_ms, 1) for k in ("event", "banner", "image")})
        if i < 2:  # a suspect stays on screen until decided: the first two are false alarms
            page.click("#false-alarm")
            page.wait_for_selector("#decide-msg:text('Decision saved')")
    print("\nverdict published -> on screen (ms):", timings)
    (ARTIFACTS / "verdict_to_screen_ms.json").write_text(json.dumps(timings, indent=1))
    assert page.inner_text("#banner-verdict") == "SUSPECT"
    assert page.inner_text("#banner-reason") == "Possible threat detected"
    assert page.is_visible("#alarm-frame")
    assert "Firearm 91%" in page.inner_text("#detections")
    page.screenshot(path=str(ARTIFACTS / "live_suspect.png"))

    page.click("#draw")
    box = page.locator("#scan").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.30, box["y"] + box["height"] * 0.55)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.80, steps=5)
    page.mouse.up()
    page.select_option("#class", "firearm")
    page.fill("#note", "pistol in the lining")
    page.click("#confirm")
    page.wait_for_selector("#decide-msg:text('Decision saved')")
    review = station.call(lambda s: s.get(rec.id)).review
    assert review.outcome == "threat_confirmed" and review.officer == OFFICER[0] and len(review.boxes) == 1
    assert review.note == "pistol in the lining"
    page.screenshot(path=str(ARTIFACTS / "decided.png"))

    page.click("#nav button[data-view='history']")
    page.fill("#h-text", "lining")
    page.click("#history-form button[type=submit]")
    expect(page.locator("#history-rows tr")).to_have_count(1)  # the other two items do not match
    page.click("#history-rows tr")
    page.wait_for_selector(".audit-entry")
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    trail = page.inner_text("#trail")
    assert "decided" in trail and "viewed the image" in trail and OFFICER[0] in trail
    page.screenshot(path=str(ARTIFACTS / "history_case_audit.png"))
    assert station.call(lambda s: audit.verify(s)) == (True, None)
    unexpected = [e for e in page.errors if "status of 401" not in e]  # 401: /api/me before sign-in
    assert unexpected == []  # no script error, no missing file, nothing refused by the security policy


def test_screening_tools_change_the_view(station, page):
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    scan, truth = synthetic_scan(np.random.default_rng(9), threat=True)
    rec = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    page.click("#modes button[data-mode='organic']")
    expect(page.locator("#modes button[data-mode='organic']")).to_have_class("on")
    page.locator("#gamma").fill("2")
    page.click("#zoom-in")
    # views and tools are computed on the scan's data (test_browser_imagetools.py), never CSS filters
    assert page.evaluate("getComputedStyle(document.getElementById('scan-canvas')).filter") == "none"
    assert "scale(1.25)" in page.evaluate("document.getElementById('layer').style.transform")
    page.screenshot(path=str(ARTIFACTS / "tools_organic_zoom.png"))
    views = station.call(lambda s: [json.loads(e.detail) for e in audit.entries(s.conn, rec.id) if e.action == "case.image_view"])
    assert views == [{"mode": "data", "tip": False}]  # fetched once; the tools need no round trip


def test_technician_sees_diagnostics_and_no_case_screens(station, page):
    sign_in(page, station, TECHNICIAN)
    page.wait_for_selector("#diag-body dl")
    assert page.is_hidden("#nav button[data-view='live']") and page.is_hidden("#nav button[data-view='history']")
    assert "Chain intact" in page.inner_text("#diag-body")
    page.click("#nav button[data-view='health']")
    page.wait_for_selector("#health-body dl")
    assert "Working" in page.inner_text("#health-body")
    page.screenshot(path=str(ARTIFACTS / "technician_health.png"))


def test_tip_projection_is_scored_and_then_revealed(tmp_path, page):
    from edge.tip import SHIPPED_LIBRARY
    from edge.tip import stats as tip_stats

    library = SHIPPED_LIBRARY
    cfg = WebConfig(tip=TipConfig(rate=1.0, library_dir=library, seed=3, min_dwell_s=1.0))
    with StationHarness(tmp_path / "data", cfg) as station:
        station.add_demo_users()
        sign_in(page, station, OFFICER)
        page.wait_for_selector("body[data-live='1']")
        rng = np.random.default_rng(5)
        scan, _ = synthetic_scan(rng, threat=False)
        rec = station.commit(scan, record_for(scan, Verdict.CLEAR, "clear", []))
        before = station.call(lambda s: s.get(rec.id))
        station.publish_record(rec)
        page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
        assert page.inner_text("#banner-verdict") == "CLEAR" and page.is_visible("#screening")
        page.screenshot(path=str(ARTIFACTS / "tip_projected.png"))
        page.click("#flag")
        page.wait_for_selector("#tip-msg:not([hidden])")
        assert "That was a TIP test image: you found the projected" in page.inner_text("#tip-msg")
        page.screenshot(path=str(ARTIFACTS / "tip_revealed.png"))
        assert station.call(lambda s: s.get(rec.id)) == before

        scan2, _ = synthetic_scan(rng, threat=False)
        rec2 = station.commit(scan2, record_for(scan2, Verdict.CLEAR, "clear", []))
        station.publish_record(rec2)
        page.wait_for_selector(f"#scan[data-loaded-id='{rec2.id}']")
        wait_until(lambda: station.call(lambda s: s.conn.execute("SELECT seen_at FROM tip_events WHERE record_id = ?",
                                                                 (rec2.id,)).fetchone()[0]), "rec2 watched for the dwell")
        scan3, _ = synthetic_scan(rng, threat=False)
        rec3 = station.commit(scan3, record_for(scan3, Verdict.CLEAR, "clear", []))
        station.publish_record(rec3)  # moving on without answering rec2 is a miss, and the screen says so
        page.wait_for_selector("#tip-msg:text('The previous image was a TIP test')")
        stats = station.call(lambda s: tip_stats(s.conn, OFFICER[0]))
        assert stats[0]["hits"] == 1 and stats[0]["misses"] == 1


def show_clear_item(station, page, seed: int):
    """A clear item of `seed`'s synthetic scan committed, published and loaded on the screen: its record and scan."""
    scan, _ = synthetic_scan(np.random.default_rng(seed), threat=False)
    rec = station.commit(scan, record_for(scan, Verdict.CLEAR, "clear", []))
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    return rec, scan


def test_supervisor_overrides_a_clear_verdict_with_a_reason(station, page):
    sign_in(page, station, SUPERVISOR)
    page.wait_for_selector("body[data-live='1']")
    rec, _ = show_clear_item(station, page, 8)
    assert page.is_visible("#override") and page.is_hidden("#confirm")
    page.click("#override")
    assert page.inner_text("#decide-msg") == "An override needs a reason in the note."
    page.select_option("#class", "drugs")
    page.fill("#note", "dog indicated; hand search found powder")
    page.click("#override")
    page.wait_for_selector("#decide-msg:text('Decision saved')")
    review = station.call(lambda s: s.get(rec.id)).review
    assert (review.outcome, review.label, review.officer) == ("override", "drugs", SUPERVISOR[0])
    page.click("#signout")
    page.wait_for_selector("#view-signin:not([hidden])")
    assert page.get_attribute("#scan", "src") is None  # nothing of the case is left on the screen


def test_supervisor_confirms_a_threat_over_an_officers_cleared_with_a_reason(station, page):
    from edge.web.cases import Decision, decide
    from edge.auth import User

    scan, _ = synthetic_scan(np.random.default_rng(10), threat=False)
    rec = station.commit(scan, record_for(scan, Verdict.MANUAL, "budget_missed", []))
    officer = User(OFFICER[0], "Officer", "officer")
    rec, _ = station.call(lambda s: decide(s, officer, rec.id, Decision(outcome="cleared")))
    sign_in(page, station, SUPERVISOR)
    page.wait_for_selector("body[data-live='1']")
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    assert page.is_visible("#confirm") and page.is_hidden("#cleared")
    page.select_option("#class", "drugs")
    page.click("#confirm")
    expect(page.locator("#decide-msg")).to_have_text("An override needs a reason in the note.")
    page.fill("#note", "dog indicated; powder found")
    page.click("#confirm")
    page.wait_for_selector("#decide-msg:text('Decision saved')")
    review = station.call(lambda s: s.get(rec.id)).review
    assert (review.outcome, review.label, review.officer) == ("threat_confirmed", "drugs", SUPERVISOR[0])
    assert page.is_hidden("#confirm")  # a confirmed threat is not confirmed again


def test_a_decision_in_progress_is_not_swept_away_by_the_next_item(station, page):
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    rng = np.random.default_rng(12)
    items = []
    for _ in range(2):
        scan, truth = synthetic_scan(rng, threat=True)
        items.append(station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth)))
    station.publish_record(items[0])
    page.wait_for_selector(f"#scan[data-loaded-id='{items[0].id}']")
    page.fill("#note", "strap buckle?")
    station.publish_record(items[1])
    page.wait_for_selector("#next-item:not([hidden])")
    assert page.get_attribute("#banner", "data-id") == items[0].id and page.input_value("#note") == "strap buckle?"
    assert "1 waiting (SUSPECT)" in page.inner_text("#next-item")
    page.click("#false-alarm")  # decided: the waiting item comes next
    page.wait_for_selector(f"#scan[data-loaded-id='{items[1].id}']")
    assert station.call(lambda s: s.get(items[0].id)).review.note == "strap buckle?"


def test_supervisor_restarts_a_latched_belt_from_the_health_screen(station, page):
    """A conveyor flow on the PLC simulator, on the screen's own loop as in the daemon: the e-stop latches
    the belt; an officer sees why, a supervisor also sees the button, and the belt runs after the click."""
    from conveyor_station import on_loop as run_on, running_flow

    def on_loop(coro_fn):
        return run_on(station, coro_fn)

    stack, sim, flow = on_loop(lambda: running_flow(station))
    try:
        station.ctx.belt = flow
        on_loop(lambda: until(lambda: flow.belt_status()["run_confirmed"], "the belt runs", timeout=25))
        station.loop.call_soon_threadsafe(sim.press_estop)
        on_loop(lambda: until(lambda: flow.latch == "estop", "the e-stop latch", timeout=25))
        station.loop.call_soon_threadsafe(sim.release_estop)
        station.loop.call_soon_threadsafe(sim.reset)  # a reset never restarts: the belt stays latched
        on_loop(lambda: until(lambda: flow.latch and flow.belt_status()["restart_blocked_by"] is None,
                              "a latch nothing blocks restarting from", timeout=25))

        sign_in(page, station, OFFICER)
        page.click("#nav button[data-view='health']")
        page.wait_for_selector("#belt[data-latched='1']")
        assert "emergency stop" in page.inner_text("#belt-state") and page.is_hidden("#belt-restart")
        page.click("#signout")

        sign_in(page, station, SUPERVISOR)
        page.click("#nav button[data-view='health']")
        page.wait_for_selector("#belt-restart:visible")
        assert page.inner_text("#belt-state").startswith("Conveyor belt: Stopped and held: emergency stop.")
        page.screenshot(path=str(ARTIFACTS / "belt_latched_supervisor.png"))
        page.click("#belt-restart")
        page.wait_for_selector("#belt-msg:text('The belt is running again.')")
        assert sim.belt_running and flow.latch is None
        assert page.inner_text("#belt-state") == "Conveyor belt: Running" and page.is_hidden("#belt-restart")
        rows = station.call(lambda s: [e for e in audit.entries(s.conn) if e.action == "belt.restart"])
        assert [(e.actor, json.loads(e.detail)["outcome"]) for e in rows] == [(SUPERVISOR[0], "running")]
    finally:
        on_loop(stack.aclose)
        station.ctx.belt = None


@contextlib.contextmanager
def suspect_vehicle_at_the_barrier(station, page, tmp_path, who=OFFICER, suspects=1):
    """A gantry flow on the PLC simulator and the firmware emulator, on the screen's own loop as in the daemon, the
    officer (or `who`) signed in, and a car whose scan is suspect arriving until the lane panel shows it: (the PLC
    simulator, the car). The emulator has `suspects` suspect scans for the cars to come."""
    from conveyor_station import on_loop
    from gantry_station import running_gantry, vehicle_scan

    stack, flow = on_loop(station, lambda: running_gantry(station, tmp_path, [vehicle_scan(True)] * suspects), 60)
    sim = flow.devices.plc.sim.model
    try:
        station.ctx.lane_control, station.ctx.panels = flow, ("lane",)
        sign_in(page, station, who)
        page.wait_for_selector("body[data-live='1']")

        async def arrive():
            return sim.add_vehicle(4.0, lead_m=-1.5)

        car = on_loop(station, arrive, 60)
        page.wait_for_selector("#lane-panel:not([hidden])", timeout=30_000)
        yield sim, car
    finally:
        on_loop(station, stack.aclose, 60)
        station.ctx.lane_control, station.ctx.panels = None, ()


def test_officer_sends_the_vehicle_at_the_barrier_to_the_search_bay(station, page, tmp_path):
    """A gantry flow on the PLC simulator and the firmware emulator, on the screen's own loop as in the
    daemon: the suspect vehicle waits at the barrier, the officer's view shows it with Release / Search
    bay, and one click opens the search-bay gate (read back) and the vehicle leaves that way. A double tap sent the
    decision twice: the second, refused (the vehicle leaving), replaced "Done" with "This vehicle is leaving the lane"
    and was audited as a refusal; now it is one decision. A threat confirmed on the panel left the lane saying "waiting for
    your decision" under "Decision saved": it now says the vehicle is decided and waits to be sent on."""
    from conveyor_station import on_loop as run_on

    def on_loop(coro_fn):
        return run_on(station, coro_fn, 60)

    with suspect_vehicle_at_the_barrier(station, page, tmp_path) as (sim, car):
        expect(page.locator("#lane-state")).to_contain_text("At the barrier")
        assert page.is_visible("#lane-release") and page.is_hidden("#lane-supervisor")
        page.screenshot(path=str(ARTIFACTS / "gantry_vehicle_at_barrier.png"))
        # the vehicle side-on (its 120 lines across, 64 pixels up), a box drawn on it kept in scan pixels
        page.wait_for_function("document.getElementById('scan').naturalWidth === 120")
        assert page.evaluate("document.getElementById('scan').naturalHeight") == 64
        assert "concealment" in page.eval_on_selector_all("#class option", "os => os.map(o => o.value)")
        page.click("#draw")
        r = page.locator("#scan").bounding_box()
        page.mouse.move(r["x"] + r["width"] * 0.25, r["y"] + r["height"] * 0.25)
        page.mouse.down()
        page.mouse.move(r["x"] + r["width"] * 0.5, r["y"] + r["height"] * 0.75, steps=4)
        page.mouse.up()
        (x0, y0, x1, y1), = page.evaluate("S.boxes")
        assert (abs(x0 - 16) <= 1, abs(x1 - 48) <= 1, abs(y0 - 30) <= 1, abs(y1 - 60) <= 1) == (True,) * 4
        page.click("#confirm")  # decided on the panel: the barrier still waits for the way out, and says so
        expect(page.locator("#decide-msg")).to_have_text("Decision saved")
        expect(page.locator("#lane-state")).to_contain_text("At the barrier · decided · send it on: Release or Search bay")
        page.dblclick("#lane-search")  # a touch monitor's double tap: one decision, its answer left on screen
        expect(page.locator("#lane-msg")).to_have_text("Done: the gate is confirmed open.")
        on_loop(lambda: until(lambda: sim.outcomes.get(car) == "search_bay", "the car took the search bay"))
        expect(page.locator("#lane-msg")).to_have_text("Done: the gate is confirmed open.")
        rows = station.call(lambda s: [e for e in audit.entries(s.conn) if e.action == "lane.search_bay"])
        assert [(e.actor, json.loads(e.detail)["result"]) for e in rows] == [(OFFICER[0], "open")]
        unexpected = [e for e in page.errors if "status of 401" not in e]
        assert unexpected == []


def test_after_the_search_bay_the_next_vehicle_at_the_barrier_comes(station, page, tmp_path):
    """A suspect car sent to the search bay has no review yet (its search report gives the outcome), so the Live view
    kept it, with Confirm threat and False alarm, over the car behind it: that one, now at the barrier with the lane
    held for it, waited behind "Next item · 1 waiting". Now the car sent on gives way to it as after any decision."""
    from conveyor_station import on_loop

    with suspect_vehicle_at_the_barrier(station, page, tmp_path, suspects=2) as (sim, car):
        first = page.get_attribute("#banner", "data-id")
        page.click("#lane-search")
        expect(page.locator("#lane-msg")).to_have_text("Done: the gate is confirmed open.")

        async def arrive():
            return sim.add_vehicle(4.0, lead_m=-1.5)

        on_loop(station, arrive, 60)
        expect(page.locator("#banner")).not_to_have_attribute("data-id", first, timeout=30_000)
        expect(page.locator("#lane-panel")).to_be_visible(timeout=15_000)
        expect(page.locator("#lane-state")).to_contain_text("At the barrier")
        assert page.is_hidden("#next-item")


def test_the_officer_who_releases_the_vehicle_is_not_told_another_screen_decided(station, page, tmp_path):
    """Release at the barrier stores the officer's decision, and the station's word of it came back to the same
    screen as "Decided by <badge> on another screen.": the officer read that someone else had decided the
    vehicle. Now the screen takes the decision as its own (the review shown, no such line)."""
    with suspect_vehicle_at_the_barrier(station, page, tmp_path):
        page.click("#lane-release")
        page.click("#lane-ask-confirm")  # a suspect vehicle: released in two touches
        expect(page.locator("#lane-msg")).to_have_text("Done: the gate is confirmed open.")
        expect(page.locator("#review-state")).to_contain_text("False alarm")
        page.wait_for_timeout(500)  # the station's word of the review has come back by then
        assert "another screen" not in page.inner_text("#decide-msg")


def test_a_screen_back_after_missing_more_than_the_replay_says_how_many_older_items_it_did_not_get(station, page):
    import asyncio

    from edge.web.routes_cases import REPLAY_MAX

    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    seen, scan = show_clear_item(station, page, 9)
    for _ in range(REPLAY_MAX + 2):  # committed while the screen's link is down
        station.commit(None, record_for(scan, Verdict.CLEAR, "clear", []))
    web = station.app.state.web
    dropped, web.stopping = web.stopping, asyncio.Event()  # the open stream ends; the browser comes back
    station.loop.call_soon_threadsafe(dropped.set)
    expect(page.locator("#not-replayed")).to_have_text("2 older items not shown — undecided ones are in the Queue")
    page.click("#not-replayed")
    page.wait_for_selector("#view-queue:not([hidden])")
    assert page.is_hidden("#not-replayed")
    assert [e for e in page.errors if "status of 401" not in e] == []  # 401: /api/me before sign-in


def in_view(page, selector):
    box, size = page.locator(selector).bounding_box(), page.viewport_size
    return bool(box) and 0 <= box["y"] and box["y"] + box["height"] <= size["height"] and box["x"] + box["width"] <= size["width"]


def test_a_supervisor_release_of_a_suspect_vehicle_asks_first_at_1024x768(station, page, tmp_path):
    """A supervisor's release of a SUSPECT vehicle (an override, its reason typed) opened the barrier at one touch of
    "Supervisor release", where the officer's own release asks first. Now it asks too, reading the reason back, in the
    screen's language: Cancel keeps the vehicle, Confirm releases it."""
    from conveyor_station import on_loop

    page.set_viewport_size({"width": 1024, "height": 768})
    reason = "papers checked at the booth"
    with suspect_vehicle_at_the_barrier(station, page, tmp_path, SUPERVISOR) as (sim, car):
        record_id = page.get_attribute("#banner", "data-id")
        page.fill("#lane-reason", reason)
        page.click("#lane-supervisor")
        page.wait_for_timeout(500)  # a decision sent would be stored by then
        assert station.call(lambda s: s.get(record_id)).review is None and sim.outcomes.get(car) is None
        expect(page.locator("#lane-ask-q")).to_have_text(f"Release this SUSPECT vehicle on your authority? Reason: “{reason}”")
        page.screenshot(path=str(ARTIFACTS / "supervisor_release_ask_1024.png"))
        assert in_view(page, "#lane-ask-confirm") and in_view(page, "#lane-ask-cancel")
        page.select_option("#lang", "zh-Hant")
        expect(page.locator("#lane-ask-q")).to_have_text(f"以主管權限放行此可疑車輛？理由：「{reason}」")
        expect(page.locator("#lane-ask-confirm")).to_have_text("確認")
        page.select_option("#lang", "en")
        page.click("#lane-ask-cancel")
        expect(page.locator("#lane-supervisor")).to_be_visible()
        assert page.is_hidden("#lane-ask") and station.call(lambda s: s.get(record_id)).review is None
        page.click("#lane-supervisor")
        page.click("#lane-ask-confirm")
        expect(page.locator("#lane-msg")).to_have_text("Done: the gate is confirmed open.")
        review = station.call(lambda s: s.get(record_id)).review
        assert (review.outcome, review.note, review.officer) == ("override", reason, SUPERVISOR[0])
        on_loop(station, lambda: until(lambda: sim.outcomes.get(car) == "exit", "the car left by the exit"), 60)
        assert [e for e in page.errors if "status of 401" not in e] == []


def test_a_supervisor_override_of_a_suspect_item_asks_first(station, page):
    """A supervisor's override of a SUSPECT bag (its release, the reason in the note) was saved at one touch of
    "Override verdict", right beside "False alarm". Now it asks first, reading the reason back; Cancel keeps the item
    undecided, a changed reason closes the question, Confirm saves the override."""
    page.set_viewport_size({"width": 1024, "height": 768})
    sign_in(page, station, SUPERVISOR)
    page.wait_for_selector("body[data-live='1']")
    scan, truth = synthetic_scan(np.random.default_rng(26), threat=True)
    rec = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    page.click("#override")  # no reason: refused, no question
    expect(page.locator("#decide-msg")).to_have_text("An override needs a reason in the note.")
    assert page.is_hidden("#decide-ask")
    page.fill("#note", "toy gun, shown to the supervisor")
    page.click("#override")
    page.wait_for_timeout(500)
    assert station.call(lambda s: s.get(rec.id)).review is None
    expect(page.locator("#decide-ask-q")).to_have_text(
        "Override the SUSPECT verdict of this item? Reason: “toy gun, shown to the supervisor”")
    page.screenshot(path=str(ARTIFACTS / "supervisor_override_ask_1024.png"))
    assert in_view(page, "#decide-ask-confirm") and in_view(page, "#decide-ask-cancel")
    expect(page.locator("#decide-msg")).to_have_text("")  # the refusal before it is answered
    page.select_option("#lang", "zh-Hans")
    expect(page.locator("#decide-ask-q")).to_have_text("推翻此物品的可疑判定？理由：“toy gun, shown to the supervisor”")
    page.select_option("#lang", "en")
    page.click("#decide-ask-cancel")
    expect(page.locator("#override")).to_be_visible()
    page.click("#override")
    page.fill("#note", "toy gun")  # the reason read back changed: asked again
    expect(page.locator("#decide-ask")).to_be_hidden()
    page.click("#override")
    page.click("#decide-ask-confirm")
    expect(page.locator("#decide-msg")).to_have_text("Decision saved")
    review = station.call(lambda s: s.get(rec.id)).review
    assert (review.outcome, review.note, review.officer) == ("override", "toy gun", SUPERVISOR[0])
    assert [e for e in page.errors if "status of 401" not in e] == []


def test_an_officer_who_signs_in_while_the_screen_checks_its_session_stays_signed_in(station, page):
    """A slow station: the screen's start asks /api/me (no cookie yet: 401) and the answer arrives only after the
    officer signed in on the keypad. The late 401 signed them out again (sign-in form back); now they stay on Live, and
    a 401 to a request of their own session still signs out."""
    held = []

    def hold_the_first_check(route):
        if held:  # later checks go to the station as they are
            route.continue_()
        else:
            held.append((route, route.fetch()))  # answered now, before the sign-in: no session

    page.route("**/api/me", hold_the_first_check)
    page.goto(station.url)
    for _ in range(200):  # the check is sent once the screen's language is loaded
        if held:
            break
        page.wait_for_timeout(50)
    assert held and held[0][1].status == 401
    page.fill("#badge", OFFICER[0])
    for digit in OFFICER[1]:
        page.click(f"#keypad button:text-is('{digit}')")
    page.click("#signin-btn")
    page.wait_for_selector("#nav:not([hidden])")
    route, answer = held[0]
    route.fulfill(response=answer)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    page.wait_for_timeout(300)
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("#view-signin")).to_be_hidden()
    expect(page.locator("#who")).not_to_be_empty()
    page.context.clear_cookies()  # the session ends (expired, signed out elsewhere): the next 401 shows the form
    page.evaluate("() => api('/api/me').catch(() => null)")
    expect(page.locator("#view-signin")).to_be_visible()
    assert [e for e in page.errors if "401" not in e] == []  # the two 401s are the browser's own console lines
