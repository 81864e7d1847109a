"""Material pseudo-colour on simulated step wedges of known materials."""

from __future__ import annotations

import numpy as np
import pytest

from models.material import AIR, INORGANIC, METAL, OPAQUE, ORGANIC, colourise, material_class

pytest.importorskip("xraylib")

from models.training.calibrate import table  # noqa: E402
from models.training.physics import detect, ideal_transmission  # noqa: E402

WEDGES = [  # material, thickness mm, expected class
    ("polyethylene", 20, ORGANIC), ("polyethylene", 150, ORGANIC), ("water", 10, ORGANIC),
    ("water", 100, ORGANIC), ("cocaine", 60, ORGANIC), ("textile", 80, ORGANIC),
    ("aluminium", 3, INORGANIC), ("aluminium", 20, INORGANIC), ("aluminium", 60, INORGANIC),
    ("glass", 8, INORGANIC), ("glass", 40, INORGANIC),
    ("steel", 0.5, METAL), ("steel", 3, METAL), ("steel", 10, METAL), ("copper", 1, METAL),
    ("brass", 4, METAL), ("lead", 0.5, METAL), ("lead", 1.0, METAL),
    ("lead", 3.0, OPAQUE), ("steel", 30, OPAQUE),
]


def noisy_wedge(material: str, mm: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    lengths = {material: np.full((48, 48), mm, np.float32)}
    return detect(*ideal_transmission(lengths), np.random.default_rng(seed))


@pytest.mark.parametrize(("material", "mm", "expected"), WEDGES)
def test_wedge_is_classified_as_its_material(material, mm, expected):
    cls = material_class(*noisy_wedge(material, mm))[4:-4, 4:-4]
    assert (cls == expected).mean() > 0.9


def test_air_is_background():
    air = np.full((16, 16), 65535, np.uint16)
    assert (material_class(air, air) == AIR).all()


def test_lead_defeats_a_naive_ratio_threshold_but_not_the_table():
    high, low = noisy_wedge("lead", 1.0)
    r = np.log(low[10:-10, 10:-10] / 65535).mean() / np.log(high[10:-10, 10:-10] / 65535).mean()
    assert r < 1.25  # a fixed "R < 1.25 is organic" rule would call a millimetre of lead organic
    assert (material_class(high, low)[8:-8, 8:-8] == METAL).mean() > 0.9


def test_colours_follow_the_display_convention():
    def colour(material, mm):
        return colourise(*noisy_wedge(material, mm))[24, 24].astype(int)

    organic, inorganic, metal = colour("water", 50), colour("aluminium", 20), colour("steel", 3)
    assert organic[0] > organic[1] > organic[2]        # orange
    assert inorganic[1] > max(inorganic[0], inorganic[2])  # green
    assert metal[2] > max(metal[0], metal[1])           # blue
    assert colour("lead", 3).max() == 0                 # black
    image = colourise(*noisy_wedge("water", 50))
    assert image.dtype == np.uint8 and image.shape == (48, 48, 3)


def test_embedded_calibration_matches_the_simulator():
    from models.material import CALIBRATION

    fresh = table()
    for key, values in CALIBRATION.items():
        assert np.allclose(values, fresh[key], atol=2e-3), key
