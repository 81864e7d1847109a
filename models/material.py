"""Material pseudo-colour for the officer screen: effective-Z class from the dual-energy ratio.

R = ln T_low / ln T_high falls with beam hardening as objects get thicker, so the class borders are
tabulated against the high-energy attenuation a = −ln T_high (step wedges of water, aluminium, steel
and lead through the simulated 160 kV scanner; regenerate with `python -m models.training.calibrate`).
Borders lie half-way between the water and aluminium curves (organic | inorganic) and the aluminium
and steel curves (inorganic | metal). Lead's K-edge (88 keV) makes thick lead look light, even
organic, so where a ≥ LEAD_FROM and R is nearer the lead curve than to water or aluminium, the pixel
is metal; where almost nothing gets through (a ≥ OPAQUE_FROM) it is black.
"""

from __future__ import annotations

import cv2
import numpy as np

AIR, ORGANIC, INORGANIC, METAL, OPAQUE = 0, 1, 2, 3, 4
NAMES = ("air", "organic", "inorganic", "metal", "opaque")
COLOURS = np.array([(255, 255, 255), (235, 140, 30), (50, 170, 60), (40, 90, 215), (0, 0, 0)], np.float32)

AIR_BELOW = 0.02     # −ln T_high below which a pixel shows as background
LEAD_FROM = 1.2      # −ln T_high from which the lead curve is considered (≈ 0.3 mm of lead)
OPAQUE_FROM = 4.6    # −ln T_high ≥ this (T_high ≤ 1 %): nothing useful gets through

CALIBRATION = {
    "a_high": [0.03, 0.0373, 0.0465, 0.0578, 0.072, 0.0896, 0.1115, 0.1388, 0.1727, 0.215, 0.2675, 0.333,
               0.4144, 0.5158, 0.642, 0.799, 0.9944, 1.2376, 1.5404, 1.9171, 2.386, 2.9696, 3.696, 4.6],
    "water": [1.2209, 1.2207, 1.2205, 1.2202, 1.2198, 1.2193, 1.2187, 1.218, 1.2171, 1.216, 1.2147, 1.2131,
              1.2111, 1.2088, 1.2059, 1.2026, 1.1986, 1.194, 1.1886, 1.1825, 1.1755, 1.1677, 1.1591, 1.1498],
    "aluminium": [1.765, 1.7613, 1.7567, 1.7511, 1.7443, 1.7362, 1.7264, 1.7148, 1.7011, 1.6852, 1.6667, 1.6456,
                  1.6218, 1.5953, 1.5662, 1.5347, 1.5011, 1.4658, 1.4294, 1.3926, 1.3557, 1.3194, 1.2843,
                  1.2508],
    "steel": [3.2267, 3.1973, 3.1619, 3.1206, 3.0719, 3.0158, 2.9517, 2.8792, 2.7986, 2.7097, 2.6138, 2.5113,
              2.404, 2.2933, 2.1811, 2.0692, 1.9592, 1.8526, 1.7509, 1.6552, 1.5665, 1.4856, 1.4129, 1.3483],
    "lead": [1.7385, 1.7385, 1.7378, 1.7292, 1.7187, 1.7062, 1.6913, 1.6738, 1.6535, 1.63, 1.6035, 1.5737,
             1.541, 1.5055, 1.4679, 1.4286, 1.3886, 1.3487, 1.3096, 1.2721, 1.2369, 1.2042, 1.1744, 1.1476],
}


def _attenuation(t: np.ndarray) -> np.ndarray:
    """−ln T of a uint16 transmission channel, smoothed over 3×3 pixels against quantum noise."""
    a = -np.log(np.clip(t.astype(np.float32), 1.0, 65535.0) / 65535.0)
    return cv2.blur(a, (3, 3))


def _curve(name: str, a_high: np.ndarray) -> np.ndarray:
    return np.interp(a_high, CALIBRATION["a_high"], CALIBRATION[name]).astype(np.float32)


def material_class(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """uint8 class map (AIR, ORGANIC, INORGANIC, METAL, OPAQUE) from two uint16 transmission channels."""
    a_h, a_l = _attenuation(high), _attenuation(low)
    r = a_l / np.maximum(a_h, 1e-6)
    water, alu, steel, lead = (_curve(n, a_h) for n in ("water", "aluminium", "steel", "lead"))
    cls = np.where(r < (water + alu) / 2, ORGANIC, np.where(r < (alu + steel) / 2, INORGANIC, METAL))
    d_lead = np.abs(r - lead)
    is_lead = (a_h >= LEAD_FROM) & (d_lead < np.abs(r - water)) & (d_lead < np.abs(r - alu))
    cls = np.where(is_lead, METAL, cls)
    cls = np.where(a_h < AIR_BELOW, AIR, np.where(a_h >= OPAQUE_FROM, OPAQUE, cls))
    return cls.astype(np.uint8)


def colourise(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB: orange organic, green inorganic, blue metal, black opaque, shaded by density."""
    cls = material_class(high, low)
    a_h = _attenuation(high)
    shade = 1.0 - 0.7 * np.clip(a_h / OPAQUE_FROM, 0.0, 1.0) ** 0.7
    rgb = COLOURS[cls] * shade[..., None]
    rgb[cls == AIR] = COLOURS[AIR]
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
