"""Registration of a scan to an earlier pass of the same vehicle, in log-attenuation.

Between two passes the vehicle drives at another, changing speed (a non-rigid 1-D stretch along the
scan), sits a few pixels higher or lower, and the geometry may differ by a small vertical scale and
tilt. The mapping from a current pixel (line, column) to the reference is

    reference line   = lines[line]                                   (monotone, from the alignment)
    reference column = scale · column + offset + tilt · (line / (L − 1) − 0.5)

found in three steps: dynamic time warping of coarse column profiles (per line, 32 height bins:
insensitive to a few pixels of vertical offset), the vertical scale, offset and tilt from the mean
height profiles of the along-aligned scans, and a fine along-scan correction by block matching of
finer profiles at full line resolution.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from models.errors import HistoryError

AIR = 65535.0
COARSE_BINS, FINE_BINS = 32, 96
COARSE_LINES = 400          # DTW on at most this many lines per scan
SEGMENT = 48                # lines per block of the fine along-scan correction
DEAD_LEVEL = 9.0            # −ln T of a detector channel that reads nothing (T < 0.012 %; the uint16 floor is 11.09)
DEAD_SHARE = 0.98           # of the lit lines, the air before and after the vehicle among them


Maps = tuple[np.ndarray, np.ndarray]
"""cv2.remap's maps of a registration over a current scan (`Registration.columns`)."""


@dataclass(frozen=True)
class Registration:
    """Current pixel → reference pixel (see the module); residual: mean |difference| after registration
    over mean |difference| of the unregistered scans resampled to one length (lower is better)."""

    lines: np.ndarray
    scale: float
    offset: float
    tilt: float
    residual: float

    def columns(self, shape: tuple[int, int]) -> Maps:
        """cv2.remap maps (x: reference column, y: reference line) for a current image of shape."""
        n, w = shape
        rows = np.arange(n, dtype=np.float32)[:, None]
        shift = self.offset + self.tilt * (rows / max(n - 1, 1) - 0.5)
        map_x = np.arange(w, dtype=np.float32)[None, :] * self.scale + shift
        map_y = np.broadcast_to(self.lines.astype(np.float32)[:, None], (n, w))
        return map_x.astype(np.float32), np.ascontiguousarray(map_y)


_LOG = (-np.log(np.maximum(np.arange(65536, dtype=np.float64), 1.0) / AIR)).astype(np.float32)


def log_attenuation(t: np.ndarray) -> np.ndarray:
    """−ln(T) of a uint16 transmission image (65535 = air), float32, opaque pixels capped near 11."""
    return _LOG[t] if t.dtype == np.uint16 else -np.log(np.maximum(t.astype(np.float32), 1.0) * (1.0 / AIR))


def profiles(a: np.ndarray, lines: int, bins: int) -> np.ndarray:
    """Per-line height profiles: the image averaged down to lines × bins."""
    return cv2.resize(a, (bins, lines), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True, eq=False)
class Profiled:
    """A log-attenuation image with what the registration reads of it alone, each worked out on first use and kept:
    its coarse height profiles (`coarse_lines`), its fine ones (`fine_lines`) and its lit lines. A current scan's
    profiles serve every reference it is registered with; a reference's coarse profiles are worked out when it is
    prepared, before the scan ends. The image is made read-only: what was worked out of it cannot go stale."""

    image: np.ndarray

    def __post_init__(self) -> None:
        self.image.setflags(write=False)

    @functools.cached_property
    def coarse(self) -> np.ndarray:
        return profiles(self.image, min(len(self.image), COARSE_LINES), COARSE_BINS)

    @functools.cached_property
    def fine(self) -> np.ndarray:
        return profiles(self.image, len(self.image), FINE_BINS)

    @functools.cached_property
    def lit(self) -> np.ndarray:
        return lit_lines(self.image)


def dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimal-cost monotone path through a cost matrix from (0, 0) to (n−1, m−1) with steps
    (1, 0), (0, 1), (1, 1); each row is solved at once (the horizontal run is a running minimum), into buffers
    kept across the rows."""
    n, m = cost.shape
    d = np.empty((n, m), np.float64)
    back = np.empty((n, m), np.int32)        # column the row's horizontal run started from
    came = np.zeros((n, m), np.int8)         # 0: diagonal into the run's start, 1: from above
    sums = np.cumsum(cost, axis=1)           # each row's running sum
    d[0] = sums[0]
    back[0] = 0
    cols = np.arange(m, dtype=np.int32)
    diag = np.empty(m)
    diag[0] = np.inf
    e, key, best = np.empty(m), np.empty(m), np.empty(m)
    start, starts = np.empty(m, np.int32), np.empty(m, bool)
    for i in range(1, n):
        up, s = d[i - 1], sums[i]
        diag[1:] = up[:-1]
        np.less_equal(up, diag, out=came[i])
        np.minimum(diag, up, out=e)
        e += cost[i]
        np.subtract(e, s, out=key)
        np.minimum.accumulate(key, out=best)
        np.add(s, best, out=d[i])
        np.less_equal(key, best, out=starts)
        start.fill(-1)
        np.copyto(start, cols, where=starts)
        np.maximum.accumulate(start, out=back[i])
    return _trace(back, came, n, m)


def _trace(back: np.ndarray, came: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    ii: list[int] = []
    jj: list[int] = []
    i, j = n - 1, m - 1
    while i >= 0:
        k = int(back[i, j])
        ii.extend([i] * (j - k + 1))
        jj.extend(range(j, k - 1, -1))
        if i == 0:
            break
        j = k if came[i, k] else max(k - 1, 0)
        i -= 1
    return np.array(ii[::-1]), np.array(jj[::-1])


def coarse_lines(current: Profiled, reference: Profiled) -> np.ndarray:
    """Reference line of every current line from DTW of coarse height profiles."""
    cur, ref, fc, fr = current.image, reference.image, current.coarse, reference.coarse
    nc, nr = len(fc), len(fr)
    cost = _l1(fc, fr) if nc * nr * COARSE_BINS < 8e6 else _l2(fc, fr)
    dark_c, dark_r = ~lit_lines(fc), ~lit_lines(fr)
    if dark_c.any() or dark_r.any():     # beam off in one scan only: no evidence, pass through at the
        free = 1.5 * float(np.median(cost.min(axis=1)))   # cost of a good match, so the dark run takes
                                         # up the part the other scan lit (the cab), not the lit lines after it
        cost[dark_c, :] = free
        cost[:, dark_r] = free
        cost[np.ix_(dark_c, dark_r)] = 0.0   # off in both: the same stretch of the vehicle (the cab)
    ii, jj = dtw_path(cost)
    j_of_i = np.bincount(ii, weights=jj, minlength=nc) / np.maximum(np.bincount(ii, minlength=nc), 1)
    j_of_i = np.convolve(np.pad(j_of_i, 2, mode="edge"), np.ones(5) / 5, mode="valid")
    centres_c = (np.arange(nc) + 0.5) * len(cur) / nc - 0.5
    mapped = (j_of_i + 0.5) * len(ref) / nr - 0.5
    return np.maximum.accumulate(np.interp(np.arange(len(cur)), centres_c, mapped))


def _l1(a: np.ndarray, b: np.ndarray, rows: int = 8) -> np.ndarray:
    """Mean absolute difference of every row of a with every row of b, `rows` of a at a time (in cache, in one
    buffer)."""
    out = np.empty((len(a), len(b)), np.result_type(a, b))
    buffer = np.empty((rows, len(b), a.shape[1]), out.dtype)
    for i in range(0, len(a), rows):
        t = buffer[:len(a[i:i + rows])]
        np.subtract(a[i:i + rows, None, :], b[None, :, :], out=t)
        np.abs(t, out=t)
        t.mean(axis=2, out=out[i:i + rows])
    return out


def _l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0))


def vertical(cur: np.ndarray, ref_along: np.ndarray, lit: np.ndarray) -> tuple[float, float, float]:
    """Scale, offset and tilt of the columns from mean height profiles of along-aligned scans."""
    n, w = cur.shape
    scale, offset = _fit_profile(cur[lit].mean(0), ref_along[lit].mean(0))
    segments = np.array_split(np.flatnonzero(lit), 8)
    at, shifts = [], []
    for seg in segments:
        if len(seg) < 16:
            continue
        _, b = _fit_profile(cur[seg].mean(0), ref_along[seg].mean(0), scales=np.array([scale]))
        at.append(seg.mean() / max(n - 1, 1) - 0.5)
        shifts.append(b)
    if len(at) < 3:
        return scale, offset, 0.0
    tilt, base = np.polyfit(at, shifts, 1)
    return scale, float(base), float(tilt)


def _fit_profile(pc: np.ndarray, pr: np.ndarray, scales: np.ndarray | None = None) -> tuple[float, float]:
    """(scale, offset) minimising mean |pc(col) − pr(scale·col + offset)|: a coarse grid, then a finer one."""
    cols = np.arange(len(pc), dtype=np.float64)
    s_grid = scales if scales is not None else np.linspace(0.96, 1.04, 17)
    b_grid = np.arange(-12.0, 12.01, 0.5)
    s, b = _grid(pc, pr, cols, s_grid, b_grid)
    s_fine = scales if scales is not None else s + np.linspace(-0.005, 0.005, 11)
    return _grid(pc, pr, cols, s_fine, b + np.arange(-0.5, 0.51, 0.05))


def _grid(pc: np.ndarray, pr: np.ndarray, cols: np.ndarray, ss: np.ndarray, bs: np.ndarray) -> tuple[float, float]:
    at = ss[:, None, None] * cols[None, None, :] + bs[None, :, None]
    err = np.abs(np.interp(at, cols, pr) - pc).mean(axis=2)
    k = np.unravel_index(int(np.argmin(err)), err.shape)
    return float(ss[k[0]]), float(bs[k[1]])


def fine_lines(cur: Profiled, ref_cols: np.ndarray, lines: np.ndarray, reach: int) -> np.ndarray:
    """Correct the along-scan mapping by block matching finer profiles within ±reach lines."""
    fc = cur.fine
    fr = profiles(ref_cols, len(ref_cols), FINE_BINS)
    grid = np.arange(len(fr), dtype=np.float64)
    shifts = np.arange(-reach, reach + 1, dtype=np.float64)
    errs = np.empty((len(shifts), len(fc)))
    for k, s in enumerate(shifts):
        at = np.clip(lines + s, 0, len(fr) - 1)
        i0 = np.minimum(at.astype(np.int64), len(fr) - 2)
        f = (at - i0)[:, None]
        errs[k] = np.abs(fc - (fr[i0] * (1 - f) + fr[i0 + 1] * f)).mean(axis=1)
    dark = ~lit_lines(fc)
    if dark.any() and not dark.all():            # no evidence where the beam was off: no preference
        errs[:, dark] = errs[:, ~dark].mean()
    block = cv2.blur(errs.astype(np.float32), (SEGMENT, 1), borderType=cv2.BORDER_REFLECT)
    best = np.argmin(block, axis=0)
    k = np.clip(best, 1, len(shifts) - 2)
    cols = np.arange(len(fc))
    e0, e1, e2 = block[k - 1, cols], block[k, cols], block[k + 1, cols]
    sub = 0.5 * (e0 - e2) / np.maximum(e0 - 2 * e1 + e2, 1e-9)
    delta = shifts[k] + np.clip(sub, -0.5, 0.5) * (best == k)
    delta = cv2.blur(delta.astype(np.float32)[:, None], (1, SEGMENT), borderType=cv2.BORDER_REFLECT)[:, 0]
    out = np.clip(lines + delta, 0, len(grid) - 1)
    return np.maximum.accumulate(out)


def lit_lines(a: np.ndarray) -> np.ndarray:
    """Lines the beam lit (cab avoidance leaves lines dark: attenuation high even over the air above)."""
    top = a[:, -max(4, a.shape[1] // 20):]
    return np.median(top, axis=1) < 3.0


def dead_columns(a: np.ndarray) -> np.ndarray:
    """The detector channels (columns) that read nothing: dark (−ln T ≥ DEAD_LEVEL) on DEAD_SHARE of the lit lines
    (every fourth), over the air before and after the vehicle too, where nothing a vehicle carries is. None when
    more than a twentieth of the columns are (a load opaque over the whole scan, not failed channels) or fewer
    than 16 lines are lit."""
    lit = np.flatnonzero(lit_lines(a))
    none = np.zeros(a.shape[1], bool)
    if lit.size < 16:
        return none
    dead = (a[lit[::4]] >= DEAD_LEVEL).mean(axis=0) >= DEAD_SHARE
    return dead if dead.sum() <= a.shape[1] // 20 else none


def repair_columns(a: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """`a` with each dead column interpolated along the detector between the nearest live columns either side
    (the nearest one's copied at the detector's ends): what a scanner's dead-channel correction does, so that
    the vehicle's outline, the profiles the registration matches and the line gains do not see a channel
    reading nothing. The comparison still leaves those columns out (they hold no measurement)."""
    if not dead.any():
        return a
    good, bad = np.flatnonzero(~dead), np.flatnonzero(dead)
    if good.size == 0:
        return a
    after = np.searchsorted(good, bad)
    left, right = good[np.maximum(after - 1, 0)], good[np.minimum(after, good.size - 1)]
    w = np.where(right != left, (bad - left) / np.maximum(right - left, 1), 0.0).astype(a.dtype)
    out = a.copy()
    out[:, bad] = a[:, left] * (1 - w) + a[:, right] * w
    return out


def register(cur: np.ndarray | Profiled, ref: np.ndarray | Profiled) -> Registration:
    """Registration of a current log-attenuation image to a reference one (lines × columns each)."""
    return registered(cur, ref)[0]


def registered(current: np.ndarray | Profiled, reference: np.ndarray | Profiled
               ) -> tuple[Registration, Maps, np.ndarray]:
    """`register`, its maps over the current scan and the reference warped onto the current scan's pixels with them
    (which its residual measures and a comparison reads next, with the other channel warped at the same maps)."""
    c = current if isinstance(current, Profiled) else Profiled(current.view())    # a view: the caller's array
    r = reference if isinstance(reference, Profiled) else Profiled(reference.view())   # stays writable
    cur, ref = c.image, r.image
    if cur.ndim != 2 or ref.ndim != 2 or cur.shape[1] != ref.shape[1]:
        raise HistoryError(f"scan of shape {cur.shape} cannot be registered to a reference of shape {ref.shape}: "
                           "the detector columns differ")
    if min(len(cur), len(ref)) < 16:
        raise HistoryError(f"scans of {len(cur)} and {len(ref)} lines are too short to register")
    lines = coarse_lines(c, r)
    along = _remap(ref, lines, 1.0, 0.0, 0.0, cur.shape)
    lit = c.lit & lit_lines(along)
    if lit.sum() < 16:
        lit = np.ones(len(cur), bool)
    scale, offset, tilt = vertical(cur, along, lit)
    ref_cols = _remap(ref, np.arange(len(ref), dtype=np.float64), scale, offset, 0.0, ref.shape)
    reach = int(np.ceil(max(len(ref), len(cur)) / COARSE_LINES)) + 2
    lines = fine_lines(c, ref_cols, lines, reach)
    maps = Registration(lines, scale, offset, tilt, 1.0).columns(cur.shape)
    warped = remap(ref, maps)
    return Registration(lines, scale, offset, tilt, residual(cur, ref, warped, lit)), maps, warped


def _remap(ref: np.ndarray, lines: np.ndarray, scale: float, offset: float, tilt: float,
           shape: tuple[int, int]) -> np.ndarray:
    return warp(ref, Registration(np.asarray(lines, np.float64), scale, offset, tilt, 1.0), shape)


def warp(ref: np.ndarray, reg: Registration, shape: tuple[int, int]) -> np.ndarray:
    """The reference image resampled onto the current scan's pixels."""
    return remap(ref, reg.columns(shape))


def remap(ref: np.ndarray, maps: Maps) -> np.ndarray:
    """The reference image resampled at the maps of Registration.columns (one pair of maps for several images)."""
    return cv2.remap(ref, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def residual(cur: np.ndarray, ref: np.ndarray, warped: np.ndarray, lit: np.ndarray) -> float:
    """Registration quality: mean |cur − warped ref| over mean |cur − ref stretched to the same length| (warped: the
    reference warped onto the current scan's pixels)."""
    after = np.abs(cur - warped)[lit].mean()
    plain = cv2.resize(ref, (cur.shape[1], cur.shape[0]), interpolation=cv2.INTER_LINEAR)
    before = np.abs(cur - plain)[lit].mean()
    return float(after / max(before, 1e-9))
