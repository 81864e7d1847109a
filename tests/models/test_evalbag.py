"""The evaluation bag generator (models.evalbag): independent of the training simulator, deterministic
per seed, every threat family boxed where it adds matter, scans inside the shipped model's domain."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xraylib")

from models.applicability import content_problem  # noqa: E402
from models.evalbag import LABELS, bag_scan  # noqa: E402
from models.evalbag import items  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = sorted(p for p in (ROOT / "models" / "evalbag").glob("*.py") if p.name != "evaluate.py")


def attenuation(plane: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(plane.astype(np.float64) / 65535.0, 1e-4, 1.0))


def test_generator_modules_import_nothing_from_the_training_simulator():
    assert len(GENERATOR) >= 5
    for path in GENERATOR:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith(("models.training", "models.evalgen")) for n in names), (path.name, names)


def test_rendering_a_bag_loads_no_training_module():
    code = ("import sys; from models.evalbag import bag_scan; bag_scan(3); "
            "print(sorted(m for m in sys.modules if m.startswith('models.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "models.evalbag.bag" in out and "models.training" not in out and "models.evalgen" not in out


def test_same_seed_same_scan_other_seed_other_scan():
    a, b = bag_scan(11), bag_scan(11)
    assert a.sha256() == b.sha256() and a.meta == b.meta
    assert bag_scan(12).sha256() != a.sha256()
    assert a.high.shape == (640, 640) and a.high.dtype == np.uint16


@pytest.mark.parametrize("label", LABELS)
def test_every_threat_is_boxed_on_the_matter_it_adds(label):
    with_it, without = bag_scan(40, contents=[label]), bag_scan(40, contents=[])
    (truth,) = with_it.meta["truth"]
    assert truth["label"] == label and without.meta["truth"] == []
    x0, y0, x1, y1 = (int(v) for v in truth["box"])
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 640 and (x1 - x0) * (y1 - y0) >= 64
    added = attenuation(with_it.high)[y0:y1, x0:x1].mean() - attenuation(without.high)[y0:y1, x0:x1].mean()
    assert added > 0.02, (label, truth["kind"], added)


def test_families_cover_the_layouts_and_hard_negatives_the_issue_names():
    rng = np.random.default_rng(0)
    phones = {items.phone(rng).name for _ in range(80)}
    assert phones == {f"phone_{k}" for k in ("low_cell", "centre_cell", "side_board", "l_board", "feature")}
    cigarettes = [items.cigarettes(rng) for _ in range(60)]
    ribbed = {any(p.material == "tobacco_cut" and p.thickness(np.array([p.bounds[0] + 5.0]), np.array([p.bounds[1] + 3.9]))[0]
                  != p.thickness(np.array([p.bounds[0] + 5.0]), np.array([p.bounds[1] + 0.1]))[0] for p in c.parts)
              for c in cigarettes}
    assert ribbed == {True, False}   # packs with visible rods and packs without
    assert {"laptop", "tablet", "ereader", "charger", "camera", "drill", "hair_dryer", "umbrella", "belt", "cans",
            "jar", "shoes", "toy", "book"} <= set(items.GOODS)
    assert all(items.GOODS[g][0](rng).label is None for g in items.GOODS)


def test_scans_lie_inside_the_shipped_models_domain():
    applies = tomllib.loads((ROOT / "models/zoo/cpe-tiny/manifest.toml").read_text())["applies"]
    for seed in range(3):
        scan = bag_scan(seed)
        assert applies["pixel_mm"][0] <= scan.meta["pixel_mm"] <= applies["pixel_mm"][1]
        assert applies["energy_kev"][0] <= scan.meta["kvp"] <= applies["energy_kev"][1]
        assert scan.meta["kind"] in applies["item_kinds"]
        assert content_problem(scan.high, scan.low) is None


def test_bad_requests_raise_one_clear_error():
    with pytest.raises(ValueError, match=r"unknown contents \['pistol'\]"):
        bag_scan(1, contents=["pistol"])
    with pytest.raises(ValueError, match="pitch range"):
        bag_scan(1, pitch_mm=(1.2, 0.9))
    with pytest.raises(KeyError, match="unknown evalbag material 'adamantium'"):
        from models.evalbag.matter import density
        density("adamantium")
