"""Intervals and distribution shape from counts and sums (what the rollups store)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import binomtest
from scipy.stats import t as student_t

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int


def share(k: int, n: int) -> Estimate | None:
    """A proportion with its Wilson score interval (honest for small n and shares near 0)."""
    if n == 0:
        return None
    interval = binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Estimate(k / n, float(interval.low), float(interval.high), n)


def mean(n: int, total: float, total2: float, bounds: tuple[float, float] = (0.0, 1.0)) -> Estimate | None:
    """A mean with its Student t interval, from n, sum and sum of squares, kept within the scores' bounds (a t
    interval of a few scores can reach past them; one score says nothing of the spread: the whole range)."""
    if n == 0:
        return None
    m = total / n
    low, high = bounds
    if n == 1:
        return Estimate(m, low, high, 1)
    variance = max(total2 - n * m * m, 0.0) / (n - 1)
    half = float(student_t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * math.sqrt(variance / n)
    return Estimate(m, max(m - half, low), min(m + half, high), n)


@dataclass(frozen=True)
class Shape:
    sd: float
    skewness: float
    kurtosis: float  # excess kurtosis, sample-adjusted
    bimodality: float  # Sarle's coefficient: above 5/9 (0.555) suggests two camps


def shape(n: int, s1: float, s2: float, s3: float, s4: float) -> Shape | None:
    """Spread and bimodality of scores from their power sums (needs n >= 4)."""
    if n < 4:
        return None
    m = s1 / n
    m2 = s2 / n - m**2
    if m2 <= 1e-12:
        return Shape(0.0, 0.0, 0.0, 0.0)
    m3 = s3 / n - 3 * m * s2 / n + 2 * m**3
    m4 = s4 / n - 4 * m * s3 / n + 6 * m**2 * s2 / n - 3 * m**4
    g1, g2 = m3 / m2**1.5, m4 / m2**2 - 3
    skew = float(g1) * math.sqrt(n * (n - 1)) / (n - 2)
    kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6)
    bimodality = (skew**2 + 1) / (kurt + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    return Shape(math.sqrt(m2 * n / (n - 1)), skew, kurt, bimodality)
