import math

import numpy as np

from robustgen.measures.stats import bootstrap_median_ratio, quartiles


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


def test_bootstrap_stratifies_over_groups_and_handles_empty():
    # two seeds with very different scales: resampling within each keeps both represented
    num = [np.full(10, 1.0), np.full(10, 9.0)]
    den = [np.full(10, 1.0), np.full(10, 1.0)]
    ratio, low, high = bootstrap_median_ratio(num, den, resamples=500, seed=0)
    assert ratio == low == high == 5.0
    assert all(math.isnan(v) for v in bootstrap_median_ratio([np.array([])], den, resamples=10, seed=0))
