"""Harmless contents of bags and parcels, including look-alikes (tools, tablets of food, chargers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from models.training.shapes import Obj, cylinder, ellipse, ellipsoid, polyline, pose, rect, smooth_field

T = TypeVar("T")


def clothes(rng: np.random.Generator) -> Obj:
    h, w = int(rng.uniform(150, 380)), int(rng.uniform(150, 420))
    o = Obj(h, w)
    depth = rng.uniform(25, 110)
    body = ellipsoid(h, w, w / 2, h / 2, w / 2 * 1.15, h / 2 * 1.15, 1.0)
    o.add("textile", np.clip(body * 1.6, 0, 1) * depth * (0.5 + 0.8 * smooth_field(rng, h, w, 25)))
    if rng.random() < 0.3:  # zip, buttons, underwire
        pts = np.cumsum(rng.normal(0, 12, size=(8, 2)), axis=0) + [w / 2, h / 2]
        o.add("steel", polyline(h, w, pts, 2, 1.2))
    return o


def shoe(rng: np.random.Generator) -> Obj:
    L, W = rng.uniform(230, 310), rng.uniform(80, 110)
    o = Obj(int(W + 10), int(L + 10))
    o.add("rubber", ellipse(o.h, o.w, o.w / 2, o.h / 2, L / 2, W / 2, rng.uniform(15, 30)))
    o.add("textile", ellipse(o.h, o.w, o.w / 2, o.h / 2, L / 2 - 8, W / 2 - 6, rng.uniform(60, 90)))
    if rng.random() < 0.3:
        o.add("steel", rect(o.h, o.w, L * 0.35, W / 2 + 2, L * 0.65, W / 2 + 10, 1.5))
    return o


def bottle(rng: np.random.Generator) -> Obj:
    r, L = rng.uniform(30, 45), rng.uniform(180, 290)
    o = Obj(int(2 * r + 6), int(L + 40))
    glass = rng.random() < 0.35
    wall = "glass" if glass else "pet"
    o.add(wall, cylinder(o.h, o.w, 3, 3 + L, 3 + r, r, 3.5 if glass else 0.4))
    o.add(wall, cylinder(o.h, o.w, 3 + L, 3 + L + 35, 3 + r, r * 0.35, 2.5 if glass else 0.8))
    fill = rng.uniform(0.3, 1.0)
    o.add(_pick(rng, ["water", "water", "gel"]), cylinder(o.h, o.w, 4, 4 + L * fill, 3 + r, r - 1))
    return o


def laptop(rng: np.random.Generator) -> Obj:
    L, W = rng.uniform(300, 360), rng.uniform(210, 250)
    o = Obj(int(W + 8), int(L + 8))
    o.add(_pick(rng, ["aluminium", "polycarbonate"]), rect(o.h, o.w, 4, 4, 4 + L, 4 + W, 3.0))
    o.add("glass", rect(o.h, o.w, 6, 6, 2 + L, 2 + W, 1.2))
    o.add("li_cell", rect(o.h, o.w, 30, W * 0.6, L - 30, W - 10, 6))
    o.add("pcb", rect(o.h, o.w, 40, 20, L * 0.7, W * 0.5, 1.4))
    o.add("copper", rect(o.h, o.w, 60, 30, 140, 40, 1.0))
    o.add("steel", rect(o.h, o.w, 20, 20, L - 20, W * 0.55, 0.2))
    return o


def cable(rng: np.random.Generator) -> Obj:
    n = int(rng.integers(6, 20))
    pts = np.cumsum(rng.normal(0, 25, size=(n, 2)), axis=0)
    pts -= pts.min(axis=0) - 30
    o = Obj(int(pts[:, 1].max() + 30), int(pts[:, 0].max() + 30))
    o.add("pvc", polyline(o.h, o.w, pts, int(rng.integers(3, 6)), 3))
    o.add("copper", polyline(o.h, o.w, pts, 1, rng.uniform(0.6, 1.6)))
    if rng.random() < 0.5:  # charger brick with a transformer
        x, y = pts[0]
        o.add("polycarbonate", rect(o.h, o.w, x - 25, y - 20, x + 25, y + 20, 30))
        o.add("copper", rect(o.h, o.w, x - 10, y - 8, x + 10, y + 8, 6))
        o.add("steel", rect(o.h, o.w, x - 12, y - 10, x + 12, y + 10, 3))
    return o


def keys(rng: np.random.Generator) -> Obj:
    o = Obj(110, 110)
    o.add("steel", ellipse(110, 110, 55, 55, 14, 14, 2) - ellipse(110, 110, 55, 55, 12, 12, 2))
    for _ in range(int(rng.integers(2, 6))):
        k = Obj(16, 60)
        k.add(_pick(rng, ["brass", "steel", "cupronickel"]), rect(16, 60, 18, 4, 58, 10, 2.2))
        k.add("brass", ellipse(16, 60, 10, 8, 9, 7, 2.2))
        o.paste(pose(k, rng.uniform(0, 360)), int(rng.uniform(5, 60)), int(rng.uniform(5, 60)))
    return o


def coins(rng: np.random.Generator) -> Obj:
    o = Obj(90, 90)
    for _ in range(int(rng.integers(2, 10))):
        r = rng.uniform(8, 13)
        o.add(_pick(rng, ["cupronickel", "brass", "steel", "zinc"]),
              ellipse(90, 90, rng.uniform(r, 90 - r), rng.uniform(r, 90 - r), r, r, rng.uniform(1.5, 2.3)))
    return o


def book(rng: np.random.Generator) -> Obj:
    L, W = rng.uniform(150, 250), rng.uniform(110, 180)
    o = Obj(int(W + 6), int(L + 6))
    o.add("paper", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, rng.uniform(10, 45)))
    return o


def umbrella(rng: np.random.Generator) -> Obj:
    L = rng.uniform(230, 330)
    o = Obj(50, int(L + 10))
    o.add("steel", cylinder(50, o.w, 5, 5 + L, 25, 4, 0.8))
    for k in range(8):
        o.add("aluminium", polyline(50, o.w, [(40, 25 + (k - 4) * 2.5), (L - 20, 25 + (k - 4) * 1.5)], 2, 2))
    o.add("nylon", ellipse(50, o.w, o.w / 2, 25, L / 2 - 20, 18, 12))
    o.add("polycarbonate", rect(50, o.w, L - 10, 15, L + 8, 35, 25))
    return o


def toiletries(rng: np.random.Generator) -> Obj:
    o = Obj(200, 200)
    for _ in range(int(rng.integers(2, 6))):
        r, L = rng.uniform(12, 28), rng.uniform(60, 160)
        item = Obj(int(2 * r + 4), int(L + 4))
        if rng.random() < 0.3:  # aerosol can
            item.add("aluminium", cylinder(item.h, item.w, 2, 2 + L, 2 + r, r, 0.5))
            item.add("gel", cylinder(item.h, item.w, 3, 2 + L * 0.6, 2 + r, r - 1))
        else:
            item.add("polyethylene", cylinder(item.h, item.w, 2, 2 + L, 2 + r, r, 1.0))
            item.add("gel", cylinder(item.h, item.w, 3, 2 + L * rng.uniform(0.3, 0.95), 2 + r, r - 1.5))
        p = pose(item, rng.uniform(0, 360))
        o.paste(p, int(rng.uniform(-10, 200 - p.w + 10)), int(rng.uniform(-10, 200 - p.h + 10)))
    return o


def tool(rng: np.random.Generator) -> Obj:
    """Pliers, spanners and screwdrivers: metal look-alikes that must not alarm as firearm or knife."""
    L = rng.uniform(120, 250)
    o = Obj(60, int(L + 20))
    kind = int(rng.integers(3))
    if kind == 0:  # spanner
        o.add("steel", rect(60, o.w, 20, 25, L, 35, 5))
        o.add("steel", ellipse(60, o.w, 18, 30, 14, 14, 6) - ellipse(60, o.w, 12, 30, 8, 6, 6))
    elif kind == 1:  # pliers
        o.add("steel", polyline(60, o.w, [(10, 20), (L * 0.6, 30), (L, 28)], 7, 8))
        o.add("steel", polyline(60, o.w, [(10, 42), (L * 0.6, 30), (L, 32)], 7, 8))
        o.add("pvc", polyline(60, o.w, [(10, 20), (L * 0.5, 28)], 12, 10))
    else:  # screwdriver
        o.add("polycarbonate", cylinder(60, o.w, 10, 10 + L * 0.4, 30, 14))
        o.add("steel", cylinder(60, o.w, 10 + L * 0.4, L, 30, 3))
    return o


def food(rng: np.random.Generator) -> Obj:
    """Cheese, chocolate, sweets: dense organic blocks that look a little like drug packages."""
    L, W = rng.uniform(80, 220), rng.uniform(60, 140)
    o = Obj(int(W + 6), int(L + 6))
    o.add("food", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, rng.uniform(15, 60)) * (0.85 + 0.3 * smooth_field(rng, o.h, o.w, 15)))
    if rng.random() < 0.4:
        o.add("aluminium", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, 0.05))
    return o


def tablet(rng: np.random.Generator) -> Obj:
    """E-reader or tablet: larger than any phone; harmless."""
    L, W = rng.uniform(200, 250), rng.uniform(140, 175)
    o = Obj(int(W + 6), int(L + 6))
    o.add("aluminium", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, 1.2))
    o.add("glass", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, 1.0))
    o.add("li_cell", rect(o.h, o.w, 20, 20, L - 20, W - 20, 3))
    o.add("pcb", rect(o.h, o.w, 10, 10, 40, W - 10, 1))
    return o


def _pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


# name -> (generator, relative frequency)
CLUTTER = {"clothes": (clothes, 5), "shoe": (shoe, 1.5), "bottle": (bottle, 1.5), "laptop": (laptop, 0.6),
           "cable": (cable, 1.5), "keys": (keys, 0.8), "coins": (coins, 0.8), "book": (book, 1.0),
           "umbrella": (umbrella, 0.5), "toiletries": (toiletries, 1.0), "tool": (tool, 0.8),
           "food": (food, 0.8), "tablet": (tablet, 0.3)}
