"""Statistics for the gates: paired tests on per-item scores (offline) and two-sample tests (live canary).

Offline, candidate and baseline answer the same items, so the comparison is paired: a percentile bootstrap
CI of the mean per-item difference (items resampled with replacement, seeded), the Wilcoxon signed-rank
test on the differences, and for quantile metrics (latency p95) a paired bootstrap of the quantile
difference. Live canary samples are independent: Mann-Whitney U for continuous signals and a two-proportion
z-test for rates, each returning None when the samples are too small to say anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from modelshift.errors import ConfigError

DEFAULT_RESAMPLES = 2000
#: Smallest sample per side for Mann-Whitney U; below it the test cannot reach usual significance levels.
MIN_MANN_WHITNEY = 8
#: Smallest expected count of successes and failures per side for the normal approximation of the z-test.
MIN_EXPECTED_COUNT = 5


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[low, high]`` around the point estimate ``estimate``."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class RankTest:
    """A test's statistic and two-sided p-value (plus each side's size, for reports)."""

    statistic: float
    p_value: float
    n_a: int
    n_b: int


@dataclass(frozen=True)
class ProportionTest:
    """A two-proportion z-test: both rates, their difference ``b - a``, z and the two-sided p-value."""

    rate_a: float
    rate_b: float
    difference: float
    z: float
    p_value: float


def _check(confidence: float, n_resamples: int) -> None:
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie strictly between 0 and 1, got {confidence}; e.g. 0.95")
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be at least 1, got {n_resamples}; the default is 2000")


def _paired(candidate: Sequence[float], baseline: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(candidate, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ConfigError(
            f"paired samples must be two equally long lists, got {len(candidate)} and {len(baseline)}"
        )
    if a.size == 0:
        raise ConfigError("paired samples are empty; at least one paired item is needed")
    return a, b


# Resampling draws an index matrix; cap it at ~16 MB so a 10k-item dataset does not need gigabytes.
_MAX_INDEX_CELLS = 2_000_000


def _resample_blocks(rng: np.random.Generator, n: int, n_resamples: int) -> Iterator[np.ndarray]:
    """Index matrices of at most ``_MAX_INDEX_CELLS`` cells, ``n_resamples`` rows in all, n columns each."""
    rows = max(1, _MAX_INDEX_CELLS // n)
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n, size=(min(rows, n_resamples - start), n))


def _percentile_interval(estimate: float, boot: np.ndarray, confidence: float) -> Interval:
    alpha = 1 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return Interval(estimate=estimate, low=float(low), high=float(high))


def bootstrap_mean_diff(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Percentile paired-bootstrap CI of ``mean(candidate - baseline)``.

    Resamples the n per-item differences with replacement ``n_resamples`` times (numpy Generator seeded with
    ``seed``) and takes the ``(1-c)/2`` and ``(1+c)/2`` quantiles of the resampled means.
    """
    _check(confidence, n_resamples)
    a, b = _paired(candidate, baseline)
    diffs = a - b
    rng = np.random.default_rng(seed)
    boot = np.concatenate(
        [diffs[index].mean(axis=1) for index in _resample_blocks(rng, diffs.size, n_resamples)]
    )
    return _percentile_interval(float(diffs.mean()), boot, confidence)


def bootstrap_quantile_diff(
    candidate: Sequence[float],
    baseline: Sequence[float],
    q: float,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[Interval, float]:
    """Paired-bootstrap CI of ``quantile(candidate, q) - quantile(baseline, q)`` and a bootstrap p-value.

    Each resample draws item indices once and applies them to both sides, keeping the pairing. The p-value
    is two-sided: ``min(1, 2 * min(P*(d <= 0), P*(d >= 0)))`` over the resampled differences d, so identical
    samples give 1.0.
    """
    _check(confidence, n_resamples)
    if not 0 <= q <= 1:
        raise ConfigError(f"quantile q must lie in [0, 1], got {q}; e.g. 0.95 for p95")
    a, b = _paired(candidate, baseline)
    rng = np.random.default_rng(seed)
    boot = np.concatenate(
        [
            np.quantile(a[index], q, axis=1) - np.quantile(b[index], q, axis=1)
            for index in _resample_blocks(rng, a.size, n_resamples)
        ]
    )
    estimate = float(np.quantile(a, q) - np.quantile(b, q))
    p_value = min(1.0, 2 * min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0))))
    return _percentile_interval(estimate, boot, confidence), p_value


def wilcoxon_p(candidate: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired differences ``candidate - baseline``.

    Zero differences are dropped (Wilcoxon's original treatment); when every difference is zero the samples
    are indistinguishable and the p-value is 1.0. scipy picks the exact distribution for small samples
    without ties and the normal approximation (tie-corrected) otherwise.
    """
    a, b = _paired(candidate, baseline)
    diffs = a - b
    if not np.any(diffs != 0):
        return 1.0
    result = sps.wilcoxon(diffs, zero_method="wilcox", alternative="two-sided")
    p = float(result.pvalue)
    return 1.0 if math.isnan(p) else min(1.0, p)


def min_pairs_for(confidence: float) -> int:
    """Fewest non-tied pairs with which an exact Wilcoxon test can reach ``p < 1 - confidence``.

    The smallest two-sided p-value with n pairs is ``2 / 2**n`` (all differences of one sign), so below
    this count no data could ever be significant: 6 pairs at 0.95, 8 at 0.99, 11 at 0.999.
    """
    alpha = 1 - confidence
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> RankTest | None:
    """Two-sided Mann-Whitney U test of two independent samples; None when either has < 8 values."""
    if len(a) < MIN_MANN_WHITNEY or len(b) < MIN_MANN_WHITNEY:
        return None
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    if np.all(xa == xa[0]) and np.all(xb == xa[0]):
        # every value equal: scipy's normal approximation would divide by a zero variance
        return RankTest(statistic=len(a) * len(b) / 2, p_value=1.0, n_a=len(a), n_b=len(b))
    result = sps.mannwhitneyu(xa, xb, alternative="two-sided")
    return RankTest(statistic=float(result.statistic), p_value=float(result.pvalue), n_a=len(a), n_b=len(b))


def two_proportion_z(success_a: int, n_a: int, success_b: int, n_b: int) -> ProportionTest | None:
    """Pooled two-proportion z-test of ``success_b/n_b`` vs ``success_a/n_a`` (two-sided).

    Returns None (inconclusive) when the normal approximation is not trustworthy: a side with no trials, or
    an expected count of successes or failures below 5 on either side under the pooled rate.
    """
    for label, s, n in (("a", success_a, n_a), ("b", success_b, n_b)):
        if n < 0 or s < 0 or s > n:
            raise ConfigError(f"side {label}: successes ({s}) must lie in 0..trials ({n})")
    if n_a == 0 or n_b == 0:
        return None
    pooled = (success_a + success_b) / (n_a + n_b)
    expected = (pooled * n_a, (1 - pooled) * n_a, pooled * n_b, (1 - pooled) * n_b)
    if min(expected) < MIN_EXPECTED_COUNT:
        return None
    rate_a, rate_b = success_a / n_a, success_b / n_b
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    z = (rate_b - rate_a) / se
    p_value = float(2 * sps.norm.sf(abs(z)))
    return ProportionTest(rate_a=rate_a, rate_b=rate_b, difference=rate_b - rate_a, z=z, p_value=p_value)
