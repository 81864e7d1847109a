"""`detect_file` and default model resolution behind `edge detect`."""

from __future__ import annotations

import json
import shutil

import pytest

from models.cli import default_model_dir, detect_file
from models.errors import ManifestError
from models.scan import Scan, save_scan
from models.testgraphs import air, paint_square


def test_detect_file_prints_label_score_box(fcos_dir, tmp_path):
    high, low = air(120, 100)
    box = paint_square(high, low, 36, 52, "organic")
    path = save_scan(Scan(high, low, {"pixel_mm": 1.0}), tmp_path / "bag.npz")
    found = detect_file(path, fcos_dir)
    assert [(d["label"], d["box"]) for d in found] == [("organic", list(box))]
    assert 0.5 < found[0]["score"] <= 1
    json.dumps(found)


def test_default_model_prefers_cpe_tiny_then_the_only_one(fcos_dir, tmp_path):
    zoo = tmp_path / "zoo"
    with pytest.raises(ManifestError, match="found \\[\\]"):
        default_model_dir(zoo)
    shutil.copytree(fcos_dir, zoo / "other")
    assert default_model_dir(zoo) == zoo / "other"
    shutil.copytree(fcos_dir, zoo / "third")
    with pytest.raises(ManifestError, match="exactly one package"):
        default_model_dir(zoo)
    shutil.copytree(fcos_dir, zoo / "cpe-tiny")
    assert default_model_dir(zoo) == zoo / "cpe-tiny"
