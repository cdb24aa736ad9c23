"""Summary statistics with bootstrap intervals, shared by every table of the study."""

from __future__ import annotations

import numpy as np


def quantiles(values, probabilities) -> np.ndarray:
    """Linear-interpolation quantiles in which +inf (a censored radius) counts as larger than any finite
    value: a quantile that touches it is +inf (plain interpolation towards inf gives NaN)."""
    values = np.asarray(values, dtype=float)
    q = np.quantile(np.where(np.isposinf(values), 1e300, values), probabilities)
    return np.where(q > 1e200, np.inf, q)


def quartiles(values) -> tuple[float, float, float]:
    """(first quartile, median, third quartile), +inf-aware; NaNs for an empty sample."""
    if len(values) == 0:
        return (np.nan, np.nan, np.nan)
    q1, q2, q3 = quantiles(values, [0.25, 0.5, 0.75])
    return float(q1), float(q2), float(q3)


def _resampled_medians(groups: list[np.ndarray], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of `resamples` bootstrap samples drawn with replacement within each group (stratified)."""
    draws = [g[rng.integers(0, len(g), size=(resamples, len(g)))] for g in groups]
    return np.median(np.concatenate(draws, axis=1), axis=1)


def bootstrap_median_ratio(numerator: list[np.ndarray], denominator: list[np.ndarray], *, resamples: int,
                           seed: int, level: float = 0.95) -> tuple[float, float, float]:
    """median(numerator) / median(denominator) with a percentile bootstrap interval.

    Each argument is a list of samples (one per seed, say); resampling stays within each sample, so the
    interval reflects the images' variability with the seeds held fixed. Returns (ratio, low, high).
    """
    numerator = [np.asarray(g, dtype=float) for g in numerator if len(g)]
    denominator = [np.asarray(g, dtype=float) for g in denominator if len(g)]
    if not numerator or not denominator:
        return (np.nan, np.nan, np.nan)
    ratio = float(np.median(np.concatenate(numerator)) / np.median(np.concatenate(denominator)))
    rng = np.random.default_rng(seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = _resampled_medians(numerator, resamples, rng) / _resampled_medians(denominator, resamples, rng)
    low, high = quantiles(ratios, [(1 - level) / 2, (1 + level) / 2])
    return ratio, float(low), float(high)


def _rank(values: np.ndarray) -> np.ndarray:
    """Ranks (from 0) along the last axis; tied values share their average rank."""
    rows = np.atleast_2d(values)
    out = np.empty(rows.shape)
    for i, row in enumerate(rows):
        _, inverse, counts = np.unique(row, return_inverse=True, return_counts=True)
        first = np.cumsum(counts) - counts
        out[i] = (first + (counts - 1) / 2)[inverse]
    return out.reshape(np.shape(values))


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(-1) / np.sqrt((x * x).sum(-1) * (y * y).sum(-1))


def correlation(x, y, method: str = "pearson") -> float:
    """Pearson (linear) or Spearman (rank) correlation of two samples."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if method == "spearman":
        x, y = _rank(x), _rank(y)
    elif method != "pearson":
        raise ValueError(f"unknown correlation {method!r}; allowed: pearson, spearman")
    return float(_pearson(x, y))


def bootstrap_correlation(x, y, *, method: str, resamples: int, seed: int,
                          level: float = 0.95) -> tuple[float, float, float]:
    """A correlation with a percentile bootstrap interval from resampling the (x, y) pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return (np.nan, np.nan, np.nan)
    index = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
    xs, ys = x[index], y[index]
    if method == "spearman":
        xs, ys = _rank(xs), _rank(ys)
    boot = _pearson(xs, ys)
    boot = boot[np.isfinite(boot)]
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]) if len(boot) else (np.nan, np.nan)
    return correlation(x, y, method), float(low), float(high)
