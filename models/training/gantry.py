"""Drive-through portal scans: a delivery van with cargo and hidden cigarettes or drugs (8 mm pixels).

Scan lines run along the vehicle (front first), detector pixels run up the detector column from
the road. The beam crosses the van sideways, so path lengths are widths of what it meets. The
simulated tube stays at 160 kV (light-vehicle portals; container portals use MV linacs, which this
simulator does not model).
"""

from __future__ import annotations

import numpy as np

from models.scan import Scan
from models.training.physics import Scanner, detect, ideal_transmission
from models.training.shapes import ellipse, rect, smooth_field

PIXEL_MM = 8.0
PORTAL = Scanner(photons_low=1.5e5, photons_high=1.0e5, blur_sigma_px=0.6, pixel_mm=PIXEL_MM)


def _px(mm: float) -> float:
    return mm / PIXEL_MM


def _add(maps: dict[str, np.ndarray], material: str, arr: np.ndarray) -> None:
    maps[material] = maps[material] + arr if material in maps else arr.astype(np.float32)


def van(rng: np.random.Generator, h: int, w: int) -> tuple[dict[str, np.ndarray], tuple[int, int, int, int], float]:
    """Side view (rows = height, road at the bottom; columns = along the van) of an empty van.

    Returns path-length maps, the cargo bay (x0, y0, x1, y1) in canvas pixels and the van's width in mm.
    """
    L, H, width = rng.uniform(4800, 5600), rng.uniform(2100, 2500), rng.uniform(1700, 1900)
    x0, road = (w - _px(L)) / 2, h - _px(250)
    top, floor = road - _px(H), road - _px(350)
    maps: dict[str, np.ndarray] = {}
    body = rect(h, w, x0, top, x0 + _px(L), floor, 1.0)
    _add(maps, "steel", body * 2.0)                                             # both side panels
    shell = body - rect(h, w, x0 + 2, top + 2, x0 + _px(L) - 2, floor - 2, 1.0)
    _add(maps, "steel", shell * width * 0.02)                                   # roof, floor, ends edge-on
    cab = _px(rng.uniform(1400, 1700))
    _add(maps, "glass", rect(h, w, x0 + _px(200), top + _px(300), x0 + cab, top + _px(900), 8))
    _add(maps, "steel", rect(h, w, x0 + _px(100), road - _px(1100), x0 + _px(900), road - _px(450), 260))
    _add(maps, "aluminium", rect(h, w, x0 + _px(150), road - _px(1050), x0 + _px(850), road - _px(500), 200))
    _add(maps, "steel", rect(h, w, x0 + _px(300), road - _px(420), x0 + _px(L - 300), road - _px(330), 90))
    for wx in (x0 + _px(700), x0 + _px(L - 900)):
        _add(maps, "rubber", ellipse(h, w, wx, road - _px(330), _px(330), _px(330), 400))
        _add(maps, "steel", ellipse(h, w, wx, road - _px(330), _px(200), _px(200), 40))
    _add(maps, "textile", rect(h, w, x0 + _px(500), top + _px(800), x0 + cab - 2, top + _px(1300), 500))
    return maps, (int(x0 + cab + 4), int(top + 6), int(x0 + _px(L) - 6), int(floor - 6)), width


def _load(rng: np.random.Generator, maps: dict[str, np.ndarray], bay: tuple[int, int, int, int], width: float) -> None:
    """Stacks of cartons of mixed goods filling the bay from the floor up."""
    h, w = next(iter(maps.values())).shape
    bx0, by0, bx1, by1 = bay
    x = bx0
    while x < bx1 - 10:
        cw = int(rng.uniform(40, 90))
        y = by1
        while y > by0 + 25:
            ch = int(rng.uniform(25, 60))
            material = str(rng.choice(["textile", "paper", "food", "polyethylene", "wood"]))
            path = width * rng.uniform(0.05, 0.25) * (0.25 if material in ("food", "wood") else 1.0)
            box = rect(h, w, x, max(by0, y - ch), min(x + cw, bx1), y, path)
            _add(maps, material, box * (0.85 + 0.3 * smooth_field(rng, h, w, 8)))
            _add(maps, "cardboard", np.minimum(box, 1.0) * 15)
            y -= ch + 2
        x += cw + 3


def gantry_scan(seed: int, hidden: tuple[str, ...] = ("cigarettes",), lines: int = 680, pixels: int = 300) -> Scan:
    """A van loaded with cartons; `hidden` items (cigarettes, drugs) sit inside the load."""
    rng = np.random.default_rng(seed)
    maps, bay, width = van(rng, pixels, lines)
    _load(rng, maps, bay, width)
    truth = []
    for label in hidden:
        w, h = (rng.uniform(50, 80), rng.uniform(25, 45)) if label == "cigarettes" else (rng.uniform(25, 40), 12.0)
        cx, cy = rng.uniform(bay[0] + w, bay[2] - w), rng.uniform(bay[1] + h, bay[3] - h)
        block = rect(pixels, lines, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 1.0)
        if label == "cigarettes":
            _add(maps, "tobacco", block * rng.uniform(300, 700))
        else:
            _add(maps, "cocaine", block * rng.uniform(150, 300))
        # canvas (x = along the van, y = height) -> scan (x = detector pixel, y = line)
        truth.append({"label": label, "box": [float(cy - h / 2), float(cx - w / 2), float(cy + h / 2), float(cx + w / 2)]})
    lengths = {k: np.ascontiguousarray(v.T) for k, v in maps.items()}
    high, low = detect(*ideal_transmission(lengths, PORTAL), rng, PORTAL)
    meta = {"pixel_mm": PIXEL_MM, "kvp": PORTAL.kvp, "source": "synthetic", "lines_per_s": 250, "kind": "vehicle",
            "seed": seed, "truth": truth}
    return Scan(high=high, low=low, meta=meta)
