"""The X-ray simulator: determinism, physics sanity, truth boxes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xraylib")

from models.training.calibrate import ratio_curve  # noqa: E402
from models.training.physics import ideal_transmission, naive_transmission  # noqa: E402
from models.training.scene import SceneSpec, synth_scan  # noqa: E402
from models.training.threats import CLASSES  # noqa: E402

SMALL = SceneSpec(lines=320, pixels=384)


def test_same_seed_gives_identical_scan_and_truth():
    a, b = synth_scan(7, SMALL), synth_scan(7, SMALL)
    assert np.array_equal(a.high, b.high) and np.array_equal(a.low, b.low)
    assert a.meta == b.meta


def test_other_seed_gives_other_scan():
    assert not np.array_equal(synth_scan(7, SMALL).high, synth_scan(8, SMALL).high)


def test_scan_follows_the_contract():
    scan = synth_scan(3, SMALL)
    assert scan.high.dtype == np.uint16 and scan.shape == (320, 384)
    assert scan.meta["source"] == "synthetic" and scan.meta["pixel_mm"] == 1.0
    assert scan.high[0, 0] > 60000  # air around the bag is close to 65535
    assert (scan.low < scan.high).mean() > 0.2  # objects attenuate the low channel more


@pytest.mark.parametrize("label", CLASSES)
def test_requested_threat_gets_a_box_inside_the_image(label):
    scan = synth_scan(11, SceneSpec(lines=480, pixels=480, threats=(label,)))
    boxes = [t for t in scan.meta["truth"] if t["label"] == label]
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]["box"]
    assert 0 <= x0 < x1 <= 480 and 0 <= y0 < y1 <= 480 and (x1 - x0) * (y1 - y0) > 100


def test_threat_region_attenuates_more_than_before():
    spec = SceneSpec(lines=400, pixels=400, threats=("firearm",))
    scan = synth_scan(21, spec)
    x0, y0, x1, y1 = (int(v) for v in scan.meta["truth"][0]["box"])
    assert scan.high[y0:y1, x0:x1].min() < 0.2 * 65535  # steel of the slide shows as dark


def test_per_bin_integration_differs_from_per_channel_multiplication():
    lengths = {"steel": np.array([[4.0]], np.float32), "water": np.array([[80.0]], np.float32)}
    high, low = ideal_transmission(lengths)
    n_high, n_low = naive_transmission(lengths)
    assert abs(n_low[0, 0] / low[0, 0] - 1) > 0.10
    assert abs(n_high[0, 0] / high[0, 0] - 1) > 0.03


def test_steel_attenuates_more_at_low_energy():
    high, low = ideal_transmission({"steel": np.array([[1.0, 3.0, 8.0]], np.float32)})
    assert np.all(low < high)


def test_ratio_orders_organic_inorganic_metal():
    r = {m: ratio_curve(m)[10:20].mean() for m in ("water", "aluminium", "steel")}
    assert r["water"] < r["aluminium"] < r["steel"]
    poly = ideal_transmission({"polyethylene": np.array([[60.0]], np.float32)})
    r_poly = np.log(poly[1][0, 0]) / np.log(poly[0][0, 0])
    assert 1.1 < r_poly < 1.2


def test_seed_blocks_of_the_recipe_are_disjoint():
    pytest.importorskip("torch", reason="the recipe module trains with torch (the training extra)")
    from models.training.recipe import seed_ranges

    sets = [set(r) for r in seed_ranges(1).values()]
    assert all(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1:])


def test_generated_sets_keep_weak_contrast(tmp_path):
    """Training sets store float16 attenuation: a cigarette carton keeps its contrast (8 bits left ~3 levels)."""
    from models.training.dataset import as_input, attenuation, generate, load

    spec = SceneSpec(lines=256, pixels=256, threats=("cigarettes",))
    generate(tmp_path / "set", range(11, 13), spec, workers=1)
    images, truth = load(tmp_path / "set")
    assert images.dtype == np.float16 and images.shape == (2, 2, 256, 256)
    scan = synth_scan(11, spec)
    exact = attenuation(scan.high)
    assert np.abs(as_input(images[0, 0]) - exact).max() < 2e-3
    x0, y0, x1, y1 = (int(v) for v in truth[0][0]["box"])
    carton = as_input(images[0, 0, y0:y1, x0:x1])
    assert len(np.unique(carton)) > 20 and truth[0][0]["label"] == "cigarettes"
    assert np.array_equal(as_input(np.array([255], np.uint8)), np.array([1.0], np.float32))  # older sets load


def test_held_out_scenes_are_those_every_shipped_version_was_scored_on():
    """Widening the training variants must not touch the held-out set: same objects, same places.

    The digest was taken from the generator of cpe-tiny 1.1.0 (commit 880578a) and again after the
    2.0.0 training variants were added; a change here makes held-out figures incomparable.
    """
    import hashlib
    import json

    from models.training.scene import build_scene

    digest = hashlib.sha256()
    for seed in range(1_800_000, 1_800_040):
        digest.update(json.dumps(build_scene(np.random.default_rng(seed), SceneSpec(novel=True)).truth).encode())
    assert digest.hexdigest() == "350dc4541bf0cf57a953b586a6a98c0bf564d7f704e077aa4a7bd28cc5c94692"


def test_training_variants_stay_outside_the_held_out_designs():
    from models.training import threats

    for design in threats.NOVEL_PISTOLS:
        assert any(not lo <= design[k] <= hi for k, (lo, hi) in threats.PISTOL_RANGES.items())
    for design in threats.NOVEL_REVOLVERS:
        assert any(not lo <= design[k] <= hi for k, (lo, hi) in threats.REVOLVER_RANGES.items())
    assert not set(threats.NOVEL_KNIVES) & set(threats.KNIVES)
    assert not set(threats.NOVEL_CARTON_LAYOUTS) & set(threats.CARTON_LAYOUTS)
