"""Goods of generator B: cargo, benign clutter, contraband and concealments, with their truth.

Each truth object is drawn under its own Sketch tag; its mass is summed from the volumes drawn
(ρ·V), so mass_kg is the mass the image actually carries.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from models.evalgen.materials import material
from models.evalgen.sketch import Sketch
from models.evalgen.vehicles import Space, Vehicle

CASE_MM = (560.0, 290.0, 270.0)  # master case of 50 cartons (10,000 sticks)
CASE_KG = 11.0
CARTON_MM = (272.0, 92.0, 48.0)
CARTON_KG = 0.245
BRICK_MM = (205.0, 125.0, 34.0)
DRUGS = ("cocaine", "heroin", "methamphetamine")


@dataclass
class Truth:
    """One truth entry before rendering: label, mass and the sketch tag of its primitives."""

    label: str
    mass_kg: float
    tag: int


def solid(s: Sketch, space: Space, mat: str, density: float) -> float:
    """Draw a block; its mass in kg."""
    x0, x1, y0, y1, z0, z1 = space
    s.block(x0, x1, y0, y1, z0, z1, mat, density=density)
    return density * (x1 - x0) * (y1 - y0) * (z1 - z0) / 1e6


def _grid_fit(space: Space, size: tuple[float, float, float], n: int,
              rng: np.random.Generator) -> list[Space]:
    """Up to n boxes of `size` packed as a block at a random spot of `space`."""
    x0, x1, y0, y1, z0, z1 = space
    sx, sy, sz = size
    fit = [max(int((x1 - x0) // sx), 0), max(int((y1 - y0) // sy), 0), max(int((z1 - z0) // sz), 0)]
    if min(fit) == 0:
        return []
    nz = min(fit[2], max(1, int(round(n ** (1 / 3)))))
    ny = min(fit[1], max(1, int(math.ceil(math.sqrt(n / nz)))))
    nx = min(fit[0], int(math.ceil(n / (ny * nz))))
    ox = x0 + rng.uniform(0, (x1 - x0) - nx * sx)
    oz = z0 + rng.uniform(0, (z1 - z0) - nz * sz)
    out: list[Space] = []
    for i in range(nx):
        for k in range(nz):
            for j in range(ny):
                if len(out) < n:
                    out.append((ox + i * sx, ox + (i + 1) * sx, y0 + j * sy, y0 + (j + 1) * sy,
                                oz + k * sz, oz + (k + 1) * sz))
    return out


def _oriented(size: tuple[float, float, float], space: Space,
              rng: np.random.Generator) -> tuple[float, float, float]:
    """A random orientation of `size` that fits in `space` (the given one when none fits)."""
    x0, x1, y0, y1, z0, z1 = space
    room = (x1 - x0, y1 - y0, z1 - z0)
    fits = [p for p in itertools.permutations(size) if all(a <= b for a, b in zip(p, room))]
    if not fits:
        return size
    a, b, c = fits[int(rng.integers(len(fits)))]
    return (a, b, c)


def cigarettes(s: Sketch, space: Space, rng: np.random.Generator, cases: bool) -> float:
    """Master cases (11 kg) or loose cartons (0.245 kg) packed into `space`; mass in kg."""
    size, kg = (CASE_MM, CASE_KG) if cases else (CARTON_MM, CARTON_KG)
    size = _oriented(size, space, rng)
    n = int(rng.integers(1, 40)) if cases else int(rng.integers(4, 60))
    density = kg * 1e6 / (size[0] * size[1] * size[2]) * rng.uniform(0.96, 1.04)
    return sum(solid(s, box, "tobacco", density) for box in _grid_fit(space, size, n, rng))


def drugs(s: Sketch, space: Space, rng: np.random.Generator) -> float:
    """Taped bricks of about 1 kg of one drug; mass in kg."""
    drug = DRUGS[int(rng.integers(len(DRUGS)))]
    size = _oriented(BRICK_MM, space, rng)
    density = material(drug).density * rng.uniform(0.9, 1.05)
    n = int(rng.choice([1, 2, 3, 5, 8, 12, 20, 30]))
    return sum(solid(s, box, drug, density) for box in _grid_fit(space, size, n, rng))


def firearm(s: Sketch, space: Space, rng: np.random.Generator) -> float:
    """A rifle or pistol outline rotated in the side view; mass in kg."""
    x0, x1, y0, y1, z0, z1 = space
    rifle = rng.random() < 0.55 and (x1 - x0) > 700
    parts = _rifle() if rifle else _pistol()
    angle = rng.uniform(-0.5, 0.5) if rifle else rng.uniform(-math.pi, math.pi)
    span = 900 if rifle else 190
    cx = rng.uniform(x0 + span / 2, max(x1 - span / 2, x0 + span / 2 + 1))
    cy = rng.uniform(y0 + 80, max(y1 - 80, y0 + 81))
    zc = rng.uniform(z0 + 30, max(z1 - 30, z0 + 31))
    mass = 0.0
    ca, sa = math.cos(angle), math.sin(angle)
    for pts, depth, mat, density in parts:
        placed = [(cx + x * ca - y * sa, cy + x * sa + y * ca) for x, y in pts]
        s.polygon(placed, zc - depth / 2, zc + depth / 2, mat, density=density)
        mass += _area(pts) * depth * density / 1e6
    return mass


Part = tuple[list[tuple[float, float]], float, str, float]  # outline, depth mm, material, mean density


def _rifle() -> list[Part]:
    """An assault-rifle outline (mm, origin mid-receiver): barrel, hollow receiver, magazine, stock."""
    return [
        ([(0, -8), (470, -8), (470, 8), (0, 8)], 16, "steel", 5.5),
        ([(-230, -35), (40, -35), (40, 30), (-230, 30)], 32, "steel", 1.6),
        ([(-60, -35), (-10, -35), (20, -200), (-40, -210)], 26, "steel", 1.1),
        ([(-150, -35), (-120, -35), (-135, -120), (-165, -115)], 30, "plastic", 0.9),
        ([(-230, -30), (-600, -95), (-610, 20), (-230, 30)], 40, "wood", 0.55),
        ([(40, -20), (300, -20), (300, 10), (40, 10)], 45, "wood", 0.35),
    ]


def _pistol() -> list[Part]:
    """A semi-automatic pistol outline: slide, frame, angled grip with a steel magazine."""
    return [
        ([(-95, 0), (95, 0), (95, 32), (-95, 32)], 26, "steel", 4.2),
        ([(-80, -25), (60, -25), (60, 0), (-80, 0)], 24, "plastic", 1.2),
        ([(-80, -25), (-45, -25), (-75, -125), (-110, -118)], 28, "plastic", 0.6),
        ([(-74, -28), (-52, -28), (-78, -118), (-98, -113)], 20, "steel", 2.2),
    ]


def _area(pts: list[tuple[float, float]]) -> float:
    """Shoelace area (mm²)."""
    a = np.array(pts)
    return float(abs(np.dot(a[:, 0], np.roll(a[:, 1], -1)) - np.dot(a[:, 1], np.roll(a[:, 0], -1))) / 2)


def compartment(s: Sketch, space: Space, wall: float = 3.0) -> float:
    """A welded steel box (built-in compartment / false wall / false floor): its six plates."""
    x0, x1, y0, y1, z0, z1 = space
    mass = solid(s, (x0, x1, y0, y1, z0, z0 + wall), "steel", 7.85)
    mass += solid(s, (x0, x1, y0, y1, z1 - wall, z1), "steel", 7.85)
    mass += solid(s, (x0, x0 + wall, y0, y1, z0, z1), "steel", 7.85)
    mass += solid(s, (x1 - wall, x1, y0, y1, z0, z1), "steel", 7.85)
    s.plate(x0, x1, y0, wall, z0, z1, "steel")
    s.plate(x0, x1, y1 - wall, wall, z0, z1, "steel")
    return mass + 2 * 7.85 * (x1 - x0) * wall * (z1 - z0) / 1e6


def cargo(s: Sketch, bay: Space, kind: str, rng: np.random.Generator, fill: float) -> None:
    """Fill a share of the bay with pallets of cargo of one style (mixed or dense)."""
    x0, x1, y0, y1, z0, z1 = bay
    x = x0 + rng.uniform(0, 200)
    while x < x0 + fill * (x1 - x0):
        step = rng.uniform(900, 1250)
        for zc in (z0 + (z1 - z0) / 4, z0 + 3 * (z1 - z0) / 4):
            if rng.random() < 0.85:
                _pallet(s, (x, min(x + step - 50, x1), y0, y1, zc - (z1 - z0) / 4 + 20, zc + (z1 - z0) / 4 - 20), kind, rng)
        x += step


def _pallet(s: Sketch, space: Space, kind: str, rng: np.random.Generator) -> None:
    """One pallet load: wooden pallet plus cartons, drums, rolls, tiles or machinery."""
    x0, x1, y0, y1, z0, z1 = space
    s.block(x0, x1, y0, y0 + 144, z0, z1, "wood", density=0.22)
    top = y0 + 144 + rng.uniform(0.3, 1.0) * (y1 - y0 - 144)
    style = rng.choice(["paper", "ceramic", "coil", "machinery"] if kind == "dense"
                       else ["cartons", "cartons", "drums", "textile", "tyres", "machinery"])
    if style in ("cartons", "textile"):
        mat = "textile_bales" if style == "textile" else str(rng.choice(["cardboard", "plastic", "paper", "grain"]))
        dens = {"textile_bales": 0.35, "cardboard": 0.12, "plastic": 0.15, "paper": 0.5, "grain": 0.7}[mat]
        for yb in np.arange(y0 + 144, top - 200, rng.uniform(250, 500)):
            s.block(x0 + 10, x1 - 10, yb, min(yb + 480, top), z0, z1, mat, density=dens * rng.uniform(0.6, 1.3))
    elif style == "drums":
        for xc in np.arange(x0 + 300, x1 - 280, 590):
            s.post(xc, 290, y0 + 150, y0 + 1030, (z0 + z1) / 2, "steel", inner=289, density=7.85)
            s.post(xc, 288, y0 + 150, y0 + 150 + 880 * rng.uniform(0.3, 0.95), (z0 + z1) / 2,
                   str(rng.choice(["water", "diesel"])))
    elif style == "tyres":
        for yb in np.arange(y0 + 144, top - 200, 210):
            s.post((x0 + x1) / 2, 330, yb, yb + 200, (z0 + z1) / 2, "rubber", inner=200, density=0.5)
    elif style == "paper":
        s.post((x0 + x1) / 2, min(550, (x1 - x0) / 2), y0 + 144, top, (z0 + z1) / 2, "paper", inner=50)
    elif style == "ceramic":
        s.block(x0 + 20, x1 - 20, y0 + 144, y0 + 144 + (top - y0) * 0.45, z0, z1, "ceramic", density=1.5)
    elif style == "coil":
        s.disc((x0 + x1) / 2, y0 + 144 + 500, 500, z0, z1, "steel", inner=250)
    else:
        by = y0 + 144
        for _ in range(int(rng.integers(2, 6))):  # parts stacked on the pallet, in a crate
            bx, h = rng.uniform(x0, max(x1 - 200, x0)), rng.uniform(80, 400)   # a space under 200 mm: at its front
            s.block(bx, bx + rng.uniform(100, 500), by, by + h, z0 + 50, z1 - 50, "machinery",
                    density=rng.uniform(0.3, 1.8))
            by += h
        s.block(x0, x1, y0 + 144, by + 30, z0, z1, "wood", density=0.03)


def clutter(s: Sketch, bay: Space, rng: np.random.Generator) -> None:
    """Innocent things in a car boot or van: luggage, water, a toolbox, a child seat, a laptop."""
    x0, x1, y0, y1, z0, z1 = bay
    for _ in range(int(rng.integers(0, 5))):
        w, h = rng.uniform(200, 700), rng.uniform(100, 450)
        bx = rng.uniform(x0, max(x1 - w, x0 + 1))
        zc = rng.uniform(z0 + 150, max(z1 - 150, z0 + 151))
        kind = rng.integers(5)
        if kind == 0:
            s.block(bx, bx + w, y0, y0 + h, zc - 200, zc + 200, "fabric", density=0.2)
        elif kind == 1:
            s.block(bx, bx + 300, y0, y0 + 330, zc - 100, zc + 100, "water", density=0.8)
        elif kind == 2:
            s.block(bx, bx + 450, y0, y0 + 200, zc - 110, zc + 110, "steel", density=0.35)
        elif kind == 3:
            s.block(bx, bx + 450, y0, y0 + 600, zc - 220, zc + 220, "plastic", density=0.12)
        else:
            s.block(bx, bx + 330, y0 + 20, y0 + 42, zc - 120, zc + 120, "aluminium", density=0.9)
