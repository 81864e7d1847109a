"""The image-quality test object: a healthy scanner scores well; a blurred or noisy one scores worse."""

from __future__ import annotations

import cv2
import numpy as np

from edge.diag.testobject import STEPS_MM, make_test_object, score
from models.scan import Scan


def test_healthy_scanner_reads_the_test_object():
    s = score(make_test_object(1.0))
    assert s["wire_mm"] <= 0.25 and s["resolution_mm"] <= 1.5 and s["penetration_mm"] >= 16
    assert s["material_accuracy"] >= 0.95


def _blurred(scan: Scan, sigma: float) -> Scan:
    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a.astype(np.float32), (0, 0), sigma).clip(0, 65535).astype(np.uint16)
    return Scan(blur(scan.high), blur(scan.low), scan.meta)


def test_a_blurred_detector_resolves_less():
    good, bad = score(make_test_object(1.0)), score(_blurred(make_test_object(1.0), 2.0))
    assert bad["resolution_mm"] > good["resolution_mm"] or np.isnan(bad["resolution_mm"])
    assert bad["bar_modulation_2mm"] < good["bar_modulation_2mm"] * 0.9


def test_a_noisy_detector_shows_fewer_wires_and_steps():
    scan = make_test_object(1.0)
    rng = np.random.default_rng(1)

    def noisy(a: np.ndarray) -> np.ndarray:
        t = a.astype(np.float64) / 65535
        return (rng.poisson(t * 400) / 400 * 65535).clip(0, 65535).astype(np.uint16)

    good, bad = score(scan), score(Scan(noisy(scan.high), noisy(scan.low), scan.meta))
    assert not bad["wire_mm"] <= good["wire_mm"]  # thicker, or no wire visible (nan)
    assert bad["penetration_mm"] < good["penetration_mm"] and bad["penetration_mm"] in (0.0, *STEPS_MM)
    assert bad["wire_cnr_0.25mm"] < good["wire_cnr_0.25mm"] / 3
