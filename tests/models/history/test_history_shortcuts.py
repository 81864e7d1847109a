"""The comparison's shortcuts (what keeps a van with two references under its latency goal) work out what the plain
way would: dynamic time warping into kept buffers, labels as uint16, medians over only the rows that hold a value,
bins by counting, what the registration reads of a scan alone worked out once, the reference warped once."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.history.compare import Current, _bins, _finite_median, _labelled, prepare
from models.history.register import Profiled, dtw_path, register, registered, warp
from models.training.portal import PortalSpec
from models.training.portal.passes import Pass, portal_pass


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
    steps = np.stack([np.diff(ii), np.diff(jj)], axis=1)
    assert (ii[0], jj[0], ii[-1], jj[-1]) == (0, 0, cost.shape[0] - 1, cost.shape[1] - 1)
    assert {tuple(s) for s in steps} <= {(1, 0), (0, 1), (1, 1)}
    assert float(cost[ii, jj].astype(np.float64).sum()) == pytest.approx(plain_dtw_cost(cost), rel=1e-9)


def test_labels_are_uint16_where_they_fit_and_the_same_components_either_way() -> None:
    rng = np.random.default_rng(1)
    sparse = (rng.random((300, 200)) > 0.9).astype(np.uint8)
    dense = np.zeros((600, 400), np.uint8)
    dense[::2, ::2] = 1                      # 60,000 components of one pixel each …
    dense[1::2, :100] = 1                    # … and over 65,535 set pixels: no longer uint16
    for mask, dtype in ((sparse, np.uint16), (dense, np.int32)):
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


def test_registered_warps_the_reference_once_as_warp_does_and_profiles_are_kept() -> None:
    spec = PortalSpec(vehicle="van", suspect=False)
    reference = prepare(portal_pass(5, Pass(0), spec))
    assert "coarse" in vars(reference.profiled)          # worked out when prepared, before the scan ends
    current = Current.of(portal_pass(5, Pass(1), spec), reference.binning)
    assert current.profiled is current.profiled          # one for every reference it is compared with
    reg, warped = registered(current.profiled, reference.profiled)
    assert np.array_equal(warped, warp(reference.high, reg, current.high.shape))
    plain = register(current.high, reference.high)       # plain arrays register alike
    assert np.array_equal(plain.lines, reg.lines)
    assert (plain.scale, plain.offset, plain.tilt, plain.residual) == (reg.scale, reg.offset, reg.tilt, reg.residual)
    assert isinstance(reference.profiled, Profiled) and "fine" in vars(current.profiled)
