"""What `edge detect FILE.npz [--model DIR]` calls: default model resolution and one-file detection."""

from __future__ import annotations

from pathlib import Path

from models.errors import ManifestError
from models.manifest import MANIFEST_FILE
from models.runtime import load_detector
from models.scan import load_scan

ZOO = Path(__file__).resolve().parent / "zoo"
DEFAULT_MODEL = "cpe-tiny"


def default_model_dir(zoo: Path = ZOO) -> Path:
    """models/zoo/cpe-tiny when present, else the only package in the zoo; ManifestError otherwise."""
    if (zoo / DEFAULT_MODEL / MANIFEST_FILE).is_file():
        return zoo / DEFAULT_MODEL
    found = sorted(p.parent for p in zoo.glob(f"*/{MANIFEST_FILE}"))
    if len(found) == 1:
        return found[0]
    names = [p.name for p in found]
    raise ManifestError(f"no default model in {zoo}: expected {DEFAULT_MODEL} or exactly one package, found {names}")


def detect_file(path: str | Path, model_dir: str | Path | None = None) -> list[dict]:
    """Detections of one scan file as dicts (label, score, box in pixels)."""
    detector = load_detector(model_dir if model_dir is not None else default_model_dir(), warmup_runs=1)
    return [d.as_dict() for d in detector.detect(load_scan(path))]
