"""The officer sees who is in the lane: plates, container codes, tags and e-seals with their state and
confidence, a conflicting read marked with its sentence, in every language of the screen."""

import numpy as np
import pytest

from central_sync.schema import Identity, SealStatus, Verdict
from edge.web.demo import record_for, synthetic_scan
from station_browser import BROWSER_ONLY, OFFICER, launch, station  # noqa: F401
from test_browser_station import sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = BROWSER_ONLY

CONFLICT = "EPCs 300833B2DDD9014000000001 and 300833B2DDD90140000000FF were read from the one tag TID E2801160200073F1A2B3C4D5"
IDENTITIES = [
    Identity(kind="plate", value="AB1234", confidence=0.97, source="front"),
    Identity(kind="plate", value="粤Z·A123港", confidence=0.91, source="rear"),
    Identity(kind="container", value="CSQU3054383", confidence=0.99, checks={"iso6346": "ok"}),
    Identity(kind="rfid_tid", value="E2801160200073F1A2B3C4D5"),
    Identity(kind="rfid_epc", value="300833B2DDD90140000000FF", checks={"tid": "E2801160200073F1A2B3C4D5"},
             conflict=CONFLICT),
    Identity(kind="seal", value="HKEL0001234", seal=SealStatus(state="tampered", battery_low=True, events=3)),
]


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def test_the_officer_sees_plates_codes_tags_and_the_seal_state(station, page):
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    scan, truth = synthetic_scan(np.random.default_rng(5), threat=False)
    rec = record_for(scan, Verdict.MANUAL, "seal_not_intact", truth).model_copy(update={"identities": IDENTITIES})
    rec = station.commit(scan, rec)
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    assert page.inner_text("#banner-reason") == "Declared seal missing, opened or tampered"
    ident = lambda kind: page.locator(f"#identities .ident[data-kind='{kind}']")  # noqa: E731
    expect(ident("seal")).to_have_text("E-seal HKEL0001234 (tampered, battery low)")
    expect(ident("seal")).to_have_class("ident seal-broken")
    expect(ident("container")).to_have_text("Container CSQU3054383 99%")
    expect(ident("plate").nth(1)).to_have_text("Plate 粤Z·A123港 91%")
    expect(ident("rfid_tid")).to_have_text("UHF tag (TID) E2801160200073F1A2B3C4D5")
    expect(ident("rfid_epc")).to_have_attribute("title", CONFLICT)
    expect(ident("rfid_epc")).to_contain_text("conflicting read")
    page.select_option("#lang", "zh-Hant")
    expect(ident("seal")).to_have_text("電子封條 HKEL0001234（遭破壞，電量低）")
