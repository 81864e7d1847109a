"""Station screen fixes found walking it as an officer: alarms after a reload, counts in words, TIP while a
case is looked at elsewhere, the detection labels on a small scan."""

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from central_sync.schema import Verdict
from edge.tip import SHIPPED_LIBRARY
from edge.tip import stats as tip_stats
from edge.web.config import TipConfig, WebConfig
from edge.web.demo import StationHarness, record_for, synthetic_scan
from polling import wait_until
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, sign_in, station  # noqa: F401

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = BROWSER_ONLY
# The alarm frame shown (the alarm's sight; its sound needs a touch after a reload): counted as the screen shows it.
ALARMS = """window.__alarms = 0;
const hidden = Object.getOwnPropertyDescriptor(HTMLElement.prototype, "hidden");
Object.defineProperty(HTMLElement.prototype, "hidden", { ...hidden, set(v) {
  if (this.id === "alarm-frame" && !v) window.__alarms += 1; hidden.set.call(this, v); } });"""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A 1024x768 page counting the alarms it shows, failing its test on any script error."""
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.set_default_timeout(10_000)
    page.add_init_script(ALARMS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    assert errors == []


def item(station: StationHarness, rng: np.random.Generator, verdict: Verdict = Verdict.SUSPECT) -> Any:
    """A committed item (a synthetic bag; a suspect with its detection), published live."""
    scan, truth = synthetic_scan(rng, threat=verdict is Verdict.SUSPECT)
    reason = {Verdict.SUSPECT: "detection", Verdict.CLEAR: "clear", Verdict.MANUAL: "budget_missed"}[verdict]
    rec = station.commit(scan, record_for(scan, verdict, reason, truth if verdict is Verdict.SUSPECT else []))
    station.publish_record(rec)
    return rec


def loaded(page: Any, rec: Any) -> None:
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")


def test_a_reload_does_not_sound_again_the_alarms_of_the_suspects_waiting(station, page):
    """The suspects waiting behind the held item came again on the stream after a reload and each sounded its
    alarm again (2 alarms for 2 suspects already heard). Now an alarm heard before the reload stays quiet; a
    suspect that arrives after it sounds."""
    rng = np.random.default_rng(21)
    sign_in(page, station, OFFICER)
    held = item(station, rng)
    loaded(page, held)
    item(station, rng), item(station, rng)
    expect(page.locator("#next-item")).to_have_attribute("data-waiting", "2")
    assert page.evaluate("window.__alarms") == 3
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    loaded(page, held)
    expect(page.locator("#next-item")).to_have_attribute("data-waiting", "2")
    item(station, rng)  # new: it sounds (it comes after those sent again, so they were dealt with first)
    expect(page.locator("#next-item")).to_have_attribute("data-waiting", "3")
    assert page.evaluate("window.__alarms") == 1


@pytest.mark.parametrize("lang,dense,change", [
    ("en", "Cannot penetrate: 1 region too dense to see through. Inspect by hand.",
     "1 change against an earlier clean pass"),
    ("zh-Hans", "无法穿透：1 处区域密度过高，无法看清，请人工检查。", "与以往放行记录相比有 1 处变化"),
    ("zh-Hant", "無法穿透：1 處區域密度過高，無法看清，請人手檢查。", "與以往放行紀錄相比有 1 處變化"),
], ids=["en", "zh-Hans", "zh-Hant"])
def test_one_dense_region_and_one_change_are_said_in_the_singular(station, page, lang, dense, change):
    """A bag with one region too dense to see through and one change against its earlier pass read "1 region(s)"
    and "1 change(s)". Now one is one in English (Chinese has one form for every count)."""
    from central_sync.schema import History, HistoryChange

    scan, truth = synthetic_scan(np.random.default_rng(25), threat=True, dense=True)
    one = HistoryChange(box=(40, 40, 120, 90), kind="added", mass_kg_fe=2.0, area_cm2=30.0, location="cab", score=0.9)
    rec = record_for(scan, Verdict.SUSPECT, "detection", truth).model_copy(update={"history": History(
        status="compared", identity="plate:AB 1234", reference_ids=["earlier-pass"], regions=[one])})
    sign_in(page, station, OFFICER)
    page.select_option("#lang", lang)
    page.wait_for_selector(f"html[lang='{lang}']", state="attached")
    station.publish_record(station.commit(scan, rec))
    loaded(page, rec)
    expect(page.locator("#dense-alert")).to_have_text(dense)
    expect(page.locator("#history-state")).to_have_text(change)
    page.screenshot(path=str(ARTIFACTS / f"screen_fixes_singular_{lang}.png"))


def test_no_count_in_the_catalogues_is_written_with_a_bracketed_plural():
    """"(s)" reads as a form left unfinished: each count has its forms (key_one in English, see app.js Tn)."""
    import json
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "edge" / "web" / "i18n"
    left = {f"{p.name}: {k}" for p in folder.glob("*.json")
            for k, v in json.loads(p.read_text(encoding="utf-8")).items() if "(s)" in v}
    assert not left, sorted(left)


def tip_outcome(station: StationHarness, record_id: str) -> tuple[str, float | None]:
    """The outcome of the projection into `record_id` and when its image was watched for the dwell."""
    return station.call(lambda s: s.conn.execute("SELECT outcome, seen_at FROM tip_events WHERE record_id = ?",
                                                 (record_id,)).fetchone())


TIP = WebConfig(tip=TipConfig(rate=1.0, library_dir=SHIPPED_LIBRARY, seed=3, min_dwell_s=1.0))


def watched_then_a_case_opened(station: StationHarness, page: Any, rng: np.random.Generator) -> Any:
    """A TIP bag watched on Live for the dwell, then an earlier item opened from the History; the bag."""
    scan, _ = synthetic_scan(rng, threat=False)
    earlier = station.commit(scan, record_for(scan, Verdict.CLEAR, "clear", []))  # in the history, not live
    sign_in(page, station, OFFICER)
    bag = item(station, rng, Verdict.CLEAR)
    loaded(page, bag)
    wait_until(lambda: tip_outcome(station, bag.id)[1] is not None, "the bag's image watched for the dwell")
    page.click("#nav button[data-view='history']")
    page.locator("#history-rows tr").nth(1).click()  # the older of the two: the newest first
    expect(page.locator("#banner")).to_have_attribute("data-id", earlier.id)
    return bag


def test_a_look_at_a_case_from_the_history_is_no_tip_miss_of_the_bag_left_on_live(tmp_path, page):
    """A TIP bag watched on Live, then a case opened from the History: the screen told the station it had moved on
    from the bag, a miss (misses 1), and the bag came back on Live without its threat, answerable no more (a flag:
    a false alarm). Now the bag set aside is not left: back on Live, its threat is there and the flag is a hit."""
    with StationHarness(tmp_path / "data", TIP) as station:
        station.add_demo_users()
        bag = watched_then_a_case_opened(station, page, np.random.default_rng(26))
        page.click("#nav button[data-view='live']")
        loaded(page, bag)
        page.click("#flag")
        expect(page.locator("#tip-msg")).to_be_visible()
        assert tip_outcome(station, bag.id)[0] == "hit"
        stats = station.call(lambda s: tip_stats(s.conn, OFFICER[0]))[0]
        assert (stats["hits"], stats["misses"], stats["false_alarms"]) == (1, 0, 0)


def test_moving_on_from_a_case_to_the_next_item_leaves_the_tip_bag_set_aside(tmp_path, page):
    """The other way back: Next touched on the case while the watched TIP bag is set aside moves on from the bag
    (a clear item does not wait behind Next): a miss, said at once, not left open until the officer signs out."""
    with StationHarness(tmp_path / "data", TIP) as station:
        station.add_demo_users()
        rng = np.random.default_rng(27)
        bag = watched_then_a_case_opened(station, page, rng)
        newer = item(station, rng)
        page.click("#next-item")
        loaded(page, newer)
        expect(page.locator("#tip-msg")).to_contain_text("The previous image was a TIP test")
        assert tip_outcome(station, bag.id)[0] == "miss"


def test_the_detection_caption_of_a_small_scan_stays_small_on_it(station, page):
    """A scan of 64 × 40 pixels, drawn 11 times its size to fill the stage at 1024x768: its detection's caption,
    12 scan pixels high, was drawn over 160 px high and 839 px wide over a picture of 704 × 440 px, hiding it. Now a
    caption is a 45th of the image's long side and never under 12 screen pixels, as on a full-size scan."""
    from models.scan import Scan

    high = np.full((40, 64), 60000, np.uint16)
    high[10:20, 16:32] = 8000
    scan = Scan(high=high, low=high.copy(), meta={"pixel_mm": 1.0})
    sign_in(page, station, OFFICER)
    truth = [{"label": "firearm", "box": [16, 10, 32, 20]}]
    rec = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
    station.publish_record(rec)
    loaded(page, rec)
    caption = page.locator("#det-overlay g.det text")
    expect(caption).to_have_text("1 Firearm 91%")
    text, picture = caption.bounding_box(), page.locator("#scan-canvas").bounding_box()
    assert text and picture and text["x"] + text["width"] <= picture["x"] + picture["width"], (text, picture)
    assert 12 <= text["height"] <= picture["height"] / 10, (text, picture)
    page.screenshot(path=str(ARTIFACTS / "screen_fixes_small_scan_caption_1024.png"))


def test_a_double_touch_on_a_decision_decides_once_and_says_nothing_against_the_next_item(station, page):
    """A double tap on False alarm sent the decision twice: the first stored it and showed the next item, the second
    was refused and put "This item has already been decided" in red under the next item's buttons, which nobody had
    decided yet. Now the second touch, while the first is answered, is nothing."""
    rng = np.random.default_rng(23)
    sign_in(page, station, OFFICER)
    first = item(station, rng)
    loaded(page, first)
    nxt = item(station, rng)
    expect(page.locator("#next-item")).to_have_attribute("data-waiting", "1")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/decision" in r.url else None)
    page.dblclick("#false-alarm")
    loaded(page, nxt)
    page.wait_for_timeout(500)  # a second decision sent would be answered by then
    assert posts == [f"{station.url}/api/cases/{first.id}/decision"]
    assert page.inner_text("#decide-msg") == ""  # the next item's panel, as after any decision
    assert station.call(lambda s: s.get(first.id)).review.outcome == "false_alarm"


def test_a_screen_left_alone_signs_out_though_items_keep_coming_and_one_in_use_does_not(tmp_path, page):
    """Each request the screen made by itself (a new item's queue and images, the lane and belt every 3 s) restarted
    the session's idle timer: a screen left alone stayed signed in under the officer's badge for the session's 12 h.
    Now the idle timer runs from the officer's last touch or key (idle here 3 s): items arriving do not keep a screen
    left alone signed in, and an officer at work is not signed out."""
    rng = np.random.default_rng(41)

    def items(seconds: float, act: bool) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and page.locator("#view-signin").is_hidden():
            scan, truth = synthetic_scan(rng, threat=True)
            station.publish_record(station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth)))
            if act:
                page.keyboard.press("Shift")
            page.wait_for_timeout(500)

    with StationHarness(tmp_path / "data", WebConfig(tip=TipConfig(enabled=False), session_idle_min=0.05)) as station:
        station.add_demo_users()
        sign_in(page, station, OFFICER)
        items(5, act=True)  # the officer at work: a key every half second, well inside 3 s
        expect(page.locator("#nav")).to_be_visible()
        items(30, act=False)  # left alone
        expect(page.locator("#view-signin")).to_be_visible()
        expect(page.locator("#nav")).to_be_hidden()
