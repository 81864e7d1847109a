"""Pure pre/post-processing: normalisation, decoders on hand-made outputs, NMS."""

from __future__ import annotations

import numpy as np
import pytest

from models.decode import Boxes, decode_fcos, decode_yolov5, decode_yolov8, nms, normalise
from models.errors import InferenceError


def test_attenuation_normalisation():
    t = np.array([[65535, 655, 6, 0]], np.uint16)
    a = normalise(t)
    assert a.dtype == np.float32
    assert a[0, 0] == 0.0 and a[0, 3] == 1.0 and a[0, 2] == 1.0
    assert a[0, 1] == pytest.approx(0.5, abs=1e-3)


def test_fcos_keeps_local_maxima_above_their_class_threshold():
    scores = np.zeros((1, 2, 4, 4), np.float32)
    scores[0, 0, 1, 1], scores[0, 0, 1, 2] = 0.9, 0.8   # neighbour of a stronger cell: dropped
    scores[0, 1, 3, 3] = 0.6                             # under organic's 0.7
    scores[0, 0, 3, 0] = 0.55
    ltrb = np.zeros((1, 4, 4, 4), np.float32)
    ltrb[0, :, 1, 1] = [2, 3, 4, 5]
    ltrb[0, :, 3, 0] = [1, 1, 1, 1]
    got = decode_fcos({"scores": scores, "ltrb": ltrb}, np.array([0.5, 0.7], np.float32), stride=8)
    order = np.argsort(-got.scores)
    assert got.xyxy[order].tolist() == [[10, 9, 16, 17], [3, 27, 5, 29]]
    assert got.classes[order].tolist() == [0, 0]


def test_fcos_without_its_outputs_is_an_inference_error():
    with pytest.raises(InferenceError, match="lack 'ltrb'"):
        decode_fcos({"scores": np.ones((1, 1, 2, 2), np.float32)}, np.array([0.5], np.float32), 8)


def test_yolov8_reports_every_class_over_its_own_threshold():
    out = np.array([[[50], [50], [20], [10], [0.4], [0.6]]], np.float32)  # [1, 4+2, 1]
    got = decode_yolov8({"output0": out}, np.array([0.3, 0.7], np.float32), None)
    assert got.xyxy.tolist() == [[40, 45, 60, 55]] and got.classes.tolist() == [0]


def test_yolov5_score_is_objectness_times_class():
    out = np.array([[[50, 50, 20, 10, 0.5, 0.9, 0.2], [10, 10, 4, 4, 0.1, 1.0, 0.0]]], np.float32)
    got = decode_yolov5({"output0": out}, np.array([0.4, 0.4], np.float32), None)
    assert got.scores.tolist() == [pytest.approx(0.45)] and got.classes.tolist() == [0]


def test_yolo_output_of_the_wrong_width_is_an_inference_error():
    with pytest.raises(InferenceError, match=r"expected \[1, 7, N\]"):
        decode_yolov5({"output0": np.zeros((1, 10, 9), np.float32)}, np.array([0.5, 0.5], np.float32), None)


def test_nms_is_per_class():
    b = Boxes(np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], np.float32),
              np.array([0.9, 0.8, 0.7], np.float32), np.array([0, 0, 1], np.int32))
    kept = nms(b)
    assert sorted(zip(kept.classes.tolist(), kept.scores.tolist())) == [(0, pytest.approx(0.9)), (1, pytest.approx(0.7))]


@pytest.mark.parametrize("seed", range(20))
def test_fcos_peaks_equal_a_brute_force_3x3_maximum(seed):
    rng = np.random.default_rng(seed)
    scores = rng.choice(np.array([0.1, 0.6, 0.7, 0.8], np.float32), size=(1, 3, 9, 7))  # many ties
    ltrb = np.full((1, 4, 9, 7), 4.0, np.float32)
    thr = np.array([0.5, 0.65, 0.75], np.float32)
    padded = np.pad(scores[0], ((0, 0), (1, 1), (1, 1)), constant_values=-1)
    want = set()
    for k, r, c in zip(*np.nonzero(scores[0] >= thr[:, None, None])):
        if scores[0, k, r, c] >= padded[k, r : r + 3, c : c + 3].max():
            want.add((int(k), (c + 0.5) * 8 - 4, (r + 0.5) * 8 - 4))
    got = decode_fcos({"scores": scores, "ltrb": ltrb}, thr, stride=8)
    # NMS removes nothing here: boxes of 8 px on an 8 px grid never overlap
    assert {(int(k), float(b[0]), float(b[1])) for k, b in zip(got.classes, got.xyxy)} == want
