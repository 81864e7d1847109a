"""Fixtures: model packages built with onnx.helper (models.testgraphs) and scans with known objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime import Detector, load_detector
from models.testgraphs import write_package

TILE = 128
OVERLAP = 32  # keeps every tile origin on the 8-pixel grid of the test graphs


@pytest.fixture(scope="session")
def make_package(tmp_path_factory):
    """Factory: a fresh model package directory for the given layout."""

    def make(fmt: str = "cpe-fcos-v1", channels: tuple[str, ...] = ("high", "low"), **kw) -> Path:
        return write_package(tmp_path_factory.mktemp("pkg") / "model", fmt, TILE, channels, **kw)

    return make


@pytest.fixture(scope="session")
def fcos_dir(make_package) -> Path:
    return make_package()


@pytest.fixture(scope="session")
def detector(fcos_dir) -> Detector:
    return load_detector(fcos_dir, overlap=OVERLAP)
