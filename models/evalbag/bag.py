"""Whole scans of the evaluation bag generator: a container, packed goods, threats, a drawn scanner.

Containers: hard suitcases (shell, trolley tubes, wheels), soft holdalls (fabric, zip, frame wire),
backpacks (foam back panel, buckles), cardboard parcels and open trays of loose items. Goods are
packed first (clothes fill most bags), then threats at random places, angles and tilts, so they
sit on, under and among the goods. Truth boxes are [x0, y0, x1, y1] in pixels (x across the belt,
y along it) around every pixel where the threat adds a quarter millimetre or more of matter.
"""

from __future__ import annotations

import numpy as np

from models.evalbag.beam import ScannerDraw, read_out, transmission
from models.evalbag.draw import Canvas, Item, disc, rod, shell, slab
from models.evalbag.items import GOODS, THREATS
from models.scan import Scan

LABELS = tuple(THREATS)          # firearm, knife, ammunition, cigarettes, phone, battery, drugs
SIZE = 640


def container(rng: np.random.Generator, w: float, h: float) -> tuple[str, Item]:
    """A bag of w × h mm (w across the belt, h along it), its walls as seen from above."""
    kind = str(rng.choice(["suitcase", "holdall", "backpack", "parcel", "tray"], p=[0.3, 0.25, 0.2, 0.15, 0.1]))
    it = Item(kind, None)
    if kind == "suitcase":
        it.add(shell(str(rng.choice(["pc", "abs", "alu"])) if rng.random() < 0.9 else "alu", 0, 0, w, h,
                     _wall(rng, 2.0, 3.5), _u(rng, 180, 280)))
        x = w * _u(rng, 0.25, 0.4)
        for dx in (0.0, w * _u(rng, 0.2, 0.3)):
            it.add(rod("alu", (x + dx, 8), (x + dx, h - 8), 9, 8))
        for cx in (18, w - 18):
            it.add(disc("rubber_sole", cx, h - 18, 24, 14, 40))
            it.add(rod("iron", (cx - 14, h - 18), (cx + 14, h - 18), 3))
    elif kind == "holdall":
        it.add(shell("fabric_shell", 0, 0, w, h, 1.2, _u(rng, 40, 120)))
        it.add(rod("iron", (6, 6), (w - 6, 6), 1.5))
        it.add(slab("zinc_alloy", 10, h / 2 - 2, w - 10, h / 2 + 2, 1.4))
    elif kind == "backpack":
        it.add(shell("fabric_shell", 0, 0, w, h, 1.0, _u(rng, 40, 90)))
        it.add(slab("eva_foam", 10, 10, w - 10, h - 10, 12))
        for cx in (w * 0.3, w * 0.7):
            it.add(slab("polyamide", cx - 20, h - 30, cx + 20, h - 10, 6))
    elif kind == "parcel":
        it.add(shell("cardboard_wall", 0, 0, w, h, 4, _u(rng, 120, 300)))
        it.add(slab("pp", 0, h / 2 - 25, w, h / 2 + 25, 0.05))
    else:
        it.add(shell("pp", 0, 0, w, h, 3, 60))
    return kind, it


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _wall(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _draw_threats(rng: np.random.Generator, clean_share: float) -> list[str]:
    if rng.random() < clean_share:
        return []
    return [LABELS[int(i)] for i in rng.integers(0, len(LABELS), size=int(rng.integers(1, 4)))]


def bag_scan(seed: int, *, contents: list[str] | None = None, clean_share: float = 0.35,
             pitch_mm: tuple[float, float] = (0.9, 1.15), scanner: ScannerDraw | None = None) -> Scan:
    """One deterministic 640 × 640 scan for the seed; truth under meta['truth'], goods under meta['goods'].

    contents: the threat labels to put in (None: drawn, `clean_share` of bags holding none).
    """
    unknown = sorted(set(contents or []) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown contents {unknown}; the labels are {list(LABELS)}")
    if not 0.5 <= pitch_mm[0] <= pitch_mm[1] <= 3.0:
        raise ValueError(f"pitch range {pitch_mm} mm must be ordered and within 0.5 to 3 mm")
    rng = np.random.default_rng([seed, 20])
    s = scanner or ScannerDraw.draw(rng, pitch_mm)
    field = SIZE * s.pixel_mm
    canvas = Canvas(SIZE, SIZE, s.pixel_mm)
    w, h = _u(rng, 0.5, 0.93) * field, _u(rng, 0.55, 0.95) * field
    x0, y0 = _u(rng, 4, field - w - 4), _u(rng, 4, field - h - 4)
    kind, bag = container(rng, w, h)
    inside = (x0 + 6, y0 + 6, x0 + w - 6, y0 + h - 6)
    names = list(GOODS)
    freq = np.array([GOODS[n][1] for n in names])
    goods = []
    for i in rng.choice(len(names), size=int(rng.integers(3, 5 + int(w * h / 30000))), p=freq / freq.sum()):
        item = GOODS[names[i]][0](rng)
        goods.append(item.name)
        _put(rng, canvas, item, inside)
    truth = []
    labels = _draw_threats(rng, clean_share) if contents is None else list(contents)
    for label in labels:
        makers = THREATS[label]
        item = makers[int(rng.integers(len(makers)))](rng)
        box = _put(rng, canvas, item, inside)
        if box is not None:
            truth.append({"label": label, "box": box, "kind": item.name})
    canvas.place(bag, x0 + w / 2, y0 + h / 2, 0.0)
    high, low = read_out(*transmission(canvas.areal, s), s, rng)
    meta = {"kind": "baggage", "source": "evalbag", "seed": seed, "pixel_mm": s.pixel_mm, "kvp": s.kvp,
            "lines_per_s": round(float(rng.uniform(200, 400)), 1), "container": kind, "goods": goods, "truth": truth,
            "scanner": {k: v for k, v in s.__dict__.items()}}
    return Scan(high=high, low=low, meta=meta)


def _put(rng: np.random.Generator, canvas: Canvas, item: Item, inside: tuple[float, float, float, float]) -> list[float] | None:
    """Place an item at a random pose inside the bag; its matter stops at the bag's walls."""
    x0, y0, x1, y1 = inside
    half = item.size() / 2
    mx, my = min(half, (x1 - x0) / 2), min(half, (y1 - y0) / 2)
    cx = _u(rng, x0 + mx, max(x0 + mx, x1 - mx))
    cy = _u(rng, y0 + my, max(y0 + my, y1 - my))
    squash = _u(rng, 0.6, 1.0) if rng.random() < 0.3 else 1.0
    return canvas.place(item, cx, cy, _u(rng, 0, 2 * np.pi), bool(rng.random() < 0.5), squash, clip=inside)
