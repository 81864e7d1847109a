"""Rendering for the screen: views, filters, boxes; strip-parallel analysis equals the whole-scan one."""

import cv2
import numpy as np
import pytest

from edge.web import render
from edge.web.demo import synthetic_scan
from models.scan import Scan


@pytest.fixture(scope="module")
def bag():
    scan, truth = synthetic_scan(np.random.default_rng(3), threat=True)
    return scan, truth


def test_strips_give_exactly_the_whole_scan_result():
    rng = np.random.default_rng(0)
    high = rng.integers(500, 65535, (render.STRIP * 3 + 77, 150), dtype=np.uint16)
    low = (high * rng.uniform(0.5, 1.0, high.shape)).astype(np.uint16)
    whole = (render._material_class or render._ratio_classes)(high, low)
    assert np.array_equal(render.material_classes(high, low), whole)
    if render.has_material_colour():
        assert np.array_equal(render.colour_view(high, low), render._colourise(high, low))


def test_views_differ_as_officers_expect(bag):
    scan, truth = bag
    grey = render.view(scan, "grey")
    assert np.array_equal(render.view(scan, "negative"), 255 - grey)
    x0, y0, x1, y1 = (int(v) for v in truth[0]["box"])
    steel = (slice(y0 + 2, y0 + 12), slice(x0 + 10, x0 + 90))  # the pistol's slide
    assert render.material_classes(scan.high, scan.low)[steel].mean() >= render.INORGANIC
    organic, inorganic = render.view(scan, "organic"), render.view(scan, "inorganic")
    assert organic[steel].mean() > inorganic[steel].mean() + 60  # metal faded in organic-only, kept in inorganic
    clothes = (slice(300, 320), slice(60, 100))
    assert inorganic[clothes].mean() > organic[clothes].mean() + 30  # and the other way round for textile


def test_modes_reuse_one_analysis_per_scan(bag, monkeypatch):
    scan, _ = bag
    calls = []
    real = render.colour_view
    monkeypatch.setattr(render, "colour_view", lambda h, lo: calls.append(1) or real(h, lo))
    for mode in ("colour", "organic", "inorganic", "colour"):
        render.view(scan, mode, key=("bag", None))
    assert len(calls) == 1
    render.view(scan, "colour", key=("another bag", None))
    assert len(calls) == 2


def test_boxes_and_captions_are_drawn(bag):
    scan, truth = bag
    box = tuple(truth[0]["box"])
    png = render.render_png(scan, "grey", [render.Box(box, "1 Firearm 0.91")])
    img = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert img.shape[:2] == scan.shape
    x0, y0, x1, y1 = (int(v) for v in box)
    edge = img[y0 + 20, x0]
    assert tuple(edge) == render.DETECTION_RGB
    assert (img[max(0, y0 - 20):y0, x0:x0 + 60] == render.DETECTION_RGB).all(axis=2).any()  # the caption tab


def test_grey_view_without_material_module(monkeypatch):
    monkeypatch.setattr(render, "_colourise", None)
    scan = Scan(np.full((20, 30), 65535, np.uint16), np.full((20, 30), 65535, np.uint16))
    assert (render.colour_view(scan.high, scan.low) == 255).all()


def test_a_portal_scan_is_drawn_side_on_with_its_boxes_on_the_same_pixels() -> None:
    """Front (line 0) at the left, road (column 0) at the bottom; a box still frames its object."""
    lines, pixels = 300, 120
    high = np.full((lines, pixels), 60000, np.uint16)
    high[200:240, 10:30] = 2000        # an object near the road, late in the scan
    img = render.grey_view(high)
    turned, (box,) = render.side_on(img, [render.Box((10.0, 200.0, 30.0, 240.0), "")])
    assert turned.shape[:2] == (pixels, lines)
    x0, y0, x1, y1 = (int(v) for v in box.box)
    assert (x0, x1) == (200, 240) and (y0, y1) == (pixels - 30, pixels - 10)  # right of the middle, near the bottom
    assert turned[y0:y1, x0:x1].max() < 20 and turned[:y0].min() > 200
