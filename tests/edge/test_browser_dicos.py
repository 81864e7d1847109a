"""The station screen's record view offers the DICOS download to a supervisor, not to an officer, and
the file the browser saves is the record's DX images and machine report."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from central_sync.schema import Verdict
from edge import audit
from edge.web.demo import StationHarness, record_for, synthetic_scan
from station_browser import BROWSER_ONLY, OFFICER, SUPERVISOR, launch, station  # noqa: F401

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = BROWSER_ONLY


@pytest.fixture
def page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1920, "height": 1080}, accept_downloads=True)
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def _sign_in(page: Any, station: StationHarness, who: tuple[str, str]) -> None:
    page.goto(station.url)
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#badge", who[0])
    for digit in who[1]:
        page.click(f"#keypad button:text-is('{digit}')")
    page.click("#signin-btn")
    page.wait_for_selector("#nav:not([hidden])")
    page.wait_for_selector("body[data-live='1']")


def _suspect(station: StationHarness, seed: int) -> str:
    scan, truth = synthetic_scan(np.random.default_rng(seed), threat=True)
    record = station.commit(scan, record_for(scan, Verdict.SUSPECT, "detection", truth))
    station.publish_record(record)
    return record.id


def test_supervisor_downloads_the_record_as_dicos(station: StationHarness, page: Any, tmp_path: Path) -> None:  # noqa: F811
    _sign_in(page, station, SUPERVISOR)
    rid = _suspect(station, 21)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    assert page.is_visible("#dicos") and page.inner_text("#dicos") == "Download DICOS"
    with page.expect_download() as info:
        page.click("#dicos")
    saved = tmp_path / "saved.zip"
    info.value.save_as(saved)
    assert info.value.suggested_filename == f"{rid}-dicos.zip"
    with zipfile.ZipFile(saved) as zf:
        assert sorted(zf.namelist()) == sorted(f"{rid}-{k}.dcm" for k in ("dx-high", "dx-low", "tdr-machine"))
        tdr = pydicom.dcmread(io.BytesIO(zf.read(f"{rid}-tdr-machine.dcm")))
    assert (tdr.TDRType, tdr.AlarmDecision, tdr.PatientID) == ("MACHINE", "ALARM", rid)
    entries = station.call(lambda s: [e for e in audit.entries(s.conn) if e.action == "export.dicos"])
    assert [(e.actor, e.object) for e in entries] == [(SUPERVISOR[0], rid)]


def test_officer_is_not_offered_the_download(station: StationHarness, page: Any) -> None:  # noqa: F811
    _sign_in(page, station, OFFICER)
    rid = _suspect(station, 22)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    assert page.is_hidden("#dicos")
