"""The wide training domain (issue 20): hard negatives, extra cues per class and drawn scanners in the
training simulator, without torch; the narrow domain's scans stay exactly as they were."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xraylib")

from models.training import domain  # noqa: E402
from models.training.dataset import generate  # noqa: E402
from models.training.negatives import HARD_NEGATIVES, flat_cigarettes, phone_layouts  # noqa: E402
from models.training.sampler import Sampler  # noqa: E402
from models.training.scene import SceneSpec, build_scene, synth_scan  # noqa: E402

WIDE = SceneSpec(lines=320, pixels=320, wide=True)


def test_wide_scans_draw_scanners_across_the_fleets_ranges():
    scans = [synth_scan(seed, WIDE) for seed in range(900, 912)]
    pitches = [s.meta["pixel_mm"] for s in scans]
    assert all(domain.PITCH_MM[0] <= p <= domain.PITCH_MM[1] for p in pitches) and max(pitches) - min(pitches) > 0.3
    assert all(domain.KVP[0] <= s.meta["kvp"] <= domain.KVP[1] for s in scans) and len({s.meta["kvp"] for s in scans}) > 2
    assert all(0.8 * s.meta["pixel_mm"] <= s.meta["line_mm"] <= 1.25 * s.meta["pixel_mm"] for s in scans)
    assert all(s.shape == (320, 320) for s in scans)


def test_wide_scans_are_deterministic_and_differ_from_narrow_ones():
    a, b = synth_scan(901, WIDE), synth_scan(901, WIDE)
    assert a.sha256() == b.sha256() and a.meta == b.meta
    narrow = synth_scan(901, SceneSpec(lines=320, pixels=320))
    assert narrow.sha256() != a.sha256() and "wide" not in narrow.meta


def test_resampling_follows_the_pitch_and_keeps_boxes_on_their_object():
    d = domain.Drawn(domain.draw(np.random.default_rng(0)).scanner.__class__(pixel_mm=1.5), 1.25, 0.0, 0.0)
    assert domain.field_of_view(200, 200, d) == (250, 300)
    high = np.ones((250, 300), np.float32)
    high[50:100, 60:150] = 0.2
    out, _, boxes = domain.resample(high, high.copy(), [{"label": "knife", "box": [60, 50, 150, 100]}], 200, 200, d)
    assert boxes[0]["box"] == pytest.approx([40, 40, 100, 80])
    assert out[45:75, 45:95].mean() < 0.25 and out[150:, 150:].mean() > 0.99


def test_hard_negatives_join_the_clutter_and_never_carry_a_label():
    rng = np.random.default_rng(1)
    assert {"laptop_wide", "ereader", "camera", "power_tool", "hair_dryer", "belt", "cans", "glass_jar",
            "shank_shoes", "toy", "thick_book", "power_supply"} == set(HARD_NEGATIVES)
    for name, (make, _) in HARD_NEGATIVES.items():
        obj = make(rng)
        assert obj.label is None and sum(float(a.max()) for a in obj.parts.values()) > 1, name
    for seed in range(3):
        scene = build_scene(np.random.default_rng(seed), SceneSpec(lines=320, pixels=320, threats=(), wide=True))
        assert scene.truth == []


def test_each_class_has_more_than_one_cue():
    rng = np.random.default_rng(2)
    phones = [phone_layouts(rng) for _ in range(20)]
    assert {p.label for p in phones} == {"phone"}
    assert {"aluminium" in p.parts for p in phones} == {True, False}   # metal rim or none
    carton = flat_cigarettes(rng)
    tobacco = carton.parts["tobacco"]
    row = tobacco[tobacco.shape[0] // 2]
    across = tobacco[:, int(np.argmax(row > 0)) + 5]
    vals = across[across > 0]
    edges = np.flatnonzero(vals < 0.6 * vals.max())  # pack edges (anti-aliased) and the seams between packs
    inner = vals[edges[0] + 3:edges[1] - 3]          # across one pack, away from its edges
    assert len(inner) > 20
    assert carton.label == "cigarettes" and np.abs(np.diff(inner)).max() < 0.1 * inner.max()  # no rod ripple


def test_a_wide_training_set_renders_and_samples_without_torch(tmp_path):
    generate(tmp_path / "train", range(5000, 5004), SceneSpec(lines=256, pixels=256, wide=True, p_clean=0.0))
    sampler = Sampler(tmp_path / "train", 128, np.random.default_rng(0))
    crop, heat, ltrb, weight, ignored = sampler.one()
    assert crop.shape == (2, 128, 128) and heat.shape[1:] == (16, 16)
    assert any(t for t in sampler.truth)
