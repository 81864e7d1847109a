"""Registration (models.history.register): known stretches, shifts, scales and tilts are recovered."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import HistoryError
from models.history.register import dtw_path, lit_lines, log_attenuation, register, warp
from models.training.portal import PortalSpec
from models.training.portal.generator import speed_profile, stretch
from models.training.portal.passes import Pass, Warp, portal_pass


def known_pass(vehicle: str, seed: int, offset: float, scale: float, tilt: float) -> tuple[np.ndarray, np.ndarray,
                                                                                             np.ndarray]:
    """A reference scan, the same scan driven again (a known speed profile, 6 % longer) and moved by a
    known vertical warp, and the true reference line of every line of the new scan."""
    scan = portal_pass(seed, Pass(0), PortalSpec(vehicle=vehicle, suspect=False))
    ref = log_attenuation(scan.high)
    n, m = len(ref), int(len(ref) * 1.06)
    pos = speed_profile(np.random.default_rng(seed), m) * (n - 1) / (m - 1)
    cur = Warp(offset, scale, tilt).apply(stretch(ref, pos))
    return ref, cur, pos


@pytest.mark.parametrize(("vehicle", "seed", "offset", "scale", "tilt"),
                         [("van", 1, 2.7, 1.012, -2.0), ("saloon", 2, -3.5, 0.99, 1.5),
                          ("tractor_40ft", 3, 1.2, 1.015, 2.5)])
def test_known_stretch_and_shift_are_recovered(vehicle: str, seed: int, offset: float, scale: float,
                                               tilt: float) -> None:
    ref, cur, pos = known_pass(vehicle, seed, offset, scale, tilt)
    reg = register(cur, ref)
    # lines that fix a position along the scan: lit (not the cab the beam avoided) and not uniform along it
    fixed = lit_lines(cur) & (np.abs(np.diff(cur, axis=0, append=cur[-1:])).mean(axis=1) >= 0.03)
    err = np.abs(reg.lines - pos)[fixed]
    assert fixed.mean() > 0.1 and np.median(err) <= 1.0 and np.percentile(err, 95) <= 2.5, (np.median(err), np.percentile(err, 95))
    # the new scan's column c shows reference column (c − shift) / scale
    assert reg.scale == pytest.approx(1 / scale, abs=0.004)
    assert reg.offset == pytest.approx(-offset / scale, abs=0.6)
    assert reg.tilt == pytest.approx(-tilt / scale, abs=0.8)
    assert reg.residual < 0.35


def test_registered_reference_matches_the_scan_where_unregistered_does_not() -> None:
    ref, cur, _ = known_pass("van", 4, 3.0, 1.0, 0.0)
    reg = register(cur, ref)
    aligned = np.abs(cur - warp(ref, reg, cur.shape))[20:-20].mean()
    plain = np.abs(cur - np.resize(ref, cur.shape))[20:-20].mean()
    assert aligned < 0.25 * plain


def test_dtw_follows_a_known_warp() -> None:
    t = np.linspace(0, 1, 300)
    a = np.sin(12 * t) + 0.5 * np.sin(31 * t)
    warped_t = t ** 1.3                                   # b[i] = a at warped_t[i]
    b = np.interp(warped_t, t, a)
    ii, jj = dtw_path(np.abs(b[:, None] - a[None, :]))
    assert ii[0] == jj[0] == 0 and ii[-1] == jj[-1] == 299
    assert np.all(np.diff(ii) >= 0) and np.all(np.diff(jj) >= 0)
    assert np.median(np.abs(jj - warped_t[ii] * 299)) <= 1.5


def test_scans_of_other_detectors_or_too_short_are_refused_in_one_sentence() -> None:
    with pytest.raises(HistoryError, match=r"shape \(100, 64\).*\(100, 80\).*detector columns differ"):
        register(np.zeros((100, 64), np.float32), np.zeros((100, 80), np.float32))
    with pytest.raises(HistoryError, match="8 and 100 lines are too short"):
        register(np.zeros((8, 64), np.float32), np.zeros((100, 64), np.float32))
