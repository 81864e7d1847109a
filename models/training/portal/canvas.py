"""Side-view path-length canvas of a portal scene, drawn in millimetres.

The beam crosses the vehicle sideways, so each drawn part adds the length of material a ray meets
across the vehicle. Rows are height above the road (row 0 at the road), columns run along the
vehicle from its front. Parts are axis-aligned boxes with optional 1-D profiles (a horizontal tank,
a standing roll) or discs (wheels, hubs), drawn into slices with exact edge coverage, so a scene of a
few hundred parts costs milliseconds, not a full-canvas mask per part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from models.training.shapes import add_clipped

Box = tuple[float, float, float, float]   # x0, z0, x1, z1 in mm (x along the vehicle, z up)


def coverage(lo: float, hi: float, n: int) -> tuple[int, np.ndarray]:
    """First index and per-pixel covered fraction of the pixel span [lo, hi) on an axis of n pixels."""
    i0, i1 = max(int(np.floor(lo)), 0), min(int(np.ceil(hi)), n)
    if i1 <= i0:
        return 0, np.zeros(0, np.float32)
    idx = np.arange(i0, i1, dtype=np.float32)
    return i0, np.clip(np.minimum(idx + 1, hi) - np.maximum(idx, lo), 0, 1).astype(np.float32)


def chord(centre: float, radius: float, at: np.ndarray) -> np.ndarray:
    """Length of the chord of a circle at positions `at` (same unit as the radius)."""
    return (2 * np.sqrt(np.clip(radius**2 - (at - centre) ** 2, 0, None))).astype(np.float32)


@dataclass
class Canvas:
    """Per-material path-length maps (mm) of a side view; pitch_x along the vehicle, pitch_z up."""

    length_px: int
    height_px: int
    pitch_x: float
    pitch_z: float
    maps: dict[str, np.ndarray] = field(default_factory=dict)

    def _map(self, material: str) -> np.ndarray:
        if material not in self.maps:
            self.maps[material] = np.zeros((self.height_px, self.length_px), np.float32)
        return self.maps[material]

    def px(self, box: Box) -> tuple[float, float, float, float]:
        """A mm box in canvas pixels (x0, z0, x1, z1)."""
        x0, z0, x1, z1 = box
        return x0 / self.pitch_x, z0 / self.pitch_z, x1 / self.pitch_x, z1 / self.pitch_z

    def box(self, material: str, box: Box, path_mm: float, profile_x: str | None = None,
            profile_z: str | None = None) -> None:
        """Add path_mm of material over the box; a profile "round" makes it the chord of a cylinder
        whose axis runs across the other axis (a roll standing: profile_x; a tank lying: profile_z)."""
        if path_mm == 0:   # negative paths carve a hollow out of a part drawn before (a tyre's rim)
            return
        x0, z0, x1, z1 = self.px(box)
        j0, cx = coverage(x0, x1, self.length_px)
        i0, cz = coverage(z0, z1, self.height_px)
        if cx.size == 0 or cz.size == 0:
            return
        wx = cx * self._profile(profile_x, x0, x1, j0, cx.size)
        wz = cz * self._profile(profile_z, z0, z1, i0, cz.size)
        self._map(material)[i0:i0 + cz.size, j0:j0 + cx.size] += path_mm * np.outer(wz, wx)

    @staticmethod
    def _profile(kind: str | None, lo: float, hi: float, start: int, n: int) -> np.ndarray:
        if kind is None:
            return np.ones(n, np.float32)
        at = np.arange(start, start + n, dtype=np.float32) + 0.5
        return chord((lo + hi) / 2, (hi - lo) / 2, at) / max(hi - lo, 1e-6)

    def disc(self, material: str, cx: float, cz: float, radius: float, path_mm: float, inner: float = 0.0) -> None:
        """A disc (or ring from `inner` to `radius`, mm) facing the beam, of uniform path length."""
        x0, z0, x1, z1 = self.px((cx - radius, cz - radius, cx + radius, cz + radius))
        j0, j1 = max(int(x0), 0), min(int(np.ceil(x1)) + 1, self.length_px)
        i0, i1 = max(int(z0), 0), min(int(np.ceil(z1)) + 1, self.height_px)
        if j1 <= j0 or i1 <= i0:
            return
        xs = (np.arange(j0, j1, dtype=np.float32) + 0.5) * self.pitch_x - cx
        zs = (np.arange(i0, i1, dtype=np.float32) + 0.5) * self.pitch_z - cz
        r = np.hypot(xs[None, :], zs[:, None])
        soft = max(self.pitch_x, self.pitch_z)
        ring = np.clip((radius - r) / soft + 0.5, 0, 1)
        if inner > 0:
            ring *= np.clip((r - inner) / soft + 0.5, 0, 1)
        self._map(material)[i0:i1, j0:j1] += path_mm * ring

    def image(self, material: str, arr: np.ndarray, x0: float, z0: float) -> None:
        """Add a path-length image drawn at 1 mm per pixel (row 0 at its top) with its bottom-left at (x0, z0) mm."""
        h_px = max(1, round(arr.shape[0] / self.pitch_z))
        w_px = max(1, round(arr.shape[1] / self.pitch_x))
        small = cv2.resize(arr, (w_px, h_px), interpolation=cv2.INTER_AREA)[::-1]
        add_clipped(self._map(material), np.ascontiguousarray(small), round(x0 / self.pitch_x), round(z0 / self.pitch_z))

    def shell(self, material: str, box: Box, wall_mm: float, across_mm: float, sides_mm: float) -> None:
        """A hollow body: both side walls (sides_mm of material over the box) and its roof, floor and
        end walls seen edge-on (wall_mm thick, across_mm long along the beam)."""
        x0, z0, x1, z1 = box
        self.box(material, box, sides_mm)
        for edge in ((x0, z0, x1, z0 + wall_mm), (x0, z1 - wall_mm, x1, z1),
                     (x0, z0, x0 + wall_mm, z1), (x1 - wall_mm, z0, x1, z1)):
            self.box(material, edge, across_mm)


class Sketch:
    """Drawing calls recorded in mm before the canvas exists (its size follows the vehicle's length)."""

    def __init__(self) -> None:
        self.ops: list[tuple[str, tuple, dict]] = []

    def box(self, *args: object, **kwargs: object) -> None:
        self.ops.append(("box", args, kwargs))

    def disc(self, *args: object, **kwargs: object) -> None:
        self.ops.append(("disc", args, kwargs))

    def shell(self, *args: object, **kwargs: object) -> None:
        self.ops.append(("shell", args, kwargs))

    def image(self, *args: object, **kwargs: object) -> None:
        self.ops.append(("image", args, kwargs))

    def draw(self, canvas: Canvas, dx: float) -> None:
        """Replay onto a canvas with every x shifted by dx mm (the air before the vehicle's front)."""
        for name, args, kwargs in self.ops:
            getattr(canvas, name)(*_shift(name, args, dx), **kwargs)


def _shift(name: str, args: tuple, dx: float) -> tuple:
    if name == "disc":
        return (args[0], args[1] + dx, *args[2:])
    if name == "image":
        return (args[0], args[1], args[2] + dx, args[3])
    x0, z0, x1, z1 = args[1]
    return (args[0], (x0 + dx, z0, x1 + dx, z1), *args[2:])
