"""Statistics over seeds: Student t intervals of a mean and Welch's test of a difference of means.

The formulas are written out here (the t distribution's quantiles and tails come from scipy), so
each number in a table can be traced: for n values with mean m and sample standard deviation s
(n - 1 in the denominator), the 95% interval of the mean is m ± t(0.975, n - 1) * s / sqrt(n).
Two groups a and b (unequal variances allowed) give the difference m_a - m_b with standard error
se = sqrt(s_a²/n_a + s_b²/n_b), the Welch-Satterthwaite degrees of freedom
df = se⁴ / ((s_a²/n_a)² / (n_a - 1) + (s_b²/n_b)² / (n_b - 1)), the interval
m_a - m_b ± t(0.975, df) * se and the two-sided p-value 2 * P(T_df > |m_a - m_b| / se).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t distribution with ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(p, df))


def t_two_sided_p(t_value: float, df: float) -> float:
    """P(|T_df| >= |t|)."""
    from scipy.stats import t

    return float(2 * t.sf(abs(t_value), df))


@dataclass(frozen=True)
class Summary:
    """Mean of n values; with n >= 2 also the sample standard deviation and the t interval."""

    n: int
    mean: float
    std: float | None
    low: float | None
    high: float | None
    level: float = LEVEL

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """The mean and the sample standard deviation (None for fewer than two values)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def summarize(values: Sequence[float], level: float = LEVEL) -> Summary:
    """Mean, standard deviation and the Student t interval of the mean at ``level``."""
    mean, std = mean_std(values)
    n = len(values)
    if std is None:
        return Summary(n, mean, None, None, None, level)
    half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, level)


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) with its Welch interval, degrees of freedom, t statistic and p-value."""

    diff: float
    low: float
    high: float
    df: float | None  # None when both groups have no spread (the difference is then exact)
    t: float | None
    p: float
    n_a: int
    n_b: int
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        """The interval lies on one side of 0: a difference at the ``level`` (the test's p < 1 - level)."""
        return self.low > 0 or self.high < 0


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Difference | None:
    """Welch's unequal-variance t interval and test for mean(a) - mean(b); None below two values a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    (mean_a, std_a), (mean_b, std_b) = mean_std(a), mean_std(b)
    assert std_a is not None and std_b is not None
    va, vb = std_a ** 2 / len(a), std_b ** 2 / len(b)
    diff = mean_a - mean_b
    se = math.sqrt(va + vb)
    if se == 0:  # every value of each side equal: the difference is known exactly
        return Difference(diff, diff, diff, None, None, 0.0 if diff else 1.0, len(a), len(b), level)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(0.5 + level / 2, df) * se
    t_value = diff / se
    return Difference(diff, diff - half, diff + half, df, t_value, t_two_sided_p(t_value, df), len(a), len(b),
                      level)
