"""Fixtures: the example stations' twins, a model package, a real Mosquitto for the hub round trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from central_sync.devtools import Mosquitto
from edge.auth import add_user
from edge.diag.cli import main_diag
from edge.store import Store
from models.testgraphs import write_package

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "zoo" / "cpe-tiny"
STATIONS = ("conveyor", "gantry", "xray")
PROMPT_S = 20  # the twin acts at once; a prompt left waiting this long means a fault (it aborts the phase)
TECH_BADGE, TECH_PIN = "C1000001", "2468"  # the technician signed in for every run


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The shipped model when it is installed, else a small test package with the same manifest contract."""
    if (SHIPPED / "manifest.toml").is_file():
        return SHIPPED
    return write_package(tmp_path_factory.mktemp("model") / "test-det", backbone=True)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    with Mosquitto(tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture
def twin(monkeypatch, model_dir, broker, tmp_path):
    """Run from the repository root (the examples' relative paths) with the model, broker and data_dir of the test."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("EDGE_MODEL__DIR", str(model_dir))
    monkeypatch.setenv("EDGE_SYNC__PORT", str(broker.port))
    monkeypatch.setenv("EDGE_STATION__DATA_DIR", str(tmp_path / "data"))
    with Store(tmp_path / "data") as store:
        add_user(store, TECH_BADGE, "CI Technician", "technician", TECH_PIN)


def diag(out: Path, *args: str, technician: str = TECH_BADGE, pin: str = TECH_PIN) -> tuple[int, dict]:
    """`edge diag` in-process, signed in with badge and PIN (on stdin); returns the exit status and the latest record."""
    rc = main_diag(["--out", str(out), "--technician", technician, "--pin-stdin", "--prompt-timeout", str(PROMPT_S),
                    *args], stdin=io.StringIO(pin + "\n"))
    records = sorted((out / "records").glob("*.json"))
    return rc, json.loads(records[-1].read_text()) if records else {}


def phase(record: dict, name: str) -> dict:
    return next(p for p in record["phases"] if p["name"] == name)
