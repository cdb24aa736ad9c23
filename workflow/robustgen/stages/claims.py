"""The study's conclusions as code (docs/protocols.md §11).

A claim is a one-line statement from a source document (or from this study) and a small function of the
finished tables that measures it: one effect per independent training run, the unit of replication, or a
ready interval where the unit is not a run (a correlation across the capacity sweep's networks, resampled by
configuration). `evaluate` turns that evidence into an estimate, an interval and a verdict by one rule,
written down before any result was looked at:

- the estimate is the mean effect over runs; its interval the percentile bootstrap of that mean, resampling
  runs (claims.bootstrap, claims.level);
- **supported**: the whole interval lies on the claim's side of its boundary (strictly, for a strict claim);
- **contradicted**: the whole interval lies on the other side (the boundary itself counts against a strict
  claim);
- **inconclusive**: the interval reaches across the boundary, or fewer than claims.min_seeds runs measured it;
- **not measured**: the study did not run what the claim needs (a method, a group, a checkpoint never
  reached); the note says what is missing.

Effects are differences on the scale the claim speaks of: log10 ratios for radii, steps and sensitivities
(a claim of "smaller" or "sooner" is a claim about a ratio), plain differences for rates and CKA.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..measures.stats import seed_mean
from ..settings import ClaimRule

Tables = dict[str, pd.DataFrame]
VERDICTS = ("supported", "contradicted", "inconclusive", "not measured")
CLAIM_COLUMNS = ("id", "source", "statement", "setting", "effect", "claimed", "boundary", "estimate", "ci_low",
                 "ci_high", "n", "unit", "verdict", "rule", "note", "per_run")


class NotMeasured(Exception):
    """The study did not run what a claim needs; the message says what."""


@dataclass(frozen=True)
class Evidence:
    """What a claim's function measured: one effect per independent run (label -> value), or `interval`
    (estimate, low, high, n) where the table already holds an interval over the right unit."""

    effects: dict[str, float]
    setting: str
    unit: str = "runs (seeds)"
    interval: tuple[float, float, float, int] | None = None
    note: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    effect: str
    side: str  # the claimed side of the boundary: ">", ">=", "<", "<="
    boundary: float
    measure: Callable[[Tables], Evidence] = field(repr=False)


CLAIMS: list[Claim] = []


def claim(id: str, source: str, statement: str, effect: str, side: str, boundary: float = 0.0):
    """Register a claim's measuring function (the decorator keeps the registry and the code side by side)."""
    if side not in (">", ">=", "<", "<="):
        raise ValueError(f"claim {id}: side must be one of >, >=, <, <=; got {side!r}")

    def register(measure: Callable[[Tables], Evidence]) -> Callable[[Tables], Evidence]:
        if any(c.id == id for c in CLAIMS):
            raise ValueError(f"claim id {id!r} registered twice")
        CLAIMS.append(Claim(id, source, statement, effect, side, boundary, measure))
        return measure

    return register


# --- the rule ---------------------------------------------------------------------------------------------------

def verdict(low: float, high: float, n: int, side: str, boundary: float, min_seeds: int) -> str:
    """The verdict of an interval [low, high] over n runs on a claim that the effect is `side` `boundary`."""
    if n < min_seeds or not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    above = side.startswith(">")
    strict = len(side) == 1
    inside = (low > boundary if strict else low >= boundary) if above else \
        (high < boundary if strict else high <= boundary)
    outside = (high <= boundary if strict else high < boundary) if above else \
        (low >= boundary if strict else low > boundary)
    return "supported" if inside else "contradicted" if outside else "inconclusive"


def rule_text(side: str, boundary: float, rule: ClaimRule) -> str:
    other = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}[side]
    level = f"{100 * rule.level:g} %"
    return (f"supported if the {level} interval lies {side} {boundary:g}; contradicted if it lies {other} "
            f"{boundary:g}; otherwise, or with fewer than {rule.min_seeds} runs, inconclusive")


def interval(effects: list[float], rule: ClaimRule) -> tuple[float, float, float, int]:
    """Mean of the runs' effects and its percentile bootstrap interval, resampling runs."""
    values = [np.array([v]) for v in effects if np.isfinite(v)]
    s = seed_mean(values, resamples=rule.bootstrap.resamples, seed=rule.bootstrap.seed, level=rule.level)
    return s["mean"], s["ci_low"], s["ci_high"], s["n_seeds"]


def evaluate(tables: Tables, rule: ClaimRule, claims: list[Claim] | None = None) -> pd.DataFrame:
    """Every claim's row of claims.csv: its evidence measured from `tables`, its interval and verdict."""
    rows = []
    for c in CLAIMS if claims is None else claims:
        row = dict(id=c.id, source=c.source, statement=c.statement, effect=c.effect, claimed=f"{c.side} {c.boundary:g}",
                   boundary=c.boundary, rule=rule_text(c.side, c.boundary, rule))
        try:
            e = c.measure(tables)
        except NotMeasured as missing:
            rows.append(dict(row, setting="", estimate=math.nan, ci_low=math.nan, ci_high=math.nan, n=0, unit="",
                             verdict="not measured", note=str(missing), per_run=""))
            continue
        estimate, low, high, n = e.interval if e.interval is not None else interval(list(e.effects.values()), rule)
        rows.append(dict(row, setting=e.setting, estimate=estimate, ci_low=low, ci_high=high, n=n, unit=e.unit,
                         verdict=verdict(low, high, n, c.side, c.boundary, rule.min_seeds), note=e.note,
                         per_run="; ".join(f"{k}: {v:.4g}" for k, v in e.effects.items())))
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


# --- reading the tables ---------------------------------------------------------------------------------------

def table(tables: Tables, name: str) -> pd.DataFrame:
    t = tables.get(name)
    if t is None or t.empty:
        raise NotMeasured(f"results/tables/{name}.csv is empty or was not built")
    return t


def where(t: pd.DataFrame, **equal) -> pd.DataFrame:
    """Rows of `t` whose columns equal the given values (floats compared as floats)."""
    mask = np.ones(len(t), dtype=bool)
    for column, value in equal.items():
        if column not in t:
            raise NotMeasured(f"the table has no column {column!r}")
        mask &= (t[column] == value).to_numpy()
    return t[mask]


def require(effects: dict[str, float], what: str) -> dict[str, float]:
    effects = {k: float(v) for k, v in effects.items() if np.isfinite(v)}
    if not effects:
        raise NotMeasured(f"no run has {what}")
    return effects


def log_ratio(a, b) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log10(np.float64(a) / np.float64(b)))


def label(row, *keys) -> str:
    names = dict(init_scale="α", weight_decay="wd", jacobian_penalty="λ", method="", eps="ε", beta="β", seed="seed ")
    return " ".join(f"{names.get(k, k + ' ')}{row[k]:g}" if isinstance(row[k], float) else f"{names.get(k, k + ' ')}{row[k]}"
                    for k in keys)


def seeds_word(effects: dict) -> str:
    return f"{len(effects)} runs"


# --- grokking (Walker; Omnigrok) --------------------------------------------------------------------------------

def grokked_runs(tables: Tables) -> pd.DataFrame:
    runs = table(tables, "grokking_runs")
    grokked = runs[runs["status"] == "generalised"]
    if grokked.empty:
        raise NotMeasured("no grokking run memorised and then generalised (status 'generalised')")
    return grokked


def checkpoint_medians(tables: Tables, **measure) -> dict[str, float]:
    """Per grokked run: log10 of the generalised over the memorised checkpoint's median radius."""
    summary = where(table(tables, "robustness_summary"), scope="run", **measure)
    effects = {}
    for _, run in grokked_runs(tables).iterrows():
        keys = dict(dataset=run["dataset"], init_scale=run["init_scale"], weight_decay=run["weight_decay"])
        mine = where(summary, **keys)
        mine = mine[mine["seed"].astype(str) == str(run["seed"])]
        medians = mine.set_index("checkpoint")["median"]
        if {"memorised", "generalised"} <= set(medians.index):
            effects[label(run, "init_scale", "weight_decay", "seed")] = log_ratio(medians["generalised"],
                                                                                   medians["memorised"])
    return require(effects, "both checkpoints probed")


def grokking_setting(tables: Tables, runs: pd.DataFrame) -> str:
    datasets = ", ".join(sorted(runs["dataset"].astype(str).unique()))
    return f"{datasets}; Omnigrok's MLP; grokked runs (α, wd) = " + ", ".join(
        sorted({f"({a:g}, {w:g})" for a, w in zip(runs["init_scale"], runs["weight_decay"])}))


@claim("walker_random_radius", "Walker (blog): memorised vs generalised radii",
       "A network that has only memorised is less robust to random noise than the same network once it has "
       "generalised.", "log10(median random-noise radius, generalised / memorised), per run", ">")
def _walker_random(tables: Tables) -> Evidence:
    effects = checkpoint_medians(tables, measure="random", mode="bisection", norm="l2")
    return Evidence(effects, grokking_setting(tables, grokked_runs(tables)) + "; L2 bisection radius")


@claim("walker_adversarial_radius", "Walker (blog), with Xu & Mannor's question",
       "A network that has only memorised is less robust to adversarial perturbations than once it has "
       "generalised.", "log10(median tightest L∞ adversarial radius, generalised / memorised), per run", ">")
def _walker_adversarial(tables: Tables) -> Evidence:
    effects = checkpoint_medians(tables, measure="adversarial", mode="tightest", norm="linf")
    return Evidence(effects, grokking_setting(tables, grokked_runs(tables)) + "; L∞, tightest verified attack")


def generalisation_step(run) -> float:
    """The step a run generalised at; a run stopped before it gives its last step, a lower bound."""
    return run["generalised_step"] if np.isfinite(run["generalised_step"]) else float(run["steps"])


@claim("omnigrok_alpha8_delays", "Omnigrok (Liu et al. 2023), MNIST",
       "With a large initialisation (α = 8) the network memorises long before it generalises (grokking).",
       "log10(generalised step / memorised step) at the largest α, per run", ">", 0.5)
def _omnigrok_delay(tables: Tables) -> Evidence:
    runs = table(tables, "grokking_runs")
    big = runs[runs["init_scale"] == runs["init_scale"].max()]
    effects = {label(r, "weight_decay", "seed"): log_ratio(generalisation_step(r), r["memorised_step"])
               for _, r in big.iterrows() if np.isfinite(r["memorised_step"])}
    note = "a run that never generalised counts with its last step (a lower bound)"
    return Evidence(require(effects, "a memorised checkpoint at the largest α"),
                    grokking_setting(tables, big) + "; boundary 0.5: a delay of at least √10× the memorising time",
                    note=note)


@claim("omnigrok_weight_decay", "Omnigrok (Liu et al. 2023): grokking time ∝ 1/wd",
       "Larger weight decay makes the network generalise sooner.",
       "log10(generalised step at the smallest wd / at the largest wd), α = the largest, paired by seed", ">")
def _omnigrok_wd(tables: Tables) -> Evidence:
    runs = table(tables, "grokking_runs")
    big = runs[runs["init_scale"] == runs["init_scale"].max()]
    low, high = big["weight_decay"].min(), big["weight_decay"].max()
    if low == high:
        raise NotMeasured("the grid runs one weight decay at the largest α")
    effects = {}
    for (dataset, seed), pair in big.groupby(["dataset", "seed"]):
        slow, fast = pair[pair["weight_decay"] == low], pair[pair["weight_decay"] == high]
        if len(slow) and len(fast) and np.isfinite(fast["generalised_step"].iloc[0]):
            effects[f"seed {seed}"] = log_ratio(generalisation_step(slow.iloc[0]), fast["generalised_step"].iloc[0])
    return Evidence(require(effects, "generalised at the largest wd"),
                    grokking_setting(tables, big) + f"; wd {low:g} vs {high:g}",
                    note="a run that never generalised counts with its last step (a lower bound)")


@claim("omnigrok_alpha1_no_delay", "Omnigrok (Liu et al. 2023), MNIST",
       "At the standard initialisation (α = 1) there is no grokking delay: the network generalises no later than "
       "it memorises.", "generalised step − memorised step at α = 1 (steps), per run", "<=")
def _omnigrok_alpha1(tables: Tables) -> Evidence:
    runs = table(tables, "grokking_runs")
    small = runs[runs["init_scale"] == 1]
    if small.empty:
        raise NotMeasured("the grid has no α = 1 group")
    effects = {}
    for _, r in small.iterrows():
        if not np.isfinite(r["generalised_step"]):
            continue
        memorised = r["memorised_step"] if np.isfinite(r["memorised_step"]) else r["steps"]
        effects[label(r, "weight_decay", "seed")] = float(r["generalised_step"] - memorised)
    return Evidence(require(effects, "generalised at α = 1"), grokking_setting(tables, small),
                    note="a run that never memorised counts with its last step as the memorised step")


# --- sensitivity (Novak et al. 2018) ----------------------------------------------------------------------------

def sensitivity_ratio(tables: Tables, metric: str, numerator: str, denominator: str) -> tuple[dict, str]:
    summary = where(table(tables, "sensitivity_summary"), scope="run", checkpoint="generalised", metric=metric)
    effects = {}
    for keys, run in summary.groupby(["dataset", "init_scale", "weight_decay", "seed"]):
        values = run.set_index("where")["mean"]
        if {numerator, denominator} <= set(values.index):
            effects[f"α{keys[1]:g} wd{keys[2]:g} seed {keys[3]}"] = log_ratio(values[numerator], values[denominator])
    datasets = ", ".join(sorted(summary["dataset"].astype(str).unique()))
    return require(effects, f"{metric} at the generalised checkpoint"), \
        f"{datasets}; Omnigrok's MLP; generalised checkpoint of every run"


@claim("novak_different_class", "Novak et al. 2018, §4 (trajectories between points)",
       "The function is less stable between points of different classes than of the same class: more "
       "linear-region transitions per unit length along ellipses through them.",
       "log10(transition density, different-class / same-class ellipses), per run", ">")
def _novak_classes(tables: Tables) -> Evidence:
    return Evidence(*sensitivity_ratio(tables, "transition_density", "different_class", "same_class"))


@claim("novak_training_points", "Novak et al. 2018, §4 (sensitivity on and off the data)",
       "Training points sit where the function is less sensitive: the input–output Jacobian norm is smaller at "
       "training points than at test points.",
       "log10(mean Jacobian norm, test points / training points), per run", ">")
def _novak_training(tables: Tables) -> Evidence:
    return Evidence(*sensitivity_ratio(tables, "jacobian_norm", "test_points", "train_points"))


def correlation_evidence(tables: Tables, scope: str) -> Evidence:
    corr = where(table(tables, "capacity_correlations"), scope=scope, x="jacobian_test", y="gap_acc")
    if corr.empty or not np.isfinite(corr["pearson"].iloc[0]):
        raise NotMeasured(f"no {scope.replace('_', '-')} correlation of the Jacobian norm with the gap")
    r = corr.iloc[0]
    sweep = table(tables, "capacity_sweep")
    setting = (f"{sweep['dataset'].iloc[0]}; {len(sweep)} fully-connected networks "
               f"(widths {sorted(sweep['width'].unique().tolist())}, depths {sorted(sweep['depth'].unique().tolist())}, "
               f"lrs {sorted(sweep['lr'].unique().tolist())}, {sweep['seed'].nunique()} seeds)")
    return Evidence({}, setting, unit="networks (bootstrap over configurations)",
                    interval=(r["pearson"], r["pearson_ci_low"], r["pearson_ci_high"], int(r["n"])),
                    note=f"Pearson r of log10 Jacobian norm with the accuracy gap ({scope.replace('_', ' ')})")


@claim("novak_jacobian_gap", "Novak et al. 2018, Figure 1",
       "Across networks of different capacity, the Jacobian norm at test points correlates with the "
       "generalisation gap.", "Pearson r(log10 Jacobian norm at test points, train − test accuracy)", ">")
def _novak_gap(tables: Tables) -> Evidence:
    return correlation_evidence(tables, "all")


@claim("study_jacobian_gap_within", "this study (capacity sweep)",
       "Within one architecture (networks differing only in seed and learning rate), the Jacobian norm still "
       "correlates with the generalisation gap.", "Pearson r within architectures", ">")
def _within(tables: Tables) -> Evidence:
    return correlation_evidence(tables, "within_architecture")


# --- adversarial training and catastrophic overfitting (Ortiz-Jiménez et al.; Wong et al.) -----------------------

def adversarial_runs(tables: Tables, beta: float | None = 0.0) -> pd.DataFrame:
    runs = table(tables, "adversarial_runs")
    return runs if beta is None else runs[runs["beta"] == beta]


def co_flag(runs: pd.DataFrame) -> pd.Series:
    """Catastrophic overfitting as the stage's rule decides it (a collapse; `no_gain` is not CO)."""
    if "co_verdict" in runs:
        return runs["co_verdict"] == "collapse"
    return runs["co"].astype(bool)


def adversarial_setting(runs: pd.DataFrame, extra: str = "") -> str:
    model = f"{runs['model'].iloc[0]}; " if "model" in runs else ""
    return (f"{runs['dataset'].iloc[0]}; {model}ε ∈ {{{', '.join(f'{e:g}' for e in sorted(runs['eps'].unique()))}}}; "
            f"{runs['seed'].nunique()} seeds{extra}")


def co_rate_difference(tables: Tables, more: str, fewer: str) -> Evidence:
    """Per seed: the share of the ε grid at which `more` collapses minus the share at which `fewer` does, over
    the ε both were trained at."""
    runs = adversarial_runs(tables)
    have = set(runs["method"])
    for method in (more, fewer):
        if method not in have:
            raise NotMeasured(f"adversarial.methods does not include {method}")
    both = sorted(set(runs[runs["method"] == more]["eps"]) & set(runs[runs["method"] == fewer]["eps"]))
    runs = runs[runs["eps"].isin(both)].assign(collapse=co_flag(runs[runs["eps"].isin(both)]).astype(float))
    effects = {}
    for seed, mine in runs.groupby("seed"):
        rate = mine.groupby("method")["collapse"].mean()
        if more in rate and fewer in rate:
            effects[f"seed {seed}"] = float(rate[more] - rate[fewer])
    compared = runs[runs["method"].isin([more, fewer])]
    note = ""
    if "co_wong" in compared:
        wong = compared["co_wong"].astype(bool)
        note = (f"CO by our rule in {int(compared['collapse'].sum())} of {len(compared)} runs, by Wong et al.'s "
                f"rule in {int(wong.sum())} ({int((wong & compared['collapse'].astype(bool)).sum())} by both)")
    return Evidence(require(effects, f"both {more} and {fewer}"),
                    adversarial_setting(compared, f"; {more} vs {fewer}"), note=note)


@claim("ortiz_fgsm_vs_pgd", "Ortiz-Jiménez et al.; Wong et al. 2020",
       "Single-step FGSM training overfits catastrophically at radii where multi-step PGD training does not.",
       "share of the ε grid with CO, FGSM − PGD, per seed", ">")
def _fgsm_pgd(tables: Tables) -> Evidence:
    return co_rate_difference(tables, "fgsm", "pgd")


@claim("wong_rs_fgsm", "Wong et al. 2020 (\"Fast is better than free\")",
       "A random start (RS-FGSM) postpones catastrophic overfitting: fewer radii collapse than with plain FGSM.",
       "share of the ε grid with CO, FGSM − RS-FGSM, per seed", ">")
def _rs_fgsm(tables: Tables) -> Evidence:
    return co_rate_difference(tables, "fgsm", "rs_fgsm")


@claim("de_jorge_n_fgsm", "de Jorge et al. 2022 (N-FGSM)",
       "Noise of twice the radius without projection (N-FGSM) avoids catastrophic overfitting where FGSM shows it.",
       "share of the ε grid with CO, FGSM − N-FGSM, per seed", ">")
def _n_fgsm(tables: Tables) -> Evidence:
    return co_rate_difference(tables, "fgsm", "n_fgsm")


@claim("ortiz_feature", "Ortiz-Jiménez et al. (injected feature β·v_y)",
       "Adding an easily learned class feature β·v_y to the images makes catastrophic overfitting appear at a "
       "radius where the clean data shows less of it.",
       "CO at the largest β − CO at β = 0 (feature method and ε), per seed", ">")
def _feature(tables: Tables) -> Evidence:
    runs = adversarial_runs(tables, beta=None)
    betas = sorted(runs["beta"].unique())
    if len(betas) < 2 or 0 not in betas:
        raise NotMeasured("the feature sweep needs β = 0 and a β > 0")
    swept = runs[runs["beta"] > 0]
    method, eps = swept["method"].iloc[0], swept["eps"].iloc[0]
    mine = runs[(runs["method"] == method) & (runs["eps"] == eps)]
    mine = mine.assign(collapse=co_flag(mine).astype(float))
    effects = {}
    for seed, pair in mine.groupby("seed"):
        by_beta = pair.set_index("beta")["collapse"]
        if 0 in by_beta and betas[-1] in by_beta:
            effects[f"seed {seed}"] = float(by_beta[betas[-1]] - by_beta[0])
    return Evidence(require(effects, "β = 0 and the largest β"),
                    f"{mine['dataset'].iloc[0]}; {method} at ε = {eps:g}; β {betas[-1]:g} vs 0; "
                    f"{mine['seed'].nunique()} seeds")


@claim("andriushchenko_alignment", "Andriushchenko & Flammarion 2020 (GradAlign)",
       "Gradient alignment falls when a single-step run overfits catastrophically: lower after the collapse "
       "than at the best network before it.",
       "alignment after − alignment before the collapse, per collapsed run", "<")
def _alignment(tables: Tables) -> Evidence:
    runs = adversarial_runs(tables, beta=None)
    collapsed = runs[co_flag(runs)]
    if collapsed.empty:
        raise NotMeasured("no adversarial run collapsed")
    effects = {label(r, "method", "eps", "beta", "seed"): r["alignment_after"] - r["alignment_before"]
               for _, r in collapsed.iterrows()}
    return Evidence(require(effects, "alignment logged"), adversarial_setting(collapsed, "; collapsed runs"),
                    unit="collapsed runs")


@claim("study_robust_less_sensitive", "this study (robust training and Novak's sensitivity)",
       "PGD-trained networks are less sensitive than standard ones: a smaller Jacobian norm at test points.",
       "log10(median Jacobian norm, PGD at the largest ε / standard), final networks, per seed", "<")
def _robust_sensitivity(tables: Tables) -> Evidence:
    probes = where(table(tables, "adversarial_probes"), network="final", measure="jacobian_norm", beta=0.0)
    pgd = probes[probes["method"] == "pgd"]
    standard = probes[probes["method"] == "standard"]
    if pgd.empty or standard.empty:
        raise NotMeasured("adversarial.methods needs standard and pgd")
    pgd = pgd[pgd["eps"] == pgd["eps"].max()]
    effects = {}
    for seed in sorted(set(pgd["seed"]) & set(standard["seed"])):
        effects[f"seed {seed}"] = log_ratio(pgd[pgd["seed"] == seed]["median"].iloc[0],
                                            standard[standard["seed"] == seed]["median"].iloc[0])
    return Evidence(require(effects, "both networks probed"),
                    f"{probes['dataset'].iloc[0]}; PGD at ε = {pgd['eps'].iloc[0]:g} vs standard; {len(effects)} seeds")


# --- robust vs standard representations (Cianfarani et al. 2022) ------------------------------------------------

def structure_per_seed(tables: Tables, network: str, column: str, inputs: str = "benign") -> dict:
    t = where(table(tables, "representation_structure"), inputs=inputs, network=network)
    if t.empty:
        raise NotMeasured(f"the representation stage compared no {network} network on {inputs} inputs")
    return {int(seed): float(v) for seed, v in zip(t["seed"], t[column])}


def representation_setting(tables: Tables, extra: str = "") -> str:
    t = table(tables, "representation_structure")
    return (f"{t['dataset'].iloc[0]}; {t['model'].iloc[0]}; debiased linear CKA on benign test images; "
            f"{t['seed'].nunique()} seeds{extra}")


def robust_minus_standard(tables: Tables, column: str) -> Evidence:
    robust, standard = structure_per_seed(tables, "pgd", column), structure_per_seed(tables, "standard", column)
    effects = {f"seed {s}": robust[s] - standard[s] for s in sorted(set(robust) & set(standard))}
    return Evidence(require(effects, "a standard and a PGD network"),
                    representation_setting(tables, "; PGD vs standard of the same seed (the seed's untrained "
                                                   "control cancels)"))


@claim("study_standard_block_structure", "Nguyen et al. 2021 (premise of Cianfarani et al.)",
       "Standard training builds block structure beyond what the untrained network of the same seed already has.",
       "block index (adjacent − far layer CKA) of the standard network − its untrained control, per seed", ">")
def _block_exists(tables: Tables) -> Evidence:
    effects = structure_per_seed(tables, "standard", "block_index_minus_untrained")
    return Evidence({f"seed {k}": v for k, v in effects.items()}, representation_setting(tables))


@claim("cianfarani_block_structure", "Cianfarani et al. 2022, Figs. 1–2",
       "Robust (PGD-trained) networks lose the block structure of standard networks.",
       "block index (control-subtracted) of the PGD network − of the standard network, per seed", "<")
def _block_lost(tables: Tables) -> Evidence:
    return robust_minus_standard(tables, "block_index_minus_untrained")


@claim("cianfarani_long_range", "Cianfarani et al. 2022 (lack of specialisation)",
       "Robust networks stay similar across long ranges of layers: far-apart layers are more alike than in "
       "standard networks.", "mean CKA of layers at least half the depth apart, PGD − standard, per seed", ">")
def _long_range(tables: Tables) -> Evidence:
    return robust_minus_standard(tables, "far_minus_untrained")


@claim("cianfarani_overfitting_deep", "Cianfarani et al. 2022 (robust overfitting)",
       "Overfitting during adversarial training changes mostly the deeper layers.",
       "change (1 − CKA, best vs final network) of the deep half − of the shallow half, runs that collapsed", ">")
def _overfitting_deep(tables: Tables) -> Evidence:
    summary = where(table(tables, "representation_summary"), measure="overfit_deep_minus_shallow", statistic="co")
    summary = summary[summary["n_seeds"] > 0]
    if summary.empty:
        raise NotMeasured("no representation run (FGSM or PGD) collapsed after its best network")
    r = summary.sort_values("n_seeds").iloc[-1]
    return Evidence({}, representation_setting(tables, f"; {r['network']} runs with CO"), unit="collapsed runs",
                    interval=(r["estimate"], r["ci_low"], r["ci_high"], int(r["n_seeds"])),
                    note=f"baseline (best vs final without CO): {r['baseline_estimate']:.3g} "
                         f"[{r['baseline_ci_low']:.3g}, {r['baseline_ci_high']:.3g}]")


# --- delayed robustness (Humayun et al. 2024; GrokAlign) -----------------------------------------------------------

def long_runs(tables: Tables) -> pd.DataFrame:
    onsets = table(tables, "delayed_onsets")
    plain = onsets[onsets["jacobian_penalty"] == 0]
    long = plain[plain["final_step"] == plain["final_step"].max()]
    long = long[long["status"] == "generalised"]
    if long.empty:
        raise NotMeasured("no long run (trained to grokking.max_steps) memorised and then generalised")
    return long


def delayed_setting(runs: pd.DataFrame, extra: str = "") -> str:
    groups = sorted({f"α {a:g}, wd {w:g}" for a, w in zip(runs["init_scale"], runs["weight_decay"])})
    return f"{runs['dataset'].iloc[0]}; Omnigrok's MLP; {'; '.join(groups)}; {len(runs)} runs{extra}"


def fall_rise_fall(tables: Tables, count: str) -> Evidence:
    runs = long_runs(tables)
    effects = {f"seed {r['seed']}": float(bool(r[f"{count}_fall_rise_fall"])) for _, r in runs.iterrows()}
    return Evidence(effects, delayed_setting(runs, "; trained to max_steps"))


@claim("humayun_fall_rise_fall", "Humayun et al. 2024, local complexity through training",
       "Local complexity at training points falls, rises, then falls again over a long run (hidden layers).",
       "share of long runs whose hidden-layer curve is fall–rise–fall", ">", 0.5)
def _fall_rise_fall(tables: Tables) -> Evidence:
    return fall_rise_fall(tables, "lc")


@claim("humayun_fall_rise_fall_reference", "Humayun et al. 2024, counted as their code counts (output layer too)",
       "Local complexity at training points falls, rises, then falls again, counting the output layer's units as "
       "the reference code does.", "share of long runs whose curve (output layer included) is fall–rise–fall",
       ">", 0.5)
def _fall_rise_fall_reference(tables: Tables) -> Evidence:
    return fall_rise_fall(tables, "lc_with_output")


@claim("humayun_robust_after_generalising", "Humayun et al. 2024 (delayed robustness)",
       "Adversarial robustness arrives after generalisation.",
       "log10(robustness-onset step / generalised step), per long run", ">")
def _robust_after(tables: Tables) -> Evidence:
    runs = long_runs(tables)
    effects = {f"seed {r['seed']}": log_ratio(r["robust_onset_step"], r["generalised_step"]) for _, r in runs.iterrows()}
    return Evidence(require(effects, "a robustness onset"), delayed_setting(runs))


@claim("humayun_robust_in_final_descent", "Humayun et al. 2024 (region migration)",
       "Robustness arrives during the final descent of local complexity, not before it.",
       "robustness-onset step − start of the final local-complexity descent (steps), per long run", ">=")
def _robust_in_descent(tables: Tables) -> Evidence:
    runs = long_runs(tables)
    descent = "lc_descent_step"
    effects = {f"seed {r['seed']}": float(r["robust_onset_step"] - r[descent]) for _, r in runs.iterrows()}
    return Evidence(require(effects, "a robustness onset and a final descent"), delayed_setting(runs))


def penalised_pairs(tables: Tables, column: str) -> tuple[dict, pd.DataFrame]:
    onsets = table(tables, "delayed_onsets")
    penalised = onsets[onsets["jacobian_penalty"] > 0]
    if penalised.empty:
        raise NotMeasured("grokking.jacobian_penalties is empty")
    effects = {}
    for _, r in penalised.iterrows():
        twin = onsets[(onsets["jacobian_penalty"] == 0) & (onsets["seed"] == r["seed"]) & (onsets["init_scale"] == r["init_scale"])
                      & (onsets["weight_decay"] == r["weight_decay"]) & (onsets["dataset"] == r["dataset"])]
        if len(twin):
            effects[f"λ {r['jacobian_penalty']:g} seed {r['seed']}"] = log_ratio(r[column], twin[column].iloc[0])
    return effects, penalised


@claim("grokalign_generalises_sooner", "Walker, Humayun et al. 2025 (GrokAlign)",
       "Regularising the input Jacobian makes the network generalise sooner.",
       "log10(generalised step with the penalty / without), paired by seed (same initialisation and batches)", "<")
def _grokalign_generalisation(tables: Tables) -> Evidence:
    effects, penalised = penalised_pairs(tables, "generalised_step")
    return Evidence(require(effects, "generalised with and without the penalty"), delayed_setting(penalised))


@claim("grokalign_robust_sooner", "Walker, Humayun et al. 2025 (GrokAlign)",
       "Regularising the input Jacobian makes the network robust sooner: at generalisation it is already more "
       "robust than without the penalty.",
       "log10(adversarial radius at the generalised checkpoint, with the penalty / without), paired by seed", ">")
def _grokalign_robustness(tables: Tables) -> Evidence:
    effects, penalised = penalised_pairs(tables, "generalised_radius")
    return Evidence(require(effects, "a generalised checkpoint with and without the penalty"),
                    delayed_setting(penalised))
