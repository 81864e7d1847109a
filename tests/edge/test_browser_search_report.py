"""The vehicle search report on the station screen in headless Chromium at 1024x768: an officer opens the report
of a vehicle sent to search, ticks areas on the van's diagram, methods and time, adds a seizure, an uploaded photo
and one from a station camera, signs (a wrong PIN refused first), a supervisor countersigns at the same screen,
and the printed PDF names the plate."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import pytest
from pypdf import PdfReader

from central_sync.schema import InspectionRecord, search_outcome
from drivers.camera import CameraConfig
from drivers.camera.sim import SimCamera
from edge.search_report import camera_photos
from edge.web.demo import StationHarness
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, SUPERVISOR, error_checked_page, station  # noqa: F401
from search_report_kit import HK_PLATE, PLATE, photo, vehicle_record

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = BROWSER_ONLY


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A station monitor's 1024×768 that fails the test on any script error."""
    yield from error_checked_page(browser, 1024, 768)


def sign_in(page: Any, station: StationHarness, who: tuple[str, str]) -> None:
    page.goto(station.url)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#badge", who[0])
    page.fill("#pin", who[1])
    page.click("#signin-btn")
    page.wait_for_selector("#nav:not([hidden])")


def stored(station: StationHarness, record_id: str) -> InspectionRecord:
    record = station.call(lambda s: s.get(record_id))
    assert record is not None
    return record


def vehicle_on_live(page: Any, station: StationHarness) -> InspectionRecord:
    """The officer signed in, a vehicle's record (its scan not kept) on the Live view."""
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    rec = station.call(lambda s: s.commit(vehicle_record(s.station), scan_stored=False))
    station.publish_record(rec)
    page.wait_for_selector(f"#banner[data-id='{rec.id}']")
    return rec


def test_an_officer_fills_and_signs_and_a_supervisor_countersigns_at_1024x768(station: StationHarness,
                                                                             page: Any) -> None:
    camera = asyncio.run_coroutine_threadsafe(
        SimCamera(CameraConfig(kind="sim", role="rear_plate"), "rear").__aenter__(), station.loop).result(10)
    station.ctx.cameras = camera_photos({"rear": camera})  # as the daemon hands the station's cameras to the screen
    rec = vehicle_on_live(page, station)
    page.click("#search-open")
    page.wait_for_selector("#view-search:not([hidden])")
    assert PLATE in page.inner_text("#sr-plates") and page.inner_text("#sr-versions") == "No search report yet"

    page.select_option("#sr-type", "van")
    for area in ("cargo_area", "spare_wheel", "floor"):
        page.click(f"#sr-diagram rect[data-area='{area}']")
    expect(page.locator("#sr-areas")).to_have_text("Cargo area, Spare wheel, Floor")
    page.click("#sr-diagram rect[data-area='floor']")  # a second touch takes it back
    for method in ("manual", "dog"):
        page.check(f"#sr-methods input[data-method='{method}']")
    page.fill("#sr-minutes", "35")
    page.click("#sr-add-finding")
    row = page.locator("#sr-findings .sr-finding").first
    for field, caption in (("goods", "Goods"), ("hs_class", "HS class"), ("quantity", "Quantity"), ("unit", "Unit"),
                           ("weight_kg", "Weight (kg)"), ("area", "Where found")):  # "0", "pcs", "0" said nothing
        expect(row.locator(f"label:has([data-field='{field}']) > span")).to_have_text(caption)
    row.locator("[data-field='goods']").fill("cigarettes")
    row.locator("[data-field='hs_class']").fill("2402.20")
    row.locator("[data-field='quantity']").fill("40")
    row.locator("[data-field='unit']").fill("cartons")
    row.locator("[data-field='weight_kg']").fill("12.5")
    row.locator("select[data-field='area']").select_option("spare_wheel")
    page.set_input_files("#sr-photo", files=[{"name": "wheel.png", "mimeType": "image/png", "buffer": photo(".png")}])
    page.wait_for_selector("#sr-photos img")
    page.click("#sr-cameras button[data-camera='rear']")  # and one taken by the station's camera now
    expect(page.locator("#sr-photos img")).to_have_count(2)
    page.fill("#sr-notes", "panel behind the spare wheel re-welded")
    page.fill("#sr-badge", OFFICER[0])
    page.fill("#sr-pin", "0000")
    page.click("#sr-sign")
    expect(page.locator("#sr-msg")).to_have_text("Badge or PIN not accepted for the signature")
    assert stored(station, rec.id).search_reports == []
    page.fill("#sr-pin", OFFICER[1])
    page.click("#sr-sign")
    expect(page.locator("#sr-msg")).to_have_text("Report signed")
    version = page.locator("#sr-versions .version[data-version='1']")
    expect(version.locator("h3")).to_contain_text("Seizure awaiting countersignature")
    page.screenshot(path=str(ARTIFACTS / "search_report_1024x768_signed.png"), full_page=True)
    report = stored(station, rec.id).search_reports[0]
    assert (report.areas, report.methods, report.minutes) == (["cargo_area", "spare_wheel"], ["manual", "dog"], 35)
    assert [(f.goods, f.hs_class, f.quantity, f.unit, f.weight_kg, f.area) for f in report.findings] == \
        [("cigarettes", "2402.20", 40, "cartons", 12.5, "spare_wheel")]
    assert len(report.photos) == 2 and report.officer.badge == OFFICER[0] and not report.final

    form = version.locator("form.countersign")
    form.locator("input[name='badge']").fill(OFFICER[0])  # the officer may not countersign
    form.locator("input[name='pin']").fill(OFFICER[1])
    form.locator("button").click()
    expect(form.locator(".msg")).to_have_text("Only a supervisor may countersign")
    form.locator("input[name='badge']").fill(SUPERVISOR[0])
    form.locator("input[name='pin']").fill(SUPERVISOR[1])
    form.locator("button").click()
    expect(page.locator("#sr-versions .version[data-version='1'] h3")).to_contain_text("Seizure")
    expect(page.locator("#sr-versions .version.final")).to_have_count(1)
    done = stored(station, rec.id).search_reports
    assert done[0].countersigned is not None and done[0].countersigned.badge == SUPERVISOR[0]
    assert search_outcome(done) == "seizure"
    page.screenshot(path=str(ARTIFACTS / "search_report_1024x768_countersigned.png"), full_page=True)

    pdf = page.request.get(station.url + str(page.locator("#sr-versions a[data-print='pdf']").get_attribute("href")))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.body())).pages)
    assert HK_PLATE in text and PLATE in text and "cigarettes" in text and "Supervisor Lee" in text
    html = page.request.get(station.url + str(page.locator("#sr-versions a[data-print='html']").get_attribute("href")))
    assert html.ok and PLATE in html.text() and "search_print.css" in html.text()


def test_a_report_being_filled_survives_a_reload(station: StationHarness, page: Any) -> None:
    """A reload (or a session run out) while the report was filled lost all of it: back on the vehicle, Search report
    opened an empty form (areas, methods, minutes, findings and notes gone, after a search of half an hour). Now the
    unsigned report is kept for the tab and comes back when the report is opened again; signed, it is stored."""
    rec = vehicle_on_live(page, station)
    page.click("#search-open")
    page.wait_for_selector("#view-search:not([hidden])")
    page.click("#sr-diagram rect[data-area='spare_wheel']")
    page.check("#sr-methods input[data-method='dog']")
    page.fill("#sr-minutes", "35")
    page.click("#sr-add-finding")
    page.locator("#sr-findings [data-field='goods']").fill("cigarettes")
    page.fill("#sr-notes", "panel behind the spare wheel re-welded")
    page.reload()
    page.wait_for_selector(f"#banner[data-id='{rec.id}']")
    page.click("#search-open")
    page.wait_for_selector("#view-search:not([hidden])")
    expect(page.locator("#sr-areas")).to_have_text("Spare wheel")
    expect(page.locator("#sr-notes")).to_have_value("panel behind the spare wheel re-welded")
    expect(page.locator("#sr-minutes")).to_have_value("35")
    expect(page.locator("#sr-findings [data-field='goods']")).to_have_value("cigarettes")
    assert page.is_checked("#sr-methods input[data-method='dog']")
    page.fill("#sr-badge", OFFICER[0])
    page.fill("#sr-pin", OFFICER[1])
    page.click("#sr-sign")
    expect(page.locator("#sr-msg")).to_have_text("Report signed")
    [report] = stored(station, rec.id).search_reports
    assert (report.areas, report.methods, report.minutes, [f.goods for f in report.findings]) == \
        (["spare_wheel"], ["dog"], 35, ["cigarettes"])
