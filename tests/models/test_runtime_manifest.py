"""Manifest validation and the sha256 check that comes before onnxruntime sees the model."""

from __future__ import annotations

import shutil

import onnxruntime
import pytest

from models.errors import ManifestError, ModelIntegrityError
from models.runtime import load_detector


@pytest.fixture
def pkg(fcos_dir, tmp_path):
    dst = tmp_path / "pkg"
    shutil.copytree(fcos_dir, dst)
    return dst


@pytest.fixture
def no_session(monkeypatch):
    """Fail the test if an onnxruntime session is created."""

    def refuse(*a, **k):
        raise AssertionError("a session was created for an unverified model")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)


def _edit(pkg, old, new):
    path = pkg / "manifest.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_tampered_model_is_refused_before_loading(pkg, no_session):
    data = bytearray((pkg / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (pkg / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256.*refusing to load a tampered or truncated model"):
        load_detector(pkg)


def test_truncated_model_is_refused(pkg, no_session):
    data = (pkg / "model.onnx").read_bytes()
    (pkg / "model.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelIntegrityError, match=f"{len(data) // 3} bytes"):
        load_detector(pkg)


def test_missing_model_file_is_refused(pkg, no_session):
    (pkg / "model.onnx").unlink()
    with pytest.raises(ModelIntegrityError, match="cannot be read"):
        load_detector(pkg)


def test_missing_manifest(pkg):
    (pkg / "manifest.toml").unlink()
    with pytest.raises(ManifestError, match="has no manifest.toml"):
        load_detector(pkg)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('pixel_mm = 1.0\n', 'pixel_mm = 1.0\ncolour = "blue"\n', "input.colour"),
        ('"high", "low"', '"high", "mid"', "input.channels.1"),
        ("stride = 8\n", "", "output"),
        ('format = "cpe-fcos-v1"', 'format = "detr"', "output.format"),
        ("threshold = 0.5", "threshold = 2", "classes.0.threshold"),
        ("threshold = 0.5", "threshold = true", "classes.0.threshold"),  # was read as 1.0
        ('version = "1.0.0"\n', "", "version"),
        ('name = "organic"', 'name = "metal"', "classes"),
    ],
)
def test_manifest_errors_name_key_and_file(pkg, old, new, key):
    _edit(pkg, old, new)
    with pytest.raises(ManifestError) as err:
        load_detector(pkg)
    assert f"key {key!r}" in str(err.value)
    assert str(pkg / "manifest.toml") in str(err.value)


def test_unreadable_toml_names_the_file(pkg):
    (pkg / "manifest.toml").write_text("name = [unclosed\n")
    with pytest.raises(ManifestError, match="not readable TOML"):
        load_detector(pkg)


def test_manifest_disagreeing_with_graph_is_refused(pkg):
    _edit(pkg, "size = [128, 128]", "size = [256, 256]")
    with pytest.raises(ManifestError, match=r"takes input .* manifest implies \[1, 2, 256, 256\]"):
        load_detector(pkg)


def test_three_channel_manifest_for_two_channel_graph_is_refused(pkg):
    _edit(pkg, '"high", "low"', '"high", "low", "high"')
    with pytest.raises(ManifestError, match="takes input"):
        load_detector(pkg)


def test_class_count_disagreeing_with_outputs_is_refused(pkg):
    path = pkg / "manifest.toml"
    path.write_text(path.read_text().replace("[evaluation]", '[[classes]]\nname = "knife"\nthreshold = 0.5\n\n[evaluation]'))
    with pytest.raises(ManifestError, match=r"3 classes\) needs scores \[1, 3, 16, 16\]"):
        load_detector(pkg)


def test_wrong_stride_is_refused(pkg):
    _edit(pkg, "stride = 8", "stride = 16")
    with pytest.raises(ManifestError, match="stride 16"):
        load_detector(pkg)


@pytest.mark.parametrize("fmt", ["yolov8", "yolov5"])
def test_yolo_class_count_disagreeing_with_output_is_refused(make_package, tmp_path, fmt):
    pkg = tmp_path / "y"
    shutil.copytree(make_package(fmt), pkg)
    path = pkg / "manifest.toml"
    path.write_text(path.read_text().replace("[evaluation]", '[[classes]]\nname = "knife"\nthreshold = 0.5\n\n[evaluation]'))
    with pytest.raises(ManifestError, match="3 classes"):
        load_detector(pkg)


def test_garbage_model_with_a_matching_hash_is_refused_clearly(pkg):
    import hashlib

    garbage = b"not an onnx model" * 10
    (pkg / "model.onnx").write_bytes(garbage)
    _edit(pkg, _sha(pkg), hashlib.sha256(garbage).hexdigest())
    with pytest.raises(ManifestError, match="is not a loadable ONNX model"):
        load_detector(pkg)


def test_detector_from_config(fcos_dir):
    from models.runtime import DetectorConfig, detector_from_config

    cfg = DetectorConfig.model_validate({"model_dir": str(fcos_dir), "tile_overlap": 32,
                                         "thresholds": {"metal": 0.7}})
    det = detector_from_config(cfg)
    assert det.overlap == 32 and det.thresholds == {"metal": pytest.approx(0.7), "organic": 0.5}
    with pytest.raises(ValueError, match="extra"):
        DetectorConfig.model_validate({"model_dir": str(fcos_dir), "treshold": 1})


def _sha(pkg) -> str:
    line = next(x for x in (pkg / "manifest.toml").read_text().splitlines() if x.startswith("sha256"))
    return line.split('"')[1]


def _dynamic(make_package, tmp_path, size: int):
    """A package whose graph leaves the tile's height and width open: its manifest alone says `size`."""
    pkg = tmp_path / "dyn"
    shutil.copytree(make_package(dynamic=True), pkg)
    _edit(pkg, "size = [128, 128]", f"size = [{size}, {size}]")
    return pkg


def test_a_model_with_an_open_tile_size_runs_the_tile_its_manifest_names(make_package, tmp_path):
    assert load_detector(_dynamic(make_package, tmp_path, 256), overlap=32).tile_size == (256, 256)


def test_a_tile_larger_than_the_stations_limit_is_refused_before_onnxruntime_sees_the_model(make_package, tmp_path,
                                                                                           no_session):
    """A graph that leaves the tile's size open took tiles as large as its manifest asked: 262144 x 262144 pixels
    needed 512 GiB at warm-up, and the MemoryError (no ModelError) took the station down at every start."""
    pkg = _dynamic(make_package, tmp_path, 262144)
    with pytest.raises(ManifestError) as refused:
        load_detector(pkg)
    assert str(refused.value) == (f"model test-det 1.0.0 asks for tiles of 262144 x 262144 pixels ([input] size), "
                                  f"more than the 2048 pixels each way this station runs ([model] max_tile_px), so it "
                                  f"is not loaded (package {pkg})")
    with pytest.raises(ManifestError, match="more than the 1024 pixels each way"):
        load_detector(_dynamic(make_package, tmp_path / "b", 1088), max_tile_px=1024)


def test_a_tile_the_machine_has_no_memory_for_is_a_model_error(make_package, tmp_path):
    """Within a limit set too high, the warm-up's MemoryError is an InferenceError naming the tile."""
    from models.errors import InferenceError

    with pytest.raises(InferenceError, match=r"on a tile of 262144 x 262144 pixels and 2 channels: out of memory"):
        load_detector(_dynamic(make_package, tmp_path, 262144), max_tile_px=262144)
