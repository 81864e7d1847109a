"""Rates with their uncertainty (models.stats): Wilson intervals and exact Poisson upper bounds."""

from __future__ import annotations

import pytest

from models.stats import poisson_upper, wilson


@pytest.mark.parametrize(("k", "upper"), [(0, 3.689), (1, 5.572), (5, 11.668), (10, 18.390), (30, 42.827)])
def test_the_poisson_upper_bound_matches_garwood_s_table(k: int, upper: float) -> None:
    assert poisson_upper(k) == pytest.approx(upper, abs=0.002)


def test_the_poisson_upper_bound_holds_for_large_counts_and_grows_with_confidence() -> None:
    assert poisson_upper(1000) == pytest.approx(1000 + 1.96 * 1000 ** 0.5, rel=0.01)
    assert poisson_upper(12, 0.99) > poisson_upper(12) > 12


def test_the_wilson_interval_holds_the_rate() -> None:
    lo, hi = wilson(42, 55)
    assert lo < 42 / 55 < hi and wilson(0, 0) == (0.0, 1.0)
