"""Whole baggage/parcel scans: a container, clutter and threats, rendered to a Scan with its truth boxes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from models.scan import Scan
from models.training import domain
from models.training.clutter import CLUTTER
from models.training.negatives import EXTRA_CUES, HARD_NEGATIVES
from models.training.physics import Scanner, detect, ideal_transmission
from models.training.shapes import Obj, add_clipped, cylinder, ellipse, footprint, polyline, pose, rect
from models.training.threats import CLASSES, GENERATORS


@dataclass(frozen=True)
class SceneSpec:
    """What to put in a scan; threats=None draws them at random (p_clean of bags have none).

    wide: the wide training domain of issue 20 (models/training/negatives.py and domain.py): hard
    negatives among the clutter, extra cues per class, and a drawn scanner (energy, filtration,
    detector, noise, blur, crosstalk, drift, pixel pitch 0.8–1.5 mm, belt speed). Off, a seed's scan
    is exactly what it was before (the held-out sets every version was scored on)."""

    lines: int = 640
    pixels: int = 640
    novel: bool = False
    threats: tuple[str, ...] | None = None
    p_clean: float = 0.3
    max_threats: int = 3
    wide: bool = False


class Scene:
    """Per-material path-length maps of one image plus the truth boxes."""

    def __init__(self, lines: int, pixels: int) -> None:
        self.shape = (lines, pixels)
        self.lengths: dict[str, np.ndarray] = {}
        self.truth: list[dict] = []

    def keep_inside(self, box: tuple[int, int, int, int]) -> None:
        """Cut everything outside the container's box (contents never stick out of a bag)."""
        x0, y0, x1, y1 = box
        for arr in self.lengths.values():
            arr[:y0], arr[y1:], arr[:, :x0], arr[:, x1:] = 0, 0, 0, 0
        for t in self.truth:
            b = t["box"]
            t["box"] = [max(b[0], x0), max(b[1], y0), min(b[2], x1), min(b[3], y1)]
        self.truth = [t for t in self.truth if t["box"][2] - t["box"][0] > 4 and t["box"][3] - t["box"][1] > 4]

    def put(self, obj: Obj, x: int, y: int) -> tuple[int, int, int, int] | None:
        """Add an object's maps at (x, y); returns the clipped footprint box in scan pixels."""
        for material, arr in obj.parts.items():
            dst = self.lengths.setdefault(material, np.zeros(self.shape, np.float32))
            add_clipped(dst, arr, x, y)
        fp = footprint(obj)
        ys, xs = np.nonzero(fp)
        if len(xs) == 0:
            return None
        x0, y0 = max(0, x + int(xs.min())), max(0, y + int(ys.min()))
        x1, y1 = min(self.shape[1], x + int(xs.max()) + 1), min(self.shape[0], y + int(ys.max()) + 1)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def container(rng: np.random.Generator, w: float, h: float) -> Obj:
    """A hard suitcase, a soft bag or a cardboard parcel, w across the belt and h along it."""
    o = Obj(int(h + 4), int(w + 4))
    kind = rng.choice(["hard", "soft", "parcel"], p=[0.4, 0.35, 0.25])
    box = (2, 2, 2 + w, 2 + h)
    inner = (6, 6, w - 2, h - 2)
    if kind == "hard":
        depth = rng.uniform(180, 260)
        o.add("polycarbonate", rect(o.h, o.w, *box, 5.0))
        o.add("polycarbonate", (rect(o.h, o.w, *box, 1.0) - rect(o.h, o.w, *inner, 1.0)) * depth * 0.6)
        x = rng.uniform(0.25, 0.4) * w
        for dx in (0, rng.uniform(0.25, 0.35) * w):
            o.add("aluminium", np.ascontiguousarray(cylinder(o.w, o.h, 10, h * 0.95, x + dx, 9, 1.0).T))
        for cx, cy in ((12, 12), (w - 8, 12), (12, h - 8), (w - 8, h - 8)):
            o.add("rubber", ellipse(o.h, o.w, cx, cy, 14, 14, 25))
            o.add("steel", ellipse(o.h, o.w, cx, cy, 3, 3, 30))
    elif kind == "soft":
        o.add("nylon", rect(o.h, o.w, *box, 3.0))
        o.add("nylon", (rect(o.h, o.w, *box, 1.0) - rect(o.h, o.w, *inner, 1.0)) * rng.uniform(40, 120))
        o.add("steel", polyline(o.h, o.w, [(8, 8), (w - 4, 8), (w - 4, h - 4)], 3, 1.0))
        if rng.random() < 0.5:
            o.add("steel", polyline(o.h, o.w, [(20, 20), (20, h - 20)], 4, 4.0))
    else:
        depth = rng.uniform(100, 300)
        o.add("cardboard", rect(o.h, o.w, *box, 8.0))
        o.add("cardboard", (rect(o.h, o.w, *box, 1.0) - rect(o.h, o.w, *inner, 1.0)) * depth * 0.5)
        o.add("polyethylene", rect(o.h, o.w, 2, h / 2 - 25, 2 + w, h / 2 + 25, 0.1))
    return o


def _place(rng: np.random.Generator, obj: Obj, area: tuple[int, int, int, int]) -> tuple[int, int]:
    """Top-left corner that keeps the object inside the area where it fits (centred where it does not)."""
    x0, y0, x1, y1 = area
    lo_x, hi_x = sorted((x0 + obj.w / 2, max(x0 + obj.w / 2, x1 - obj.w / 2)))
    lo_y, hi_y = sorted((y0 + obj.h / 2, max(y0 + obj.h / 2, y1 - obj.h / 2)))
    cx = rng.uniform(lo_x, hi_x) if obj.w < x1 - x0 else (x0 + x1) / 2 + rng.uniform(-10, 10)
    cy = rng.uniform(lo_y, hi_y) if obj.h < y1 - y0 else (y0 + y1) / 2 + rng.uniform(-10, 10)
    return int(cx - obj.w / 2), int(cy - obj.h / 2)


def _random_pose(rng: np.random.Generator, obj: Obj, tilt: bool) -> Obj:
    sx, sy = (rng.uniform(0.55, 1.0), 1.0) if tilt and rng.random() < 0.4 else (1.0, 1.0)
    return pose(obj, rng.uniform(0, 360), sx * rng.uniform(0.93, 1.07), sy, bool(rng.random() < 0.5))


def draw_threats(rng: np.random.Generator, spec: SceneSpec) -> tuple[str, ...]:
    if spec.threats is not None:
        return spec.threats
    if rng.random() < spec.p_clean:
        return ()
    n = int(rng.integers(1, spec.max_threats + 1))
    return tuple(CLASSES[int(i)] for i in rng.integers(0, len(CLASSES), size=n))


def build_scene(rng: np.random.Generator, spec: SceneSpec) -> Scene:
    """Container, clutter and threats as path-length maps, with truth boxes of the threats."""
    scene = Scene(spec.lines, spec.pixels)
    w = rng.uniform(0.45, 0.94) * spec.pixels
    h = rng.uniform(0.5, 0.97) * spec.lines
    bx, by = int(rng.uniform(0, spec.pixels - w - 4)), int(rng.uniform(0, spec.lines - h - 4))
    bag = container(rng, w, h)
    area = (bx + 8, by + 8, int(bx + w - 8), int(by + h - 8))
    goods = {**CLUTTER, **HARD_NEGATIVES} if spec.wide else CLUTTER
    names, weights = zip(*((n, f) for n, (_, f) in goods.items()))
    p = np.array(weights) / sum(weights)
    for i in rng.choice(len(names), size=int(rng.integers(3, 4 + int(w * h / 22000))), p=p):
        item = _random_pose(rng, goods[names[i]][0](rng), tilt=False)
        scene.put(item, *_place(rng, item, area))
    for label in draw_threats(rng, spec):
        maker: Callable[[np.random.Generator, bool], Obj] = GENERATORS[label]
        if spec.wide and label in EXTRA_CUES and rng.random() < 0.5:
            maker = EXTRA_CUES[label]
        item = _random_pose(rng, maker(rng, spec.novel), tilt=True)
        box = scene.put(item, *_place(rng, item, area))
        if box is not None and (box[2] - box[0]) * (box[3] - box[1]) > 0.5 * _area(footprint(item)):
            scene.truth.append({"label": label, "box": [float(v) for v in box]})
    scene.keep_inside((bx + 4, by + 4, int(bx + w), int(by + h)))
    scene.put(bag, bx, by)
    return scene


def _area(fp: np.ndarray) -> float:
    ys, xs = np.nonzero(fp)
    return float((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)) if len(xs) else 0.0


def synth_scan(seed: int, spec: SceneSpec = SceneSpec(), scanner: Scanner = Scanner()) -> Scan:
    """One deterministic synthetic scan for a seed, truth boxes under meta['truth'] (wide: `scanner` is drawn)."""
    rng = np.random.default_rng(seed)
    if spec.wide:
        return _wide_scan(seed, rng, spec)
    scene = build_scene(rng, spec)
    high, low = detect(*ideal_transmission(scene.lengths, scanner), rng, scanner)
    meta = {"pixel_mm": scanner.pixel_mm, "kvp": scanner.kvp, "source": "synthetic", "lines_per_s": 300,
            "kind": "baggage", "seed": seed, "novel": spec.novel, "truth": scene.truth}
    return Scan(high=high, low=low, meta=meta)


def _wide_scan(seed: int, rng: np.random.Generator, spec: SceneSpec) -> Scan:
    """A scan of the wide domain: the drawn scanner's field of view, resampled to the spec's size."""
    own = np.random.default_rng([seed, 7])
    drawn = domain.draw(own)
    lines, pixels = domain.field_of_view(spec.lines, spec.pixels, drawn)
    scene = build_scene(rng, replace(spec, lines=lines, pixels=pixels))
    high, low, truth = domain.resample(*ideal_transmission(scene.lengths, drawn.scanner), scene.truth,
                                       spec.lines, spec.pixels, drawn)
    gain = domain.drift(spec.lines, drawn, own)
    high, low = detect(high * gain, low * gain, rng, drawn.scanner)
    meta = {"pixel_mm": drawn.scanner.pixel_mm, "line_mm": drawn.line_mm, "kvp": drawn.scanner.kvp,
            "source": "synthetic", "lines_per_s": 300, "kind": "baggage", "seed": seed, "novel": spec.novel,
            "wide": True, "truth": truth}
    return Scan(high=high, low=low, meta=meta)
