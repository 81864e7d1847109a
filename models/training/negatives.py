"""Hard negatives and extra threat cues for the wide training domain (SceneSpec(wide=True)), issue 20.

Hard negatives are the goods real bags are full of that share a cue with a threat: a laptop's or a
tablet's lithium block (battery, firearm), a camera's or a drill's dense core (firearm), a hair
dryer's coil, an umbrella's ribs and a belt buckle (knife, firearm), cans and jars (drugs, bottles),
shoes with steel shanks (knife), toys with motors, thick books (drugs). They carry no label, so
the detector learns that a lithium strip alone is not a gun and a dense block is not a brick.

Extra cues per class: a phone is frame + screen + board + cell in several layouts, with a metal
rim or none (so the rim is not the only cue); cigarettes also as packs standing on edge (rods
visible) and as flat blocks without rod texture. Drawn in the training simulator's own primitives
(models/training/shapes.py); the evaluation generator (models/evalbag) is another code base.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from models.training.shapes import Obj, cylinder, ellipse, polyline, rect, smooth_field

Maker = Callable[[np.random.Generator], Obj]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def laptop_wide(rng: np.random.Generator) -> Obj:
    """A laptop whose battery is cylindrical cells or a pouch block, anywhere along its back edge."""
    L, W = _u(rng, 280, 400), _u(rng, 190, 270)
    o = Obj(int(W + 8), int(L + 8))
    o.add(str(rng.choice(["aluminium", "polycarbonate", "aluminium"])), rect(o.h, o.w, 4, 4, 4 + L, 4 + W, _u(rng, 2, 4)))
    o.add("glass", rect(o.h, o.w, 6, 6, 2 + L, 2 + W, _u(rng, 0.8, 1.6)))
    o.add("pcb", rect(o.h, o.w, L * _u(rng, 0.05, 0.2), 15, L * _u(rng, 0.6, 0.9), W * 0.45, 1.3))
    o.add("copper", polyline(o.h, o.w, [(L * 0.3, W * 0.2), (L * 0.7, W * 0.25)], 6, 2.0))
    y0 = W * _u(rng, 0.55, 0.65)
    if rng.random() < 0.45:
        n = int(rng.integers(3, 7))
        for k in range(n):
            x = 20 + k * (L - 40) / n
            o.add("steel", cylinder(o.h, o.w, x, x + 60, y0 + 10, 9, 0.3))
            o.add("li_cell", cylinder(o.h, o.w, x, x + 60, y0 + 10, 8.7))
    else:
        o.add("li_cell", rect(o.h, o.w, L * 0.08, y0, L * 0.92, W - 8, _u(rng, 4, 8)))
    o.add("polycarbonate", rect(o.h, o.w, 8, W * 0.48, L, W * 0.52, 3))  # keyboard frame
    return o


def ereader(rng: np.random.Generator) -> Obj:
    L, W = _u(rng, 150, 200), _u(rng, 105, 140)
    o = Obj(int(W + 6), int(L + 6))
    o.add("polycarbonate", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, 5))
    o.add("glass", rect(o.h, o.w, 12, 8, L - 20, W - 2, 1.0))
    o.add("li_cell", rect(o.h, o.w, L - 22, 10, L - 4, W - 4, 3.2))
    o.add("pcb", rect(o.h, o.w, 8, 8, L * 0.3, W * 0.3, 1.0))
    return o


def camera(rng: np.random.Generator) -> Obj:
    L, W = _u(rng, 100, 150), _u(rng, 60, 100)
    o = Obj(int(W + 10), int(L + 10))
    o.add(str(rng.choice(["polycarbonate", "aluminium"])), rect(o.h, o.w, 5, 5, 5 + L, 5 + W, 6))
    for k, r in enumerate((_u(rng, 22, 32), _u(rng, 16, 22))):
        o.add("glass", ellipse(o.h, o.w, 5 + L / 2, 5 + W / 2, r, r, 8 + 6 * k))
        o.add("aluminium", ellipse(o.h, o.w, 5 + L / 2, 5 + W / 2, r + 3, r + 3, 2))
    o.add("li_cell", rect(o.h, o.w, 5 + L * 0.72, 5 + W * 0.2, 5 + L * 0.92, 5 + W * 0.8, 12))
    o.add("pcb", rect(o.h, o.w, 8, 8, 2 + L, 2 + W, 1.2))
    return o


def power_tool(rng: np.random.Generator) -> Obj:
    """A corded drill or a jigsaw: pistol-shaped housing around a dense motor; no cells."""
    L = _u(rng, 170, 250)
    o = Obj(int(L * 0.9 + 10), int(L + 60))
    o.add("nylon", rect(o.h, o.w, 40, 5, 40 + L, 70, 30))
    o.poly("nylon", [(40 + L * 0.5, 70), (40 + L * 0.75, 70), (40 + L * 0.85, L * 0.85), (40 + L * 0.55, L * 0.85)], 35)
    o.add("steel", rect(o.h, o.w, 40 + L * 0.35, 15, 40 + L * 0.7, 60, _u(rng, 20, 35)))
    o.add("copper", rect(o.h, o.w, 40 + L * 0.38, 18, 40 + L * 0.67, 57, 6))
    o.add("steel", cylinder(o.h, o.w, 2, 42, 38, 17, 6))
    return o


def hair_dryer(rng: np.random.Generator) -> Obj:
    L, R = _u(rng, 150, 230), _u(rng, 28, 42)
    o = Obj(int(2 * R + 130), int(L + 10))
    o.add("polycarbonate", cylinder(o.h, o.w, 5, 5 + L, R + 5, R, 2.5))
    for k in range(int(L * 0.4 / 6)):
        x = 5 + L * 0.15 + 6 * k
        o.add("stainless", polyline(o.h, o.w, [(x, 10), (x + 3, 2 * R)], 1, 0.6))
    o.add("steel", cylinder(o.h, o.w, 5 + L * 0.65, 5 + L * 0.85, R + 5, 13))
    o.add("copper", cylinder(o.h, o.w, 5 + L * 0.67, 5 + L * 0.83, R + 5, 11, 3))
    o.poly("polycarbonate", [(L * 0.6, 2 * R + 5), (L * 0.8, 2 * R + 5), (L * 0.85, 2 * R + 125), (L * 0.65, 2 * R + 125)], 28)
    return o


def belt(rng: np.random.Generator) -> Obj:
    L = _u(rng, 300, 700)
    o = Obj(60, int(L + 70))
    o.add("rubber", rect(o.h, o.w, 60, 12, 60 + L, 47, 4))   # leather-like organic strap
    metal = str(rng.choice(["zinc", "stainless", "brass"]))
    o.add(metal, rect(o.h, o.w, 5, 4, 58, 56, 6) - rect(o.h, o.w, 14, 12, 50, 48, 4))
    o.add("steel", polyline(o.h, o.w, [(32, 8), (32, 52)], 3, 2))
    return o


def cans(rng: np.random.Generator) -> Obj:
    r, L, n = _u(rng, 27, 34), _u(rng, 100, 165), int(rng.integers(1, 5))
    o = Obj(int(n * 2 * r + 6), int(L + 6))
    fill = str(rng.choice(["water", "food", "gel"]))
    for k in range(n):
        o.add("aluminium", cylinder(o.h, o.w, 3, 3 + L, 3 + r + 2 * r * k, r, 0.12))
        o.add(fill, cylinder(o.h, o.w, 4, 2 + L, 3 + r + 2 * r * k, r - 0.2))
    return o


def glass_jar(rng: np.random.Generator) -> Obj:
    r, L = _u(rng, 35, 55), _u(rng, 80, 160)
    o = Obj(int(2 * r + 6), int(L + 20))
    o.add("glass", cylinder(o.h, o.w, 3, 3 + L, 3 + r, r, _u(rng, 3, 5)))
    o.add(str(rng.choice(["food", "water", "gel"])), cylinder(o.h, o.w, 7, L * _u(rng, 0.5, 1.0), 3 + r, r - 5))
    o.add("steel", rect(o.h, o.w, 3 + L, 3, 15 + L, 3 + 2 * r, 0.6))
    return o


def shank_shoes(rng: np.random.Generator) -> Obj:
    """A pair of shoes or boots, each with a steel shank under the arch and a heel nail."""
    L, W = _u(rng, 240, 320), _u(rng, 85, 115)
    o = Obj(int(2 * W + 30), int(L + 10))
    for k in range(2):
        cy = 5 + W / 2 + k * (W + 15)
        o.add("rubber", ellipse(o.h, o.w, o.w / 2, cy, L / 2, W / 2, _u(rng, 15, 35)))
        o.add("textile", ellipse(o.h, o.w, o.w / 2, cy, L / 2 - 8, W / 2 - 6, _u(rng, 50, 100)))
        o.add("steel", rect(o.h, o.w, L * 0.35, cy - 8, L * 0.62, cy + 8, _u(rng, 1.2, 2.2)))
        o.add("steel", ellipse(o.h, o.w, L * 0.15, cy, 4, 4, 3))
    return o


def toy(rng: np.random.Generator) -> Obj:
    L, W = _u(rng, 100, 260), _u(rng, 60, 150)
    o = Obj(int(W + 30), int(L + 10))
    o.add("polycarbonate", rect(o.h, o.w, 5, 15, 5 + L, 15 + W, _u(rng, 4, 8)))
    for x in (L * 0.2, L * 0.8):
        o.add("rubber", ellipse(o.h, o.w, x, 10, 18, 8, 25))
        o.add("steel", polyline(o.h, o.w, [(x, 5), (x, W + 25)], 2, 2))
    o.add("steel", cylinder(o.h, o.w, L * 0.4, L * 0.55, 15 + W / 2, 10))
    o.add("copper", cylinder(o.h, o.w, L * 0.42, L * 0.53, 15 + W / 2, 8, 2))
    return o


def thick_book(rng: np.random.Generator) -> Obj:
    L, W = _u(rng, 170, 300), _u(rng, 120, 230)
    o = Obj(int(W + 6), int(L + 12))
    o.add("paper", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, _u(rng, 15, 60)))
    o.add("cardboard", rect(o.h, o.w, 2, 2, 4 + L, 4 + W, 4))
    if rng.random() < 0.25:   # spiral binding
        for k in range(int(W / 6)):
            o.add("steel", ellipse(o.h, o.w, 5 + L + 2, 3 + 6 * k, 3, 2, 0.8))
    return o


def power_supply(rng: np.random.Generator) -> Obj:
    L, W = _u(rng, 40, 140), _u(rng, 30, 65)
    o = Obj(int(W + 6), int(L + 30))
    o.add("polycarbonate", rect(o.h, o.w, 20, 3, 20 + L, 3 + W, 25))
    o.add("steel", rect(o.h, o.w, 20 + L * 0.3, 3 + W * 0.25, 20 + L * 0.55, 3 + W * 0.75, W * 0.35))
    o.add("copper", rect(o.h, o.w, 20 + L * 0.32, 3 + W * 0.2, 20 + L * 0.53, 3 + W * 0.8, 3))
    o.add("pcb", rect(o.h, o.w, 22, 5, 18 + L, 1 + W, 1.4))
    o.add("brass", polyline(o.h, o.w, [(2, W * 0.35), (20, W * 0.35)], 4, 2))
    o.add("brass", polyline(o.h, o.w, [(2, W * 0.65), (20, W * 0.65)], 4, 2))
    return o


HARD_NEGATIVES: dict[str, tuple[Maker, float]] = {   # name -> (maker, weight next to CLUTTER's)
    "laptop_wide": (laptop_wide, 0.8), "ereader": (ereader, 0.4), "camera": (camera, 0.4),
    "power_tool": (power_tool, 0.3), "hair_dryer": (hair_dryer, 0.4), "belt": (belt, 0.6), "cans": (cans, 0.5),
    "glass_jar": (glass_jar, 0.4), "shank_shoes": (shank_shoes, 0.6), "toy": (toy, 0.4),
    "thick_book": (thick_book, 0.6), "power_supply": (power_supply, 0.8),
}


# ---------------------------------------------------------------- extra cues per class
def phone_layouts(rng: np.random.Generator, novel: bool = False) -> Obj:
    """Frame, screen, board and cell in one of four layouts, with a metal rim or a plastic one."""
    L, W = _u(rng, 120, 168), _u(rng, 58, 80)
    o = Obj(int(W + 6), int(L + 6), "phone")
    rim_metal = rng.random() < 0.55
    outer = rect(o.h, o.w, 3, 3, 3 + L, 3 + W, 1.0)
    inner = rect(o.h, o.w, 5, 5, 1 + L, 1 + W, 1.0)
    o.add("aluminium" if rim_metal else "polycarbonate", (outer - inner) * _u(rng, 6.5, 9))
    o.add("glass", outer * _u(rng, 1.0, 1.8))
    layout = int(rng.integers(4))
    cell = [(0.08, 0.55), (0.25, 0.7), (0.3, 0.9), (0.1, 0.6)][layout]
    o.add("li_cell", rect(o.h, o.w, 3 + L * cell[0], 8, 3 + L * cell[1], W - 2, _u(rng, 3.5, 5.5)))
    board = [(0.6, 0.95), (0.72, 0.96), (0.05, 0.27), (0.62, 0.96)][layout]
    o.add("pcb", rect(o.h, o.w, 3 + L * board[0], 7, 3 + L * board[1], W - 1, 1.1))
    if layout == 3:  # L-shaped board: a strip along the cell
        o.add("pcb", rect(o.h, o.w, 3 + L * 0.1, W * 0.75, 3 + L * 0.62, W - 1, 1.1))
    bx = 3 + L * (board[0] + board[1]) / 2
    o.add("steel", rect(o.h, o.w, bx - 10, 12, bx + 10, W - 8, _u(rng, 0.2, 0.6)))
    for k in range(int(rng.integers(1, 4))):
        o.add("glass", ellipse(o.h, o.w, bx, 14 + k * 12, 5, 5, 4))
    return o


def flat_cigarettes(rng: np.random.Generator, novel: bool = False) -> Obj:
    """Cartons or packs whose rods do not show: packs flat in layers, tobacco an even block with foil."""
    length, width, depth = _u(rng, 80, 100), _u(rng, 48, 60), _u(rng, 18, 24)
    n = int(rng.integers(1, 11))
    cols = 2 if n > 5 and rng.random() < 0.5 else 1
    rows = int(np.ceil(n / cols))
    o = Obj(int(rows * width + 8), int(cols * length + 8), "cigarettes")
    for i in range(n):
        x, y = 4 + (i % cols) * length, 4 + (i // cols) * width
        o.add("tobacco", rect(o.h, o.w, x + 1, y + 1, x + length * 0.75, y + width - 1, depth * 0.85)
              * (0.9 + 0.2 * smooth_field(rng, o.h, o.w, 30)))
        o.add("textile", rect(o.h, o.w, x + length * 0.75, y + 1, x + length - 1, y + width - 1, depth * 0.7))
        o.add("aluminium", rect(o.h, o.w, x + 1, y + 1, x + length - 1, y + width - 1, 0.02))
        o.add("cardboard", rect(o.h, o.w, x, y, x + length, y + width, 1.0))
    return o


EXTRA_CUES: dict[str, Callable[[np.random.Generator, bool], Obj]] = {
    "phone": phone_layouts, "cigarettes": flat_cigarettes,
}
