"""The officer sees an item's risk lane and, in words, what raised it: before the scan is judged (as soon
as the identity is read) and on the decided item, in every language of the screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from central_sync.schema import Identity, RiskOut, Verdict
from edge.risk import BundleFiles, RiskCheck, RiskRuntime, load_keys
from edge.web.demo import record_for, synthetic_scan
from edge.web.i18n import t
from risk_bundles import envelope, pinned
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, contrast, station  # noqa: F401
from test_browser_station import sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = BROWSER_ONLY
PLATE = Identity(kind="plate", value="AB 123 CD", source="anpr")


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.set_default_timeout(10_000)
    return page


def assessed(tmp_path: Path, bundle: bool) -> dict:
    """The real engine's assessment of the plate: on a bundle listing it as stolen, or on none."""
    runtime = RiskRuntime("demo-1", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed-demo")
    if bundle:
        runtime.receive(3, envelope(3))
    return RiskCheck(runtime, "demo-1", "gantry").assess("item-7", [PLATE], "clear").to_record()


def test_the_officer_sees_a_red_lane_before_the_scan_and_its_reason_on_the_item(station, page, tmp_path):
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    risk = assessed(tmp_path, bundle=True)
    station.publish("risk", {"item": "next-item", "ref": "v7", "station": "demo-1", **risk})
    expect(page.locator("#early-risk-lane")).to_have_text("Red: physical inspection · bundle 3")
    expect(page.locator("#early-risk-reasons li")).to_have_text(["reported stolen"])
    scan, truth = synthetic_scan(np.random.default_rng(5), threat=False)
    rec = record_for(scan, Verdict.MANUAL, "risk_red", truth).model_copy(
        update={"identities": [PLATE], "risk": RiskOut.model_validate(risk), "id": "next-item"})
    station.publish_record(station.commit(scan, rec))
    expect(page.locator("#banner-reason")).to_have_text("Selected by risk assessment for physical inspection")
    expect(page.locator("#risk-lane")).to_have_text("Red: physical inspection · bundle 3")
    expect(page.locator("#risk-reasons li")).to_have_text(["reported stolen"])
    expect(page.locator("#early-risk")).to_be_hidden()  # the item it announced has arrived
    page.select_option("#lang", "zh-Hans")
    expect(page.locator("#risk-lane")).to_have_text("红色：人工查验 · 规则包 3")


def test_without_a_bundle_the_officer_reads_why_a_clear_item_waits_for_him(station, page, tmp_path):
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    risk = assessed(tmp_path, bundle=False)
    scan, truth = synthetic_scan(np.random.default_rng(6), threat=False)
    rec = record_for(scan, Verdict.MANUAL, "risk_amber", truth).model_copy(
        update={"identities": [PLATE], "risk": RiskOut.model_validate(risk)})
    station.publish_record(station.commit(scan, rec))
    expect(page.locator("#risk-reasons li[data-kind='no_bundle']")).to_have_text(
        "No risk bundle on this station: every item needs the officer")
    expect(page.locator("#risk-lane")).to_contain_text("no bundle")
    page.select_option("#lang", "zh-Hant")
    expect(page.locator("#risk-reasons li[data-kind='no_bundle']")).to_have_text("本站沒有風險規則包：每件均須關員判定")


def test_the_next_items_risk_is_readable_on_its_box(station, page, tmp_path):
    """The early risk's box is light grey, and its title and amber reasons inherited the screen's light text: "No risk
    bundle on this station ..." could not be read before the vehicle's scan. Now its text is dark on it."""
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    station.publish("risk", {"item": "next-item", "ref": "v7", "station": "demo-1", **assessed(tmp_path, bundle=False)})
    expect(page.locator("#early-risk-reasons li[data-kind='no_bundle']")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "early_risk.png"))
    for text in ("#early-risk > b", "#early-risk-reasons li", "#early-risk-lane"):
        assert contrast(page, text, "#early-risk") >= 4.5, text


def test_what_raised_a_risk_verdict_is_in_the_banner_at_1024x768(station, browser, tmp_path):
    """A vehicle held by the risk assessment for a conflict between its reads: at 1024x768 the banner said only "Risk
    assessment: officer to decide", the reason (in the risk box, under the identities) below the fold. Now the banner
    names what raised it, in view, in the screen's language."""
    front = Identity(kind="plate", value="AB1234", source="front")
    rear = Identity(kind="plate", value="CD5678", source="rear", conflict="front plate AB1234, rear plate CD5678")
    runtime = RiskRuntime("demo-1", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed-demo")
    runtime.receive(3, envelope(3))
    risk = RiskCheck(runtime, "demo-1", "gantry").assess("item-9", [front, rear], "clear").to_record()
    assert [f["reason"] for f in risk["rules"]] == ["identity_conflict"]
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.set_default_timeout(10_000)
    sign_in(page, station, OFFICER)
    scan, truth = synthetic_scan(np.random.default_rng(9), threat=False)
    rec = record_for(scan, Verdict.MANUAL, "risk_amber", truth).model_copy(
        update={"identities": [front, rear], "risk": RiskOut.model_validate(risk)})
    station.publish_record(station.commit(scan, rec))
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    expect(page.locator("#banner-reason")).to_have_text("Risk assessment: officer to decide")
    why = page.locator("#banner-why")
    expect(why).to_have_text("The reads conflict (two plates, or two codes from one tag): which is the vehicle's "
                             "is not known")
    page.screenshot(path=str(ARTIFACTS / "risk_reason_in_banner_1024.png"))
    box = why.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 768 and box["x"] + box["width"] <= 1024
    page.select_option("#lang", "zh-Hant")
    expect(why).to_have_text(t("risk.reason.identity_conflict", "zh-Hant"))
