"""Every station screen in each Chinese catalogue: no English left on it, and the choice is remembered."""

import re

import numpy as np
import pytest

from central_sync.schema import Verdict
from edge.web.demo import record_for, synthetic_scan
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, SUPERVISOR, station  # noqa: F401

# Words that are not English prose: product and standard names, the language's own name, data values.
ALLOWED = {"English", "TIP", "COCO", "DICOS", "Checkpoint", "Edge", "demo"}

pytestmark = BROWSER_ONLY


def english_words(text: str, data_values: set[str]) -> set[str]:
    words = set(re.findall(r"[A-Za-z][A-Za-z'-]{2,}", text))
    return {w for w in words if w not in ALLOWED and not any(w in v for v in data_values)}


def visible_text(page) -> str:
    return page.evaluate("document.body.innerText")


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_every_screen_speaks_the_chosen_language(station, browser, lang):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.set_default_timeout(10_000)
    page.goto(station.url + "/?lang=" + lang)
    page.wait_for_selector("body[data-ready='1']")
    assert not english_words(visible_text(page), {"demo-1"}), "sign-in screen"
    page.fill("#badge", SUPERVISOR[0])
    page.fill("#pin", SUPERVISOR[1])
    page.click("#signin-btn")
    page.wait_for_selector("body[data-live='1']")
    scan, truth = synthetic_scan(np.random.default_rng(2), threat=True)
    rec = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    data = {rec.id, rec.identities[0].value, SUPERVISOR[0], "Supervisor Lee", "demo-1"}
    seen = {"live": english_words(visible_text(page), data)}
    page.screenshot(path=str(ARTIFACTS / f"live_{lang}.png"))
    loaded = {"queue": "#queue-rows tr", "history": "#history-rows tr", "tip": "#tip-state:not(:empty)",
              "health": "#health-body dl", "audit": "#audit-rows tr"}
    for view, selector in loaded.items():
        page.click(f"#nav button[data-view='{view}']")
        page.wait_for_selector(f"#view-{view} {selector}")
        seen[view] = english_words(visible_text(page), data | {"plc", "xray", "backlog", "signin"})
    assert not any(seen.values()), f"untranslated English in {lang}: {seen}"


def test_language_choice_is_remembered_with_the_sign_in(station, browser):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(station.url)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#badge", OFFICER[0])
    page.fill("#pin", OFFICER[1])
    page.click("#signin-btn")
    page.wait_for_selector("#nav:not([hidden])")
    with page.expect_response(lambda r: r.url.endswith("/api/me/lang") and r.ok):
        page.select_option("#lang", "zh-Hans")
    page.wait_for_selector("html[lang='zh-Hans']", state="attached")
    assert station.call(lambda s: s.conn.execute("SELECT lang FROM web_users WHERE badge = ?",
                                                 (OFFICER[0],)).fetchone()[0]) == "zh-Hans"
    fresh = browser.new_page(viewport={"width": 1920, "height": 1080})
    fresh.goto(station.url + "/?lang=en")
    fresh.wait_for_selector("body[data-ready='1']")
    fresh.fill("#badge", OFFICER[0])
    fresh.fill("#pin", OFFICER[1])
    fresh.click("#signin-btn")
    fresh.wait_for_selector("html[lang='zh-Hans']", state="attached")
    assert fresh.inner_text("#nav button[data-view='live']") == "实时"


@pytest.mark.parametrize("lang", ["zh-Hant", "zh-Hans"])
def test_the_lines_above_the_item_change_language_with_the_screen(station, browser, lang):
    """Switching language mid-shift left "Next item · 2 waiting (SUSPECT)", "5 older items not shown ..." and the
    next item's early risk in the language they were first written in. Now they are written again."""
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.set_default_timeout(10_000)
    page.goto(station.url + "/?lang=en")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#badge", OFFICER[0])
    page.fill("#pin", OFFICER[1])
    page.click("#signin-btn")
    page.wait_for_selector("body[data-live='1']")
    rng = np.random.default_rng(3)
    records = []
    for _ in range(3):
        scan, truth = synthetic_scan(rng, threat=True)
        records.append(station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth)))
        station.publish_record(records[-1])
    page.wait_for_selector("#next-item[data-waiting='2']")
    station.publish("not_replayed", {"count": 5})
    page.wait_for_selector("#not-replayed:not([hidden])")
    station.publish("risk", {"item": "next-one", "lane": "amber", "bundle": None, "stale": False, "score": 0,
                             "rules": [{"id": "no_bundle", "kind": "no_bundle", "reason": "no_bundle", "score": 0,
                                        "lane": "amber"}], "random": {"rate": 0.0}})
    page.wait_for_selector("#early-risk:not([hidden])")
    page.select_option("#lang", lang)
    page.wait_for_selector(f"html[lang='{lang}']", state="attached")
    data = {r.id for r in records} | {i.value for r in records for i in r.identities} | {OFFICER[0], "Officer Chan",
                                                                                          "demo-1"}
    for line in ("#next-item", "#not-replayed", "#early-risk"):
        assert not english_words(page.inner_text(line), data), f"{line} in {lang}: {page.inner_text(line)}"
    page.screenshot(path=str(ARTIFACTS / f"live_lines_{lang}_1024.png"))
