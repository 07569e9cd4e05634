"""Paired bootstrap CIs, Wilcoxon with zeros/ties, quantile bootstrap, and the live canary tests' guards."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from modelshift.errors import ConfigError
from modelshift.evaluation import stats
from modelshift.evaluation.stats import (
    bootstrap_mean_diff,
    bootstrap_quantile_diff,
    mann_whitney_u,
    min_pairs_for,
    two_proportion_z,
    wilcoxon_p,
)

RNG = np.random.default_rng(42)
BASE = RNG.uniform(0.3, 0.9, size=80).tolist()


def test_bootstrap_identical_samples_give_a_zero_interval() -> None:
    ci = bootstrap_mean_diff(BASE, BASE)
    assert (ci.estimate, ci.low, ci.high) == (0.0, 0.0, 0.0)


def test_bootstrap_constant_shift_is_exact() -> None:
    ci = bootstrap_mean_diff([b + 0.1 for b in BASE], BASE)
    assert ci.estimate == pytest.approx(0.1)
    assert ci.low == pytest.approx(0.1) and ci.high == pytest.approx(0.1)


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_confidence() -> None:
    noisy = [b + d for b, d in zip(BASE, RNG.normal(-0.05, 0.1, size=80), strict=True)]
    wide = bootstrap_mean_diff(noisy, BASE, confidence=0.99)
    narrow = bootstrap_mean_diff(noisy, BASE, confidence=0.8)
    assert wide.low < narrow.low < narrow.estimate < narrow.high < wide.high
    assert narrow.estimate == pytest.approx(float(np.mean(np.subtract(noisy, BASE))))


def test_bootstrap_is_deterministic_per_seed() -> None:
    noisy = [b + d for b, d in zip(BASE, RNG.normal(0, 0.1, size=80), strict=True)]
    assert bootstrap_mean_diff(noisy, BASE, seed=3) == bootstrap_mean_diff(noisy, BASE, seed=3)
    assert bootstrap_mean_diff(noisy, BASE, seed=3) != bootstrap_mean_diff(noisy, BASE, seed=4)


def test_bootstrap_in_blocks_keeps_every_resample(monkeypatch: pytest.MonkeyPatch) -> None:
    noisy = [b + d for b, d in zip(BASE, RNG.normal(0, 0.1, size=80), strict=True)]
    monkeypatch.setattr(stats, "_MAX_INDEX_CELLS", 80 * 7)  # 7 resamples per block: 2000 = 285 blocks + 5
    blocks = list(stats._resample_blocks(np.random.default_rng(0), 80, 2000))
    assert sum(len(b) for b in blocks) == 2000 and len(blocks[-1]) == 5
    ci = bootstrap_mean_diff(noisy, BASE)
    _, p = bootstrap_quantile_diff(noisy, BASE, 0.9)
    monkeypatch.undo()
    reference = bootstrap_mean_diff(noisy, BASE)
    # same seed and generator: block size may change the draws, but not the answer beyond resampling noise
    assert ci.estimate == reference.estimate
    assert ci.low == pytest.approx(reference.low, abs=0.01) and ci.high == pytest.approx(
        reference.high, abs=0.01
    )
    assert 0 <= p <= 1


def test_bootstrap_single_pair() -> None:
    ci = bootstrap_mean_diff([0.4], [0.5], n_resamples=10)
    assert ci.low == ci.high == ci.estimate == pytest.approx(-0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, "strictly between 0 and 1"),
        ({"confidence": 0.0}, "strictly between 0 and 1"),
        ({"n_resamples": 0}, "at least 1"),
    ],
)
def test_bootstrap_rejects_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bootstrap_mean_diff(BASE, BASE, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("candidate", "baseline", "message"),
    [([], [], "empty"), ([1.0], [1.0, 2.0], "equally long")],
)
def test_paired_inputs_must_match(candidate: list[float], baseline: list[float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bootstrap_mean_diff(candidate, baseline)
    with pytest.raises(ConfigError, match=message):
        wilcoxon_p(candidate, baseline)


@pytest.mark.parametrize(
    ("candidate", "baseline", "expected"),
    [
        ([0.5] * 10, [0.5] * 10, 1.0),  # all differences zero
        ([1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 1.0, 0.0], 1.0),
        ([1.0] + [0.5] * 9, [0.5] * 10, 1.0),  # one non-zero difference: nothing to rank against
    ],
)
def test_wilcoxon_zero_differences(candidate: list[float], baseline: list[float], expected: float) -> None:
    assert wilcoxon_p(candidate, baseline) == pytest.approx(expected)


def test_wilcoxon_matches_scipy_with_ties_and_zeros() -> None:
    baseline = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0] * 3
    candidate = [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0] * 3  # binary: many ties and zeros
    diffs = np.subtract(candidate, baseline)
    expected = sps.wilcoxon(diffs[diffs != 0]).pvalue
    assert wilcoxon_p(candidate, baseline) == pytest.approx(expected)
    assert wilcoxon_p(candidate, baseline) < 0.05


def test_wilcoxon_detects_a_consistent_shift_only() -> None:
    worse = [b - 0.2 + d for b, d in zip(BASE, RNG.normal(0, 0.05, size=80), strict=True)]
    same = [b + d for b, d in zip(BASE, RNG.normal(0, 0.05, size=80), strict=True)]
    assert wilcoxon_p(worse, BASE) < 1e-6
    assert wilcoxon_p(same, BASE) > 0.01


@pytest.mark.parametrize(("confidence", "pairs"), [(0.5, 3), (0.9, 5), (0.95, 6), (0.99, 8), (0.999, 11)])
def test_min_pairs_for_confidence(confidence: float, pairs: int) -> None:
    assert min_pairs_for(confidence) == pairs
    # boundary: with `pairs` all-negative differences the exact test is significant, with one fewer it is not
    alpha = 1 - confidence
    assert sps.wilcoxon([-1.0 - i for i in range(pairs)]).pvalue < alpha
    assert sps.wilcoxon([-1.0 - i for i in range(pairs - 1)]).pvalue >= alpha


def test_quantile_bootstrap_identical_and_shifted() -> None:
    ci, p = bootstrap_quantile_diff(BASE, BASE, 0.95)
    assert (ci.estimate, ci.low, ci.high, p) == (0.0, 0.0, 0.0, 1.0)
    slower = [b * 2 for b in BASE]
    ci, p = bootstrap_quantile_diff(slower, BASE, 0.95)
    assert ci.estimate == pytest.approx(float(np.quantile(BASE, 0.95)))
    assert ci.low > 0 and p == 0.0


def test_quantile_bootstrap_is_deterministic_and_validates_q() -> None:
    noisy = [b + abs(d) for b, d in zip(BASE, RNG.normal(0, 0.1, size=80), strict=True)]
    assert bootstrap_quantile_diff(noisy, BASE, 0.5, seed=1) == bootstrap_quantile_diff(
        noisy, BASE, 0.5, seed=1
    )
    with pytest.raises(ConfigError, match=r"quantile q must lie in \[0, 1\]"):
        bootstrap_quantile_diff(BASE, BASE, 95)


def test_mann_whitney_detects_a_shift() -> None:
    slow = (RNG.normal(200, 20, size=50)).tolist()
    fast = (RNG.normal(100, 20, size=50)).tolist()
    result = mann_whitney_u(fast, slow)
    assert result is not None and result.p_value < 1e-6
    assert (result.n_a, result.n_b) == (50, 50)
    same = mann_whitney_u(fast, fast)
    assert same is not None and same.p_value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("n_a", "n_b", "enough"), [(8, 8, True), (7, 8, False), (8, 7, False), (0, 50, False)]
)
def test_mann_whitney_small_sample_guard(n_a: int, n_b: int, enough: bool) -> None:
    result = mann_whitney_u([float(i) for i in range(n_a)], [float(i) + 0.5 for i in range(n_b)])
    assert (result is not None) is enough


def test_mann_whitney_all_equal_values() -> None:
    result = mann_whitney_u([3.0] * 10, [3.0] * 12)
    assert result is not None and result.p_value == 1.0 and result.statistic == 60


def test_two_proportion_z_matches_the_formula() -> None:
    result = two_proportion_z(10, 200, 30, 200)
    assert result is not None
    pooled = 40 / 400
    z = (0.15 - 0.05) / np.sqrt(pooled * (1 - pooled) * (2 / 200))
    assert result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(z))
    assert result.difference == pytest.approx(0.10)
    same = two_proportion_z(20, 100, 20, 100)
    assert same is not None and same.p_value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("success_a", "n_a", "success_b", "n_b", "conclusive"),
    [
        (5, 50, 5, 50, True),  # expected successes exactly 5 per side: the boundary is allowed
        (4, 50, 5, 50, False),  # pooled expected 4.5 < 5
        (0, 100, 0, 100, False),  # no successes at all: nothing to compare
        (100, 100, 100, 100, False),  # no failures at all
        (0, 0, 5, 50, False),  # a side with no trials
    ],
)
def test_two_proportion_z_small_sample_guard(
    success_a: int, n_a: int, success_b: int, n_b: int, conclusive: bool
) -> None:
    assert (two_proportion_z(success_a, n_a, success_b, n_b) is not None) is conclusive


@pytest.mark.parametrize(
    ("success_a", "n_a", "success_b", "n_b"), [(6, 5, 1, 5), (-1, 5, 1, 5), (1, 5, 1, -5)]
)
def test_two_proportion_z_rejects_impossible_counts(
    success_a: int, n_a: int, success_b: int, n_b: int
) -> None:
    with pytest.raises(ConfigError, match=r"must lie in 0\.\.trials"):
        two_proportion_z(success_a, n_a, success_b, n_b)
