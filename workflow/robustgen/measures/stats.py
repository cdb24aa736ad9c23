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


def _hierarchical_index(sizes: np.ndarray, resamples: int, rng: np.random.Generator):
    """Draws of a two-level bootstrap over groups (seeds) of `sizes` items: (seed of each slot, item index
    within that seed, valid), shapes (R, k) and (R, k, max size). Each replicate draws k seeds with
    replacement, then, for each drawn seed, as many of its items with replacement as it has."""
    k, longest = len(sizes), int(sizes.max())
    seeds = rng.integers(0, k, size=(resamples, k))
    drawn = sizes[seeds][..., None]
    items = np.floor(rng.random((resamples, k, longest)) * drawn).astype(int)
    valid = np.arange(longest)[None, None, :] < drawn
    return seeds, items, valid


def _padded(groups: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(groups), max(len(g) for g in groups)), np.nan)
    for i, g in enumerate(groups):
        out[i, :len(g)] = g
    return out


def _replicates(groups: list[np.ndarray], seeds, items, valid) -> np.ndarray:
    """(R, k · max size) resampled values of `groups` (NaN where a slot's seed has fewer items)."""
    values = _padded(groups)[seeds[..., None], items]
    return np.where(valid, values, np.nan).reshape(len(seeds), -1)


def _median(values: np.ndarray) -> np.ndarray:
    """Row medians ignoring NaN, where +inf (a censored radius) counts as larger than any finite value."""
    median = np.nanmedian(np.where(np.isposinf(values), 1e300, values), axis=-1)
    return np.where(median >= 1e299, np.inf, median)


def bootstrap_median_ratio(numerator: list[np.ndarray], denominator: list[np.ndarray], *, resamples: int,
                           seed: int, paired: bool = False, level: float = 0.95) -> tuple[float, float, float]:
    """median(numerator) / median(denominator), pooled over groups, with a percentile interval from a
    hierarchical bootstrap: seeds (the groups, the unit of replication) are resampled, then items within
    each drawn seed (docs/protocols.md §10).

    Each argument is a list of samples, one per seed, in the same seed order. `paired`: numerator[i][j] and
    denominator[i][j] are the same item measured twice (the same image under two networks), so one draw of
    items serves both; otherwise each side's items are drawn separately (the seeds are drawn once for
    both). With one seed this is the plain bootstrap of its items. Returns (ratio, low, high).
    """
    keep = [i for i, (a, b) in enumerate(zip(numerator, denominator, strict=True)) if len(a) and len(b)]
    numerator = [np.asarray(numerator[i], dtype=float) for i in keep]
    denominator = [np.asarray(denominator[i], dtype=float) for i in keep]
    if not numerator:
        return (np.nan, np.nan, np.nan)
    if paired and any(len(a) != len(b) for a, b in zip(numerator, denominator)):
        raise ValueError("paired samples need the same number of items in each seed")
    ratio = float(_median(np.concatenate(numerator)) / _median(np.concatenate(denominator)))
    rng = np.random.default_rng(seed)
    seeds, items, valid = _hierarchical_index(np.array([len(g) for g in numerator]), resamples, rng)
    if not paired:
        _, den_items, den_valid = _hierarchical_index(np.array([len(g) for g in denominator]), resamples, rng)
    else:
        den_items, den_valid = items, valid
    top = _median(_replicates(numerator, seeds, items, valid))
    bottom = _median(_replicates(denominator, seeds, den_items, den_valid))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = top / bottom
    low, high = quantiles(ratios[~np.isnan(ratios)], [(1 - level) / 2, (1 + level) / 2])
    return ratio, float(low), float(high)


def seed_mean(groups: list[np.ndarray], *, resamples: int, seed: int, level: float = 0.95) -> dict:
    """The mean over seeds of each seed's mean, its standard error over seeds, and a percentile interval
    from the hierarchical bootstrap (seeds, then items within each): what a group of seeds says about a
    metric when the seed is the unit of replication (docs/protocols.md §10)."""
    groups = [np.asarray(g, dtype=float) for g in groups]
    groups = [g[~np.isnan(g)] for g in groups]
    groups = [g for g in groups if len(g)]
    if not groups:
        return dict(n_seeds=0, mean=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan)
    means = np.array([g.mean() for g in groups])
    seeds, items, valid = _hierarchical_index(np.array([len(g) for g in groups]), resamples,
                                              np.random.default_rng(seed))
    values = _replicates(groups, seeds, items, valid).reshape(*items.shape)
    per_slot = np.nanmean(values, axis=-1)  # each drawn seed's resampled mean
    low, high = np.quantile(per_slot.mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    se = float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else np.nan
    return dict(n_seeds=len(groups), mean=float(means.mean()), se=se, ci_low=float(low), ci_high=float(high))


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


def bootstrap_correlation(x, y, *, method: str, resamples: int, seed: int, clusters=None,
                          level: float = 0.95) -> tuple[float, float, float]:
    """A correlation with a percentile bootstrap interval. Without `clusters` the (x, y) pairs are
    resampled; with `clusters` (a label per pair, e.g. a network's configuration, whose seeds are not
    independent of each other), whole clusters are resampled with all their pairs."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    if clusters is None:
        index = rng.integers(0, len(x), size=(resamples, len(x)))
        xs, ys = x[index], y[index]
        boot = _pearson(*((_rank(xs), _rank(ys)) if method == "spearman" else (xs, ys)))
    else:
        labels, members = np.unique(np.asarray(clusters), return_inverse=True)
        groups = [np.flatnonzero(members == i) for i in range(len(labels))]
        boot = np.empty(resamples)
        for r, drawn in enumerate(rng.integers(0, len(groups), size=(resamples, len(groups)))):
            index = np.concatenate([groups[i] for i in drawn])
            boot[r] = correlation(x[index], y[index], method) if len(index) > 2 else np.nan
    boot = boot[np.isfinite(boot)]
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]) if len(boot) else (np.nan, np.nan)
    return correlation(x, y, method), float(low), float(high)
