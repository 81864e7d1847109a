"""Rates with their uncertainty, as every evaluation and benchmark of this project reports them."""

from __future__ import annotations

import math


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (95 % for z = 1.96) of a rate of k successes in n trials; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def poisson_upper(k: int, confidence: float = 0.95) -> float:
    """Exact (Garwood) upper bound of a Poisson mean from an observed count k: the mean under which
    seeing k or fewer has probability (1 − confidence) / 2 (3.69 for k = 0, 20.96 for k = 12 at 95 %)."""
    tail = (1 - confidence) / 2

    def at_most_k(mean: float) -> float:           # summed in logs: no underflow for large counts
        logs = [i * math.log(mean) - mean - math.lgamma(i + 1) for i in range(k + 1)]
        top = max(logs)
        return math.exp(top) * sum(math.exp(v - top) for v in logs)

    lo, hi = float(k), float(k) + 10.0 * math.sqrt(k + 1) + 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at_most_k(mid) > tail else (lo, mid)
    return (lo + hi) / 2
