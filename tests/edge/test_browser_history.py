"""The officer's history view in headless Chromium at 1024×768 (issue 19): the current scan and the vehicle's
reference side by side with one zoom and pan, flicker, the change overlay, and a change marked explained that
is stored with the review. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from central_sync.schema import History, ItemKind, Verdict
from edge.history import HistoryCache, compare_scans, identity_key, prepare_reference
from edge.web.demo import StationHarness, record_for
from models.training.portal import PortalSpec
from models.training.portal.passes import Pass, portal_pass
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, launch, station  # noqa: F401
from test_browser_station import sign_in

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = BROWSER_ONLY
VAN = PortalSpec(vehicle="van", suspect=False)


def compared_vehicle(station: StationHarness) -> Any:
    """A van's pass with added steel, compared with its earlier clean pass (held in the station's history cache)."""
    reference, current = portal_pass(2, Pass(0), VAN), portal_pass(2, Pass(2, changes=("added_steel",)), VAN)
    data = reference.to_bytes()
    sha = hashlib.sha256(data).hexdigest()
    HistoryCache(station.store.data_dir / "history", 10, 10**9).put(identity_key("plate", "AB 1234"), {}, {sha: data})
    result = compare_scans(current, [prepare_reference(reference)])
    history = History(status="compared", identity="plate:AB 1234", reference_ids=["earlier-pass"], reference_scan=sha,
                      registration=result["registration"], regions=result["regions"])
    rec = record_for(current, Verdict.SUSPECT, "detection", []).model_copy(
        update={"kind": ItemKind.VEHICLE, "history": history})
    return station.commit(current, rec)


def changes(n: int) -> str:
    """A count of changes as the screen says it in English."""
    return f"{n} change" if n == 1 else f"{n} changes"


def transforms(page: Any) -> tuple[str, str]:
    return page.evaluate("[document.getElementById('layer').style.transform,"
                         " document.getElementById('ref-layer').style.transform]")


def test_officer_compares_with_the_reference_and_marks_a_change_explained(station: StationHarness) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(page, station, OFFICER)
        page.wait_for_selector("body[data-live='1']")
        rec = compared_vehicle(station)
        assert rec.history is not None and rec.history.regions, "the comparison found the added steel"
        station.publish_record(rec)
        page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
        expect(page.locator("#history-state")).to_have_text(
            f"{changes(len(rec.history.regions))} against an earlier clean pass")
        expect(page.locator("#history-uncompared")).to_be_hidden()     # both passes scanned the whole van
        first = rec.history.regions[0]
        expect(page.locator("#changes li").first).to_contain_text(f"Added · {first.location.replace('_', ' ')}")

        page.click("#hist-side")
        page.wait_for_selector(f"#ref-scan[data-loaded-id='{rec.id}']")
        assert page.is_visible("#ref-scan") and page.is_visible("#scan")
        page.click("#zoom-in")
        page.click("#zoom-in")
        current, reference = transforms(page)
        assert "scale(1.5625)" in current and current == reference  # one zoom for both
        page.click("#hist-overlay")
        assert page.locator("#overlay rect.change").count() == len(rec.history.regions)
        assert page.locator("#ref-overlay rect.change").count() == len(rec.history.regions)
        page.screenshot(path=str(ARTIFACTS / "history_side_by_side_1024.png"))
        label, note = page.locator("#ref-pane .layer-label").bounding_box(), page.locator("#dense-alert").bounding_box()
        assert label and note, "the van's dense parts: the note stands over the stage"
        assert label["x"] >= note["x"] + note["width"] or label["y"] >= note["y"] + note["height"], \
            f"the Reference label of the side-by-side view is under the dense-region note: {label}, {note}"
        panel, picker = page.locator("#deciding").bounding_box(), page.locator("#class").bounding_box()
        assert picker and panel and picker["x"] + picker["width"] <= panel["x"] + panel["width"] <= 1024, \
            f"the threat-class picker is clipped at 1024x768: {picker}, panel {panel}"

        page.click("#hist-flicker")  # the reference shown over the current scan in turn
        expect(page.locator("#scan")).to_have_attribute("data-showing", "reference")
        assert page.is_visible("#ref-scan")
        page.screenshot(path=str(ARTIFACTS / "history_flicker_1024.png"))
        expect(page.locator("#scan")).to_have_attribute("data-showing", "current")
        expect(page.locator("#ref-pane")).to_be_hidden()
        page.click("#hist-flicker")

        page.check("#changes input[data-change='0']")
        assert page.locator("#overlay rect.change.explained").count() == 1
        page.reload()  # the mark is the officer's unfinished decision: kept as the note is (it was lost, [] stored)
        page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
        expect(page.locator("#changes input[data-change='0']")).to_be_checked()
        page.click("#false-alarm")
        expect(page.locator("#decide-msg")).to_have_text("Decision saved")
        browser.close()
    stored = station.store.get(rec.id)
    assert stored is not None and stored.review is not None and stored.review.explained == [0]
    assert not errors


def test_no_history_says_so_and_offers_no_comparison(station: StationHarness) -> None:
    page, held = _shown(station, ItemKind.VEHICLE, History(status="no_history", detail="no reference arrived"))
    expect(page.locator("#history-state")).to_have_text("No history")
    assert page.is_hidden("#history-tools") and page.locator("#changes li").count() == 0
    expect(page.locator("#history-why")).to_be_hidden()  # a record from before the codes: its status alone
    _close(held)


def test_a_pass_not_compared_says_why_in_the_language_shown(station: StationHarness) -> None:
    """A van whose only earlier pass is no reference (as edge.history says it: test_history_codes): under "No history"
    the officer reads why, from the record's code and values, in English and in zh-Hant; the line stays under the
    status, inside the panel at 1024×768 (screenshot history_why_zh-Hant_1024.png)."""
    page, held = _shown(station, ItemKind.VEHICLE, History(
        status="no_history", code="no_reference", values={"passes": "1"},
        detail="the vehicle has 1 earlier pass(es) and none is a reference"))
    why = page.locator("#history-why")
    expect(why).to_have_text("no clean earlier pass to compare with (earlier passes: 1)")
    page.select_option("#lang", "zh-Hant")
    expect(page.locator("#history-state")).to_have_text("無歷史紀錄")
    expect(why).to_have_text("沒有可供對比的以往放行紀錄（以往通行 1 次）")
    state, line, panel = (page.locator(s).bounding_box() for s in ("#history-state", "#history-why", "#history"))
    assert state and line and panel and line["y"] >= state["y"] + state["height"] - 1, (state, line)
    assert panel["x"] <= line["x"] and line["x"] + line["width"] <= min(panel["x"] + panel["width"], 1024), (line, panel)
    page.screenshot(path=str(ARTIFACTS / "history_why_zh-Hant_1024.png"))
    _close(held)


def test_a_comparison_with_another_container_of_its_type_says_it_is_not_this_vehicle(station: StationHarness) -> None:
    page, held = _shown(station, ItemKind.CONTAINER, History(
        status="compared", basis="same_type_empty", regions=[], identity="container:CSQU3054383",
        reference_ids=["another-box"]))
    expect(page.locator("#history-state")).to_have_text(
        "0 changes on the container against an empty container of the same type (not this vehicle)")
    _close(held)

def test_a_comparison_corroborated_by_a_second_reference_says_so_on_both_screens(station: StationHarness) -> None:
    """With two references the state line says each change was seen against both; the newest is the one shown.
    Screenshots at the station monitor's and the wall's sizes."""
    reference, older, current = (portal_pass(2, Pass(k, changes=changes), VAN)
                                 for k, changes in ((0, ()), (1, ()), (2, ("added_steel",))))
    result = compare_scans(current, [prepare_reference(reference), prepare_reference(older)])
    history = History(status="compared", identity="plate:AB 1234", reference_ids=["earlier-pass", "pass-before"],
                      registration=result["registration"], regions=result["regions"],
                      suppressed=result["suppressed"])
    assert history.regions, "both references show the added steel"
    for width, height in ((1024, 768), (2560, 1440)):
        page, held = _shown(station, ItemKind.VEHICLE, history, (width, height))
        expect(page.locator("#history-state")).to_have_text(
            f"{changes(len(history.regions))} against an earlier clean pass, "
            + ("each " if len(history.regions) > 1 else "") + "seen against the pass before it too")
        box = page.locator("#history-state").bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, f"the state line leaves the screen: {box}"
        page.screenshot(path=str(ARTIFACTS / f"history_two_references_{width}.png"))
        _close(held)


def test_where_nothing_was_compared_is_shaded_and_said_on_both_screens(station: StationHarness) -> None:
    """A lorry whose reference pass kept the beam off over the cab (generator A seed 3): under the state line the
    officer reads that the shaded part was not compared, and the Changes overlay shades it on the current scan and
    on the reference; off again, the shading goes. At the station monitor's and the wall's sizes."""
    lorry = PortalSpec(vehicle="lorry", suspect=False)
    reference, current = portal_pass(3, Pass(0), lorry), portal_pass(3, Pass(2), lorry)
    data = reference.to_bytes()
    sha = hashlib.sha256(data).hexdigest()
    HistoryCache(station.store.data_dir / "history", 10, 10**9).put(identity_key("plate", "LK 3003"), {}, {sha: data})
    result = compare_scans(current, [prepare_reference(reference)])
    history = History(status="compared", identity="plate:LK 3003", reference_ids=["earlier-pass"], reference_scan=sha,
                      registration=result["registration"], regions=result["regions"], uncompared=result["uncompared"])
    assert len(history.uncompared) == 1, "the reference's dark cab was compared with nothing"
    for width, height in ((1024, 768), (2560, 1440)):
        page, held = _shown(station, ItemKind.VEHICLE, history, (width, height), current)
        note = page.locator("#history-uncompared")
        expect(note).to_have_text("Not compared where shaded: the beam was off there in this pass or the reference, "
                                  "so no change shown there means nothing")
        box = note.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, f"the note leaves the screen: {box}"
        page.click("#hist-side")
        page.wait_for_selector(f"#ref-scan[data-loaded-id='{page.get_attribute('#scan', 'data-loaded-id')}']")
        page.click("#hist-overlay")
        for overlay, image in (("#overlay", "#scan"), ("#ref-overlay", "#ref-scan")):
            shade = page.locator(f"{overlay} rect.uncompared")
            assert shade.count() == 1
            band, scan = shade.bounding_box(), page.locator(image).bounding_box()
            assert band and scan and band["width"] > 20 and band["height"] > 20, band
            assert band["x"] >= scan["x"] - 1 and band["x"] + band["width"] <= scan["x"] + scan["width"] + 1
        page.screenshot(path=str(ARTIFACTS / f"history_not_compared_{width}.png"))
        page.click("#hist-overlay")
        assert page.locator("#overlay rect.uncompared").count() == 0
        _close(held)


def _shown(station: StationHarness, kind: ItemKind, history: History,
           size: tuple[int, int] = (1024, 768), current: Any = None) -> tuple[Any, Any]:
    """A committed pass (the van's, unless `current`) with this history, shown on the officer's Live view at `size`
    (page, browser)."""
    from playwright.sync_api import sync_playwright

    current = current if current is not None else portal_pass(2, Pass(1), VAN)
    rec = station.commit(current, record_for(current, Verdict.SUSPECT, "detection", []).model_copy(update={
        "kind": kind, "history": history}))
    pw = sync_playwright().start()
    browser = launch(pw)
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    sign_in(page, station, OFFICER)
    page.wait_for_selector("body[data-live='1']")
    station.publish_record(rec)
    page.wait_for_selector(f"#scan[data-loaded-id='{rec.id}']")
    return page, (browser, pw)


def _close(held: Any) -> None:
    browser, pw = held
    browser.close()
    pw.stop()
