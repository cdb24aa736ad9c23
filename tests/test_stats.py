import math

import numpy as np

from robustgen.measures.stats import bootstrap_correlation, bootstrap_median_ratio, quartiles, seed_mean


def test_quartiles_known_answer_and_infinity():
    assert quartiles(np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == (2.0, 3.0, 4.0)
    q1, median, q3 = quartiles(np.array([1.0, 2.0, 3.0, math.inf, math.inf]))
    assert (q1, median) == (2.0, 3.0) and math.isinf(q3)
    assert all(math.isnan(v) for v in quartiles(np.array([])))


def test_bootstrap_ratio_of_medians():
    rng = np.random.default_rng(0)
    a = rng.exponential(4.0, 400)
    b = rng.exponential(1.0, 400)
    ratio, low, high = bootstrap_median_ratio([a], [b], resamples=2000, seed=1)
    assert ratio == np.median(a) / np.median(b)
    assert low < ratio < high and 2.5 < low and high < 6.5
    assert (ratio, low, high) == bootstrap_median_ratio([a], [b], resamples=2000, seed=1)  # seeded


def test_bootstrap_of_constant_samples_is_degenerate():
    ratio, low, high = bootstrap_median_ratio([np.full(50, 3.0)], [np.full(30, 1.5)], resamples=200, seed=0)
    assert ratio == low == high == 2.0


def test_bootstrap_resamples_seeds_and_handles_empty():
    # two seeds with very different scales: seeds are the unit, so the interval spans them (holding the
    # seeds fixed, as a bootstrap within each seed does, would give [5, 5])
    num = [np.full(10, 1.0), np.full(10, 9.0)]
    den = [np.full(10, 1.0), np.full(10, 1.0)]
    ratio, low, high = bootstrap_median_ratio(num, den, resamples=500, seed=0)
    assert (ratio, low, high) == (5.0, 1.0, 9.0)
    assert all(math.isnan(v) for v in bootstrap_median_ratio([np.array([])], den[:1], resamples=10, seed=0))


def test_paired_bootstrap_uses_the_pairing():
    """Every image's radius doubles: the paired interval is exactly [2, 2]; resampling the two networks'
    images independently gives a wide one."""
    rng = np.random.default_rng(0)
    before = [rng.exponential(1.0, 200) for _ in range(3)]
    after = [2 * b for b in before]
    assert bootstrap_median_ratio(after, before, resamples=500, seed=0, paired=True) == (2.0, 2.0, 2.0)
    _, low, high = bootstrap_median_ratio(after, before, resamples=500, seed=0)
    assert low < 1.8 and high > 2.2


def test_seed_mean_is_a_mean_over_seeds():
    groups = [np.full(50, 1.0), np.full(100, 2.0), np.full(10, 3.0)]   # unequal sizes count once each
    found = seed_mean(groups, resamples=500, seed=0)
    assert found["mean"] == 2.0 and found["n_seeds"] == 3
    assert found["se"] == np.std([1.0, 2.0, 3.0], ddof=1) / np.sqrt(3)
    assert 1.0 <= found["ci_low"] < 2.0 < found["ci_high"] <= 3.0


def test_cluster_bootstrap_is_not_fooled_by_duplicated_networks():
    """Each configuration measured twice (identically): resampling networks narrows the interval as if the
    copies were independent; resampling configurations does not."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    width = lambda r: r[2] - r[1]  # noqa: E731
    single = width(bootstrap_correlation(x, y, method="pearson", resamples=2000, seed=0))
    doubled_x, doubled_y, configs = np.repeat(x, 2), np.repeat(y, 2), np.repeat(np.arange(30), 2)
    pairs = width(bootstrap_correlation(doubled_x, doubled_y, method="pearson", resamples=2000, seed=0))
    clusters = width(bootstrap_correlation(doubled_x, doubled_y, method="pearson", resamples=2000, seed=0,
                                           clusters=configs))
    assert abs(clusters / single - 1) < 0.15 and pairs < 0.85 * clusters
