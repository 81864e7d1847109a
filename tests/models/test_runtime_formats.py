"""Each output layout (cpe-fcos-v1, yolov8, yolov5), 2 and 3 input channels, per-class thresholds."""

from __future__ import annotations

import pytest

from models.errors import InferenceError
from models.runtime import ThresholdError, load_detector
from models.scan import Scan
from models.testgraphs import air, paint_square

LAYOUTS = [
    ("cpe-fcos-v1", ("high", "low")),
    ("yolov8", ("high", "low")),
    ("yolov8", ("high", "low", "high")),
    ("yolov5", ("high", "low")),
    ("yolov5", ("low", "high", "low")),
]


@pytest.mark.parametrize("fmt", ["yolov8", "yolov5"])
def test_yolo_output_in_the_other_orientation_is_read(make_package, fmt):
    det = load_detector(make_package(fmt, transposed=True), overlap=32)
    scan, want = _scene()
    assert sorted((d.label, d.box) for d in det.detect(scan)) == want


def _scene():
    high, low = air(296, 200)  # every tile origin on the 8-pixel grid
    want = [
        ("metal", paint_square(high, low, 20, 36)),
        ("organic", paint_square(high, low, 108, 100, "organic")),
        ("metal", paint_square(high, low, 228, 164)),
    ]
    return Scan(high, low), sorted(want)


@pytest.mark.parametrize(("fmt", "channels"), LAYOUTS)
def test_each_layout_finds_each_object_once_with_its_box(make_package, fmt, channels):
    det = load_detector(make_package(fmt, channels), overlap=32)
    scan, want = _scene()
    got = sorted((d.label, d.box) for d in det.detect(scan))
    assert got == want
    assert all(d.score > 0.9 for d in det.detect(scan))


@pytest.mark.parametrize(("fmt", "channels"), LAYOUTS)
def test_air_gives_no_detection(make_package, fmt, channels):
    det = load_detector(make_package(fmt, channels), overlap=32)
    assert det.detect(Scan(*air(200, 300))) == []


def test_threshold_override_applies_per_class(detector):
    scan, _ = _scene()
    strict = detector.with_thresholds({"organic": 0.9999})
    assert sorted(d.label for d in strict.detect(scan)) == ["metal", "metal"]
    assert strict.info.thresholds == {"metal": 0.5, "organic": pytest.approx(0.9999)}
    assert detector.info.thresholds["organic"] == 0.5
    assert len(detector.detect(scan)) == 3


@pytest.mark.parametrize("override", [{"knife": 0.5}, {"metal": 0.0}, {"metal": 1.5}, {"metal": True}])
def test_bad_threshold_override_is_refused(detector, override):
    with pytest.raises(ThresholdError):
        detector.with_thresholds(override)


def test_info_and_measured_times(detector, fcos_dir):
    info = detector.info
    assert (info.name, info.version, info.format) == ("test-det", "1.0.0", "cpe-fcos-v1")
    assert info.classes == ("metal", "organic")
    assert info.providers[-1] == "CPUExecutionProvider"
    assert detector.bare_tile_seconds > 0 and detector.tile_seconds > 0
    one, many = detector.estimate_seconds((100, 100)), detector.estimate_seconds((1000, 1000))
    assert 0 < one < many
    assert info.as_dict()["tile_size"] == [128, 128]


def test_unavailable_provider_falls_back_to_cpu(fcos_dir):
    det = load_detector(fcos_dir, providers=["NoSuchExecutionProvider"], intra_op_threads=2)
    assert det.info.providers == ("CPUExecutionProvider",)
    scan, want = _scene()
    assert len(det.detect(scan)) == len(want)


def test_concurrent_detection_from_several_threads_matches_sequential(detector):
    from concurrent.futures import ThreadPoolExecutor

    from models.testgraphs import scatter

    scans = [Scan(*scatter(300 + 40 * i, 260, 30, seed=i)[:2]) for i in range(8)]
    sequential = [detector.detect(s) for s in scans]
    with ThreadPoolExecutor(4) as ex:
        assert list(ex.map(detector.detect, scans * 2)) == sequential * 2


def test_tile_tensor_pads_with_air(detector):
    high, low = air(50, 70)
    paint_square(high, low, 4, 4)
    t = detector.tile_tensor(high, low, 0, 0)
    assert t.shape == (1, 2, 128, 128)
    assert t[0, :, 50:, :].max() == 0 and t[0, :, :, 70:].max() == 0
    assert t[0, 0, 4:36, 4:36].min() > 0.99


def test_tile_buffer_reuse_never_leaks_an_earlier_scan(detector):
    big_h, big_l = air(128, 128)
    big_h[:], big_l[:] = 0, 0            # opaque everywhere
    detector.tile_tensor(big_h, big_l, 0, 0)
    for shape in [(60, 128), (128, 50), (30, 20), (128, 128)]:
        high, low = air(*shape)
        t = detector.tile_tensor(high, low, 0, 0)
        assert t.max() == 0.0, shape
        detector.tile_tensor(big_h, big_l, 0, 0)


def test_onnxruntime_failure_is_translated_to_inference_error(detector):
    import numpy as np

    from models.errors import InferenceError

    with pytest.raises(InferenceError, match=r"onnxruntime failed on model test-det 1.0.0 with input \[1, 2, 10, 10\]"):
        detector._engine.run(np.zeros((1, 2, 10, 10), np.float32))


@pytest.mark.parametrize("fmt", ["cpe-fcos-v1", "yolov8"])
def test_a_model_giving_nan_is_an_inference_error_never_an_empty_result(make_package, fmt):
    """NaN passes no threshold: read as it comes, a broken model (overflow, corrupt weights) finds nothing and
    a model that may clear clears. It loads (blank tiles give finite values) and fails on what it would find."""
    det = load_detector(make_package(fmt, nan_on_objects=True), overlap=32)
    assert det.detect(Scan(*air(200, 300))) == []
    scan, _ = _scene()
    with pytest.raises(InferenceError, match=r"gave NaN or infinite values \(\d+ in (scores|output0)\)"):
        det.detect(scan)


@pytest.mark.parametrize("fmt", ["cpe-fcos-v1", "yolov8", "yolov5"])
def test_a_model_whose_scores_are_not_probabilities_is_refused_at_load_and_its_result_never_used(make_package, fmt):
    """Scores are read against thresholds in (0, 1]: a model exporting logits (its sigmoid left out) loaded and ran,
    a faint object's logit 0.2 (probability 0.55) below a 0.5 threshold, the item cleared. Now it is refused at load
    in one sentence with the range, and scores outside [0, 1] on a scan are an inference error (manual)."""
    from models.errors import ManifestError

    with pytest.raises(ManifestError, match=r"is refused: on a blank tile the model's .*scores range from -\d+ to "):
        load_detector(make_package(fmt, score_op="Identity"), overlap=32)
    det = load_detector(make_package(fmt, score_op="Relu"), overlap=32)  # 0 on blank tiles, about 15 on objects
    assert det.detect(Scan(*air(200, 300))) == []
    scan, _ = _scene()
    with pytest.raises(InferenceError, match=r"scores range from 0 to 1[56][.0-9]*, but its output format gives probabilities"):
        det.detect(scan)
