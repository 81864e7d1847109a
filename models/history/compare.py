"""Comparison of a scan with an earlier pass of the same vehicle: change regions with their mass.

After registration (models.history.register) the reference is resampled onto the
current scan, given the current pass's scatter behind dense loads (`scatter_level`: an additive
transmission that differs between passes and shifts −ln T there by tenths) and the two are
subtracted in log-attenuation, high and low channel. The difference is smoothed and
divided by its own spread, measured on this pair of scans per level of attenuation and of edge
strength (noise grows with attenuation, residual misregistration with the gradient), so the
threshold is in units of the pair's noise. Parts that change legitimately are suppressed: the cargo
bay when the declaration says loaded, a fuel level (a band level across the whole tank: the caller's
tank, or a band found in the image whose edges are those of a liquid's level, `level_changes`), and people
in the cab (a change of the size and mass of a seated person there, but not in a roof, floor, tank or
spare wheel, where nobody sits). A region counts with the smaller of its own mass and the net mass of
its padded box (a misregistered edge is a +/− pair that nets out) and only when the low channel
changed along with the high one (Δlow/Δhigh in a window: a fuel-level residual is far off). Connected regions above the
threshold are ranked by the steel-equivalent mass they add or remove:

    mass (g Fe) = Σ Δ(−ln T_high) / (μ/ρ)_Fe · pixel area (cm²)

with the effective μ/ρ of iron of the scanner's high channel (FE_MU_RHO, from the portal physics of
models.training: 20 mm of steel behind 10–30 mm). The vehicle's parts (roof, floor, cab, cargo) come
from the geometry of its silhouette (`silhouette_parts`) unless the caller passes a layout (`parts`:
floor, roof, fuel tank, spare wheel, door, cargo, cab); the comparison never reads one from the scan's
metadata, so a generator's pass is compared as a station compares a real scan.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.errors import HistoryError
from models.history.judge import COMMON_MODEL, CORROBORATED_MODEL, Judge, JudgeError, vector
from models.history.judge import load as load_judge
from models.history.register import (Profiled, Registration, dead_columns, lit_lines, log_attenuation, registered,
                                     remap, repair_columns)
from models.scan import Scan

# Effective μ/ρ (cm²/g) of iron in the high channel, by the scanner's high energy (keV): the slope of
# −ln T for 20 mm of steel behind 10–30 mm in models.training (physics.py for tubes, portal/linac.py).
FE_MU_RHO = {300.0: 0.142, 450.0: 0.119, 6000.0: 0.040, 9000.0: 0.036}
EDGE_QUANTILES = np.array([0.3, 0.6, 0.8, 0.9, 0.95, 0.98, 0.995])
NO_SEATS = ("roof", "floor", "fuel_tank", "spare_wheel")   # parts no passenger sits in: no occupant filter
NET_PAD_PX = 4               # a region's net mass is summed over its box padded this much (both signs)
OPAQUE = 7.5                 # −ln T beyond which a pixel carries no information (T < 0.06 %)
SCATTER_DENSE = 4.0          # −ln T over which a pixel counts as dense (T < 1.8 %) for scatter_level
SCATTER_BLOCK = 16           # pixels per side of scatter_level's blocks
LEVEL_LOWER_MAX = 0.25       # band_step at a band's lower and upper edge under which it is a liquid's
LEVEL_UPPER_MAX = 0.8        # level that moved (the upper edge may meet the tank's top)
LEVEL_MIN_LINES = 8          # lines a level band spans at least (a tank is longer than that)
LEVEL_MIN_KG = 2.0           # steel-equivalent mass a level band holds at least to be taken out
LEVEL_END_LINES = 4          # lines left uncompared either side of a level's ends (its tank's end walls)
LEVEL_LOW = 0.4              # a level band's bottom lies under this share of the vehicle's height (a fuel
                             # tank; a tanker's cargo is declared loaded and not compared)
LEVEL_GAP = 2                # columns of a gap bridged in a level band (a rail across the tank)
AIR_LEVEL = 0.05             # −ln T under this in both scans: air (a line's dose is measured there)
AIR_PIXELS = 16              # air pixels (at every other column) a line needs for its gain to be measured there
LIT_MARGIN = 8               # lines left out either side of a dark run (cab avoidance), in each scan's lines
UNCOMPARED_LINES = 8         # scan lines a run of lines compared with nothing spans at least to be shown (`not_compared`)
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds (chosen on a validation block by models.history.evaluate)."""

    z: float = 4.0             # smoothed difference over its spread: a region holds a pixel beyond this
    grow_z: float = 3.3        # and is drawn out to where |z| falls below this (hysteresis: a weak, wide
                               # change is one region with all its mass, not fragments each under min_kg)
    min_score: float = 30.0    # a region's peak |z|
    min_kg: float = 5.0        # steel-equivalent mass of a region, either sign
    tank_kg: float = 40.0      # in the fuel tank: the fuel's level changes (not only as a flat band)
    cab_kg: float = 6.0        # in the cab: people come and go
    smooth_px: float = 2.0     # Gaussian smoothing of the difference
    ratio_lo: float = 0.5      # the low channel must change along with the high one: Δlow / Δhigh in
    ratio_hi: float = 2.5      # [ratio_lo, ratio_hi] (a solid change; a fuel-level residual is far off)
    report_occupants: bool = False   # report person-like changes in the cab too (evaluation only)
    min_judge: float | None = None   # the region judge's probability a region needs (models.history.judge); None:
                                     # hand thresholds only, no judge; 0: every region weighed and kept (with two
                                     # references the second judge decides)

    def keeps(self, r: ChangeRegion) -> bool:
        """Whether a region is reported: its peak score, its mass (the smaller of the region's own and the
        net mass around it: a misregistered edge is a +/− pair that nets out) over the threshold of its
        location, both channels changing alike; then, with the judge, its probability over min_judge (the
        judge knows the person-like shape), without it, not a person in the cab."""
        if not self.large(r):
            return False
        if self.min_judge is not None:
            return r.confidence >= self.min_judge
        return self.report_occupants or not r.occupant

    def large(self, r: ChangeRegion) -> bool:
        """keeps, but for the occupant filter."""
        need = max(self.min_kg, {"fuel_tank": self.tank_kg, "cab": self.cab_kg}.get(r.location, 0.0))
        return (r.score >= self.min_score and min(r.mass_kg_fe, r.net_kg) >= need
                and self.ratio_lo <= r.ratio <= self.ratio_hi)


CHOSEN = Thresholds(min_score=10.0, min_kg=1.0, tank_kg=1.0, cab_kg=1.0, ratio_lo=-100.0, ratio_hi=100.0,
                    min_judge=0.78)
"""The thresholds a station compares with against one reference: chosen on the validation block (seeds 0–719;
models.history.evaluate, bench/results/history_compare.json): the region judge at 0.78 over a floor of score 10
and 1 kg, the best found rate whose false regions per unchanged pass are ≤ 0.2 at their 95 % upper bound (of the rules
finding within half a percentage point of it, the one with the fewest false regions: `evaluate.FOUND_TIE`)."""


@dataclass(frozen=True)
class Corroboration:
    """With two references: a region against the newest is reported when `first` keeps it and the comparison with
    the second reference holds a region of the same kind overlapping it (within OVERLAP_PX) that `first`'s score
    and mass floor keep and the judge weighs at `second` or more, the mean of the two weights being `mean` or more
    (a region the judge is sure of against one reference needs less from the other). What only one reference
    differs in (its own fuel level, its passengers, its scatter, its registration) does not come back against the
    other; a real change is in the current scan and shows against both."""

    first: Thresholds
    second: float
    mean: float = 0.0
    alone: Thresholds | None = None   # where the newest reference compared nothing (its `uncompared`: the beam off
    # there in it), a region against the second is reported when these keep it: one reference saw the place, and it
    # is judged as with one reference (its score and mass floor no lower than `first`'s)
    judge: Path | None = None  # the judge that weighs both comparisons' regions for the corroboration (`corroborate`:
    # trained on the regions a second reference corroborates, models.history.train_judge --corroborated); None: the
    # regions' own weights (the one-reference judge's). `alone` reads the one-reference judge's weights either way
    common: float | None = None  # a region of what both references show pixel by pixel (`common`) is reported too
    # when `first`'s score and mass floor keep it and `common_judge` weighs it at this level or more, unless it
    # overlaps a region already reported; None: not looked at
    common_judge: Path | None = None  # the judge that weighs those regions (trained on them: models.history.train_judge
    # --common); None: `judge`

    def agrees(self, r: ChangeRegion, s: ChangeRegion) -> bool:
        """Whether `s` (against the second reference, kept at `second`) corroborates `r` (kept by `first`)."""
        return s.kind == r.kind and overlap(r.box, s.box) and r.confidence + s.confidence >= 2 * self.mean


CORROBORATED = Corroboration(replace(CHOSEN, min_judge=0.38, min_score=6.0), 0.3, 0.5, alone=CHOSEN,
                             judge=CORROBORATED_MODEL, common=0.66, common_judge=COMMON_MODEL)
"""What a station compares with when it holds two references: both comparisons' regions weighed by the judge trained
on the regions a second reference corroborates (`judge_corroborated.json`), at 0.38 against the newest over a floor
of score 6 and 1 kg, 0.3 against the second and 0.5 for the mean of both (so a region at 0.38 needs 0.62 from the
second, one at 0.7 needs 0.3); chosen on the validation block as CHOSEN is (models.history.evaluate,
`two_references`: of the rules finding within FOUND_TIE of the most, the one with the fewest false regions). Where the
newest reference compared nothing, the second's regions are judged by CHOSEN with the one-reference judge. A region of
what both references show pixel by pixel (`common`) over the same floor, weighed at 0.66 or more by a judge trained on
such regions (`judge_common.json`), is reported too (the judge and level chosen after the rest on the same block,
`evaluate.choose_common`)."""
OVERLAP_PX = 4.0             # boxes this close overlap (a region and its corroboration; the evaluation's truth)


@dataclass(frozen=True)
class Declaration:
    """What the pass legitimately changes: cargo loaded (the bay is not compared), people in the cab."""

    loaded: bool = False
    occupants: bool = True


@dataclass(frozen=True)
class ChangeRegion:
    """A change: box [column0, line0, column1, line1] of the current scan, added or removed, its
    steel-equivalent mass (kg), area (cm²), location on the vehicle and score (peak |z|)."""

    box: tuple[float, float, float, float]
    kind: str
    mass_kg_fe: float
    area_cm2: float
    location: str
    score: float
    ratio: float = 0.0         # Δ(−ln T_low) / Δ(−ln T_high) of the change: its material (≈ R of issue 16)
    net_kg: float = 0.0        # net mass of everything in the box padded by NET_PAD_PX, in the region's direction
    occupant: bool = False     # the size and softness of a seated person, in the cab (see `occupant`)
    confidence: float = 0.0    # the region judge's probability that this is a real change (a ranking)


@dataclass(frozen=True)
class Comparison:
    """The change regions (heaviest first) and the registration's quality, for the record; `features`
    holds each region's description for the region judge (models.history.judge), not for the record."""

    regions: tuple[ChangeRegion, ...]
    registration: dict[str, float]
    suppressed: dict[str, int] = field(default_factory=dict)
    features: tuple[dict[str, float], ...] = field(default=(), repr=False, compare=False)
    uncompared: tuple[Box, ...] = ()   # where on the vehicle nothing was compared (`not_compared`): no region there
                                       # says nothing

    def to_json(self) -> dict[str, Any]:
        return {"regions": [asdict(r) for r in self.regions], "registration": self.registration,
                "suppressed": self.suppressed, "uncompared": [list(b) for b in self.uncompared]}


@dataclass(frozen=True)
class Reference:
    """A reference pass prepared before the current scan ends: log-attenuation of both channels, and what the
    registration reads of it alone (`profiled`)."""

    high: np.ndarray
    low: np.ndarray
    meta: dict[str, Any]
    binning: int = 1
    dead: np.ndarray | None = None     # its detector channels that read nothing (binned columns; repaired)

    @functools.cached_property
    def profiled(self) -> Profiled:
        """Its high channel with what the registration reads of it alone (`Profiled`)."""
        return Profiled(self.high)


def binning(shape: tuple[int, int]) -> int:
    """Work at half resolution on container-sized scans (over 1.2 M pixels): a 5 kg change spans far more."""
    return 2 if shape[0] * shape[1] > 1.2e6 else 1


def prepare(scan: Scan) -> Reference:
    """Log-attenuation images of a reference pass, binned as its size asks, its coarse height profiles and its lit
    lines (the registration reads them: worked out here, before the scan ends, not after its last line)."""
    cur = Current.of(scan, binning(scan.shape))
    reference = Reference(cur.high, cur.low, dict(scan.meta), cur.binning, cur.dead)
    _ = reference.profiled.coarse, reference.profiled.lit    # what the registration reads of it alone, now
    return reference


def _bin(a: np.ndarray, b: int) -> np.ndarray:
    if b == 1:
        return a
    return cv2.resize(a, (a.shape[1] // b, a.shape[0] // b), interpolation=cv2.INTER_AREA)


def fe_mu_rho(energy_kev: float) -> float:
    """Effective μ/ρ of iron for a scanner's high energy (interpolated in log energy)."""
    keys = np.array(sorted(FE_MU_RHO))
    return float(np.interp(np.log(energy_kev), np.log(keys), [FE_MU_RHO[k] for k in keys]))


def spread(d: np.ndarray, level: np.ndarray, edge: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Robust spread of d (1.4826 · MAD) per cell of 8 attenuation × 8 gradient quantile bins, per pixel
    (measured on at most 150,000 valid pixels taken at an even stride)."""
    idx = np.flatnonzero(valid.ravel())
    if idx.size < 500:
        return np.ones_like(d)
    idx = idx[:: max(1, idx.size // 150_000)]
    lv, ev, dv = level.ravel()[idx], edge.ravel()[idx], d.ravel()[idx]
    qa, qe = np.quantile(lv, np.linspace(0, 1, 9)[1:-1]), np.quantile(ev, EDGE_QUANTILES)
    cells = _bins(lv, qa) * 8 + _bins(ev, qe)
    table = np.full(64, np.nan)
    order = np.argsort(cells, kind="stable")         # uint8 keys: a radix sort
    bounds = np.concatenate([[0], np.cumsum(np.bincount(cells, minlength=64))])
    for c in range(64):
        vals = dv[order[bounds[c]:bounds[c + 1]]]
        if vals.size >= 50:
            table[c] = 1.4826 * _median(np.abs(vals - _median(vals))) + 1e-4
    table[np.isnan(table)] = np.nanmax(table) if np.isfinite(table).any() else 1.0
    lut = np.zeros(256, np.float32)                  # cv2.LUT reads 256 entries
    lut[:64] = table
    return cv2.LUT(_bins(level, qa) * 8 + _bins(edge, qe), lut)


def _bins(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.searchsorted(edges, values) for fewer than 256 sorted edges, as uint8: how many edges lie below each
    value (NaN above all); a few comparisons over the image cost a fraction of a binary search per pixel. Float32
    values are compared with each edge rounded down to float32, which decides every comparison as the edge itself."""
    at_or_over = np.zeros(values.shape, np.uint8)      # the edges at or over each value (none for NaN)
    for e in edges:
        if values.dtype == np.float32:
            e32 = np.float32(e)
            e = np.nextafter(e32, np.float32(-np.inf)) if e32 > e else e32
        at_or_over += values <= e
    return len(edges) - at_or_over


def _median(a: np.ndarray) -> np.floating[Any]:
    """np.median of a non-empty 1-D array, without its dispatch (the two middle values' mean as np.median takes it)."""
    n = a.size
    part = np.partition(a, [(n - 1) // 2, n // 2])
    return np.mean(part[(n - 1) // 2:n // 2 + 1])


def tolerant_difference(cur: np.ndarray, ref: np.ndarray, rows: int = 32) -> np.ndarray:
    """cur − ref, tolerant of a misregistration under a pixel both ways: per pixel, the reference shifted by up to
    one line or column that differs least from the current (`_nearest`), and the current shifted so that differs
    least from the reference; of the two the larger. An edge misregistered by less than a pixel leaves nothing
    either way; a changed area keeps its own; a part one or two pixels thin that one scan has and the other has not
    keeps its difference one way (taken out of the current, its neighbours in the current still match the
    reference beside it, not the reference over it). Worked `rows` lines at a time (they stay in the processor's
    cache); the scan's ends wrap round as np.roll's."""
    out = np.empty_like(cur)
    ref_padded, cur_padded = np.concatenate([ref[-1:], ref, ref[:1]]), np.concatenate([cur[-1:], cur, cur[:1]])
    for a in range(0, len(cur), rows):
        b = min(a + rows, len(cur))
        forward = _nearest(cur[a:b], ref_padded, a, b)
        backward = -_nearest(ref[a:b], cur_padded, a, b)
        out[a:b] = np.where(np.abs(backward) > np.abs(forward), backward, forward)
    return out


def _nearest(c: np.ndarray, padded: np.ndarray, a: int, b: int) -> np.ndarray:
    """c − the other scan shifted by up to one line or column (`padded`: it with one line wrapped round either
    end), per pixel the shift that differs least; c is lines a to b of its scan."""
    r = padded[a + 1:b + 1]
    d = c - r
    least = np.abs(d)
    for other in (c - padded[a + 2:b + 2], c - padded[a:b], c - np.roll(r, -1, axis=1), c - np.roll(r, 1, axis=1)):
        size = np.abs(other)
        d = np.where(size < least, other, d)
        least = np.minimum(size, least)
    return d


def inside(reg: Registration, map_x: np.ndarray, margin: float = 3.0) -> np.ndarray:
    """Pixels whose reference lies inside the reference's detector column, `margin` pixels and the
    vertical offset clear of both ends (at the road and at the top the passes do not see the same);
    map_x: the reference column of each current pixel (reg.columns)."""
    edge = margin + abs(reg.offset) + abs(reg.tilt) / 2
    return (map_x >= edge) & (map_x <= map_x.shape[1] - 1 - edge)


def lit(cur: Profiled, ref: Profiled, reg: Registration, margin: int = LIT_MARGIN) -> np.ndarray:
    """Current lines lit in both scans, less `margin` lines either side of any dark run, counted in each
    scan's own lines (the beam switching on is blurred over a few lines). The reference's margin is
    taken where the registration maps each current line: with the beam off over the cab in the
    reference only, the alignment has no evidence there and parks the rest of the current pass's cab
    on the reference's last dark and first lit lines, many current lines on a few reference ones.
    Each scan's lit lines are those the registration read (`Profiled.lit`)."""
    def clear(a: Profiled) -> np.ndarray:       # lit lines at least `margin` lines from a dark one
        kernel = np.ones((2 * margin + 1, 1), np.uint8)
        return cv2.erode(a.lit.astype(np.uint8)[:, None], kernel, borderType=cv2.BORDER_REPLICATE)[:, 0] > 0

    theirs, at = clear(ref), np.clip(reg.lines, 0, len(ref.image) - 1)
    return clear(cur) & theirs[np.floor(at).astype(int)] & theirs[np.ceil(at).astype(int)]


def detector_gains(d: np.ndarray, valid: np.ndarray, *others: np.ndarray,
                   air: np.ndarray | None = None) -> np.ndarray:
    """Take out the detector's column and line gains, which differ between passes (d and others changed
    in place); returns the usable columns: a dead pixel in either scan shows as a column far off (> 0.5).
    A line's gain (its pulse's dose) is measured over `air` (pixels that are air in both scans) where the
    line has AIR_PIXELS of them: the median of the whole line would take a change over most of the
    vehicle's height on a few lines (a van's cab bulkhead, a container's cross member) for dose."""
    def median(a: np.ndarray) -> np.ndarray:          # over the last axis; no valid pixel: nothing to take out
        return np.nan_to_num(_finite_median(a, np.isfinite(a).sum(axis=-1)))

    cols = median(np.where(valid, d, np.nan)[::2].T).astype(np.float32)
    centred = (d - cols[None, :])[:, ::2]               # every other column
    rows = median(np.where(valid[:, ::2], centred, np.nan))
    if air is not None:
        clear = (valid & air)[:, ::2]
        enough = clear.sum(axis=1) >= AIR_PIXELS
        if enough.any():
            rows = np.where(enough, median(np.where(clear, centred, np.nan)), rows)
    for arr in (d, *others):
        arr -= cols[None, :]
        arr -= rows[:, None].astype(np.float32)
    return np.abs(cols) < 0.5


def dead_there(dead: np.ndarray | None, reg: Registration, width: int) -> np.ndarray:
    """The current columns that map (on any line, within a column) onto one of the reference's dead channels."""
    if dead is None or not dead.any():
        return np.zeros(width, bool)
    at = np.arange(width) * reg.scale + reg.offset
    return (np.abs(at[:, None] - np.flatnonzero(dead)[None, :]) <= abs(reg.tilt) / 2 + 1.0).any(axis=1)


def _padded(box: Box, px: float) -> Box:
    return (box[0] - px, box[1] - px, box[2] + px, box[3] + px)


def level_band(d: np.ndarray, box: Box, valid: np.ndarray | None = None, lines: np.ndarray | None = None) -> None:
    """Remove a fuel-level change in a tank: the median difference per height over the tank's (compared)
    length. Something put into part of the tank's length stays; filling all of it looks like fuel.
    `lines`: the box's lines (indices from the box's first) that hold the level, when not all do."""
    c0, l0, c1, l1 = (int(round(v)) for v in box)
    c0, c1 = max(c0, 0), min(c1, d.shape[1])
    rows = np.arange(max(l0, 0), min(l1, d.shape[0])) if lines is None else l0 + lines
    rows = rows[(rows >= 0) & (rows < d.shape[0])]
    if c1 - c0 < 2 or rows.size < 4:
        return
    patch = d[rows, c0:c1]
    ok = np.ones(patch.shape, bool) if valid is None else valid[rows, c0:c1]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        band = np.nan_to_num(np.nanmedian(np.where(ok, patch, np.nan), axis=0))
    d[rows, c0:c1] = patch - band[None, :].astype(np.float32)


@dataclass(frozen=True)
class Level:
    """A band where a liquid's level moved between the passes: its box (binned pixels, two columns
    either side of the band) and the box's lines that carry it (indices from the box's first line)."""

    box: Box
    lines: np.ndarray

    def take_out(self, d: np.ndarray, valid: np.ndarray) -> None:
        level_band(d, self.box, valid, self.lines)

    def guard(self, valid: np.ndarray) -> None:
        """Leave uncompared LEVEL_END_LINES either side of the level's first and last line, over the band's
        heights and half its height again above and below: the tank's end walls, where a registration a few
        lines off leaves a strip of fuel in one scan only (the band it netted out against is taken out)."""
        c0, l0, c1, _ = (int(round(v)) for v in self.box)
        pad = (c1 - c0) // 2
        for end in (l0 + int(self.lines[0]), l0 + int(self.lines[-1])):
            valid[max(end - LEVEL_END_LINES, 0):end + LEVEL_END_LINES + 1, max(c0 - pad, 0):c1 + pad] = False


Components = tuple[tuple[int, np.ndarray, np.ndarray], ...]
"""Connected components (count, labels, stats: cv2.connectedComponentsWithStats) of z and of −z over a level."""


def components(z: np.ndarray, over: float) -> Components:
    return tuple(_labelled((signed > over).astype(np.uint8)) for signed in (z, -z))


def _labelled(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """cv2.connectedComponentsWithStats of a mask, 8-connected: the labels as uint16 whenever they fit (fewer set
    pixels than uint16 holds, so at most 65,534 components), else int32. On one thread OpenCV labels and measures
    with uint16 in well under half the time (1.5 against 4 ms on the largest van); both number the components in
    scan order: the same labels and statistics."""
    ltype = cv2.CV_16U if cv2.countNonZero(mask) < np.iinfo(np.uint16).max else cv2.CV_32S
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=ltype)
    return n, labels, stats


def level_changes(z: np.ndarray, raw: np.ndarray, cur: np.ndarray, ref: np.ndarray, valid: np.ndarray,
                  t: Thresholds, kg_per_unit: float, top: float, found: Components | None = None) -> list[Level]:
    """The bands where a liquid's level moved between the passes: a candidate region whose change is a
    band of heights even along its lines, with the fuller scan continuous across the band's lower edge
    (liquid on both sides of the old level) and the emptier scan continuous across its upper edge
    (`band_step` under LEVEL_LOWER_MAX and LEVEL_UPPER_MAX). A plate or a box put in or taken out has
    its own edges in one scan; a level has none. Taking the band's median per height out of the lines
    that carry it (level_band) leaves anything put into part of the tank's length. Only bands low in the
    vehicle (LEVEL_LOW: fuel tanks) are taken for levels, soft and even changes higher up (a passenger)
    are not, and bands under LEVEL_MIN_KG are left to the judge (kg_per_unit: the steel-equivalent kg of
    a pixel whose −ln T changed by 1; top: the column of the vehicle's top, `_top`; found: z's components over
    t.grow_z, when the caller has them)."""
    out: list[Level] = []
    for (signed, sign), (n, labels, stats) in zip(((z, 1.0), (-z, -1.0)), found or components(z, t.grow_z)):
        labelled = labels > 0                # the sums in pixel order, as over the whole image
        held = sign * np.bincount(labels[labelled], weights=raw[labelled], minlength=n) * kg_per_unit
        big = ((stats[:, cv2.CC_STAT_HEIGHT] >= LEVEL_MIN_LINES) & (stats[:, cv2.CC_STAT_WIDTH] >= 3)
               & (stats[:, cv2.CC_STAT_AREA] >= 3 * LEVEL_MIN_LINES) & (held >= 0.5 * LEVEL_MIN_KG))
        for k in np.flatnonzero(big[1:]) + 1:
            x, y, w, h, area = (int(v) for v in stats[k])
            if float(signed[y:y + h, x:x + w][labels[y:y + h, x:x + w] == k].max()) <= t.z:
                continue
            band = _band(raw, valid, (x, y, x + w, y + h), sign)
            if band is None:
                continue
            b0, b1, carried, mean = band
            lines = np.flatnonzero(carried)
            if abs(mean) * (b1 - b0) * lines.size * kg_per_unit < LEVEL_MIN_KG:
                continue
            if b0 > LEVEL_LOW * top:
                continue
            lower, upper = band_step(cur, ref, (b0, y + int(lines[0]), b1, y + int(lines[-1]) + 1), mean)
            if lower <= LEVEL_LOWER_MAX and upper <= LEVEL_UPPER_MAX:
                out.append(Level((float(b0 - 2), float(y), float(b1 + 2), float(y + h)), lines))
    return out


def _band(raw: np.ndarray, valid: np.ndarray, box: tuple[int, int, int, int],
          sign: float) -> tuple[int, int, np.ndarray, float] | None:
    """The band a region's change fills when the change is even along its lines: its heights (columns b0 …
    b1: the per-height median over the region's lines, cut where it falls under half its peak), which of
    the region's lines carry at least half the band's mean, and that mean; None when fewer than 70 % do.
    Gaps of up to LEVEL_GAP columns in the band are bridged (a rail or strap across the tank in the side
    view, a little off between the passes)."""
    x0, y0, x1, y1 = box
    c0, c1 = max(x0 - 3, 0), min(x1 + 3, raw.shape[1])
    patch, ok = raw[y0:y1, c0:c1], valid[y0:y1, c0:c1]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        profile = sign * np.nan_to_num(np.nanmedian(np.where(ok, patch, np.nan), axis=0))
    peak = int(np.argmax(profile))
    if profile[peak] <= 0:
        return None
    over = profile >= 0.5 * profile[peak]
    gaps = cv2.morphologyEx(over.astype(np.uint8)[None, :], cv2.MORPH_CLOSE, np.ones((1, LEVEL_GAP + 2), np.uint8),
                            borderType=cv2.BORDER_CONSTANT, borderValue=0)[0] > 0
    over |= gaps                                  # a rail or strap across the tank leaves a gap in the band
    b0, b1 = peak, peak + 1
    while b0 > 0 and over[b0 - 1]:
        b0 -= 1
    while b1 < len(over) and over[b1]:
        b1 += 1
    mean = float(profile[b0:b1].mean())
    carried = sign * patch[:, b0:b1].mean(axis=1) >= 0.5 * mean
    if float(np.mean(carried)) < 0.7:
        return None
    return b0 + c0, b1 + c0, carried, sign * mean


def band_step(cur: np.ndarray, ref: np.ndarray, box: tuple[int, int, int, int],
              mean: float) -> tuple[float, float]:
    """How far a band of heights (box: columns b0 … b1 over its lines) fails to be a liquid's level moving
    at its lower and at its upper edge (0: exactly like one), in units of the band's change `mean`: a
    level that rose leaves the fuller scan continuous across the band's lower edge (liquid on both sides
    of the old level) and the emptier scan continuous across its upper edge (air on both sides of the new
    level, unless the level came near the tank's top). A plate or a box put in or taken out has its own
    lower edge in the scan that holds it. Strips of up to 3 columns either side of each edge, one column
    clear of it (of a band 4 columns high or more), median over the lines; a band too near the scan's
    ends is not a level."""
    b0, y0, b1, y1 = box
    full, empty = (cur, ref) if mean > 0 else (ref, cur)
    k, g = int(np.clip((b1 - b0) // 3, 1, 3)), int(b1 - b0 >= 4)
    if b0 - g - k < 0 or b1 + g + k > cur.shape[1] or abs(mean) < 1e-6:
        return 5.0, 5.0
    lines = slice(y0, y1)
    strips = [full[lines, b0 + g:b0 + g + k], full[lines, b0 - g - k:b0 - g],
              empty[lines, b1 - g - k:b1 - g], empty[lines, b1 + g:b1 + g + k]]
    if min(s.size for s in strips) == 0:
        return 5.0, 5.0
    med = [float(np.median(s)) for s in strips]
    return min(abs(med[0] - med[1]) / abs(mean), 5.0), min(abs(med[2] - med[3]) / abs(mean), 5.0)


@dataclass(frozen=True)
class Current:
    """The current scan at a reference's binning, and what the comparison reads of it alone (its parts from the
    silhouette, its top and extent): worked out once however many references it is compared with."""

    scan: Scan
    binning: int
    high: np.ndarray
    low: np.ndarray
    dead: np.ndarray             # the detector channels that read nothing, in binned columns (repaired in high, low)

    @classmethod
    def of(cls, scan: Scan | Current, b: int) -> Current:
        """The scan at binning b (a Current already at b is itself), its dead channels (either channel's
        `dead_columns`) repaired before binning."""
        if isinstance(scan, Current):
            if scan.binning == b:
                return scan
            scan = scan.scan
        high, low = log_attenuation(scan.high), log_attenuation(scan.low)
        dead = dead_columns(high) | dead_columns(low)
        binned = dead[:high.shape[1] // b * b].reshape(-1, b).any(axis=1)
        return cls(scan, b, _bin(repair_columns(high, dead), b), _bin(repair_columns(low, dead), b), binned)

    @functools.cached_property
    def parts(self) -> dict[str, list[float]]:
        return silhouette_parts(self.high, self.binning)

    @functools.cached_property
    def profiled(self) -> Profiled:
        """Its high channel with what the registration reads of it alone, for every reference (`Profiled`)."""
        return Profiled(self.high)

    @functools.cached_property
    def top(self) -> float:
        return _top(self.high)

    @functools.cached_property
    def extent(self) -> tuple[float, float]:
        return _extent(self.high)


@dataclass(frozen=True)
class Difference:
    """One reference's difference with the current pass, registered and with its legitimate changes taken out, in
    the reference's binned pixels over the current pass's lines: what `drawn` outlines regions in, and what `common`
    combines two of."""

    current: Current
    registration: Registration
    seen: np.ndarray            # the current lines compared with a lit reference line (`lit`)
    valid: np.ndarray           # the pixels compared
    raw: np.ndarray             # Δ(−ln T) high, unsmoothed (masses)
    dl: np.ndarray              # Δ(−ln T) low, smoothed (Δlow/Δhigh)
    z: np.ndarray               # the smoothed (tolerant) difference over its spread
    spread: np.ndarray
    level: np.ndarray           # the reference's attenuation resampled onto the current pass, high and low
    level_low: np.ndarray
    zones: dict[str, Box]
    levels: int                 # fuel-level bands taken out (`level_changes`)
    found: Components | None = None   # z's components over the thresholds' outline level, when worked out already

    @property
    def binning(self) -> int:
        return self.current.binning


def difference(current: Scan | Current, reference: Reference, declaration: Declaration = Declaration(),
               thresholds: Thresholds = CHOSEN, parts: dict[str, list[float]] | None = None) -> Difference:
    """The current scan's difference with a prepared reference pass (Difference; the module's steps up to the
    outline)."""
    cur = Current.of(current, reference.binning)
    cur_h, cur_l = cur.high, cur.low                 # both scans at the reference's resolution
    reg, maps, ref_h = registered(cur.profiled, reference.profiled)
    ref_l = remap(reference.low, maps)
    ref_h, ref_l = scatter_level(cur_h, ref_h), scatter_level(cur_l, ref_l)
    d = tolerant_difference(cur_h, ref_h)
    raw, dl_raw = cur_h - ref_h, cur_l - ref_l
    seen = lit(cur.profiled, reference.profiled, reg)
    valid = (cur_h < OPAQUE) & (ref_h < OPAQUE) & seen[:, None] & inside(reg, maps[0])
    valid &= detector_gains(d, valid, raw, air=(cur_h < AIR_LEVEL) & (ref_h < AIR_LEVEL))[None, :]
    valid &= ~(cur.dead | dead_there(reference.dead, reg, cur_h.shape[1]))[None, :]
    zones = _scaled(parts if parts is not None else cur.parts, cur.binning)
    if "fuel_tank" in zones:
        level_band(d, _padded(zones["fuel_tank"], 3.0), valid)
    if declaration.loaded and "cargo" in zones:
        _clear(valid, zones["cargo"])
    d[~valid] = 0.0
    raw[~valid] = 0.0
    if "fuel_tank" in zones:
        level_band(raw, _padded(zones["fuel_tank"], 3.0), valid)
        level_band(dl_raw, _padded(zones["fuel_tank"], 3.0), valid)
    sigma = thresholds.smooth_px
    ds = cv2.GaussianBlur(d, (0, 0), sigma)
    edge = cv2.GaussianBlur(np.abs(cv2.Sobel(ref_h, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(ref_h, cv2.CV_32F, 0, 1)),
                            (0, 0), sigma)
    noise = spread(ds, ref_h, edge, valid)
    z = ds / noise
    z[~valid] = 0.0
    levels: list[Level] = []
    found = components(z, min(thresholds.grow_z, thresholds.z))
    if parts is None:                      # from the image alone: bands where a liquid's level moved
        levels = level_changes(z, raw, cur_h, ref_h, valid, thresholds, _pixel(cur)[0] / fe_mu_rho_of(cur) / 1000.0,
                               cur.top, found if thresholds.grow_z <= thresholds.z else None)
        for level in levels:
            for a in (d, raw, dl_raw):
                level.take_out(a, valid)
            level.guard(valid)
        if levels:
            d[~valid] = 0.0
            raw[~valid] = 0.0
            z = cv2.GaussianBlur(d, (0, 0), sigma) / noise
            z[~valid] = 0.0
            found = components(z, min(thresholds.grow_z, thresholds.z))
            zones["fuel_tank"] = max((v.box for v in levels), key=lambda bx: (bx[2] - bx[0]) * (bx[3] - bx[1]))
    return Difference(cur, reg, seen, valid, raw, cv2.GaussianBlur(dl_raw, (0, 0), sigma), z, noise, ref_h, ref_l,
                      zones, len(levels), found)


def _pixel(cur: Current) -> tuple[float, float, float]:
    """A binned pixel's area (cm²) and pitch across and along (mm)."""
    meta, b = cur.scan.meta, cur.binning
    pixel_mm = float(meta.get("pixel_mm", 1.0))
    line_mm = float(meta.get("line_mm", pixel_mm))
    return pixel_mm * line_mm * b * b / 100.0, pixel_mm * b, line_mm * b


def fe_mu_rho_of(cur: Current) -> float:
    """The effective μ/ρ of iron at the current scan's high energy (`fe_mu_rho`)."""
    return fe_mu_rho(float(cur.scan.meta.get("energy_kev", 450.0)))


def compare(current: Scan | Current, reference: Reference, declaration: Declaration = Declaration(),
            thresholds: Thresholds = CHOSEN, parts: dict[str, list[float]] | None = None,
            near: list[Box] | None = None) -> Comparison:
    """Change regions of a current scan against a prepared reference pass (boxes in current pixels). `near`: only
    the regions overlapping one of these boxes (OVERLAP_PX) are described and judged, the others counted as
    `elsewhere` (what a second reference is asked about the first one's regions; the same regions there as
    without `near`)."""
    return drawn(difference(current, reference, declaration, thresholds, parts), declaration, thresholds, near)


def drawn(f: Difference, declaration: Declaration = Declaration(), thresholds: Thresholds = CHOSEN,
          near: list[Box] | None = None) -> Comparison:
    """The change regions of a difference (`compare`, worked out from `difference` at the same thresholds)."""
    cur = f.current
    area_cm2, pixel_mm, line_mm = _pixel(cur)
    scene = Scene(top=cur.top, pixel_mm=pixel_mm, line_mm=line_mm, level=f.level, spread=f.spread,
                  current=cur.high, extent=cur.extent, level_low=f.level_low)
    regions, features, suppressed = _regions(f.raw, f.dl, f.z, thresholds, area_cm2, fe_mu_rho_of(cur), dict(f.zones),
                                             declaration, cur.binning, scene, near,
                                             f.found or components(f.z, min(thresholds.grow_z, thresholds.z)))
    suppressed["level"] = f.levels
    reg = f.registration
    quality = {"residual": round(reg.residual, 4), "scale": round(reg.scale, 4),
               "offset_px": round(reg.offset * cur.binning, 2), "tilt_px": round(reg.tilt * cur.binning, 2),
               "stretch_min": round(_stretch(reg)[0], 3), "stretch_max": round(_stretch(reg)[1], 3),
               "compared_share": round(float(f.valid.mean()), 3)}
    regions, features = _judged(regions, features, quality, thresholds, suppressed)
    return Comparison(tuple(regions), quality, suppressed, tuple(features), not_compared(f.seen, cur.top, cur.binning))


def common(first: Difference, second: Difference) -> Difference:
    """What both references' differences show (at one binning): per pixel compared with both, the smaller of the two
    differences (z) where both have the same sign, nothing where they differ in sign; where only one reference
    compared a pixel, its difference. Every other layer (masses, Δlow, spread, the reference's attenuation) is taken
    from the difference whose z was taken. What only one reference differs in (its own fuel, passengers, scatter)
    falls out pixel by pixel, before the outline: a change joined to one of those against either reference stands
    alone here. The registration, zones and current pass are the first's."""
    if first.binning != second.binning:
        raise HistoryError(f"two differences at binnings {first.binning} and {second.binning} cannot be combined "
                           f"pixel by pixel")
    both = first.valid & second.valid
    take_first = np.where(both, np.abs(first.z) <= np.abs(second.z), first.valid)
    shown = ~both | (np.sign(first.z) == np.sign(second.z))

    hidden = ~shown

    def pick(a: np.ndarray, b: np.ndarray, clear: bool = True) -> np.ndarray:
        out = np.where(take_first, a, b).astype(a.dtype, copy=False)
        if clear:
            out[hidden] = 0
        return out

    return replace(first, seen=first.seen | second.seen, valid=first.valid | second.valid,
                   raw=pick(first.raw, second.raw), dl=pick(first.dl, second.dl), z=pick(first.z, second.z),
                   spread=pick(first.spread, second.spread, False), level=pick(first.level, second.level, False),
                   level_low=pick(first.level_low, second.level_low, False), levels=first.levels + second.levels,
                   found=None)


def not_compared(seen: np.ndarray, top: float, b: int) -> tuple[Box, ...]:
    """The runs of at least UNCOMPARED_LINES current lines compared with nothing (`lit`: the beam was off there in this
    pass or in the reference, with the margins around) as boxes over the vehicle's height, in current (unbinned)
    pixels: where the officer must not read "no change" (a cab the portal kept its beam off in one of the passes)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (~seen).astype(np.int8), [0]]))).reshape(-1, 2)
    return tuple((0.0, float(a * b), float(top * b), float(e * b)) for a, e in edges if (e - a) * b >= UNCOMPARED_LINES)


def compare_references(current: Scan, references: list[Reference], declaration: Declaration = Declaration(),
                       thresholds: Thresholds = CHOSEN, corroboration: Corroboration = CORROBORATED) -> Comparison:
    """Change regions of a current scan against the newest reference (first), corroborated by the second when there
    are two (`corroborate`; the second comparison outlines only what lies over the first's regions, `near`), and
    with `corroboration.common`, what both references show pixel by pixel (`common`) weighed at that level; with
    one, `compare` at `thresholds`. Further references are not used."""
    if not references:
        raise HistoryError("no reference to compare the scan with")
    if len(references) == 1:
        return compare(current, references[0], declaration, thresholds)
    level = corroboration.first.min_judge      # with its own judge, the one-reference weights keep every region
    loose = replace(corroboration.first, min_judge=0.0 if corroboration.judge is not None
                    else None if level is None else min(level, corroboration.second))
    cur = Current.of(current, references[0].binning)
    newest = difference(cur, references[0], declaration, loose)
    first = corroboration_weighed(drawn(newest, declaration, loose), corroboration)
    asked = [r.box for r in first.regions if corroboration.first.keeps(r)]
    if corroboration.alone is not None:    # and whatever the second shows where the newest compared nothing
        asked += list(first.uncompared)
    shared: Comparison | None = None
    if corroboration.common is not None:
        other = difference(cur, references[1], declaration, loose)
        second = drawn(other, declaration, loose, near=asked)
        shared = common_weighed(shown_by_both(cur, (newest, other), references, declaration, loose), corroboration)
    elif asked:
        second = compare(cur, references[1], declaration, loose, near=asked)
    else:                                   # nothing to corroborate
        second = Comparison((), first.registration, uncompared=first.uncompared)
    return _corroborated(first, corroboration_weighed(second, corroboration), second, corroboration, shared)


def shown_by_both(current: Current, differences: tuple[Difference, Difference], references: list[Reference],
                  declaration: Declaration, thresholds: Thresholds) -> Comparison:
    """The change regions of what both references' differences show (`common`, at one binning: `at_one_binning`)."""
    return drawn(common(*at_one_binning(current, differences, references, declaration, thresholds)), declaration,
                 thresholds)


def at_one_binning(current: Current, differences: tuple[Difference, Difference], references: list[Reference],
                   declaration: Declaration, thresholds: Thresholds) -> tuple[Difference, Difference]:
    """Two references' differences at one binning, for `common`: as they are when both references were prepared at
    the same; else (a 40 ft pass on either side of the binning's size) the finer one worked out again at the
    coarser binning (`coarser`)."""
    b = max(f.binning for f in differences)
    first, second = (f if f.binning == b else difference(Current.of(current, b), coarser(r, b), declaration, thresholds)
                     for f, r in zip(differences, references))
    return first, second


def coarser(reference: Reference, b: int) -> Reference:
    """A reference prepared at a finer binning, binned further to `b` (a multiple of its own): the same as
    preparing it at `b`."""
    if b % reference.binning:
        raise HistoryError(f"a reference at binning {reference.binning} cannot be binned to {b}")
    k = b // reference.binning
    dead: np.ndarray | None = None
    if reference.dead is not None:
        dead = np.asarray(reference.dead[:reference.dead.size // k * k].reshape(-1, k).any(axis=1))
    return replace(reference, high=_bin(reference.high, k), low=_bin(reference.low, k), binning=b, dead=dead)


def corroborate(first: Comparison, second: Comparison, c: Corroboration,
                shared: Comparison | None = None) -> Comparison:
    """The regions of `first` that `c.first` keeps and `second` shows too (Corroboration); the others are counted
    as `uncorroborated`. With `c.alone`, also the regions of `second` where `first` compared nothing that `c.alone`
    keeps (`seen_once`, counted as `seen_once`), and what is left uncompared is what neither compared; without it,
    what `first` did not. With `c.common`, also the regions of `shared` (what both references show, `common`) that
    `c.first`'s floor keeps at that weight and that overlap no region reported (counted as `common`). Registration
    and the other counts are the first comparison's. With `c.judge`, the corroboration reads that judge's weights of
    the comparisons' regions (`corroboration_weighed`), `c.alone` the regions' own, `c.common` those of `c.common_judge`
    (`common_weighed`)."""
    return _corroborated(corroboration_weighed(first, c), corroboration_weighed(second, c), second, c,
                         None if shared is None else common_weighed(shared, c))


def _corroborated(first: Comparison, second: Comparison, alone_from: Comparison, c: Corroboration,
                  shared: Comparison | None = None) -> Comparison:
    """corroborate, the comparisons already weighed for it (`corroboration_weighed`); `alone_from`: the second
    comparison with its own weights, which `c.alone` reads."""
    also = replace(c.first, min_judge=c.second)
    seen = [s for s in second.regions if also.keeps(s)]
    asked = [c.first.keeps(r) for r in first.regions]
    kept = [(r, f) for r, f, a in zip(first.regions, first.features or [{}] * len(first.regions), asked)
            if a and any(c.agrees(r, s) for s in seen)]
    judged = asked.count(False)
    suppressed = {**first.suppressed, "judged": first.suppressed.get("judged", 0) + judged,
                  "uncorroborated": len(first.regions) - judged - len(kept)}
    uncompared = first.uncompared
    if c.alone is not None:
        alone = seen_once(first, alone_from, c.alone)
        once = [(s, f) for s, f in zip(alone_from.regions, alone_from.features or [{}] * len(alone_from.regions))
                if s in alone]
        kept += once
        suppressed["seen_once"] = len(once)
        uncompared = tuple(both for u in first.uncompared for v in second.uncompared
                           for both in [(u[0], max(u[1], v[1]), u[2], min(u[3], v[3]))]
                           if both[3] - both[1] >= UNCOMPARED_LINES)
    if c.common is not None and shared is not None:
        features = shared.features or ({},) * len(shared.regions)
        shown = [(shared.regions[i], features[i]) for i in besides(shared, [k for k, _ in kept], c.first)
                 if shared.regions[i].confidence >= c.common]
        kept += shown
        suppressed["common"] = len(shown)
    kept.sort(key=lambda rf: -rf[0].mass_kg_fe)
    return Comparison(tuple(r for r, _ in kept), first.registration, suppressed,
                      tuple(f for _, f in kept) if first.features or second.features else (), uncompared)


def besides(shared: Comparison, reported: list[ChangeRegion], floor: Thresholds) -> list[int]:
    """The regions of what both references show (their indices) that `floor`'s score and mass keep (`large`) and that
    overlap no region `reported`: those `Corroboration.common` reports too when weighed at its level or more."""
    return [i for i, r in enumerate(shared.regions)
            if floor.large(r) and not any(overlap(r.box, k.box) for k in reported)]


def corroboration_weighed(comp: Comparison, c: Corroboration) -> Comparison:
    """A comparison's regions with the weights of the corroboration's own judge (`c.judge`; itself without one)."""
    return _weighed_by(comp, c.judge)


def common_weighed(comp: Comparison, c: Corroboration) -> Comparison:
    """The regions of what both references show with the weights of `c.common_judge` (`c.judge` without one)."""
    return _weighed_by(comp, c.common_judge or c.judge)


def _weighed_by(comp: Comparison, judge: Path | None) -> Comparison:
    if judge is None or not comp.regions:
        return comp
    if len(comp.features) != len(comp.regions):
        raise HistoryError(f"{len(comp.regions)} change regions came with {len(comp.features)} descriptions: the "
                           f"judge {judge.name} weighs a region by its description")
    return reweighed(comp, load_judge(judge))


def reweighed(comp: Comparison, judge: Judge) -> Comparison:
    """A comparison with every region's `confidence` given by `judge` (`weighed`)."""
    return replace(comp, regions=tuple(weighed(judge, comp.regions, comp.features, comp.registration)))


def seen_once(first: Comparison, second: Comparison, alone: Thresholds) -> list[ChangeRegion]:
    """The regions against the second reference that `alone` keeps and that lie (their middle line) where the first
    comparison compared nothing (`first.uncompared`): only the second reference saw that place."""
    return [s for s in second.regions if alone.keeps(s) and lies_uncompared(s.box, first.uncompared)]


def lies_uncompared(box: Box | list[float], uncompared: tuple[Box, ...]) -> bool:
    """Whether a box's middle line lies in one of a comparison's `uncompared` boxes (runs of lines)."""
    mid = (box[1] + box[3]) / 2
    return any(u[1] <= mid < u[3] for u in uncompared)


def overlap(a: Box, b: Box, pad: float = OVERLAP_PX) -> bool:
    """Whether two boxes [column0, line0, column1, line1] overlap once padded by `pad` pixels."""
    return a[0] < b[2] + pad and b[0] - pad < a[2] and a[1] < b[3] + pad and b[1] - pad < a[3]


def scatter_level(cur: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The reference with the current pass's scatter. Behind a dense load (−ln T > SCATTER_DENSE in both
    scans) much of what reaches the detector is scatter, which differs between passes (the vehicle's
    line in the lane, what surrounds the load, the speed over the detector's integration time): an
    additive, slowly varying transmission that shifts −ln T there by tenths while leaving light parts
    alone. The difference of transmissions over dense pixels, median per SCATTER_BLOCK² block, then the
    median of the 3×3 blocks around (a change smaller than half of that does not move it), smoothed and
    spread, is added to the reference's transmission everywhere."""
    n, w = cur.shape
    dense = (cur > SCATTER_DENSE) & (ref > SCATTER_DENSE) & (cur < OPAQUE + 1) & (ref < OPAQUE + 1)
    if dense.sum() < 4 * SCATTER_BLOCK ** 2:
        return ref
    tc, tr = np.exp(-cur), np.exp(-ref)
    k = SCATTER_BLOCK
    nb, wb = -(-n // k), -(-w // k)
    delta = np.full((nb * k, wb * k), np.nan, np.result_type(tc, tr))
    np.subtract(tc, tr, out=delta[:n, :w], where=dense)
    blocks = delta.reshape(nb, k, wb, k).transpose(0, 2, 1, 3).reshape(nb, wb, k * k)
    counts = np.isfinite(blocks).sum(axis=2)
    own = _finite_median(blocks, counts)                       # per block, then the median of the 3×3
    around = np.pad(own, 1, constant_values=np.nan)            # blocks' medians: a change smaller than
    near = np.stack([around[i:i + nb, j:j + wb] for i in range(3) for j in range(3)], axis=2)   # half
    grid = _finite_median(near, np.isfinite(near).sum(axis=2))  # of it does not move it
    support = sum(np.pad(counts, 1)[i:i + nb, j:j + wb] for i in range(3) for j in range(3))
    weight = ((support >= k * k) & np.isfinite(grid)).astype(np.float32)
    grid = np.where(weight > 0, grid, 0.0).astype(np.float32)
    if not weight.any():
        return ref
    num = cv2.GaussianBlur(grid * weight, (0, 0), 1.5)
    den = cv2.GaussianBlur(weight, (0, 0), 1.5)
    field = np.where(den > 0.05, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)
    up = cv2.resize(field, (wb * k, nb * k), interpolation=cv2.INTER_LINEAR)[:n, :w]
    t = np.maximum(tr + up, np.exp(-OPAQUE - 3))
    out = np.log(t, out=t).astype(np.float32)
    return np.negative(out, out=out)


def _finite_median(a: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median over the last axis of the finite values (NaN where there are none); np.nanmedian, fast. Only the
    rows that hold a finite value are sorted (most of scatter_level's blocks hold none)."""
    out = np.full(counts.shape, np.nan, a.dtype)
    held = counts > 0
    c = counts[held][:, None]
    s = np.sort(np.where(np.isfinite(a[held]), a[held], np.inf), axis=-1)
    out[held] = (np.take_along_axis(s, (c - 1) // 2, -1)[:, 0] + np.take_along_axis(s, c // 2, -1)[:, 0]) / 2
    return out


def weighed(judge: Judge, regions: list[ChangeRegion] | tuple[ChangeRegion, ...],
            features: list[dict[str, float]] | tuple[dict[str, float], ...],
            registration: dict[str, float]) -> list[ChangeRegion]:
    """The regions with the judge's probability as their `confidence` (3 decimals, as the record keeps it)."""
    p = judge.probability(np.array([vector(r, f, registration) for r, f in zip(regions, features)]))
    return [replace(r, confidence=round(float(q), 3)) for r, q in zip(regions, p)]


def _judged(regions: list[ChangeRegion], features: list[dict[str, float]], quality: dict[str, float],
            t: Thresholds, suppressed: dict[str, int]) -> tuple[list[ChangeRegion], list[dict[str, float]]]:
    """The regions with the judge's probability; those under t.min_judge are counted as `judged`, not kept.
    When the thresholds ask for the judge and it cannot be loaded the comparison fails (HistoryError, with
    why): never a silent pass. Hand thresholds alone (min_judge None) need no judge (training it, for one)."""
    if not regions:
        return regions, features
    try:
        judge = load_judge()
    except JudgeError:               # a HistoryError: the record says `failed` and why
        if t.min_judge is not None:
            raise
        return regions, features
    scored = list(zip(weighed(judge, regions, features, quality), features))
    kept = [(r, f) for r, f in scored if t.keeps(r)]
    suppressed["judged"] = len(scored) - len(kept)
    return [r for r, _ in kept], [f for _, f in kept]


@dataclass(frozen=True)
class Scene:
    """What the regions' descriptions need of the pair: the vehicle's top (column), the pixel pitch (mm,
    binned), the reference's attenuation (both channels) and the difference's spread per pixel."""

    top: float
    pixel_mm: float
    line_mm: float
    level: np.ndarray
    spread: np.ndarray
    level_low: np.ndarray                # the reference's low-channel attenuation
    current: np.ndarray | None = None    # the current pass's attenuation
    extent: tuple[float, float] = (0.0, 1.0)   # the vehicle's first and last line


def _top(a: np.ndarray) -> float:
    """The column of the vehicle's top (`_top_column`, at least 1); the detector's length when nothing is
    there."""
    rows = _body_lines(a)
    return float(a.shape[1]) if rows.size < 8 else max(_top_column(a, rows), 1.0)


def _top_column(a: np.ndarray, rows: np.ndarray) -> float:
    """The 90th percentile, over the vehicle's lines (`_body_lines`; at most about 200 of them, evenly
    taken), of the last column holding anything (−ln T > 0.15)."""
    picked = rows[:: max(1, rows.size // 200)]
    last = a.shape[1] - 1 - np.argmax(a[picked, ::-1] > 0.15, axis=1)
    return float(np.percentile(last, 90))


def describe(sub: np.ndarray, window: tuple[slice, slice], raw: np.ndarray, dl: np.ndarray, signed: np.ndarray,
             scene: Scene, box: Box) -> dict[str, float]:
    """A candidate region's description beyond mass and score, for the region judge: its size in mm
    and where it lies in the vehicle's height and length, how uniform the change is inside it and how
    sharp its outline (a plate or a welded box has sharp edges and an even inside; a person is rounded),
    how far the region's low channel follows the high one pixel by pixel, how much the beam had already
    lost there and the low/high ratio of what the reference has there (`background_ratio`: the judge reads
    the region's Δlow/Δhigh over it, the same on a scanner whose low channel has another gain), the noise,
    how far its edges are from a liquid's level moving (`band_step`) and the vehicle's size. Nothing in it
    comes from a generator's layout of the vehicle: the judge sees a real scan's regions as it saw its
    training regions."""
    d = raw[window]
    inner = d[sub]                   # a connected component: never empty
    mean = float(np.mean(inner))
    noise = float(np.median(scene.spread[window][sub]))
    ring = cv2.dilate(sub.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~sub
    outside = float(np.mean(np.abs(d[ring]))) if ring.any() else 0.0
    gy, gx = np.gradient(d)
    grad = np.hypot(gx, gy)
    edge_band = cv2.dilate(sub.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & \
        ~cv2.erode(sub.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    low = dl[window][sub]
    corr = 0.0                       # Pearson's r of the two channels' change over the region
    if inner.size > 3:
        a, c = inner.astype(np.float64) - inner.mean(), low.astype(np.float64) - low.mean()
        norm = float(np.sqrt((a * a).sum() * (c * c).sum()))
        corr = float((a * c).sum()) / norm if norm > 1e-12 else 0.0
    c0, l0, c1, l1 = box
    return {"height_mm": (c1 - c0) * scene.pixel_mm, "length_mm": (l1 - l0) * scene.line_mm,
            "centre_of_height": ((c0 + c1) / 2) / scene.top, "bottom_of_height": c0 / scene.top,
            "uniformity": float(np.std(inner) / (abs(mean) + 1e-6)),
            "contrast": abs(mean) / (outside + 1e-6),
            "sharpness": float(np.mean(grad[edge_band])) / (abs(mean) + 1e-6) if edge_band.any() else 0.0,
            "channels_corr": corr, "level": float(np.mean(scene.level[window][sub])), "noise": noise,
            "fill": float(sub.mean()), **_along(box, scene), **_level_edges(box, mean, scene),
            "peak_over_mean": float(np.max(np.abs(signed[window][sub]))) / (abs(mean) / (noise + 1e-6) + 1e-6),
            "background_ratio": _ratio(scene.level[window], scene.level_low[window], sub)}


def _ratio(high: np.ndarray, low: np.ndarray, where: np.ndarray) -> float:
    """Σ low / Σ high attenuation over the pixels `where` that are not air (high attenuation over AIR_LEVEL; 1.0
    when none)."""
    m = where & (high > AIR_LEVEL)
    total = float(high[m].sum())
    return float(low[m].sum()) / total if total > 1e-6 else 1.0


def _level_edges(box: Box, mean: float, scene: Scene) -> dict[str, float]:
    """How far a region fails to be a liquid's level moving at its lower and its upper edge (band_step)."""
    if scene.current is None:
        return {"level_lower": 5.0, "level_upper": 5.0}
    c0, l0, c1, l1 = (int(round(v)) for v in box)
    lower, upper = band_step(scene.current, scene.level, (c0, l0, c1, l1), mean)
    return {"level_lower": lower, "level_upper": upper}


def _along(box: Box, scene: Scene) -> dict[str, float]:
    """Where a box lies along the vehicle (0 at its front, 1 at its rear) and the vehicle's length and
    height (mm), from its silhouette: the same on every scan, whoever made it."""
    front, rear = scene.extent
    return {"along": ((box[1] + box[3]) / 2 - front) / max(rear - front, 1.0),
            "vehicle_length_mm": (rear - front) * scene.line_mm, "vehicle_height_mm": scene.top * scene.pixel_mm}


def _stretch(reg: Registration) -> tuple[float, float]:
    """Smallest and largest local speed ratio of the along-scan mapping (over 32-line windows)."""
    if len(reg.lines) < 64:
        return 1.0, 1.0
    rate = (reg.lines[32:] - reg.lines[:-32]) / 32.0
    return float(np.percentile(rate, 2)), float(np.percentile(rate, 98))


def _scaled(parts: dict[str, list[float]], b: int) -> dict[str, Box]:
    return {k: (v[0] / b, v[1] / b, v[2] / b, v[3] / b) for k, v in parts.items()}


def _clear(mask: np.ndarray, box: Box) -> None:
    c0, l0, c1, l1 = (int(round(v)) for v in box)
    mask[max(l0, 0):max(l1, 0), max(c0, 0):max(c1, 0)] = False


def _regions(raw: np.ndarray, dl: np.ndarray, z: np.ndarray, t: Thresholds, area_cm2: float, mu: float, zones: dict[str, Box],
             declaration: Declaration, b: int, scene: Scene, asked: list[Box] | None = None,
             found: Components | None = None) -> tuple[list[ChangeRegion], list[dict[str, float]], dict[str, int]]:
    """Change regions: z's components over min(t.grow_z, t.z) (`found`, when the caller has them) that hold a pixel
    over t.z, described; with `asked`, only those overlapping one of its boxes."""
    out: list[tuple[ChangeRegion, dict[str, float]]] = []
    suppressed = {"small": 0, "occupant": 0} | ({"elsewhere": 0} if asked is not None else {})
    kernel = np.ones((5, 5), np.uint8)
    for (kind, signed), (n, labels, stats) in zip((("added", z), ("removed", -z)),
                                                   found or components(z, min(t.grow_z, t.z))):
        # each component's peak, looked for only among the pixels over t.z: only components that hold one are
        # outlined, and most of those are noise under min_score. The background's stays 0 (components `found` at
        # another level than t.z can leave a pixel over it unlabelled: counted as small, as before)
        strong = signed > t.z
        peaks = np.zeros(n)
        np.maximum.at(peaks, labels[strong], signed[strong])
        peaks[0] = 0.0
        for k in np.unique(labels[strong]):
            if round(float(peaks[k]), 2) < t.min_score:
                suppressed["small"] += 1
                continue
            x, y, w, h, _ = stats[k]
            if asked is not None and not any(overlap((x * b, y * b, (x + w) * b, (y + h) * b), a) for a in asked):
                suppressed["elsewhere"] += 1
                continue
            sub = labels[max(y - 3, 0):y + h + 3, max(x - 3, 0):x + w + 3] == k
            near = cv2.dilate(sub.astype(np.uint8), kernel).astype(bool)
            window = (slice(max(y - 3, 0), y + h + 3), slice(max(x - 3, 0), x + w + 3))
            high = float(raw[window][near].sum())    # the plain difference: the tolerant one shaves edges
            kg = high / mu * area_cm2 / 1000.0
            peak = float(signed[y:y + h, x:x + w][labels[y:y + h, x:x + w] == k].max())
            box = (float(x), float(y), float(x + w), float(y + h))
            place = locate(box, zones)
            cm2 = float(sub.sum()) * area_cm2
            ratio = float(dl[window][near].sum()) / high if abs(high) > 1e-6 else 0.0
            pad = (slice(max(y - NET_PAD_PX, 0), y + h + NET_PAD_PX), slice(max(x - NET_PAD_PX, 0), x + w + NET_PAD_PX))
            net = max(0.0, float(raw[pad].sum()) * (1.0 if kind == "added" else -1.0)) / mu * area_cm2 / 1000.0
            person = declaration.occupants and place not in NO_SEATS and occupant(box, zones.get("cab"), cm2, abs(kg))
            region = ChangeRegion((float(x * b), float(y * b), float((x + w) * b), float((y + h) * b)), kind,
                                  round(abs(kg), 2), round(cm2, 1), place, round(peak, 2), round(ratio, 3),
                                  round(net, 2), person)
            if not t.large(region):
                suppressed["small"] += 1
            elif t.min_judge is None and not t.keeps(region):
                suppressed["occupant"] += 1     # with the judge, it weighs the person-like shape itself
            else:
                out.append((region, describe(sub, window, raw, dl, signed, scene, box)))
    out.sort(key=lambda rf: -rf[0].mass_kg_fe)
    return [r for r, _ in out], [f for _, f in out], suppressed


def occupant(box: Box, cab: Box | None, cm2: float, kg: float) -> bool:
    """A change the size and softness of a seated person (≥ 600 cm², ≤ 20 g/cm² Fe-eq, ≤ 250 kg) lying
    mostly in the cab: people come and go between passes. A steel plate is far denser, and the
    cab's doors and floor overlap it in a side view, so only soft, large changes are let go."""
    if cab is None or cm2 < 600 or kg > 250 or kg * 1000 / cm2 > 20:
        return False
    ov = max(0.0, min(box[2], cab[2]) - max(box[0], cab[0])) * max(0.0, min(box[3], cab[3]) - max(box[1], cab[1]))
    return ov >= 0.6 * max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)


def locate(box: Box, zones: dict[str, Box]) -> str:
    """The part of the vehicle that holds most of a box; the cab (around doors, floor and roof in a side
    view) only when no other part holds a tenth of it; else body."""
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
    shares = {name: max(0.0, min(box[2], zb[2]) - max(box[0], zb[0])) * max(0.0, min(box[3], zb[3]) - max(box[1], zb[1]))
              / area for name, zb in zones.items()}
    named = {k: v for k, v in shares.items() if k != "cab" and v >= 0.1}
    if named:
        return max(named, key=lambda k: named[k])
    return "cab" if shares.get("cab", 0.0) > 0 else "body"


def _body_lines(a: np.ndarray) -> np.ndarray:
    """The lit lines that hold something of the vehicle (−ln T > 0.15)."""
    return np.flatnonzero((a > 0.15).any(axis=1) & lit_lines(a))


def _extent(a: np.ndarray) -> tuple[float, float]:
    """The vehicle's first line and the line after its last (lit lines only); the scan's when it is empty."""
    lines = _body_lines(a)
    return (float(lines[0]), float(lines[-1] + 1)) if lines.size >= 8 else (0.0, float(len(a)))


def silhouette_parts(a: np.ndarray, b: int = 1) -> dict[str, list[float]]:
    """Parts of a real scan from its silhouette (no generator layout): the roof is the top tenth of the
    vehicle's height, the floor the band from 15 to 30 % of it, the cab the first quarter of its length,
    the cargo what lies between floor and roof behind the cab. Boxes in (unbinned) scan pixels."""
    lines = _body_lines(a)
    if lines.size < 8:
        return {}
    top = _top_column(a, lines)
    l0, l1 = float(lines[0]), float(lines[-1] + 1)
    cab = l0 + 0.25 * (l1 - l0)
    parts = {"roof": [0.9 * top, l0, top, l1], "floor": [0.15 * top, l0, 0.3 * top, l1],
             "cab": [0.0, l0, top, cab], "cargo": [0.3 * top, cab, 0.9 * top, l1]}
    return {k: [v * b for v in box] for k, box in parts.items()}
