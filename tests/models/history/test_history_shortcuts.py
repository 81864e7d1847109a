"""The comparison's shortcuts (what keeps a van with two references under its latency goal) work out what the plain
way would, or what the version before them (5c31d7f) worked out: dynamic time warping into kept buffers, labels as
uint16, medians over only the rows that hold a value, bins by counting, the noise spread looked up through cv2.LUT,
peaks only over the pixels over the level, what the registration reads of a scan alone worked out once, the
reference warped once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.history.compare import (EDGE_QUANTILES, Current, Declaration, Scene, Thresholds, _bins, _finite_median,
                                    _labelled, _regions, components, prepare, spread,
                                    tolerant_difference)
from models.history.register import (COARSE_BINS, COARSE_LINES, FINE_BINS, Profiled, _l1, _trace, dtw_path,
                                     lit_lines, profiles, register, registered, warp)
from models.training.portal import PortalSpec
from models.training.portal.passes import Pass, portal_pass


def row_by_row_dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The version before's dtw_path (each row's arrays allocated anew; the path traced back as dtw_path traces it),
    which the kept buffers must follow to the same path, ties included."""
    n, m = cost.shape
    d = np.empty((n, m), np.float64)
    back = np.empty((n, m), np.int32)
    came = np.zeros((n, m), np.int8)
    d[0] = np.cumsum(cost[0])
    back[0] = 0
    cols = np.arange(m)
    for i in range(1, n):
        prev = d[i - 1]
        diag = np.concatenate([[np.inf], prev[:-1]])
        came[i] = prev <= diag
        e = cost[i] + np.minimum(diag, prev)
        s = np.cumsum(cost[i])
        key = e - s
        best = np.minimum.accumulate(key)
        d[i] = s + best
        back[i] = np.maximum.accumulate(np.where(key <= best, cols, -1))
    return _trace(back, came, n, m)


def plain_dtw_cost(cost: np.ndarray) -> float:
    """The least cost of a monotone path from (0, 0) to (n−1, m−1) by the textbook recurrence."""
    n, m = cost.shape
    d = np.full((n + 1, m + 1), np.inf)
    d[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = cost[i - 1, j - 1] + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
    return float(d[n, m])


@pytest.mark.parametrize("seed", range(6))
def test_dtw_path_is_a_least_cost_monotone_path(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.random((int(rng.integers(5, 40)), int(rng.integers(5, 40)))).astype(np.float32)
    if seed % 2:
        cost[2:6] = 0.0                      # runs of equal cost: ties between paths
    ii, jj = dtw_path(cost)
    before = row_by_row_dtw(cost)
    assert np.array_equal(ii, before[0]) and np.array_equal(jj, before[1])
    steps = np.stack([np.diff(ii), np.diff(jj)], axis=1)
    assert (ii[0], jj[0], ii[-1], jj[-1]) == (0, 0, cost.shape[0] - 1, cost.shape[1] - 1)
    assert {tuple(s) for s in steps} <= {(1, 0), (0, 1), (1, 1)}
    assert float(cost[ii, jj].astype(np.float64).sum()) == pytest.approx(plain_dtw_cost(cost), rel=1e-9)


def test_labels_are_uint16_where_they_fit_and_the_same_components_either_way() -> None:
    rng = np.random.default_rng(1)
    sparse = (rng.random((300, 200)) > 0.9).astype(np.uint8)
    dense = np.zeros((600, 400), np.uint8)
    dense[::2, ::2] = 1                      # 60,000 set pixels, most of them components of their own,
    dense[1::2, :100] = 1                    # and 30,000 more: over 65,535 set pixels, no longer uint16
    edge = np.zeros((300, 300), np.uint8)
    edge.ravel()[:65_534] = 1                # the most set pixels uint16 labels still number …
    over = edge.copy()
    over.ravel()[65_534] = 1                 # … and one more
    for mask, dtype in ((sparse, np.uint16), (dense, np.int32), (edge, np.uint16), (over, np.int32)):
        n, labels, stats = _labelled(mask)
        m, plain, plain_stats = cv2.connectedComponentsWithStats(mask, connectivity=8)[:3]
        assert labels.dtype == dtype and n == m
        assert np.array_equal(labels, plain) and np.array_equal(stats, plain_stats)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_median_is_nanmedian_with_empty_rows(dtype: type) -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(40, 9, 33)).astype(dtype)
    a[rng.random(a.shape) < 0.6] = np.nan
    a[:5] = np.nan                            # rows with no finite value: NaN, and not sorted
    a[7, 3, :] = np.inf                      # infinite values are not counted
    finite = np.where(np.isfinite(a), a, np.nan)
    out = _finite_median(a, np.isfinite(a).sum(axis=-1))
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(finite, axis=-1)
    assert out.dtype == dtype
    assert np.array_equal(out, expected.astype(dtype), equal_nan=True)


def test_bins_count_the_edges_below_as_a_binary_search_does() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=5000).astype(np.float32)
    edges = np.quantile(values.astype(np.float64), np.linspace(0, 1, 9)[1:-1])
    values[:7] = edges.astype(np.float32)     # values on (the float32 rounding of) an edge
    values[7] = np.nan
    expected = np.searchsorted(edges, values.astype(np.float64), side="left")
    expected[7] = len(edges)                 # NaN above all
    got = _bins(values, edges)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


def test_registered_warps_the_reference_once_as_warp_does_and_registers_as_the_version_before() -> None:
    spec = PortalSpec(vehicle="van", suspect=False)
    reference = prepare(portal_pass(5, Pass(0), spec))
    assert {"coarse", "lit"} <= set(vars(reference.profiled))   # worked out when prepared, before the scan ends
    current = Current.of(portal_pass(5, Pass(1), spec), reference.binning)
    assert current.profiled is current.profiled          # one for every reference it is compared with
    reg, maps, warped = registered(current.profiled, reference.profiled)
    assert all(np.array_equal(m, c) for m, c in zip(maps, reg.columns(current.high.shape)))
    assert np.array_equal(warped, warp(reference.high, reg, current.high.shape))
    high = current.high.copy()
    plain = register(high, reference.high.copy())        # plain arrays register alike …
    assert high.flags.writeable                          # … and stay the caller's to write
    assert np.array_equal(plain.lines, reg.lines)
    assert (plain.scale, plain.offset, plain.tilt, plain.residual) == (reg.scale, reg.offset, reg.tilt, reg.residual)
    assert isinstance(reference.profiled, Profiled) and "fine" in vars(current.profiled)
    # what the version before the shortcuts (5c31d7f) registered this pass with: the same to the bit on the machine
    # it was measured on; numpy's sums and means take other SIMD paths on another processor (an AMD EPYC without
    # AVX-512 gives the lines' sum 319716.77729452925, the residual 0.1034885496), so to six digits
    assert float(reg.lines.sum()) == pytest.approx(319716.7772197748, rel=1e-6)
    assert [float(x) for x in reg.lines[::150]] == pytest.approx([0.33467131137847894, 123.55666437816467,
                                                                  255.5621919633508, 387.7717866439839,
                                                                  534.7198404952849, 703.9150788423411], rel=1e-6)
    assert (reg.scale, reg.offset, reg.tilt, reg.residual) == pytest.approx(
        (0.997, 2.791012809062429, 3.0839017896611534, 0.10348855704069138), rel=1e-6)


def plain_spread(d: np.ndarray, level: np.ndarray, edge: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """compare.spread written the plain way: searchsorted bins, np.median, the table indexed by numpy."""
    idx = np.flatnonzero(valid.ravel())
    idx = idx[:: max(1, idx.size // 150_000)]
    lv, ev, dv = level.ravel()[idx], edge.ravel()[idx], d.ravel()[idx]
    qa, qe = np.quantile(lv, np.linspace(0, 1, 9)[1:-1]), np.quantile(ev, EDGE_QUANTILES)
    cells = np.searchsorted(qa, lv) * 8 + np.searchsorted(qe, ev)
    table = np.full(64, np.nan)
    for c in range(64):
        vals = dv[cells == c]
        if vals.size >= 50:
            table[c] = 1.4826 * np.median(np.abs(vals - np.median(vals))) + 1e-4
    table[np.isnan(table)] = np.nanmax(table)
    return table.astype(np.float32)[np.searchsorted(qa, level) * 8 + np.searchsorted(qe, edge)]


def test_the_noise_spread_is_the_plain_ways() -> None:
    rng = np.random.default_rng(4)
    level = rng.gamma(2.0, 1.0, (240, 180)).astype(np.float32)
    edge = rng.gamma(1.5, 0.3, level.shape).astype(np.float32)
    d = (rng.normal(size=level.shape) * (0.02 + 0.05 * level)).astype(np.float32)
    valid = rng.random(level.shape) < 0.8
    out = spread(d, level, edge, valid)
    assert out.dtype == np.float32 and out.shape == level.shape
    assert np.array_equal(out, plain_spread(d, level, edge, valid))


@pytest.mark.parametrize("level", [None, 6.0])
def test_peaks_are_found_among_the_pixels_over_the_level(level: float | None) -> None:
    z = np.zeros((60, 60), np.float32)
    z[10:20, 10:20] = 5.5
    z[15, 15] = 8.0                          # a change whose peak is over min_score …
    z[40:45, 40:45] = 4.5                    # … a component over t.z whose peak is not …
    z[50:55, 5:15] = 3.5                     # … and one under t.z: grown to, never outlined
    raw = np.where(z > 0, 0.1, 0.0).astype(np.float32)
    scene = Scene(top=60.0, pixel_mm=5.0, line_mm=5.0, level=np.ones_like(z), spread=np.full_like(z, 0.02),
                  level_low=np.ones_like(z))
    t = Thresholds(z=4.0, grow_z=3.3, min_score=5.0, min_kg=0.0)
    # components found at another level than t.z (6: over it) leave pixels over t.z unlabelled, the background's
    found = None if level is None else components(z, level)
    regions, _, suppressed = _regions(raw, raw, z, t, 1.0, 0.1, {"floor": (0.0, 0.0, 60.0, 60.0)},
                                      Declaration(occupants=False), 1, scene, found=found)
    assert [(r.kind, r.score) for r in regions] == [("added", 8.0)]
    assert suppressed["small"] == 1


def test_what_the_registration_reads_of_a_scan_alone_is_the_plain_ways() -> None:
    rng = np.random.default_rng(5)
    image = rng.gamma(2.0, 0.8, (530, 120)).astype(np.float32)
    p = Profiled(image)
    assert np.array_equal(p.coarse, profiles(image, COARSE_LINES, COARSE_BINS))
    assert np.array_equal(p.fine, profiles(image, len(image), FINE_BINS))
    assert np.array_equal(p.lit, lit_lines(image))
    with pytest.raises(ValueError):
        image[0, 0] = 1.0                    # read-only: what was worked out of it cannot go stale
    a, b = p.coarse[:57], p.coarse[100:181]
    assert np.array_equal(_l1(a, b), np.abs(a[:, None, :] - b[None, :, :]).mean(axis=2))


def plain_tolerant_difference(cur: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The tolerant difference over the whole scan with np.roll and np.where (the version before's, unblocked)."""
    def nearest(c: np.ndarray, other: np.ndarray) -> np.ndarray:
        d = c - other
        least = np.abs(d)
        for shifted in (np.roll(other, -1, 0), np.roll(other, 1, 0), np.roll(other, -1, 1), np.roll(other, 1, 1)):
            size = np.abs(c - shifted)
            d = np.where(size < least, c - shifted, d)
            least = np.minimum(size, least)
        return d

    forward, backward = nearest(cur, ref), -nearest(ref, cur)
    return np.where(np.abs(backward) > np.abs(forward), backward, forward)


@pytest.mark.parametrize("rows", [1, 5, 32, 500])
def test_the_tolerant_difference_into_kept_buffers_is_the_plain_ways(rows: int) -> None:
    rng = np.random.default_rng(7)
    cur = rng.normal(size=(97, 61)).astype(np.float32)
    ref = (cur + rng.normal(scale=0.1, size=cur.shape)).astype(np.float32)
    ref[::7] = np.round(ref[::7], 1)                  # ties between shifts: the first of equals is taken
    cur[::5] = np.round(cur[::5], 1)
    cur[3, 4], ref[8, 9], ref[0, 60] = np.nan, np.nan, np.inf
    out = tolerant_difference(cur, ref, rows)
    assert out.dtype == np.float32
    assert np.array_equal(out, plain_tolerant_difference(cur, ref), equal_nan=True)
    assert np.array_equal(out.view(np.uint32), plain_tolerant_difference(cur, ref).view(np.uint32))
