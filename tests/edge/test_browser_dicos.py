"""The station screen's record view offers the DICOS download to a supervisor, not to an officer, and
the file the browser saves is the record's DX images and machine report."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest

from edge import audit
from edge.web.demo import StationHarness
from station_browser import (BROWSER_ONLY, OFFICER, SUPERVISOR, commit_suspect, contrast, download_page as page,  # noqa: F401
                             sign_in, station)

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = BROWSER_ONLY


def test_supervisor_downloads_the_record_as_dicos(station: StationHarness, page: Any, tmp_path: Path) -> None:  # noqa: F811
    sign_in(page, station, SUPERVISOR)
    rid = commit_suspect(station, 21)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    assert page.is_visible("#dicos") and page.inner_text("#dicos") == "Download DICOS"
    assert contrast(page, "#dicos", ".side") >= 4.5  # the browser's own link blue on the dark panel: 1.8
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
    sign_in(page, station, OFFICER)
    rid = commit_suspect(station, 22)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    assert page.is_hidden("#dicos")
