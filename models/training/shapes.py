"""Rasterised objects: per-material path-length maps (mm) on a local canvas, posed and pasted into a scene."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

AA = cv2.LINE_AA
SHIFT = 2            # sub-pixel vertex precision for cv2 drawing (1/4 px)


Points = Sequence[tuple[float, float]] | np.ndarray  # vertices (x, y) in canvas pixels

@dataclass
class Obj:
    """One object on a local canvas; label is a threat class or None for clutter."""

    h: int
    w: int
    label: str | None = None
    parts: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, material: str, thickness: np.ndarray) -> "Obj":
        """Add path length of a material (summed with what the object already has of it)."""
        if material in self.parts:
            self.parts[material] = self.parts[material] + thickness
        else:
            self.parts[material] = thickness.astype(np.float32, copy=False)
        return self

    def paste(self, other: "Obj", x: int, y: int) -> "Obj":
        """Add another object's maps with its top-left corner at (x, y), clipped to this canvas."""
        for material, arr in other.parts.items():
            dst = self.parts.setdefault(material, np.zeros((self.h, self.w), np.float32))
            add_clipped(dst, arr, x, y)
        return self

    def poly(self, material: str, pts: Points, t: float) -> "Obj":
        return self.add(material, poly(self.h, self.w, pts, t))


def _mask(h: int, w: int, draw: Callable[[np.ndarray], object]) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    draw(m)
    return m.astype(np.float32) / 255.0


def poly(h: int, w: int, pts: Points, t: float) -> np.ndarray:
    """Filled polygon (vertices in canvas pixels) of uniform thickness t."""
    p = (np.asarray(pts, np.float64) * (1 << SHIFT)).round().astype(np.int32)
    return _mask(h, w, lambda m: cv2.fillPoly(m, [p], 255, AA, SHIFT)) * t


def rect(h: int, w: int, x0: float, y0: float, x1: float, y1: float, t: float) -> np.ndarray:
    return poly(h, w, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], t)


def ellipse(h: int, w: int, cx: float, cy: float, ax: float, ay: float, t: float, angle: float = 0.0) -> np.ndarray:
    """Filled ellipse plate of thickness t."""
    s = 1 << SHIFT
    centre, axes = (round(cx * s), round(cy * s)), (max(1, round(ax * s)), max(1, round(ay * s)))
    return _mask(h, w, lambda m: cv2.ellipse(m, centre, axes, angle, 0, 360, 255, -1, AA, SHIFT)) * t


def ellipsoid(h: int, w: int, cx: float, cy: float, ax: float, ay: float, depth: float) -> np.ndarray:
    """Path length through an axis-aligned ellipsoid (semi-axes ax, ay; full depth at the centre)."""
    y, x = np.ogrid[:h, :w]
    r2 = ((x + 0.5 - cx) / ax) ** 2 + ((y + 0.5 - cy) / ay) ** 2
    return (depth * np.sqrt(np.clip(1.0 - r2, 0.0, None))).astype(np.float32)


def cylinder(h: int, w: int, x0: float, x1: float, cy: float, radius: float, wall: float | None = None) -> np.ndarray:
    """Side view of a horizontal cylinder from x0 to x1 (solid, or a tube of given wall)."""
    y = np.arange(h, dtype=np.float32)[:, None] + 0.5 - cy
    chord = 2 * np.sqrt(np.clip(radius**2 - y**2, 0, None))
    if wall is not None:
        chord = chord - 2 * np.sqrt(np.clip((radius - wall) ** 2 - y**2, 0, None))
    x = np.arange(w, dtype=np.float32)[None, :] + 0.5
    along = np.clip(np.minimum(x - x0, x1 - x) + 0.5, 0, 1)
    return (chord * along).astype(np.float32)


def polyline(h: int, w: int, pts: Points, width: int, t: float) -> np.ndarray:
    """A stroke (cable, wire, rod) of given width in pixels and path thickness t."""
    p = (np.asarray(pts, np.float64) * (1 << SHIFT)).round().astype(np.int32)
    return _mask(h, w, lambda m: cv2.polylines(m, [p], False, 255, max(1, width), AA, SHIFT)) * t


def smooth_field(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Smooth random field in [0, 1] (folds of cloth, uneven packing)."""
    small = rng.random((max(2, int(h / scale)) + 2, max(2, int(w / scale)) + 2)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(big, 0, 1)


def pose(obj: Obj, angle: float, sx: float = 1.0, sy: float = 1.0, flip: bool = False) -> Obj:
    """Rotate (degrees), scale and mirror an object; thickness grows where a tilt shrinks the footprint."""
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    a = np.array([[c, -s], [s, c]]) @ np.diag([sx * (-1 if flip else 1), sy])
    corners = np.array([[0, 0], [obj.w, 0], [0, obj.h], [obj.w, obj.h]], np.float64) @ a.T
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    nw, nh = int(np.ceil(hi[0] - lo[0])) + 2, int(np.ceil(hi[1] - lo[1])) + 2
    m = np.hstack([a, (-lo + 1)[:, None]])
    gain = 1.0 / max(0.25, min(1.0, sx * sy))
    out = Obj(nh, nw, obj.label)
    for material, arr in obj.parts.items():
        warped = cv2.warpAffine(arr, m, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=0.0)
        out.add(material, warped * gain)
    return out


def footprint(obj: Obj, min_mm: float = 0.5) -> np.ndarray:
    """Boolean map where the object has any material thicker than min_mm."""
    total = np.zeros((obj.h, obj.w), np.float32)
    for arr in obj.parts.values():
        total += arr
    return total > min_mm


def add_clipped(dst: np.ndarray, src: np.ndarray, x: int, y: int) -> tuple[int, int, int, int] | None:
    """dst[y:, x:] += src where they overlap; returns the overlap (x0, y0, x1, y1) in dst or None."""
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + src.shape[1], dst.shape[1]), min(y + src.shape[0], dst.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    dst[y0:y1, x0:x1] += src[y0 - y:y1 - y, x0 - x:x1 - x]
    return x0, y0, x1, y1
