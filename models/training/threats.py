"""Threat objects in variants; `novel=True` draws only variants that training never sees."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import cv2
import numpy as np

from models.training.shapes import Obj, cylinder, ellipse, ellipsoid, poly, pose, rect, smooth_field

T = TypeVar("T")
Params = dict[str, Any]  # one shape's parameters: sizes, angles, flags and material names

CLASSES = ("firearm", "knife", "ammunition", "cigarettes", "phone", "battery", "drugs")


def jit(rng: np.random.Generator, v: float, f: float = 0.08) -> float:
    return float(v * (1 + rng.uniform(-f, f)))


# ---------------------------------------------------------------- firearms
PISTOLS: list[Params] = [  # slide length/height, grip length/width, grip angle, frame material, slide steel path
    dict(L=186, H=32, G=105, GW=32, a=18, frame="polycarbonate", ts=13),
    dict(L=216, H=30, G=110, GW=34, a=12, frame="steel", ts=12),
    dict(L=165, H=30, G=95, GW=30, a=20, frame="polycarbonate", ts=11),
    dict(L=205, H=36, G=115, GW=36, a=16, frame="aluminium", ts=14),
    dict(L=150, H=28, G=85, GW=28, a=14, frame="steel", ts=10),
]
NOVEL_PISTOLS: list[Params] = [dict(L=240, H=26, G=125, GW=30, a=30, frame="steel", ts=12),
                 dict(L=175, H=40, G=100, GW=40, a=8, frame="polycarbonate", ts=16)]
REVOLVERS: list[Params] = [dict(B=100, D=38, C=40, G=100, a=28), dict(B=55, D=34, C=36, G=85, a=35)]
NOVEL_REVOLVERS: list[Params] = [dict(B=160, D=42, C=44, G=110, a=22)]


def pistol(rng: np.random.Generator, p: dict) -> Obj:
    L, H, G, GW = (jit(rng, p[k]) for k in ("L", "H", "G", "GW"))
    a = np.radians(jit(rng, p["a"], 0.2))
    dx = G * np.tan(a)
    o = Obj(int(H + G + 30), int(L + dx + 30), "firearm")
    x0, y0 = 10 + dx, 8.0
    o.poly("steel", [(x0, y0), (x0 + L, y0), (x0 + L, y0 + H), (x0, y0 + H)], jit(rng, p["ts"]))
    o.add("steel", cylinder(o.h, o.w, x0 + 2, x0 + L - 1, y0 + H * 0.42, 6.5, 2.5))
    fy = y0 + H
    o.poly(p["frame"], [(x0 + L * 0.22, fy), (x0 + L * 0.9, fy), (x0 + L * 0.9, fy + 10), (x0 + L * 0.22, fy + 12)],
           24 if p["frame"] == "polycarbonate" else 7)
    gx = x0 + L * 0.02
    grip = [(gx, fy), (gx + GW, fy), (gx + GW - dx, fy + G), (gx - dx, fy + G)]
    o.poly(p["frame"], grip, 28 if p["frame"] == "polycarbonate" else 9)
    mag = [(gx + 6, fy + 4), (gx + GW - 7, fy + 4), (gx + GW - 7 - dx, fy + G + 3), (gx + 6 - dx, fy + G + 3)]
    o.poly("steel", mag, 1.8)
    o.poly("brass", mag, 5.0)
    o.poly("lead", [(gx + 9, fy + 4), (gx + GW - 10, fy + 4), (gx + GW - 10 - dx * 0.3, fy + G * 0.3),
                    (gx + 9 - dx * 0.3, fy + G * 0.3)], 3.0)
    gcx = gx + GW + 18
    o.add("steel", ellipse(o.h, o.w, gcx, fy + 16, 19, 14, 6) - ellipse(o.h, o.w, gcx, fy + 16, 15, 10, 6))
    o.poly("steel", [(gcx - 4, fy + 2), (gcx, fy + 2), (gcx - 2, fy + 20), (gcx - 6, fy + 18)], 5)
    return o


def revolver(rng: np.random.Generator, p: dict) -> Obj:
    B, D, C, G = (jit(rng, p[k]) for k in ("B", "D", "C", "G"))
    a = np.radians(jit(rng, p["a"], 0.2))
    dx = G * np.tan(a)
    o = Obj(int(D + G + 30), int(B + C + 60 + dx), "firearm")
    x0, y0 = 12 + dx, 8.0
    o.add("steel", cylinder(o.h, o.w, x0 + 40, x0 + 40 + C, y0 + D / 2, D / 2) * 0.62)
    o.poly("steel", [(x0 + 10, y0 + 2), (x0 + 40 + C + 6, y0 + 2), (x0 + 40 + C + 6, y0 + D - 2), (x0 + 10, y0 + D)], 6)
    o.add("steel", cylinder(o.h, o.w, x0 + 40 + C, x0 + 40 + C + B, y0 + 9, 8, 3.2))
    o.poly("steel", [(x0 + 40 + C, y0 + 1), (x0 + 40 + C + B, y0 + 1), (x0 + 40 + C + B, y0 + 17), (x0 + 40 + C, y0 + 20)], 4)
    grip = [(x0 + 6, y0 + D - 6), (x0 + 34, y0 + D - 4), (x0 + 34 - dx, y0 + D + G), (x0 - 4 - dx, y0 + D + G - 6)]
    o.poly("wood", grip, 30)
    o.poly("steel", [(x0 + 14, y0 + D - 6), (x0 + 26, y0 + D - 6), (x0 + 22 - dx, y0 + D + G - 10),
                     (x0 + 10 - dx, y0 + D + G - 10)], 6)
    o.add("steel", ellipse(o.h, o.w, x0 + 52, y0 + D + 12, 16, 12, 6) - ellipse(o.h, o.w, x0 + 52, y0 + D + 12, 12, 8, 6))
    return o


# Training also draws designs from these ranges; every held-out design lies outside at least one of
# them (slide length, slide height or grip angle; barrel length), so held-out stays unseen.
PISTOL_RANGES = dict(L=(145, 220), H=(27, 37), G=(82, 118), GW=(27, 37), a=(8, 22), ts=(9, 15))
REVOLVER_RANGES = dict(B=(50, 110), D=(32, 40), C=(34, 42), G=(80, 105), a=(24, 36))


def _ranged(rng: np.random.Generator, ranges: Mapping[str, tuple[float, float]], **fixed: object) -> Params:
    return {**{k: float(rng.uniform(*r)) for k, r in ranges.items()}, **fixed}


def firearm(rng: np.random.Generator, novel: bool = False) -> Obj:
    if rng.random() < 0.7:
        if not novel and rng.random() < 0.5:
            frame = ["polycarbonate", "steel", "aluminium"][int(rng.integers(3))]
            return pistol(rng, _ranged(rng, PISTOL_RANGES, frame=frame))
        return pistol(rng, _pick(rng, NOVEL_PISTOLS if novel else PISTOLS))
    if not novel and rng.random() < 0.5:
        return revolver(rng, _ranged(rng, REVOLVER_RANGES))
    return revolver(rng, _pick(rng, NOVEL_REVOLVERS if novel else REVOLVERS))


def _pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


# ---------------------------------------------------------------- knives
def _blade(o: Obj, pts: Sequence[tuple[float, float]], spine: float, material: str = "stainless") -> None:
    """Blade plate whose thickness tapers from the spine (top) to the edge (bottom)."""
    ys = np.array([p[1] for p in pts])
    y = np.clip((np.arange(o.h)[:, None] - ys.min()) / max(1.0, ys.max() - ys.min()), 0, 1)
    taper = (spine * (1.0 - 0.8 * y)).astype(np.float32)
    o.add(material, poly(o.h, o.w, pts, 1.0) * taper)


KNIVES = {
    "chef": lambda bl, bw: [(0, 0), (bl, bw * 0.2), (bl * 0.85, bw * 0.6), (0, bw)],
    "drop": lambda bl, bw: [(0, 0), (bl * 0.7, 0), (bl, bw * 0.45), (bl * 0.6, bw), (0, bw)],
    "dagger": lambda bl, bw: [(0, 0), (bl * 0.2, 0), (bl, bw / 2), (bl * 0.2, bw), (0, bw)],
    "tanto": lambda bl, bw: [(0, 0), (bl * 0.85, 0), (bl, bw * 0.6), (bl * 0.8, bw), (0, bw)],
    "santoku": lambda bl, bw: [(0, 0), (bl * 0.75, 0), (bl * 0.93, bw * 0.15), (bl, bw * 0.45), (bl * 0.8, bw),
                               (0, bw)],
    "bread": lambda bl, bw: [(0, 0), (bl * 0.92, 0), (bl, bw * 0.3), (bl, bw * 0.55), (bl * 0.92, bw * 0.65),
                             (0, bw * 0.65)],
    "utility": lambda bl, bw: [(0, 0), (bl * 0.45, 0), (bl * 0.6, bw * 0.9), (0, bw * 0.9)],
    "spear": lambda bl, bw: [(0, bw * 0.1), (bl * 0.6, 0), (bl, bw * 0.5), (bl * 0.6, bw), (0, bw * 0.9)],
}
NOVEL_KNIVES = {
    "cleaver": lambda bl, bw: [(0, 0), (bl, 0), (bl, bw * 1.9), (0, bw * 1.9)],
    "karambit": lambda bl, bw: [(0, bw * 0.2), (bl * 0.4, 0), (bl * 0.8, bw * 0.3), (bl, bw * 1.2), (bl * 0.75, bw * 0.8),
                                (bl * 0.4, bw * 0.6), (0, bw)],
}


def knife(rng: np.random.Generator, novel: bool = False) -> Obj:
    table = NOVEL_KNIVES if novel else KNIVES
    name = list(table)[int(rng.integers(len(table)))]
    bl, bw = rng.uniform(70, 210), rng.uniform(18, 45)
    hl = rng.uniform(80, 125)
    o = Obj(int(bw * 2.2 + 30), int(bl + hl + 30), "knife")
    x0, y0 = 10 + hl, 10.0
    _blade(o, [(x0 + x, y0 + y) for x, y in table[name](bl, bw)], rng.uniform(2.0, 4.0))
    handle = (10, y0 + 2, x0 + 2, y0 + min(bw, 30) - 1)
    material = ["polycarbonate", "wood", "rubber", "aluminium"][int(rng.integers(4))]
    o.add(material, rect(o.h, o.w, *handle, 10 if material == "aluminium" else 20))
    if rng.random() < 0.6:  # full tang or liners
        o.add("stainless", rect(o.h, o.w, handle[0] + 4, handle[1] + 4, handle[2], handle[3] - 4, 3))
    return o


# ---------------------------------------------------------------- ammunition
CARTRIDGES: list[Params] = [dict(case=19, d=9.9, bullet=9, shot=False), dict(case=23, d=12, bullet=12, shot=False),
              dict(case=33, d=9.6, bullet=10, shot=False), dict(case=15, d=5.7, bullet=6, shot=False)]
NOVEL_CARTRIDGES: list[Params] = [dict(case=45, d=9.6, bullet=18, shot=False), dict(case=65, d=20, bullet=0, shot=True)]


def cartridge(rng: np.random.Generator, c: dict) -> Obj:
    r = c["d"] / 2
    o = Obj(int(c["d"] + 4), int(c["case"] + c["bullet"] + 6), None)
    if c["shot"]:
        o.add("polyethylene", cylinder(o.h, o.w, 2, 2 + c["case"], 2 + r, r, 0.8))
        o.add("brass", cylinder(o.h, o.w, 2, 2 + 12, 2 + r, r, 0.6))
        o.add("lead", cylinder(o.h, o.w, 18, 2 + c["case"] - 10, 2 + r, r - 1) * 0.6)
        return o
    o.add("brass", cylinder(o.h, o.w, 2, 2 + c["case"], 2 + r, r, 0.45))
    o.add("brass", rect(o.h, o.w, 2, 2, 4, 2 + 2 * r, 2 * r * 0.8))
    o.add("lead", cylinder(o.h, o.w, 2 + c["case"] - 5, 2 + c["case"] + c["bullet"] * 0.7, 2 + r, r * 0.95))
    o.add("lead", ellipse(o.h, o.w, 2 + c["case"] + c["bullet"] * 0.7, 2 + r, c["bullet"] * 0.3, r * 0.9, r * 1.4))
    return o


def ammunition(rng: np.random.Generator, novel: bool = False) -> Obj:
    c = _pick(rng, NOVEL_CARTRIDGES if novel else CARTRIDGES)
    one = cartridge(rng, c)
    if rng.random() < 0.5:  # a box of rounds standing in rows: seen end-on, each round is a disc
        rows, cols = int(rng.integers(2, 6)), int(rng.integers(4, 10))
        pitch = c["d"] + 1.5
        o = Obj(int(rows * pitch + 12), int(cols * pitch + 12), "ammunition")
        o.add("cardboard", rect(o.h, o.w, 2, 2, o.w - 2, o.h - 2, 4))
        for i in range(rows):
            for k in range(cols):
                cx, cy = 6 + (k + 0.5) * pitch, 6 + (i + 0.5) * pitch
                o.add("brass", ellipse(o.h, o.w, cx, cy, c["d"] / 2, c["d"] / 2, 2.0 + c["case"] * 0.06))
                o.add("lead", ellipse(o.h, o.w, cx, cy, c["d"] * 0.42, c["d"] * 0.42, c["bullet"] * 0.8))
        return o
    n = int(rng.integers(3, 12))
    size = int(max(40 + 10 * n, one.w * 1.5 + 10))
    o = Obj(size, size, "ammunition")
    for _ in range(n):
        p = pose(one, rng.uniform(0, 360))
        o.paste(p, int(rng.uniform(0, size - p.w)), int(rng.uniform(0, size - p.h)))
    return _crop(o)


def _crop(o: Obj, margin: int = 2) -> Obj:
    total = sum(o.parts.values(), np.zeros((o.h, o.w), np.float32))
    ys, xs = np.nonzero(total > 0.3)
    y0, y1 = max(0, ys.min() - margin), min(o.h, ys.max() + margin + 1)
    x0, x1 = max(0, xs.min() - margin), min(o.w, xs.max() + margin + 1)
    out = Obj(int(y1 - y0), int(x1 - x0), o.label)
    for m, arr in o.parts.items():
        out.add(m, arr[y0:y1, x0:x1].copy())
    return out


# ---------------------------------------------------------------- cigarettes
def _pack(rng: np.random.Generator, length: float, dia: float, per_row: int, layers: int) -> Obj:
    """A pack lying flat: cigarettes side by side along the pack, filters at one end."""
    o = Obj(int(per_row * dia + 6), int(length + 6), None)
    for i in range(per_row):
        cy = 3 + (i + 0.5) * dia
        o.add("tobacco", cylinder(o.h, o.w, 3, 3 + length * 0.75, cy, dia / 2) * layers)
        o.add("textile", cylinder(o.h, o.w, 3 + length * 0.75, 3 + length, cy, dia / 2) * layers * 0.8)
        o.add("paper", cylinder(o.h, o.w, 3, 3 + length, cy, dia / 2, 0.1) * layers)
    o.add("cardboard", rect(o.h, o.w, 2, 2, o.w - 2, o.h - 2, 1.2))
    o.add("aluminium", rect(o.h, o.w, 3, 3, o.w - 3, o.h - 3, 0.03))
    return o


CARTON_LAYOUTS = [(5, 2), (2, 2), (3, 2), (2, 3), (4, 2), (5, 1), (1, 4), (3, 3)]
NOVEL_CARTON_LAYOUTS = [(10, 1), (2, 5), (4, 3)]


def cigarettes(rng: np.random.Generator, novel: bool = False) -> Obj:
    length: float
    dia: float
    if novel:
        length, dia, per_row, layers = (100, 5.4, 10, 2) if rng.random() < 0.5 else (84, 7.8, 7, 3)
    elif rng.random() < 0.5:
        length, dia, per_row, layers = rng.uniform(78, 90), rng.uniform(6.8, 8.2), int(rng.integers(6, 9)), \
            int(rng.integers(2, 4))
    else:
        length, dia, per_row, layers = 84, 7.8, 7, 3
    pack = _pack(rng, length, dia, per_row, layers)
    if rng.random() < 0.35:  # loose pack(s): one box per pack
        pack.label = "cigarettes"
        return pack
    rows, cols = _pick(rng, NOVEL_CARTON_LAYOUTS) if novel else \
        ((5, 2) if rng.random() < 0.5 else _pick(rng, CARTON_LAYOUTS))
    o = Obj(int(rows * pack.h + 8), int(cols * pack.w + 8), "cigarettes")
    for i in range(rows):
        for k in range(cols):
            o.paste(pack, 4 + k * pack.w, 4 + i * pack.h)
    o.add("cardboard", rect(o.h, o.w, 1, 1, o.w - 1, o.h - 1, 1.5))
    return o


# ---------------------------------------------------------------- phones
def phone(rng: np.random.Generator, novel: bool = False) -> Obj:
    if novel and rng.random() < 0.5:
        return _feature_phone(rng)
    if novel:
        L, W = rng.uniform(165, 180), rng.uniform(76, 84)
    elif rng.random() < 0.5:
        L, W = rng.uniform(138, 163), rng.uniform(66, 76)
    else:  # compact to regular phones, drawn wider
        L, W = rng.uniform(118, 163), rng.uniform(56, 76)
    o = Obj(int(W + 6), int(L + 6), "phone")
    body = (3, 3, 3 + L, 3 + W)
    o.add("glass", rect(o.h, o.w, *body, 1.4))
    rim = rect(o.h, o.w, *body, 1.0) - rect(o.h, o.w, 5, 5, 1 + L, 1 + W, 1.0)
    o.add(_pick(rng, ["aluminium", "stainless"]), rim * 7.5)
    o.add("aluminium", rect(o.h, o.w, 6, 6, L, W, 0.6))
    bx0 = 3 + L * rng.uniform(0.3, 0.4)
    o.add("li_cell", rect(o.h, o.w, bx0, 10, bx0 + L * 0.5, W - 4, 4.2))
    pcb_x = 8 if not novel else 3 + L * 0.88
    o.add("pcb", rect(o.h, o.w, pcb_x, 8, pcb_x + L * 0.25, W - 2, 1.2))
    o.add("steel", rect(o.h, o.w, pcb_x + 4, 14, pcb_x + L * 0.18, W - 10, 0.3))
    o.add("silicon", rect(o.h, o.w, pcb_x + 8, 20, pcb_x + 20, 32, 1.0))
    cam = 3 + (L * 0.1 if not novel else L * 0.5)
    for k in range(int(rng.integers(1, 4))):
        o.add("glass", ellipse(o.h, o.w, cam + 6, 12 + k * 13, 5.5, 5.5, 4))
        o.add("steel", ellipse(o.h, o.w, cam + 6, 12 + k * 13, 6.5, 6.5, 0.6))
    o.add("steel", ellipse(o.h, o.w, 3 + L * 0.96, W / 2 + 3, 5, 7, 2.5))
    return o


def _feature_phone(rng: np.random.Generator) -> Obj:
    L, W = rng.uniform(105, 120), rng.uniform(45, 52)
    o = Obj(int(W + 6), int(L + 6), "phone")
    o.add("polycarbonate", rect(o.h, o.w, 3, 3, 3 + L, 3 + W, 12))
    o.add("li_cell", rect(o.h, o.w, 3 + L * 0.45, 8, 3 + L * 0.9, W - 2, 5))
    o.add("pcb", rect(o.h, o.w, 6, 6, 3 + L * 0.95, W, 1.0))
    for r in range(4):
        for c in range(3):
            o.add("rubber", ellipse(o.h, o.w, 12 + r * 9, 14 + c * 12, 3, 4, 2))
    return o


# ---------------------------------------------------------------- batteries
def battery(rng: np.random.Generator, novel: bool = False) -> Obj:
    dia, length = (21.0, 70.0) if novel else \
        ((18.3, 65.0) if rng.random() < 0.5 else _pick(rng, [(14.0, 50.0), (18.3, 65.0), (26.0, 65.0)]))
    if not novel and rng.random() < 0.35:  # flat pouch power bank
        L, W = rng.uniform(90, 140), rng.uniform(60, 75)
        o = Obj(int(W + 8), int(L + 8), "battery")
        o.add("polycarbonate", rect(o.h, o.w, 4, 4, 4 + L, 4 + W, 3))
        o.add("li_cell", rect(o.h, o.w, 8, 8, L - 10, W, rng.uniform(8, 14)))
        o.add("pcb", rect(o.h, o.w, L - 9, 10, L + 2, W - 2, 1.5))
        o.add("steel", rect(o.h, o.w, L + 1, W / 2 - 4, L + 5, W / 2 + 4, 6))
        return o
    n = int(rng.integers(3, 7)) if novel else int(rng.integers(1, 6))
    o = Obj(int(n * (dia + 1) + 14), int(length + 30), "battery")
    shell = _pick(rng, ["polycarbonate", "aluminium"])
    o.add(shell, rect(o.h, o.w, 3, 3, o.w - 3, o.h - 3, 3 if shell == "polycarbonate" else 2))
    for i in range(n):
        cy = 7 + (i + 0.5) * (dia + 1)
        o.add("li_cell", cylinder(o.h, o.w, 6, 6 + length, cy, dia / 2 - 0.3))
        o.add("steel", cylinder(o.h, o.w, 6, 6 + length, cy, dia / 2, 0.3))
    o.add("pcb", rect(o.h, o.w, 8 + length, 6, 8 + length + 12, o.h - 6, 1.5))
    o.add("steel", rect(o.h, o.w, 8 + length + 10, o.h / 2 - 5, 8 + length + 16, o.h / 2 + 5, 5))
    return o


# ---------------------------------------------------------------- drugs
def drugs(rng: np.random.Generator, novel: bool = False) -> Obj:
    material = "heroin" if novel else "cocaine"
    if novel and rng.random() < 0.5:  # swallowed-style pellets: a cluster of ellipsoids
        n = int(rng.integers(6, 16))
        size = int(60 + 6 * n)
        o = Obj(size, size, "drugs")
        for _ in range(n):
            ax, ay = rng.uniform(8, 12), rng.uniform(18, 25)
            cx, cy = rng.uniform(ax + 2, size - ax - 2), rng.uniform(ay + 2, size - ay - 2)
            o.add(material, ellipsoid(size, size, cx, cy, ax, ay, 2 * ax))
            o.add("rubber", ellipsoid(size, size, cx, cy, ax + 0.5, ay + 0.5, 1.0))
        return _crop(o)
    L, W, D = rng.uniform(120, 260), rng.uniform(80, 170), rng.uniform(25, 65)
    o = Obj(int(W + 10), int(L + 10), "drugs")
    shape = "brick" if novel or rng.random() < 0.5 else _pick(rng, ["brick", "oval", "bag"])
    if shape == "oval":
        edge = ellipse(o.h, o.w, 5 + L / 2, 5 + W / 2, L / 2, W / 2, 1.0)
    elif shape == "bag":  # a soft bag: an ellipse with a lumpy outline
        soft_edge = cv2.GaussianBlur(ellipse(o.h, o.w, 5 + L / 2, 5 + W / 2, L / 2 - 4, W / 2 - 4, 1.0), (0, 0), 8.0)
        edge = (soft_edge > 0.25 + 0.5 * smooth_field(rng, o.h, o.w, 30)).astype(np.float32)
    else:
        edge = np.minimum(rect(o.h, o.w, 5, 5, 5 + L, 5 + W, 1.0), 1.0)
    soft = cv2.GaussianBlur(edge, (0, 0), 4.0)
    o.add(material, soft * D * (0.92 + 0.08 * smooth_field(rng, o.h, o.w, 20)))
    o.add("polyethylene", edge * rng.uniform(1.0, 4.0))
    return o


GENERATORS = {"firearm": firearm, "knife": knife, "ammunition": ammunition, "cigarettes": cigarettes,
              "phone": phone, "battery": battery, "drugs": drugs}
