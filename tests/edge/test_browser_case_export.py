"""The station screen's signed case export: a supervisor must give a reason, then the browser saves a bundle
that verifies against the station's key and the export is audited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from central_sync.case_bundle import load_public_key, read_bundle, verify
from edge import audit
from edge.diag import signing
from edge.web.demo import StationHarness
from station_browser import BROWSER_ONLY, OFFICER, SUPERVISOR, commit_suspect, download_page as page, sign_in, station  # noqa: F401

pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = BROWSER_ONLY


def test_supervisor_exports_a_signed_case_with_a_reason(station: StationHarness, page: Any,  # noqa: F811
                                                        tmp_path: Path) -> None:
    sign_in(page, station, SUPERVISOR)
    assert page.is_hidden("#case-export") and page.is_hidden("#dicos")  # no item on screen: nothing to export
    rid = commit_suspect(station, 31)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    assert page.is_visible("#case-export-btn")
    page.click("#case-export-btn")
    page.wait_for_selector("#case-export-msg:text('A case export needs a reason.')")
    page.fill("#case-reason", "seizure 2026/117")
    with page.expect_download() as info:
        page.click("#case-export-btn")
    saved = tmp_path / "case.zip"
    info.value.save_as(saved)
    assert info.value.suggested_filename.startswith("case-")
    public = station.call(lambda s: signing.pinned_public(s.data_dir))
    assert public is not None
    result = verify(read_bundle(saved), load_public_key(public))
    assert result.ok and result.manifest is not None and result.manifest.records == [rid]
    entries = station.call(lambda s: [e for e in audit.entries(s.conn) if e.action == "case.export"])
    assert [(e.actor, json.loads(e.detail)["reason"]) for e in entries] == [(SUPERVISOR[0], "seizure 2026/117")]
    page.wait_for_selector("#case-export-msg:text('Case exported')")


def test_officer_is_not_offered_the_case_export(station: StationHarness, page: Any) -> None:  # noqa: F811
    sign_in(page, station, OFFICER)
    rid = commit_suspect(station, 32)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    assert page.is_hidden("#case-export")


@pytest.mark.parametrize("lang", ["en", "zh-Hant"])
def test_the_reason_asked_for_is_read_whole_at_1024x768(station: StationHarness, browser: Any, lang: str) -> None:
    """The export's reason field, a one-line input 168 px wide beside the checkbox, showed "證據離開本站的原因（" or
    "Why the evidence leaves" of what it asks for (its placeholder, the field's only words). Now the whole of it is in
    the field, in English and in zh-Hant."""
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    page.set_default_timeout(10_000)
    sign_in(page, station, SUPERVISOR)
    page.select_option("#lang", lang)
    rid = commit_suspect(station, 33)
    page.wait_for_selector(f"#scan[data-loaded-id='{rid}']")
    page.locator("#case-reason").scroll_into_view_if_needed()
    text, room = page.evaluate("""(() => {
      const f = document.getElementById('case-reason'), cs = getComputedStyle(f);
      const ctx = document.createElement('canvas').getContext('2d'); ctx.font = cs.font;
      const line = parseFloat(cs.lineHeight) || 1.2 * parseFloat(cs.fontSize);
      const width = f.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      const lines = f.tagName === 'TEXTAREA' ? Math.floor((f.clientHeight - parseFloat(cs.paddingTop)
        - parseFloat(cs.paddingBottom)) / line) : 1;
      return [ctx.measureText(f.placeholder).width, width * lines]; })()""")
    assert text <= 0.85 * room, f"the reason's words ({text:.0f} px) do not fit its field ({room:.0f} px) in {lang}"
