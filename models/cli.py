"""What `edge detect FILE.npz [--model DIR] [--force]` calls: model resolution and one-file detection.

Without `--model`, the model is chosen among the zoo's packages by manifest (`select_model`): the
one whose `[applies]` fits the scan's item kind, pixel pitch and energy. Stations choose the same
way from their item kind and scanner settings when `[model] dir` is not set.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from models.applicability import ScanFacts, metadata_problem, scan_problem
from models.errors import ManifestError, NoApplicableModel, NotApplicable
from models.manifest import MANIFEST_FILE, Manifest, load_manifest
from models.runtime import load_detector
from models.scan import load_scan

ZOO = Path(__file__).resolve().parent / "zoo"
DEFAULT_MODEL = "cpe-tiny"
log = structlog.get_logger("models.cli")


def default_model_dir(zoo: Path = ZOO) -> Path:
    """models/zoo/cpe-tiny when present, else the only package in the zoo; ManifestError otherwise."""
    if (zoo / DEFAULT_MODEL / MANIFEST_FILE).is_file():
        return zoo / DEFAULT_MODEL
    found = sorted(p.parent for p in zoo.glob(f"*/{MANIFEST_FILE}"))
    if len(found) == 1:
        return found[0]
    names = [p.name for p in found]
    raise ManifestError(f"no default model in {zoo}: expected {DEFAULT_MODEL} or exactly one package, found {names}")


def zoo_manifests(zoo: Path = ZOO) -> list[tuple[Path, Manifest]]:
    """The zoo's packages with readable manifests, the default model first, then by name."""
    dirs = sorted((p.parent for p in zoo.glob(f"*/{MANIFEST_FILE}")), key=lambda d: (d.name != DEFAULT_MODEL, d.name))
    found = []
    for d in dirs:
        try:
            found.append((d, load_manifest(d)))
        except ManifestError as exc:
            log.warning("model.manifest_unreadable", package=str(d), error=str(exc))
    return found


def select_model(facts: ScanFacts, zoo: Path = ZOO) -> Path:
    """The package under `zoo` whose `[applies]` fits `facts` (the default model first when several do).

    Raises NoApplicableModel naming why each package does not fit.
    """
    packages = zoo_manifests(zoo)
    why = []
    for d, manifest in packages:
        problem = metadata_problem(manifest, facts)
        if problem is None:
            return d
        why.append(problem)
    if not packages:
        raise NoApplicableModel(f"no model package under {zoo} can judge {facts.describe()}")
    raise NoApplicableModel(f"no model under {zoo} is made for {facts.describe()}: {'; '.join(why)}")


def detect_file(path: str | Path, model_dir: str | Path | None = None, *, force: bool = False) -> list[dict]:
    """Detections of one scan file as dicts (label, score, box in pixels).

    The model is `model_dir` or the zoo's package made for the scan. A scan the model is not made
    for raises NotApplicable before the model is loaded, unless `force` (then with no package made
    for it, the default model judges it).
    """
    scan = load_scan(path)
    facts = ScanFacts.of_meta(scan.meta, scan.shape)
    if model_dir is None:
        model_dir = _chosen(facts, force)
    problem = scan_problem(load_manifest(model_dir), facts, scan.high, scan.low)
    if problem is not None and not force:
        raise NotApplicable(f"scan {path}: {problem} (--force judges it anyway)")
    detector = load_detector(model_dir, warmup_runs=1)
    return [d.as_dict() for d in detector.detect(scan)]


def _chosen(facts: ScanFacts, force: bool) -> Path:
    try:
        return select_model(facts)
    except NoApplicableModel:
        if not force:
            raise
        return default_model_dir()
