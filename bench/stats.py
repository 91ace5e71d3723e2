"""The median of paired ratios, with a confidence interval that assumes no distribution.

Each pair of runs (server, then reference, or the other way round) gives one ratio.
On a shared VM those ratios are skewed and now and then wild (a neighbour wakes up for
one run), so no normal curve is assumed. The interval is the sign test's: the true
median lies below any one ratio with probability ½, so for n ratios sorted
x(1) ≤ ... ≤ x(n), the chance that the median lies outside [x(k), x(n+1-k)] is
2·P(Binomial(n, ½) ≤ k-1), exactly, whatever the ratios' distribution, and nothing is
random: the same ratios always give the same interval. With 9 pairs, [x(2), x(8)]
holds the median 96.1% of the time; with 3 pairs even [x(1), x(3)] holds it only 75%.

    >>> median_interval([0.9, 1.1, 1.0, 0.95, 1.2, 1.05, 0.97, 1.02, 1.3])
    Interval(median=1.02, low=0.95, high=1.2, coverage=0.9609375)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

# The coverage the interval aims for: a "met" or a "missed" is then wrong at most
# (1 - 0.95) / 2 = 2.5% of the time, each.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    median: float
    low: float
    high: float
    coverage: float  # the chance [low, high] holds the true median, whatever the distribution


def coverage(n: int, k: int) -> float:
    """The chance that [x(k), x(n+1-k)] of n sorted values holds their true median."""
    outside_below = sum(math.comb(n, i) for i in range(k)) / (1 << n)
    return 1 - 2 * outside_below


def median_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The median and the narrowest [x(k), x(n+1-k)] whose coverage reaches confidence;
    [min, max] with its own, lower coverage when n is too small to reach it."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    n = len(ordered)
    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(n, k + 1) >= confidence:
        k += 1
    return Interval(statistics.median(ordered), ordered[k - 1], ordered[n - k], coverage(n, k))
