"""Tiling with overlap and merging across tiles: an object across a seam is found once."""

from __future__ import annotations

import numpy as np
import pytest

from models.decode import Boxes
from models.scan import Scan
from models.testgraphs import air, paint_square, scatter
from models.tiling import TileBoxes, axis_starts, merge_tiles


@pytest.mark.parametrize(
    ("length", "starts"),
    [(50, [0]), (128, [0]), (129, [0, 1]), (224, [0, 96]), (320, [0, 96, 192]), (321, [0, 96, 192, 193])],
)
def test_axis_starts_cover_with_overlap(length, starts):
    assert axis_starts(length, 128, 32) == starts


def test_object_across_both_seams_is_found_once_with_its_box(detector):
    high, low = air(224, 224)  # tiles [0,128) and [96,224) each way; overlap [96,128)
    want = paint_square(high, low, 100, 108)  # crosses the row seam at 128 and the column seam at 128
    found = detector.detect(Scan(high, low))
    assert [(d.label, d.box) for d in found] == [("metal", want)]


def test_many_objects_on_a_multi_tile_scan_each_found_once(detector):
    high, low, objects = scatter(616, 520, 300, seed=3)
    assert detector.tile_grid(high.shape) == ([0, 96, 192, 288, 384, 480, 488], [0, 96, 192, 288, 384, 392])
    found = sorted((d.label, d.box) for d in detector.detect(Scan(high, low)))
    assert found == sorted(objects)
    assert len(objects) >= 15


def _tile(y0, x0, boxes, classes=None, scores=None, size=128):
    xyxy = np.array(boxes, np.float32)
    n = len(xyxy)
    return TileBoxes(y0, x0, size, size, Boxes(xyxy, np.array(scores or [0.9] * n, np.float32),
                                               np.array(classes or [0] * n, np.int32)))


def test_cut_halves_on_either_side_of_a_seam_are_united():
    left = _tile(0, 0, [[100, 10, 128, 40]])       # touches the inner right edge of tile 0
    right = _tile(0, 96, [[96, 10, 150, 40]], scores=[0.8])  # touches the inner left edge of tile 1
    merged = merge_tiles([left, right], 128, 224)
    assert merged.xyxy.tolist() == [[96, 10, 150, 40]]
    assert merged.scores.tolist() == pytest.approx([0.9])


def test_cut_box_inside_a_whole_box_of_another_tile_is_absorbed():
    whole = _tile(0, 96, [[110, 10, 150, 50]], scores=[0.7])
    cut = _tile(0, 0, [[110, 12, 128, 48]], scores=[0.95])
    merged = merge_tiles([cut, whole], 128, 224)
    assert merged.xyxy.tolist() == [[110, 10, 150, 50]]


def test_distinct_objects_and_classes_are_not_merged():
    tile = _tile(0, 0, [[10, 10, 40, 40], [42, 10, 72, 40], [10, 10, 40, 40]], classes=[0, 0, 1])
    other = _tile(0, 96, [[100, 60, 120, 80]])  # not cut, no overlap with anything
    merged = merge_tiles([tile, other], 128, 224)
    assert len(merged) == 4


def test_boxes_are_clipped_to_the_scan():
    merged = merge_tiles([_tile(0, 0, [[-5, -3, 60, 200]])], 100, 50)
    assert merged.xyxy.tolist() == [[0, 0, 50, 100]]
