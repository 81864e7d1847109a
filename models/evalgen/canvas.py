"""The projection canvas: 3-D primitives in vehicle millimetres drawn as basis thickness maps.

Axes: x along the vehicle from its front bumper (→ scan-line rows), y height above the road
(→ detector columns, column 0 at the road), z across the lane, positive towards the detector.
The beam is a vertical fan from a point source at height `source_mm` on the far side, so an object
at lateral position z appears scaled in height by M(z) = D/(D + z) about the source height
(D = source to lane centre); rows are not magnified (the vehicle moves past a line detector).
Each primitive adds ρ·path (g/cm²) times its material's basis coefficients to two maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]  # x0 (column), y0 (row), x1, y1 in pixels


@dataclass
class Canvas:
    """Two float32 maps (rows × columns) of water and heavy basis thickness in g/cm²."""

    rows: int
    cols: int
    line_mm: float
    pixel_mm: float
    basis: dict[str, tuple[float, float]]
    densities: dict[str, float]
    source_mm: float = 900.0
    distance_mm: float = 3500.0
    x_offset_mm: float = 0.0
    water: np.ndarray = field(init=False)
    heavy: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.water = np.zeros((self.rows, self.cols), np.float32)
        self.heavy = np.zeros((self.rows, self.cols), np.float32)

    # -- coordinates -------------------------------------------------------------------------
    def magnify(self, y: float, z: float) -> float:
        """Detector height (mm) at which height y at lateral position z is seen."""
        return self.source_mm + (y - self.source_mm) * self.distance_mm / (self.distance_mm + z)

    def _row(self, x: float) -> float:
        return (x + self.x_offset_mm) / self.line_mm

    def _col(self, y_det: float) -> float:
        return y_det / self.pixel_mm

    def _add(self, r0: int, c0: int, grams: np.ndarray, mat: str) -> Box | None:
        """Add an areal-density patch (g/cm²) at (r0, c0), clipped to the canvas; its pixel box."""
        h, w = grams.shape
        ra, ca = max(r0, 0), max(c0, 0)
        rb, cb = min(r0 + h, self.rows), min(c0 + w, self.cols)
        if ra >= rb or ca >= cb:
            return None
        patch = grams[ra - r0:rb - r0, ca - c0:cb - c0]
        a, b = self.basis[mat]
        self.water[ra:rb, ca:cb] += a * patch
        self.heavy[ra:rb, ca:cb] += b * patch
        return (float(ca), float(ra), float(cb), float(rb))

    # -- primitives ----------------------------------------------------------------------------
    def block(self, x0: float, x1: float, y0: float, y1: float, z0: float, z1: float, mat: str,
              density: float | None = None) -> Box | None:
        """A rectangular solid; path = its lateral depth, edges partially covered."""
        zc = (z0 + z1) / 2
        grams = (density or self.densities[mat]) * (z1 - z0) / 10
        return self._rect(x0, x1, self.magnify(y0, zc), self.magnify(y1, zc), grams, mat)

    def _rect(self, x0: float, x1: float, d0: float, d1: float, grams: float, mat: str) -> Box | None:
        """Areal density `grams` over a row/detector-height rectangle, with fractional edges."""
        ra, rb = self._row(x0), self._row(x1)
        ca, cb = self._col(min(d0, d1)), self._col(max(d0, d1))
        rows = _coverage(ra, rb)
        cols = _coverage(ca, cb)
        patch = np.outer(rows, cols).astype(np.float32) * np.float32(grams)
        return self._add(int(np.floor(ra)), int(np.floor(ca)), patch, mat)

    def plate(self, x0: float, x1: float, y: float, thick: float, z0: float, z1: float, mat: str,
              density: float | None = None) -> Box | None:
        """A horizontal sheet (roof, floor, shelf): seen edge-on, smeared by the fan over a band."""
        d0, d1 = self.magnify(y, z0), self.magnify(y, z1)
        band = max(abs(d1 - d0), thick)
        grams = (density or self.densities[mat]) * thick * (z1 - z0) / band / 10
        mid = (d0 + d1) / 2
        return self._rect(x0, x1, mid - band / 2, mid + band / 2, grams, mat)

    def polygon(self, points: list[tuple[float, float]], z0: float, z1: float, mat: str,
                density: float | None = None) -> Box | None:
        """A prism: the (x, y) outline extruded from z0 to z1, path = its depth."""
        zc = (z0 + z1) / 2
        pts = np.array([(self._row(x), self._col(self.magnify(y, zc))) for x, y in points])
        mask, r0, c0 = _fill(pts)
        grams = (density or self.densities[mat]) * (z1 - z0) / 10
        return self._add(r0, c0, mask * np.float32(grams), mat)

    def rod(self, x0: float, x1: float, yc: float, radius: float, zc: float, mat: str,
            inner: float = 0.0, density: float | None = None) -> Box | None:
        """A cylinder along the vehicle (tank, exhaust, shaft); chord path varies with height."""
        m = self.distance_mm / (self.distance_mm + zc)
        dc = self.magnify(yc, zc)
        cols = self._cols_around(dc, radius * m)
        dy = (cols + 0.5) * self.pixel_mm - dc
        path = _chord(radius * m, dy) - _chord(inner * m, dy)
        return self._profile_rows(x0, x1, int(cols[0]), path / m, density or self.densities[mat], mat)

    def _cols_around(self, centre: float, half: float) -> np.ndarray:
        return np.arange(int(np.floor((centre - half) / self.pixel_mm)), int(np.ceil((centre + half) / self.pixel_mm)))

    def _profile_rows(self, x0: float, x1: float, c0: int, path_mm: np.ndarray, density: float,
                      mat: str) -> Box | None:
        rows = _coverage(self._row(x0), self._row(x1))
        patch = np.outer(rows, path_mm * density / 10).astype(np.float32)
        return self._add(int(np.floor(self._row(x0))), c0, patch, mat)

    def disc(self, xc: float, yc: float, radius: float, z0: float, z1: float, mat: str,
             inner: float = 0.0, density: float | None = None) -> Box | None:
        """A cylinder across the lane (wheel, axle, coil) seen end-on: a disc or ring of its depth."""
        zc = (z0 + z1) / 2
        m = self.distance_mm / (self.distance_mm + zc)
        dc = self.magnify(yc, zc)
        rc = self._row(xc)
        rr = np.arange(int(np.floor(rc - radius / self.line_mm)), int(np.ceil(rc + radius / self.line_mm)) + 1)
        cc = self._cols_around(dc, radius * m)
        if len(rr) == 0 or len(cc) == 0:
            return None
        dx = ((rr + 0.5)[:, None] - rc) * self.line_mm
        dy = ((cc + 0.5)[None, :] * self.pixel_mm - dc) / m
        dist = np.sqrt(dx**2 + dy**2)
        inside = np.clip(radius - dist + 0.5 * self.pixel_mm, 0, self.pixel_mm) / self.pixel_mm
        if inner > 0:
            inside *= np.clip(dist - inner + 0.5 * self.pixel_mm, 0, self.pixel_mm) / self.pixel_mm
        grams = (density or self.densities[mat]) * (z1 - z0) / 10
        return self._add(int(rr[0]), int(cc[0]), (inside * grams).astype(np.float32), mat)

    def post(self, xc: float, radius: float, y0: float, y1: float, zc: float, mat: str,
             inner: float = 0.0, density: float | None = None) -> Box | None:
        """An upright cylinder (roll, drum, bottle, lying wheel's tyre): chord path varies along x."""
        rc = self._row(xc)
        rr = np.arange(int(np.floor(rc - radius / self.line_mm)), int(np.ceil(rc + radius / self.line_mm)) + 1)
        dx = ((rr + 0.5) - rc) * self.line_mm
        path = (_chord(radius, dx) - _chord(inner, dx)).astype(np.float32)
        d0, d1 = self.magnify(y0, zc), self.magnify(y1, zc)
        cols = _coverage(self._col(d0), self._col(d1))
        grams = np.outer(path * (density or self.densities[mat]) / 10, cols).astype(np.float32)
        return self._add(int(rr[0]), int(np.floor(self._col(d0))), grams, mat)


def _coverage(a: float, b: float) -> np.ndarray:
    """Share of each pixel from floor(a) that the interval [a, b) covers."""
    start = int(np.floor(a))
    idx = np.arange(start, max(int(np.ceil(b)), start + 1))
    return np.clip(np.minimum(idx + 1, b) - np.maximum(idx, a), 0, 1).astype(np.float32)


def _chord(radius: float, offset: np.ndarray) -> np.ndarray:
    """Length of a chord of a circle at distance `offset` from its centre (0 outside)."""
    return 2 * np.sqrt(np.clip(radius**2 - offset**2, 0, None))


def _fill(pts: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Even-odd fill of a polygon given in (row, col) pixel units: (mask, row0, col0)."""
    r0, c0 = int(np.floor(pts[:, 0].min())), int(np.floor(pts[:, 1].min()))
    r1, c1 = int(np.ceil(pts[:, 0].max())) + 1, int(np.ceil(pts[:, 1].max())) + 1
    rows = np.arange(r0, r1) + 0.5
    a, b = pts, np.roll(pts, -1, axis=0)
    lo, hi = np.minimum(a[:, 0], b[:, 0]), np.maximum(a[:, 0], b[:, 0])
    crosses = (rows[:, None] >= lo) & (rows[:, None] < hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rows[:, None] - a[:, 0]) / (b[:, 0] - a[:, 0])
        at = np.where(crosses, a[:, 1] + t * (b[:, 1] - a[:, 1]), np.nan)
    width = c1 - c0
    edges = np.zeros((len(rows), width + 1), np.float32)
    hit_r, hit_e = np.nonzero(crosses)
    cols = np.clip(np.ceil(at[hit_r, hit_e] - 0.5) - c0, 0, width).astype(np.int64)
    np.add.at(edges, (hit_r, cols), 1.0)
    mask = (np.cumsum(edges, axis=1)[:, :width] % 2).astype(np.float32)
    return mask, r0, c0
