"""The officer sees who is in the lane: plates, container codes, tags and e-seals with their state, the
camera's crop of each read (touch to enlarge), its confidence and its check, a conflicting read marked
with its sentence in the row, in every language of the screen and on a 1024×768 screen too."""

import hashlib
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest

from central_sync.schema import Identity, SealStatus, Verdict
from drivers.camera import render
from drivers.camera.sim import PROFILES
from edge.web.demo import StationHarness, record_for, synthetic_scan
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, station  # noqa: F401
from test_browser_station import sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = BROWSER_ONLY

TID = "E2801160200073F1A2B3C4D5"
CONFLICT = f"EPCs 300833B2DDD9014000000001 and 300833B2DDD90140000000FF were read from the one tag TID {TID}"
BAD_CODE = "container code CSQU3054384 fails its ISO 6346 check digit (the digit should be 3)"


def _crop(station: StationHarness, picture: np.ndarray) -> tuple[str, tuple[int, int]]:
    """Keep a camera picture as the station keeps an evidence crop; its sha256 and (width, height)."""
    ok, data = cv2.imencode(".png", picture)
    assert ok
    png = data.tobytes()
    sha = hashlib.sha256(png).hexdigest()
    assert station.call(lambda s: s.put_crop(sha, png))
    return sha, (picture.shape[1], picture.shape[0])


def _identities(station: StationHarness) -> tuple[list[Identity], tuple[int, int]]:
    font = PROFILES["tuning"].fonts[0]
    plate, _ = _crop(station, render.hk_plate("AB 1234", rear=False, font=font))
    code, size = _crop(station, render.container_panel("CSQU3054383", "45G1", font, np.random.default_rng(3)))
    return [
        Identity(kind="plate", value="AB1234", status="read", confidence=0.97, source="front", crop=plate),
        Identity(kind="plate", value="粤Z·A123港", status="read", confidence=0.91, source="rear"),
        Identity(kind="plate", value="", status="unread", confidence=0.0, source="rear"),
        Identity(kind="container", value="CSQU3054383", status="corrected", confidence=0.99, source="door",
                 raw="CSQU 305438 8", crop=code, checks={"iso6346": "ok"}),
        Identity(kind="container", value="CSQU3054384", status="read", confidence=0.93, source="side",
                 checks={"iso6346": "bad_check_digit"}, conflict=BAD_CODE),
        Identity(kind="rfid_tid", value=TID),
        Identity(kind="rfid_epc", value="300833B2DDD9014000000001", checks={"tid": TID}),
        Identity(kind="rfid_epc", value="300833B2DDD90140000000FF", checks={"tid": TID}, conflict=CONFLICT),
        Identity(kind="seal", value="HKEL0001234", seal=SealStatus(state="tampered", battery_low=True, events=3)),
    ], size


@pytest.fixture
def page(browser: Any) -> "Page":
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.set_default_timeout(10_000)
    return page


def test_the_officer_sees_each_reads_crop_confidence_and_check_and_enlarges_the_crop(
        station: StationHarness, page: "Page") -> None:
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    identities, code_size = _identities(station)
    scan, truth = synthetic_scan(np.random.default_rng(5), threat=False)
    rec = record_for(scan, Verdict.MANUAL, "seal_not_intact", truth).model_copy(update={"identities": identities})
    rec = station.commit(scan, rec)
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    assert page.inner_text("#banner-reason") == "Declared seal missing, opened or tampered"
    ident = lambda kind: page.locator(f"#identities .ident[data-kind='{kind}']")  # noqa: E731
    container = ident("container").first
    container.scroll_into_view_if_needed()
    thumb = container.locator(".crop img")
    expect(thumb).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    box = thumb.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1024, box
    expect(container.locator(".ident-text")).to_have_text("Container CSQU3054383")
    expect(container.locator(".chip")).to_have_text(["99%", "corrected by its check digit",
                                                     "camera saw “CSQU 305438 8”", "ISO 6346 ok"])
    expect(ident("plate").nth(0).locator(".chip")).to_have_text(["97%"])
    expect(ident("plate").nth(2).locator(".ident-text")).to_have_text("Plate not read")
    expect(ident("plate").nth(2)).to_have_class("ident unread")
    bad = ident("container").nth(1)
    expect(bad.locator(".chip")).to_have_text(["93%", "ISO 6346 check digit wrong"])
    expect(bad.locator(".ident-why")).to_have_text(f"⚠ conflicting read: {BAD_CODE}")
    expect(ident("rfid_epc").locator(".ident-why")).to_contain_text(CONFLICT)  # its own row, with its sentence
    expect(ident("rfid_tid").locator(".chip")).to_have_text(["EPC 300833B2DDD9014000000001"])  # the agreeing one
    expect(ident("seal").locator(".ident-text")).to_have_text("E-seal HKEL0001234 (tampered, battery low)")
    expect(ident("seal")).to_have_class("ident seal-broken")
    page.screenshot(path=str(ARTIFACTS / "identities_1024.png"))

    thumb.click()
    big = page.locator("#crop-img")
    expect(page.locator("#crop-view")).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=big.element_handle())
    assert big.evaluate("img => [img.naturalWidth, img.naturalHeight]") == list(code_size)
    big_box, thumb_box = big.bounding_box(), thumb.bounding_box()
    assert big_box is not None and thumb_box is not None and big_box["width"] > 3 * thumb_box["width"]
    expect(page.locator("#crop-caption")).to_have_text(
        "Container CSQU3054383 · 99% · corrected by its check digit · camera saw “CSQU 305438 8” · ISO 6346 ok")
    page.screenshot(path=str(ARTIFACTS / "identity_crop_1024.png"))
    page.click("#crop-close")
    expect(page.locator("#crop-view")).to_be_hidden()

    page.select_option("#lang", "zh-Hant")
    expect(ident("container").first.locator(".chip")).to_have_text(["99%", "已按校驗位更正", "攝影機看到「CSQU 305438 8」",
                                                                     "ISO 6346 校驗通過"])
    expect(ident("seal").locator(".ident-text")).to_have_text("電子封條 HKEL0001234（遭破壞，電量低）")
    missing = page.request.get(f"{station.url}/api/cases/{rec.id}/crops/{'0' * 64}.png")
    assert missing.status == 404 and missing.json()["detail"] == "crop_not_found"
