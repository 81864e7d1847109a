"""The station screen's image tools (static/imagetools.js) in headless Chromium, on real simulated scans:
each view and tool is read back from the canvas pixel by pixel and compared with what it must compute from
the scan's data (high and low energy, material colour, gamma, edge enhancement, absorption slicing); the
detection overlay toggles without touching a pixel; the dense-object alert comes with a lead block and not
without; zoom stays at the cursor up to 16×; the loupe shows what is under the cursor; hotkeys recall items.

Screenshots go to test-artifacts/browser/.
"""

import base64

import numpy as np
import pytest

from central_sync.schema import ItemKind, Verdict
from edge.web import render, scandata
from edge.web.demo import record_for, synthetic_scan
from models import material
from models.training.portal import PortalSpec, portal_scan
from station_browser import ARTIFACTS, BROWSER_ONLY, OFFICER, sign_in, station  # noqa: F401
from station_browser import checked_page as page  # noqa: F401

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

pytestmark = BROWSER_ONLY

READ = """() => { const c = document.getElementById('scan-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let s = '';
  for (let i = 0; i < d.length; i += 0x8000) s += String.fromCharCode.apply(null, d.subarray(i, i + 0x8000));
  return [c.width, c.height, btoa(s)]; }"""


def pixels(page) -> np.ndarray:
    """The scan canvas as H×W×3 uint8 RGB (opaque: every alpha is 255)."""
    w, h, data = page.evaluate(READ)
    rgba = np.frombuffer(base64.b64decode(data), np.uint8).reshape(h, w, 4)
    assert (rgba[..., 3] == 255).all()
    return rgba[..., :3].astype(np.int16)


def show(page, station, seed, *, threat=True, dense=False, kind=ItemKind.BAGGAGE):
    """A suspect (or clear) item live on the screen; (record, scan)."""
    scan, truth = synthetic_scan(np.random.default_rng(seed), threat=threat, dense=dense)
    return live(page, station, scan, Verdict.SUSPECT if threat else Verdict.CLEAR, truth, kind)


def live(page, station, scan, verdict, truth, kind):
    """`scan` decided as `verdict` with detections `truth`, live on the screen; (record, scan)."""
    rec = record_for(scan, verdict, "detection" if verdict is Verdict.SUSPECT else "clear", truth)
    rec = station.commit(scan, rec.model_copy(update={"kind": kind}))
    station.publish_record(rec)
    loaded = f"#scan[data-loaded-id='{rec.id}']"
    page.locator(f"{loaded}, #next-item:visible").first.wait_for()
    if not page.locator(loaded).count():  # the item on screen stays until the officer moves on (docs/station-screen.md)
        page.click("#next-item")
    page.wait_for_selector(loaded)
    return rec, scan


def mode(page, name):
    page.click(f"#modes button[data-mode='{name}']")
    expect(page.locator(f"#modes button[data-mode='{name}']")).to_have_class("on")


def attenuation(channel):
    return -np.log(np.maximum(channel.astype(np.float64), 1.0) / 65535.0)


def colour_view(scan):
    """The material colour the screen draws: models.material's classes and colours, shaded by density."""
    cls = render.material_classes(scan.high, scan.low)
    shade = 1 - 0.7 * np.minimum(1, attenuation(scan.high) / material.OPAQUE_FROM) ** 0.7
    rgb = np.round(material.COLOURS[cls].astype(np.float64) * shade[..., None])
    rgb[cls == material.AIR] = 255
    return rgb, cls


def grey(channel):
    """A channel's transmission as the grey views draw it."""
    return np.round(255 * (channel / 65535.0))[..., None]


def close(got, want, tol=1):
    diff = np.abs(got - want)
    assert diff.max() <= tol, f"{(diff > tol).sum()} pixels differ by up to {diff.max()}"


def test_high_low_and_colour_views_are_computed_on_the_scan_data(station, page):
    sign_in(page, station, OFFICER)
    _, scan = show(page, station, 21)
    want, cls = colour_view(scan)
    colour = pixels(page)
    close(colour, want)  # the material colours, boxes not burned in
    assert (colour[cls == material.METAL][:, 2] > colour[cls == material.METAL][:, 0]).all()  # steel is blue
    assert page.evaluate("getComputedStyle(document.getElementById('scan-canvas')).filter") == "none"
    mode(page, "grey")
    high = pixels(page)
    close(high, grey(scan.high))
    mode(page, "low")
    low = pixels(page)
    close(low, grey(scan.low))
    assert (low[..., 0] < high[..., 0] - 10).mean() > 0.3  # the low-energy beam is absorbed more
    mode(page, "negative")
    close(pixels(page), 255 - grey(scan.high))
    mode(page, "organic")
    faded = pixels(page)[cls != material.ORGANIC]
    close(faded, 255 - (255 - want[cls != material.ORGANIC]) // 5)
    page.screenshot(path=str(ARTIFACTS / "tools_organic.png"))


def test_gamma_and_edge_enhancement_act_on_the_data(station, page):
    sign_in(page, station, OFFICER)
    _, scan = show(page, station, 22)
    mode(page, "grey")
    t = scan.high / 65535.0
    page.locator("#gamma").fill("2")
    close(pixels(page), np.round(255 * t ** 0.5)[..., None])
    page.locator("#gamma").fill("1")
    page.click("#tool-edge")
    expect(page.locator("#tool-edge")).to_have_class("on")
    h, w = t.shape
    padded, ones = np.pad(t, 1), np.pad(np.ones_like(t), 1)
    box = sum(padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    n = sum(ones[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    sharp = np.clip(t + 1.5 * (t - box / n), 0, 1)
    edges = pixels(page)
    close(edges, np.round(255 * sharp)[..., None])
    assert np.abs(np.diff(edges[..., 0], axis=1)).mean() > 1.3 * np.abs(np.diff(np.round(255 * t), axis=1)).mean()
    page.keyboard.press("e")  # the hotkey turns it off again
    close(pixels(page), np.round(255 * t)[..., None])


@pytest.mark.parametrize("view", ["colour", "grey"])
def test_absorption_slicing_shows_only_the_band_and_whitens_the_rest(station, page, view):
    sign_in(page, station, OFFICER)
    _, scan = show(page, station, 23)
    mode(page, view)
    page.locator("#density-lo").fill("20")
    page.locator("#density-hi").fill("60")
    a = attenuation(scan.high)
    lo, hi = 0.2 * material.OPAQUE_FROM, 0.6 * material.OPAQUE_FROM
    got = pixels(page)
    outside, inside = (a < lo - 0.01) | (a > hi + 0.01), (a > lo + 0.3) & (a < hi - 0.01)
    assert outside.sum() > 1000 and inside.sum() > 1000  # the bag's clothes are outside the band, the slab in it
    assert (got[outside] == 255).all()
    assert (got[inside].min(axis=1) < 230).all()  # the band is stretched over the whole scale: none of it white
    page.screenshot(path=str(ARTIFACTS / f"tools_density_{view}.png"))
    page.click("#tool-reset")
    assert page.input_value("#density-lo") == "0" and page.input_value("#density-hi") == "100"
    assert (pixels(page)[outside & (a > 0.1)].min(axis=1) < 250).all()


@pytest.mark.parametrize("lang,caption", [("en", "1 Firearm 91%"), ("zh-Hant", "1 槍械 91%"), ("zh-Hans", "1 枪支 91%")])
def test_the_detection_overlay_toggles_without_changing_the_scan(station, page, lang, caption):
    sign_in(page, station, OFFICER)
    page.select_option("#lang", lang)
    expect(page.locator("html")).to_have_attribute("lang", lang)
    rec, _ = show(page, station, 24)
    boxes = page.locator("#det-overlay g.det")
    expect(boxes).to_have_count(1)
    assert boxes.first.get_attribute("data-label") == "firearm" and boxes.first.get_attribute("data-colour") == "#ff3b30"
    assert boxes.first.locator("text").text_content() == caption
    expect(boxes.first).to_be_visible()
    before = pixels(page)
    page.keyboard.press("b")
    expect(boxes.first).to_be_hidden()
    assert np.array_equal(pixels(page), before)
    page.click("#tool-overlay")
    expect(boxes.first).to_be_visible()
    assert np.array_equal(pixels(page), before)
    x0, y0, x1, y1 = (int(v) for v in rec.detections[0].box)
    assert not ((before[y0, x0:x1] == (255, 59, 48)).all(axis=1)).any()  # no red line burned into the scan
    if lang == "en":  # the captions follow a change of language on the item shown
        page.select_option("#lang", "zh-Hant")
        expect(boxes.first.locator("text")).to_have_text("1 槍械 91%")


def test_a_vehicle_is_drawn_side_on_with_its_boxes_turned_alike(station, page):
    sign_in(page, station, OFFICER)
    rec, scan = show(page, station, 29, dense=True, kind=ItemKind.VEHICLE)
    want, _ = colour_view(scan)
    close(pixels(page), np.rot90(want))  # front at the left, road at the bottom, as render.side_on
    n = scan.shape[1]  # the shown image's height: the detector's pixels
    dense = scandata.screen_dense(scan, portal=True)
    assert dense.unlit == [] and page.locator("#det-overlay g.unlit").count() == 0   # every line lit
    for sel, box in (("g.det rect", rec.detections[0].box), ("g.dense rect", dense.regions[0].box)):
        x0, y0, x1, y1 = box
        got = [float(page.locator(f"#det-overlay {sel}").get_attribute(k)) for k in ("x", "y", "width", "height")]
        assert got == [y0, n - x1, y1 - y0, x1 - x0], sel


def test_a_portals_cab_avoidance_is_marked_not_scanned_and_a_truck_is_not_called_too_dense(station, page):
    """A linac portal keeps its beam off while the driver's cab passes: those lines read dark but hide
    nothing the beam saw; the screen marks them "not scanned" across the detector, never "cannot
    penetrate", and a linac image is dense only where it carries no information (models.dense)."""
    sign_in(page, station, OFFICER)
    scan = portal_scan(2, PortalSpec(vehicle="lorry", suspect=False))
    tube = scandata.dense_regions(scan.high, scandata.pixel_mm(scan))   # at a tube's 1 %: the dark cab and more
    assert len(tube) > 30 and tube[0].box[1] == 0
    dense = scandata.screen_dense(scan, portal=True)
    [(line0, line1)] = dense.unlit
    assert dense.regions == [] and line0 == 0 and abs(line1 - scan.meta["cab_lines"][1]) <= 2
    live(page, station, scan, Verdict.CLEAR, [], ItemKind.VEHICLE)
    band = page.locator("#det-overlay g.unlit")
    expect(band).to_have_count(1)
    got = [float(band.locator("rect").get_attribute(k)) for k in ("x", "y", "width", "height")]
    assert got == [line0, 0.0, line1 - line0, scan.shape[1]]    # side-on: lines across, the whole detector
    assert band.locator("text").text_content() == "Not scanned (beam off over the cab)"
    inside = page.evaluate("""() => { const g = document.querySelector('#det-overlay g.unlit'),
        t = g.querySelector('text').getBBox(), r = g.querySelector('rect').getBBox();
        return [t.x, t.x + t.width, t.y + t.height, r.x, r.x + r.width, r.y + r.height]; }""")
    assert inside[3] <= inside[0] and inside[1] <= inside[4] and inside[2] <= inside[5]   # the caption stays on the band
    expect(page.locator("#dense-alert")).to_be_hidden()
    expect(page.locator("#det-overlay g.dense")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "tools_portal_not_scanned.png"))
    car = portal_scan(0, PortalSpec(vehicle="saloon", suspect=False))   # 300 kV: the engine block is opaque
    n = len(scandata.screen_dense(car, portal=True).regions)
    assert n >= 1
    live(page, station, car, Verdict.CLEAR, [], ItemKind.VEHICLE)
    note = page.locator("#dense-alert")                    # framed and said, quietly: a vehicle is not held for it
    expect(note).to_be_visible()
    expect(note).to_have_text(f"{n} region too dense to see through, framed: check it when the vehicle is searched." if n == 1
                              else f"{n} regions too dense to see through, framed: check them when the vehicle is searched.")
    assert note.get_attribute("role") == "status" and "note" in note.get_attribute("class")
    expect(page.locator("#det-overlay g.dense")).to_have_count(n)
    page.screenshot(path=str(ARTIFACTS / "tools_portal_dense_note.png"))


def test_without_the_scan_data_the_screen_shows_the_servers_image(station, page):
    page.route("**/scan.bin", lambda route: route.fulfill(status=500, body="{}"))
    sign_in(page, station, OFFICER)
    rec, _ = show(page, station, 28)
    assert "/image.png?mode=colour" in page.get_attribute("#scan", "src")
    assert page.evaluate("document.getElementById('scan').naturalWidth") == 560
    expect(page.locator("#scan-canvas")).to_be_hidden()
    expect(page.locator("#layer")).not_to_have_class("layer data")


def test_the_dense_object_alert_marks_a_lead_block_and_not_a_clean_bag(station, page):
    sign_in(page, station, OFFICER)
    show(page, station, 25, dense=True)
    expect(page.locator("#dense-alert")).to_be_visible()
    assert "Cannot penetrate: 1 region" in page.inner_text("#dense-alert")
    assert page.get_attribute("#dense-alert", "role") == "alert" and page.get_attribute("body", "data-dense") == "1"
    region = page.locator("#det-overlay g.dense rect")
    expect(region).to_have_count(1)
    x, y = float(region.get_attribute("x")), float(region.get_attribute("y"))
    assert abs(x - 40) <= 2 and abs(y - 250) <= 2  # on the lead block
    page.keyboard.press("b")  # hiding the detector's boxes does not hide what cannot be seen through
    expect(region).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "tools_dense_alert.png"))
    show(page, station, 26, dense=False)
    expect(page.locator("#dense-alert")).to_be_hidden()
    expect(page.locator("#det-overlay g.dense")).to_have_count(0)
    assert page.get_attribute("body", "data-dense") is None


def test_zoom_stays_at_the_cursor_up_to_16x_and_the_loupe_magnifies_what_is_under_it(station, page):
    sign_in(page, station, OFFICER)
    show(page, station, 27)
    r = page.locator("#scan-canvas").bounding_box()
    cx, cy = r["x"] + r["width"] * 0.3, r["y"] + r["height"] * 0.7
    scan_point = (0.3 * 560, 0.7 * 360)

    def under_cursor():
        b = page.locator("#scan-canvas").bounding_box()
        return ((cx - b["x"]) / b["width"] * 560, (cy - b["y"]) / b["height"] * 360)

    page.mouse.move(cx, cy)
    for _ in range(40):
        page.mouse.wheel(0, -100)
    page.wait_for_function("S.zoom === 16")
    u, v = under_cursor()
    assert abs(u - scan_point[0]) < 1 and abs(v - scan_point[1]) < 1
    page.keyboard.press("0")
    assert page.evaluate("S.zoom") == 1
    page.keyboard.press("m")
    page.mouse.move(cx, cy)
    loupe = page.locator("#loupe")
    expect(loupe).to_be_visible()
    b = loupe.bounding_box()
    assert abs(b["x"] + b["width"] / 2 - cx) < 2 and abs(b["y"] + b["height"] / 2 - cy) < 2
    centre = page.evaluate("(() => Array.from(document.getElementById('loupe').getContext('2d').getImageData(110, 110, 1, 1).data))()")
    x, y = int(scan_point[0]), int(scan_point[1])
    assert np.abs(pixels(page)[y - 1:y + 2, x - 1:x + 2] - centre[:3]).sum(axis=2).min() <= 3
    page.screenshot(path=str(ARTIFACTS / "tools_loupe.png"))
    page.keyboard.press("m")
    expect(loupe).to_be_hidden()


def test_hotkeys_switch_modes_and_recall_the_last_items(station, page):
    sign_in(page, station, OFFICER)
    recs = [show(page, station, 30 + i)[0] for i in range(3)]
    expect(page.locator("#recall .recall-item")).to_have_count(3)
    page.keyboard.press("3")
    expect(page.locator("#modes button[data-mode='low']")).to_have_class("on")
    page.keyboard.press("[")
    page.wait_for_selector(f"#scan[data-loaded-id='{recs[1].id}']")
    assert page.get_attribute("#banner", "data-id") == recs[1].id
    page.keyboard.press("[")
    page.wait_for_selector(f"#scan[data-loaded-id='{recs[0].id}']")
    page.keyboard.press("]")
    page.wait_for_selector(f"#scan[data-loaded-id='{recs[1].id}']")
    assert page.evaluate("S.mode") == "low"  # the view chosen stays across items
    page.click(f"#recall .recall-item[data-id='{recs[2].id}']")
    page.wait_for_selector(f"#scan[data-loaded-id='{recs[2].id}']")
    page.locator("#note").press_sequentially("lh[]")  # typing a note is not a hotkey
    assert page.evaluate("S.mode") == "low" and page.get_attribute("#banner", "data-id") == recs[2].id
    page.click("#signout")
    page.wait_for_selector("#view-signin:not([hidden])")
    expect(page.locator("#recall .recall-item")).to_have_count(0)  # the next officer does not inherit the list
    assert page.evaluate("document.getElementById('scan-canvas').width") == 0
