"""Regions the beam cannot penetrate ("dense objects"): where nothing behind can be seen.

A dense region is where the high-energy beam does not get through (−ln T_high ≥ DENSE_FROM, T ≤ 1 %,
the material module's opaque border, so the colour view's black and the alert agree). Nothing behind it
can be judged, by the officer or by a model: the station screen marks it (edge/web/scandata.py) and the
inspection does not clear a baggage item holding one (edge.verdict Reason.DENSE_OBJECT).

A vehicle or container portal (`screen_dense`) is judged by its own scanner: a MV linac's image still
carries information far below 1 % (down to T ≈ 0.06 %, −ln T = LINAC_DENSE_FROM, where the vehicle
comparison stops trusting a pixel too), a region must be large enough to hide a package
(PORTAL_MIN_DENSE_MM2), and lines the beam never lit (cab avoidance: the linac is off while the driver
passes) are not dense but not scanned: they are reported apart, as line ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.history.register import lit_lines
from models.material import OPAQUE_FROM as DENSE_FROM
from models.scan import AIR, Scan

MIN_DENSE_MM2 = 100.0  # a region smaller than 10 × 10 mm hides nothing worth an alert (a buckle, a coin)
LINAC_DENSE_FROM = 7.5  # −ln T_high from which a MV portal's pixel carries no information (T < 0.06 %)
LINAC_KEV = 1000.0  # a scanner's high energy from which it is a linac (MV), not a tube
PORTAL_MIN_DENSE_MM2 = 2500.0  # in a vehicle, a region under 50 × 50 mm hides no package worth an alert


@dataclass(frozen=True)
class DenseRegion:
    """A region the beam cannot penetrate: its box (x0, y0, x1, y1) in scan pixels and its size."""

    box: tuple[int, int, int, int]
    pixels: int
    area_mm2: float


def attenuation(channel: np.ndarray) -> np.ndarray:
    """−ln T of a uint16 transmission channel (0 for air; 0 transmission counts as one count)."""
    return -np.log(np.clip(channel.astype(np.float32), 1.0, AIR) / AIR)


def dense_regions(high: np.ndarray, pixel_mm: float = 1.0, min_mm2: float = MIN_DENSE_MM2, *,
                  threshold: float = DENSE_FROM, lines: np.ndarray | None = None) -> list[DenseRegion]:
    """Regions of at least `min_mm2` where −ln T_high ≥ `threshold` (3×3-smoothed against detector noise),
    largest first; only on `lines` (a boolean per line) when given. `high` is the scan's high-energy
    channel in scan orientation."""
    if not pixel_mm > 0:
        raise ValueError(f"pixel size must be positive, got pixel_mm={pixel_mm!r}")
    dense = (cv2.blur(attenuation(high), (3, 3)) >= threshold).astype(np.uint8)
    if lines is not None:
        dense[~lines] = 0
    n, _, stats, _ = cv2.connectedComponentsWithStats(dense, connectivity=8)
    px_mm2 = pixel_mm * pixel_mm
    out = [DenseRegion((int(x), int(y), int(x + w), int(y + h)), int(area), round(float(area) * px_mm2, 1))
           for x, y, w, h, area in stats[1:n] if area * px_mm2 >= min_mm2]
    return sorted(out, key=lambda r: -r.pixels)


@dataclass(frozen=True)
class ScreenDense:
    """What the station screen marks: the threshold (−ln T_high) it used, the dense regions and the line
    ranges [line0, line1) the beam never lit."""

    threshold: float
    regions: list[DenseRegion]
    unlit: list[tuple[int, int]]


def screen_dense(scan: Scan, portal: bool) -> ScreenDense:
    """Dense regions as the screen shows them: a baggage scan's (dense_regions); a portal scan's at its
    scanner's threshold (LINAC_DENSE_FROM from LINAC_KEV up), of PORTAL_MIN_DENSE_MM2, over lit lines only."""
    if not portal:
        return ScreenDense(DENSE_FROM, dense_regions(scan.high, pixel_mm(scan)), [])
    energy = scan.meta.get("energy_kev")
    linac = isinstance(energy, (int, float)) and energy >= LINAC_KEV
    threshold = LINAC_DENSE_FROM if linac else DENSE_FROM
    lit = lit_lines(attenuation(scan.high))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (~lit).astype(np.int8), [0]])))
    unlit = [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2])]
    regions = dense_regions(scan.high, pixel_mm(scan), PORTAL_MIN_DENSE_MM2, threshold=threshold, lines=lit)
    return ScreenDense(threshold, regions, unlit)


def pixel_mm(scan: Scan) -> float:
    """The scan's pixel size from its meta (1 mm where the source does not say)."""
    value = scan.meta.get("pixel_mm")
    return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0


def dense_problem(scan: Scan, min_mm2: float) -> str | None:
    """Why a scan cannot be cleared for what the beam does not get through (its largest dense region), or None."""
    regions = dense_regions(scan.high, pixel_mm(scan), min_mm2)
    if not regions:
        return None
    r = regions[0]
    return (f"{len(regions)} region(s) the beam cannot penetrate, the largest {r.area_mm2:.0f} mm² at {list(r.box)}"
            f" (alert from {min_mm2:g} mm²)")


ZERO_BAND_LINES = 4  # this many lines in a row reading exactly 0 everywhere are a detector or link fault


def zero_band(scan: Scan, min_lines: int = ZERO_BAND_LINES) -> tuple[int, int] | None:
    """The longest run of lines [line0, line1), at least `min_lines` long, where every pixel of both energies reads
    exactly 0, or None. No load does that: an opaque one leaves the air beside and above it lit, and the noise of
    a detector at its floor is not exactly 0 in every channel; a dead detector board, a link that delivers empty
    lines or a beam that is off does. (A portal's cab avoidance switches the beam off on purpose: not for portals.)"""
    lit: np.ndarray = np.any(scan.high, axis=1) | np.any(scan.low, axis=1)
    dark = [not bool(x) for x in lit]
    best: tuple[int, int] | None = None
    start = None
    for i, d in enumerate([*dark, False]):
        if d and start is None:
            start = i
        elif not d and start is not None:
            if i - start >= min_lines and (best is None or i - start > best[1] - best[0]):
                best = (start, i)
            start = None
    return best


def zero_band_problem(scan: Scan, min_lines: int = ZERO_BAND_LINES) -> str | None:
    """Why a baggage scan cannot be cleared for a band of lines reading exactly 0 (zero_band), or None."""
    band = zero_band(scan, min_lines)
    if band is None:
        return None
    return (f"lines {band[0]} to {band[1] - 1} ({band[1] - band[0]} lines) of the scan read exactly 0 in every pixel of"
            f" both energies: a detector or link fault, not a load (an opaque load leaves the air beside it lit)")
