"""Analytic parts in millimetres, posed and sampled onto a scan's pixel grid as areal density.

An item is a list of parts in its own frame (u along the item, v across it, mm). Each part gives
its thickness along the beam at any (u, v): flat slabs with rounded corners, hollow shells, rods
and tubes (chords of a circle), flat or domed ellipses, polygons with an optional linear taper,
and ribbed slabs (rows of cylinders seen side by side, as cigarettes in a pack). Posing rotates,
mirrors and foreshortens the item (tilt out of the belt plane also lengthens paths through it);
sampling takes 2 × 2 points per pixel, so edges are partial pixels, not stairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from models.evalbag.matter import density

Thickness = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Part:
    material: str
    bounds: tuple[float, float, float, float]  # u0, v0, u1, v1 (mm)
    thickness: Thickness


@dataclass
class Item:
    """Parts of one object; `label` is the threat class or None for ordinary goods."""

    name: str
    label: str | None
    parts: list[Part] = field(default_factory=list)

    def extent(self) -> tuple[float, float, float, float]:
        b = np.array([p.bounds for p in self.parts])
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    def size(self) -> float:
        u0, v0, u1, v1 = self.extent()
        return float(np.hypot(u1 - u0, v1 - v0))

    def add(self, part: Part) -> Item:
        self.parts.append(part)
        return self

    def extend(self, other: Item, du: float = 0.0, dv: float = 0.0) -> Item:
        """Another item's parts shifted by (du, dv)."""
        for p in other.parts:
            self.parts.append(shifted(p, du, dv))
        return self


def shifted(p: Part, du: float, dv: float) -> Part:
    f = p.thickness
    u0, v0, u1, v1 = p.bounds
    return Part(p.material, (u0 + du, v0 + dv, u1 + du, v1 + dv), lambda u, v: f(u - du, v - dv))


def slab(material: str, u0: float, v0: float, u1: float, v1: float, t: float, corner: float = 0.0) -> Part:
    """A flat plate of thickness t over a rectangle with rounded corners."""
    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        du = np.maximum(np.maximum(u0 + corner - u, u - (u1 - corner)), 0)
        dv = np.maximum(np.maximum(v0 + corner - v, v - (v1 - corner)), 0)
        inside = (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1) & (du * du + dv * dv <= corner * corner + 1e-9)
        return np.where(inside, t, 0.0)
    return Part(material, (u0, v0, u1, v1), f)


def shell(material: str, u0: float, v0: float, u1: float, v1: float, wall: float, depth: float) -> Part:
    """A hollow box seen from above: two walls everywhere, the side walls' full depth near the rim."""
    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        inside = (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)
        rim = np.minimum(np.minimum(u - u0, u1 - u), np.minimum(v - v0, v1 - v)) < wall
        return np.where(inside, np.where(rim, depth, 2 * wall), 0.0)
    return Part(material, (u0, v0, u1, v1), f)


def rod(material: str, a: tuple[float, float], b: tuple[float, float], r: float, bore: float = 0.0) -> Part:
    """A cylinder (or a tube with inner radius bore) from a to b lying in the belt plane."""
    ax, ay = a
    bx, by = b
    length = max(float(np.hypot(bx - ax, by - ay)), 1e-6)
    ex, ey = (bx - ax) / length, (by - ay) / length

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        along = (u - ax) * ex + (v - ay) * ey
        across = -(u - ax) * ey + (v - ay) * ex
        inside = (along >= 0) & (along <= length)
        chord = 2 * np.sqrt(np.clip(r * r - across * across, 0, None))
        if bore > 0:
            chord = chord - 2 * np.sqrt(np.clip(bore * bore - across * across, 0, None))
        return np.where(inside, chord, 0.0)
    pad = r + 0.5
    return Part(material, (min(ax, bx) - pad, min(ay, by) - pad, max(ax, bx) + pad, max(ay, by) + pad), f)


def disc(material: str, cu: float, cv: float, ru: float, rv: float, t: float, dome: bool = False, hole: float = 0.0) -> Part:
    """A flat (or domed: a lens-like cap, thickest in the middle) ellipse, optionally with a central hole."""
    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        q = ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2
        out = np.where(q <= 1, t * np.sqrt(np.clip(1 - q, 0, None)) if dome else t, 0.0)
        if hole > 0:
            out = np.where((u - cu) ** 2 + (v - cv) ** 2 < hole * hole, 0.0, out)
        return out
    return Part(material, (cu - ru, cv - rv, cu + ru, cv + rv), f)


def polygon(material: str, points: Sequence[tuple[float, float]], t: float,
            taper: tuple[tuple[float, float], tuple[float, float], float] | None = None) -> Part:
    """A plate over a polygon (even-odd rule); taper (A, B, f): thickness t at A falling linearly to f·t at B."""
    pts = np.array(points, float)
    xs, ys = pts[:, 0], pts[:, 1]
    xn, yn = np.roll(xs, -1), np.roll(ys, -1)

    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        inside = np.zeros(u.shape, bool)
        for x0, y0, x1, y1 in zip(xs, ys, xn, yn):
            if y0 == y1:
                continue
            crosses = (y0 > v) != (y1 > v)
            x_at = x0 + (v - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (u < x_at)
        if taper is None:
            return np.where(inside, t, 0.0)
        (pa, qa), (pb, qb), frac = taper
        d2 = (pb - pa) ** 2 + (qb - qa) ** 2
        s = np.clip(((u - pa) * (pb - pa) + (v - qa) * (qb - qa)) / d2, 0, 1)
        return np.where(inside, t * (1 - (1 - frac) * s), 0.0)
    return Part(material, (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())), f)


def ribbed(material: str, u0: float, v0: float, u1: float, v1: float, r: float, across: bool = True) -> Part:
    """Rows of touching cylinders of radius r filling a rectangle (rods along u when across is True)."""
    def f(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        inside = (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)
        w = (v - v0) if across else (u - u0)
        d = np.mod(w, 2 * r) - r
        return np.where(inside, 2 * np.sqrt(np.clip(r * r - d * d, 0, None)), 0.0)
    return Part(material, (u0, v0, u1, v1), f)


class Canvas:
    """Areal density maps (g/cm²) per material of one scan at a pixel pitch, plus truth boxes."""

    def __init__(self, lines: int, pixels: int, pitch_mm: float) -> None:
        self.lines, self.pixels, self.pitch = lines, pixels, pitch_mm
        self.areal: dict[str, np.ndarray] = {}

    def place(self, item: Item, cx: float, cy: float, angle: float, mirror: bool = False,
              squash: float = 1.0, clip: tuple[float, float, float, float] | None = None) -> list[float] | None:
        """Add the item centred at (cx, cy) mm, rotated by angle (radians); returns its pixel box or None.

        clip (x0, y0, x1, y1, mm) limits where the item may add matter (inside a bag's walls).
        """
        u0, v0, u1, v1 = item.extent()
        mu, mv = (u0 + u1) / 2, (v0 + v1) / 2
        c, s = float(np.cos(angle)), float(np.sin(angle))
        m = -1.0 if mirror else 1.0
        p = self.pitch
        found = np.zeros((self.lines, self.pixels), bool)
        hit = False
        for part in item.parts:
            a0, b0, a1, b1 = part.bounds
            corners = np.array([(a0, b0), (a1, b0), (a0, b1), (a1, b1)]) - (mu, mv)
            x = cx + corners[:, 0] * squash * c - corners[:, 1] * m * s
            y = cy + corners[:, 0] * squash * s + corners[:, 1] * m * c
            lo_x, hi_x, lo_y, hi_y = x.min(), x.max(), y.min(), y.max()
            if clip is not None:
                lo_x, lo_y = max(lo_x, clip[0]), max(lo_y, clip[1])
                hi_x, hi_y = min(hi_x, clip[2]), min(hi_y, clip[3])
            ix0, ix1 = max(0, int(np.floor(lo_x / p))), min(self.pixels, int(np.ceil(hi_x / p)) + 1)
            iy0, iy1 = max(0, int(np.floor(lo_y / p))), min(self.lines, int(np.ceil(hi_y / p)) + 1)
            if ix1 <= ix0 or iy1 <= iy0:
                continue
            xs = ((np.arange(ix0, ix1)[:, None] + np.array([0.25, 0.75])).ravel()) * p
            ys = ((np.arange(iy0, iy1)[:, None] + np.array([0.25, 0.75])).ravel()) * p
            gx, gy = np.meshgrid(xs - cx, ys - cy)
            u = (gx * c + gy * s) / squash + mu
            v = (-gx * s + gy * c) * m + mv
            t = part.thickness(u, v) / squash
            if clip is not None:
                t = np.where((gx + cx >= clip[0]) & (gx + cx <= clip[2]) & (gy + cy >= clip[1]) & (gy + cy <= clip[3]), t, 0.0)
            t = t.reshape(iy1 - iy0, 2, ix1 - ix0, 2).mean(axis=(1, 3)).astype(np.float32)
            if not t.any():
                continue
            hit = True
            dst = self.areal.setdefault(part.material, np.zeros((self.lines, self.pixels), np.float32))
            dst[iy0:iy1, ix0:ix1] += t * (density(part.material) / 10.0)
            found[iy0:iy1, ix0:ix1] |= t > 0.25
        if not hit or not found.any():
            return None
        rows, cols = np.flatnonzero(found.any(axis=1)), np.flatnonzero(found.any(axis=0))
        return [float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)]
