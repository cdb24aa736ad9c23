"""The study's conclusions as code (docs/protocols.md §11).

A claim is a one-line statement from a source document (or from this study) and a small function of the
finished tables that measures it: one effect per seed, the unit of replication, or a ready interval where the
unit is not a seed (a correlation across the capacity sweep's networks, resampled by configuration). `evaluate` turns that evidence into an estimate, an interval and a verdict by one rule,
written down before any result was looked at:

- the effect of each claim is reduced to one number per seed (runs of one seed in several groups share their
  initialisation and batch order, so they are averaged first); the estimate is the mean over seeds and its
  interval the Student-t interval over seeds (claims.level): with 3-5 seeds a percentile bootstrap of the mean
  covers far less than its nominal level (with 3 seeds it is the range of the seeds);
- **supported**: the whole interval lies on the claim's side of its boundary (strictly, for a strict claim);
- **contradicted**: the whole interval lies on the other side (the boundary itself counts against a strict
  claim);
- **inconclusive**: the interval reaches across the boundary, fewer than claims.min_seeds seeds measured it,
  or the claim's premise (another claim) is not supported;
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

from scipy import stats

from ..settings import ClaimRule

Tables = dict[str, pd.DataFrame]
VERDICTS = ("supported", "contradicted", "inconclusive", "not measured")
CLAIM_COLUMNS = ("id", "source", "statement", "setting", "effect", "claimed", "boundary", "estimate", "ci_low",
                 "ci_high", "n", "unit", "verdict", "rule", "note", "per_seed")


class NotMeasured(Exception):
    """The study did not run what a claim needs; the message says what."""


@dataclass(frozen=True)
class Evidence:
    """What a claim's function measured: one effect per seed (label -> value), or `interval`
    (estimate, low, high, n) where the table already holds an interval over the right unit."""

    effects: dict[str, float]
    setting: str
    unit: str = "seeds"
    interval: tuple[float, float, float, int] | None = None
    note: str = ""


def by_seed(values: list[tuple[object, float]], what: str) -> tuple[dict[str, float], str]:
    """One effect per seed from (seed, effect) pairs: the finite effects of a seed averaged (its runs in several
    groups are not independent), rounded to 12 significant digits so that a rate difference meant to be 0 is 0 on
    every machine. The note says how many runs had no finite effect and were left out."""
    kept: dict[str, list[float]] = {}
    left_out = 0
    for seed, value in values:
        if value is None or not np.isfinite(value):
            left_out += 1
            continue
        kept.setdefault(f"seed {seed}", []).append(float(value))
    if not kept:
        raise NotMeasured(f"no run has {what}")
    effects = {k: float(f"{np.mean(v):.12g}") for k, v in kept.items()}
    note = f"{left_out} of {len(values)} runs left out (no {what})" if left_out else ""
    return effects, note


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    statement: str
    effect: str
    side: str  # the claimed side of the boundary: ">", ">=", "<", "<="
    boundary: float
    measure: Callable[[Tables], Evidence] = field(repr=False)
    premise: str | None = None  # the id of a claim that must be supported for this one to be decided


CLAIMS: list[Claim] = []


def claim(id: str, source: str, statement: str, effect: str, side: str, boundary: float = 0.0,
          premise: str | None = None):
    """Register a claim's measuring function (the decorator keeps the registry and the code side by side)."""
    if side not in (">", ">=", "<", "<="):
        raise ValueError(f"claim {id}: side must be one of >, >=, <, <=; got {side!r}")

    def register(measure: Callable[[Tables], Evidence]) -> Callable[[Tables], Evidence]:
        if any(c.id == id for c in CLAIMS):
            raise ValueError(f"claim id {id!r} registered twice")
        CLAIMS.append(Claim(id, source, statement, effect, side, boundary, measure, premise))
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
            f"{boundary:g}; otherwise, or with fewer than {rule.min_seeds} seeds, inconclusive")


def interval(effects: list[float], level: float) -> tuple[float, float, float, int]:
    """Mean of the seeds' effects and its Student-t interval over seeds (NaN with fewer than 2 seeds)."""
    values = np.array([v for v in effects if np.isfinite(v)], dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, float(f"{mean - half:.12g}"), float(f"{mean + half:.12g}"), n


def evaluate(tables: Tables, rule: ClaimRule, claims: list[Claim] | None = None) -> pd.DataFrame:
    """Every claim's row of claims.csv: its evidence measured from `tables`, its interval and verdict."""
    rows, verdicts = [], {}
    for c in CLAIMS if claims is None else claims:
        row = dict(id=c.id, source=c.source, statement=c.statement, effect=c.effect, claimed=f"{c.side} {c.boundary:g}",
                   boundary=c.boundary, rule=rule_text(c.side, c.boundary, rule))
        try:
            e = c.measure(tables)
        except NotMeasured as missing:
            verdicts[c.id] = "not measured"
            rows.append(dict(row, setting="", estimate=math.nan, ci_low=math.nan, ci_high=math.nan, n=0, unit="",
                             verdict="not measured", note=str(missing), per_seed=""))
            continue
        estimate, low, high, n = e.interval if e.interval is not None else interval(list(e.effects.values()),
                                                                                   rule.level)
        decided = verdict(low, high, n, c.side, c.boundary, rule.min_seeds)
        note = e.note
        if c.premise is not None and verdicts.get(c.premise) != "supported":
            decided = "inconclusive"
            note = "; ".join(x for x in (f"its premise {c.premise} is not supported", note) if x)
        verdicts[c.id] = decided
        rows.append(dict(row, setting=e.setting, estimate=estimate, ci_low=low, ci_high=high, n=n, unit=e.unit,
                         verdict=decided, note=note,
                         per_seed="; ".join(f"{k}: {v:.4g}" for k, v in e.effects.items())))
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


def log_ratio(a, b) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log10(np.float64(a) / np.float64(b)))


def finished(step, last) -> float:
    """The step a run reached a checkpoint at; a run that never did counts with its last step (censored: the
    true step lies beyond it)."""
    return float(step) if np.isfinite(step) else float(last)


def censored_note(count: int, total: int, what: str) -> str:
    return f"{count} of {total} runs never {what} and count with their last step (censored)" if count else ""


def join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


# --- grokking (Walker; Omnigrok) --------------------------------------------------------------------------------

def grokked_runs(tables: Tables) -> pd.DataFrame:
    runs = table(tables, "grokking_runs")
    grokked = runs[runs["status"] == "generalised"]
    if grokked.empty:
        raise NotMeasured("no grokking run memorised and then generalised (status 'generalised')")
    return grokked


def grokking_setting(runs: pd.DataFrame, extra: str = "") -> str:
    datasets = ", ".join(sorted(runs["dataset"].astype(str).unique()))
    groups = ", ".join(sorted({f"({a:g}, {w:g})" for a, w in zip(runs["init_scale"], runs["weight_decay"])}))
    return f"{datasets}; Omnigrok's MLP; (α, wd) = {groups}; {runs['seed'].nunique()} seeds{extra}"


def paired_radius_ratio(tables: Tables, **measure) -> Evidence:
    """Per seed: log10 of the generalised over the memorised checkpoint's median radius over the images both
    networks classify correctly (the paired ratio, docs/protocols.md §10), averaged over the seed's grokked runs."""
    summary = where(table(tables, "robustness_summary"), scope="run", checkpoint="generalised", **measure)
    grokked = grokked_runs(tables)
    values = []
    for _, run in grokked.iterrows():
        mine = where(summary, dataset=run["dataset"], init_scale=run["init_scale"], weight_decay=run["weight_decay"])
        mine = mine[mine["seed"].astype(str) == str(run["seed"])]
        values.append((run["seed"], float(np.log10(mine["paired_ratio"].iloc[0])) if len(mine) else math.nan))
    effects, note = by_seed(values, "a finite paired radius ratio")
    return Evidence(effects, grokking_setting(grokked), note=note)


@claim("walker_random_radius", "Walker (blog): memorised vs generalised radii",
       "A network that has only memorised is less robust to random noise than the same network once it has "
       "generalised.", "log10(paired median random-noise L2 radius, generalised / memorised), per seed", ">")
def _walker_random(tables: Tables) -> Evidence:
    return paired_radius_ratio(tables, measure="random", mode="bisection", norm="l2")


@claim("walker_adversarial_radius", "Walker (blog), with Xu & Mannor's question",
       "A network that has only memorised is less robust to adversarial perturbations than once it has "
       "generalised.", "log10(paired median tightest L∞ adversarial radius, generalised / memorised), per seed", ">")
def _walker_adversarial(tables: Tables) -> Evidence:
    return paired_radius_ratio(tables, measure="adversarial", mode="tightest", norm="linf")


@claim("omnigrok_alpha8_delays", "Omnigrok (Liu et al. 2023), MNIST",
       "With a large initialisation (α = 8) the network memorises long before it generalises (grokking).",
       "log10(generalised step / memorised step) at the largest α, per seed", ">", 0.5)
def _omnigrok_delay(tables: Tables) -> Evidence:
    runs = table(tables, "grokking_runs")
    big = runs[runs["init_scale"] == runs["init_scale"].max()]
    effects, note = by_seed([(r["seed"], log_ratio(finished(r["generalised_step"], r["steps"]), r["memorised_step"]))
                             for _, r in big.iterrows()], "memorised checkpoint")
    censored = int(big["generalised_step"].isna().sum())
    return Evidence(effects, grokking_setting(big, "; boundary 0.5: at least √10× the memorising time"),
                    note=join(note, censored_note(censored, len(big), "generalised")))


@claim("omnigrok_weight_decay", "Omnigrok (Liu et al. 2023): grokking time ∝ 1/wd",
       "Larger weight decay makes the network generalise sooner.",
       "log10(generalised step at the smallest wd / at the largest wd), largest α, paired by seed", ">")
def _omnigrok_wd(tables: Tables) -> Evidence:
    runs = table(tables, "grokking_runs")
    big = runs[runs["init_scale"] == runs["init_scale"].max()]
    low, high = big["weight_decay"].min(), big["weight_decay"].max()
    if low == high:
        raise NotMeasured("the grid runs one weight decay at the largest α")
    values = []
    for (_, seed), pair in big.groupby(["dataset", "seed"]):
        slow, fast = pair[pair["weight_decay"] == low], pair[pair["weight_decay"] == high]
        if len(slow) and len(fast):
            s, f = slow.iloc[0], fast.iloc[0]
            values.append((seed, log_ratio(finished(s["generalised_step"], s["steps"]),
                                           finished(f["generalised_step"], f["steps"]))))
    effects, note = by_seed(values, "both weight decays")
    censored = int(big[big["weight_decay"].isin([low, high])]["generalised_step"].isna().sum())
    return Evidence(effects, grokking_setting(big, f"; wd {low:g} vs {high:g}"),
                    note=join(note, censored_note(censored, len(big), "generalised")))


@claim("omnigrok_alpha1_no_delay", "Omnigrok (Liu et al. 2023), MNIST",
       "At the standard initialisation (α = 1) there is no grokking delay: the network generalises no later than "
       "it memorises.", "generalised step − memorised step at α = 1 (steps), per seed", "<=")
def _omnigrok_alpha1(tables: Tables) -> Evidence:
    runs = table(tables, "grokking_runs")
    small = runs[runs["init_scale"] == 1]
    if small.empty:
        raise NotMeasured("the grid has no α = 1 group")
    values = [(r["seed"], finished(r["generalised_step"], r["steps"]) - finished(r["memorised_step"], r["steps"]))
              for _, r in small.iterrows()]
    effects, note = by_seed(values, "checkpoint")
    censored = int(small["generalised_step"].isna().sum() + small["memorised_step"].isna().sum())
    return Evidence(effects, grokking_setting(small),
                    note=join(note, f"{censored} checkpoints never reached count with the run's last step"
                              if censored else ""))


# --- sensitivity (Novak et al. 2018) ----------------------------------------------------------------------------

def sensitivity_ratio(tables: Tables, metric: str, numerator: str, denominator: str) -> Evidence:
    summary = where(table(tables, "sensitivity_summary"), scope="run", checkpoint="generalised", metric=metric)
    values = []
    for (_, _, _, seed), run in summary.groupby(["dataset", "init_scale", "weight_decay", "seed"]):
        means = run.set_index("where")["mean"]
        values.append((seed, log_ratio(means.get(numerator, math.nan), means.get(denominator, math.nan))))
    effects, note = by_seed(values, f"{metric} at both kinds of points")
    return Evidence(effects, grokking_setting(summary, "; generalised checkpoint of every run"), note=note)


@claim("novak_different_class", "Novak et al. 2018, §4 (trajectories between points)",
       "The function is less stable between points of different classes than of the same class: more "
       "linear-region transitions per unit length along ellipses through them.",
       "log10(transition density, different-class / same-class ellipses), per seed", ">")
def _novak_classes(tables: Tables) -> Evidence:
    return sensitivity_ratio(tables, "transition_density", "different_class", "same_class")


@claim("novak_training_points", "Novak et al. 2018, §4 (sensitivity on and off the data)",
       "Training points sit where the function is less sensitive: the input–output Jacobian norm is smaller at "
       "training points than at test points.",
       "log10(mean Jacobian norm, test points / training points), per seed", ">")
def _novak_training(tables: Tables) -> Evidence:
    return sensitivity_ratio(tables, "jacobian_norm", "test_points", "train_points")


def correlation_evidence(tables: Tables, scope: str) -> Evidence:
    corr = where(table(tables, "capacity_correlations"), scope=scope, x="jacobian_test", y="gap_acc")
    if corr.empty or not np.isfinite(corr["pearson"].iloc[0]):
        raise NotMeasured(f"no {scope.replace('_', '-')} correlation of the Jacobian norm with the gap")
    r = corr.iloc[0]
    sweep = table(tables, "capacity_sweep")
    configurations = len(sweep.drop_duplicates(["width", "depth", "optimizer", "lr", "batch_size"]))
    setting = (f"{sweep['dataset'].iloc[0]}; {len(sweep)} fully-connected networks, {configurations} configurations "
               f"(widths {sorted(sweep['width'].unique().tolist())}, depths {sorted(sweep['depth'].unique().tolist())}, "
               f"lrs {sorted(sweep['lr'].unique().tolist())}) × {sweep['seed'].nunique()} seeds")
    return Evidence({}, setting, unit="configurations (bootstrap over configurations, §10)",
                    interval=(r["pearson"], r["pearson_ci_low"], r["pearson_ci_high"], configurations),
                    note=f"Pearson r of log10 Jacobian norm with the accuracy gap over {int(r['n'])} networks "
                         f"({scope.replace('_', ' ')}); n counts configurations, the unit resampled")


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


def collapses(runs: pd.DataFrame) -> pd.Series:
    """1 where the stage's rule found catastrophic overfitting (a collapse; `no_gain` is not CO), else 0."""
    flag = runs["co_verdict"] == "collapse" if "co_verdict" in runs else runs["co"].astype(bool)
    return flag.astype(int)


def adversarial_setting(runs: pd.DataFrame, extra: str = "") -> str:
    model = f"{runs['model'].iloc[0]}; " if "model" in runs else ""
    return (f"{runs['dataset'].iloc[0]}; {model}ε ∈ {{{', '.join(f'{e:g}' for e in sorted(runs['eps'].unique()))}}}; "
            f"{runs['seed'].nunique()} seeds{extra}")


def co_count_difference(tables: Tables, more: str, fewer: str) -> Evidence:
    """Per seed: the share of the ε grid at which `more` collapses minus the share at which `fewer` does, over
    the ε both were trained at (from integer counts, so that equal counts give exactly 0)."""
    runs = adversarial_runs(tables)
    for method in (more, fewer):
        if method not in set(runs["method"]):
            raise NotMeasured(f"adversarial.methods does not include {method}")
    both = sorted(set(runs[runs["method"] == more]["eps"]) & set(runs[runs["method"] == fewer]["eps"]))
    compared = runs[runs["eps"].isin(both) & runs["method"].isin([more, fewer])]
    compared = compared.assign(collapse=collapses(compared))
    values = []
    for seed, mine in compared.groupby("seed"):
        count = mine.groupby("method")["collapse"].sum()
        if len(count) == 2:
            values.append((seed, (int(count[more]) - int(count[fewer])) / len(both)))
    effects, note = by_seed(values, f"both {more} and {fewer}")
    if "co_wong" in compared:
        wong = compared["co_wong"].astype(bool)
        ours = compared["collapse"].astype(bool)
        note = join(note, f"CO by our rule in {int(ours.sum())} of {len(compared)} runs, by Wong et al.'s rule in "
                          f"{int(wong.sum())} ({int((wong & ours).sum())} by both)")
    return Evidence(effects, adversarial_setting(compared, f"; {more} vs {fewer}"), note=note)


@claim("ortiz_fgsm_vs_pgd", "Ortiz-Jiménez et al.; Wong et al. 2020",
       "Single-step FGSM training overfits catastrophically at radii where multi-step PGD training does not.",
       "share of the ε grid with CO, FGSM − PGD, per seed", ">")
def _fgsm_pgd(tables: Tables) -> Evidence:
    return co_count_difference(tables, "fgsm", "pgd")


@claim("wong_rs_fgsm", "Wong et al. 2020 (\"Fast is better than free\")",
       "A random start (RS-FGSM) postpones catastrophic overfitting: fewer radii collapse than with plain FGSM.",
       "share of the ε grid with CO, FGSM − RS-FGSM, per seed", ">")
def _rs_fgsm(tables: Tables) -> Evidence:
    return co_count_difference(tables, "fgsm", "rs_fgsm")


@claim("de_jorge_n_fgsm", "de Jorge et al. 2022 (N-FGSM)",
       "Noise of twice the radius without projection (N-FGSM) avoids catastrophic overfitting where FGSM shows it.",
       "share of the ε grid with CO, FGSM − N-FGSM, per seed", ">")
def _n_fgsm(tables: Tables) -> Evidence:
    return co_count_difference(tables, "fgsm", "n_fgsm")


@claim("ortiz_feature", "Ortiz-Jiménez et al. (injected feature β·v_y)",
       "Adding an easily learned class feature β·v_y to the images makes catastrophic overfitting more frequent at "
       "a radius where the clean data shows less of it.",
       "share of the β > 0 runs with CO − CO at β = 0 (the feature's method and ε), per seed", ">")
def _feature(tables: Tables) -> Evidence:
    runs = adversarial_runs(tables, beta=None)
    swept = runs[runs["beta"] > 0]
    if swept.empty or not (runs["beta"] == 0).any():
        raise NotMeasured("the feature sweep needs β = 0 and a β > 0")
    method, eps = swept["method"].iloc[0], swept["eps"].iloc[0]
    mine = runs[(runs["method"] == method) & (runs["eps"] == eps)]
    mine = mine.assign(collapse=collapses(mine))
    values = []
    for seed, part in mine.groupby("seed"):
        clean, featured = part[part["beta"] == 0]["collapse"], part[part["beta"] > 0]["collapse"]
        if len(clean) and len(featured):
            values.append((seed, int(featured.sum()) / len(featured) - int(clean.iloc[0])))
    effects, note = by_seed(values, "β = 0 and a β > 0")
    betas = ", ".join(f"{b:g}" for b in sorted(swept["beta"].unique()))
    return Evidence(effects, f"{mine['dataset'].iloc[0]}; {method} at ε = {eps:g}; β ∈ {{{betas}}} vs 0; "
                             f"{mine['seed'].nunique()} seeds", note=note)


@claim("andriushchenko_alignment", "Andriushchenko & Flammarion 2020 (GradAlign)",
       "Gradient alignment falls when a single-step run overfits catastrophically: lower at the collapse than at "
       "the best network before it.",
       "alignment at the collapse − at the best step before it, collapsed runs averaged per seed", "<")
def _alignment(tables: Tables) -> Evidence:
    runs = adversarial_runs(tables, beta=None)
    collapsed = runs[collapses(runs).astype(bool)]
    if collapsed.empty:
        raise NotMeasured("no adversarial run collapsed")
    effects, note = by_seed([(r["seed"], r["alignment_after"] - r["alignment_before"]) for _, r in collapsed.iterrows()],
                            "alignment logged")
    return Evidence(effects, adversarial_setting(collapsed, f"; {len(collapsed)} collapsed runs"), note=note)


@claim("study_robust_less_sensitive", "this study (robust training and Novak's sensitivity)",
       "PGD-trained networks are less sensitive than standard ones: a smaller Jacobian norm at test points.",
       "log10(median Jacobian norm, PGD at the largest probed ε / standard), final networks, per seed", "<")
def _robust_sensitivity(tables: Tables) -> Evidence:
    probes = where(table(tables, "adversarial_probes"), network="final", measure="jacobian_norm", beta=0.0)
    pgd, standard = probes[probes["method"] == "pgd"], probes[probes["method"] == "standard"]
    if pgd.empty or standard.empty:
        raise NotMeasured("adversarial.methods needs standard and pgd, both probed")
    pgd = pgd[pgd["eps"] == pgd["eps"].max()]
    values = [(seed, log_ratio(pgd[pgd["seed"] == seed]["median"].iloc[0],
                               standard[standard["seed"] == seed]["median"].iloc[0]))
              for seed in sorted(set(pgd["seed"]) & set(standard["seed"]))]
    effects, note = by_seed(values, "both networks probed")
    return Evidence(effects, adversarial_setting(pgd, f"; PGD at ε = {pgd['eps'].iloc[0]:g} vs standard"), note=note)


# --- robust vs standard representations (Cianfarani et al. 2022) ------------------------------------------------

def structure_per_seed(tables: Tables, network: str, column: str, inputs: str = "benign") -> dict:
    t = where(table(tables, "representation_structure"), inputs=inputs, network=network)
    if t.empty:
        raise NotMeasured(f"the representation stage compared no {network} network on {inputs} inputs")
    return {seed: float(v) for seed, v in zip(t["seed"], t[column])}


def representation_setting(tables: Tables, extra: str = "") -> str:
    t = table(tables, "representation_structure")
    return (f"{t['dataset'].iloc[0]}; {t['model'].iloc[0]}; debiased linear CKA on benign test images; "
            f"{t['seed'].nunique()} seeds{extra}")


def robust_minus_standard(tables: Tables, column: str) -> Evidence:
    robust, standard = structure_per_seed(tables, "pgd", column), structure_per_seed(tables, "standard", column)
    effects, note = by_seed([(s, robust[s] - standard[s]) for s in sorted(set(robust) & set(standard))],
                            "a standard and a PGD network")
    return Evidence(effects, representation_setting(tables, "; PGD vs standard of the same seed (the seed's "
                                                            "untrained control cancels)"), note=note)


def blocks_per_seed(tables: Tables, network: str) -> dict:
    t = where(table(tables, "representation_blocks"), network=network)
    if t.empty:
        raise NotMeasured(f"the representation stage trained no {network} block network")
    return {seed: float(v) for seed, v in zip(t["seed"], t["largest_block_minus_untrained"])}


def blocks_setting(tables: Tables, extra: str = "") -> str:
    t = table(tables, "representation_blocks")
    return (f"{t['dataset'].iloc[0]} ({t['train_size'].iloc[0]} training images); {t['model'].iloc[0]}; largest "
            f"block of debiased linear CKA > {t['threshold'].iloc[0]:g} on benign test images; "
            f"{t['seed'].nunique()} seeds{extra}")


@claim("study_standard_block_structure", "Nguyen et al. 2021 (premise of Cianfarani et al.)",
       "Standard training builds block structure beyond what the untrained network of the same seed already has.",
       "largest block (consecutive layers all pairwise alike) of the standard ResNet − of its untrained control, "
       "per seed", ">")
def _block_exists(tables: Tables) -> Evidence:
    effects, note = by_seed(list(blocks_per_seed(tables, "standard").items()), "a control-subtracted block")
    return Evidence(effects, blocks_setting(tables), note=note)


@claim("cianfarani_block_structure", "Cianfarani et al. 2022, Figs. 1–2",
       "Robust (PGD-trained) networks lose the block structure of standard networks.",
       "largest block (control-subtracted) of the PGD ResNet − of the standard ResNet, per seed", "<",
       premise="study_standard_block_structure")
def _block_lost(tables: Tables) -> Evidence:
    robust, standard = blocks_per_seed(tables, "pgd"), blocks_per_seed(tables, "standard")
    effects, note = by_seed([(s, robust[s] - standard[s]) for s in sorted(set(robust) & set(standard))],
                            "a standard and a PGD network")
    return Evidence(effects, blocks_setting(tables, "; PGD vs standard of the same seed (the seed's untrained "
                                                    "control cancels)"), note=note)


@claim("cianfarani_long_range", "Cianfarani et al. 2022 (lack of specialisation)",
       "Robust networks stay similar across long ranges of layers: far-apart layers are more alike than in "
       "standard networks.", "mean CKA of layers at least half the depth apart, PGD − standard, per seed", ">")
def _long_range(tables: Tables) -> Evidence:
    return robust_minus_standard(tables, "far_minus_untrained")


@claim("cianfarani_overfitting_deep", "Cianfarani et al. 2022 (robust overfitting)",
       "Overfitting during adversarial training changes mostly the deeper layers, more than training on without "
       "overfitting does.",
       "deep − shallow change (1 − CKA, best vs final) of FGSM runs that collapsed − the same of runs without CO", ">")
def _overfitting_deep(tables: Tables) -> Evidence:
    summary = where(table(tables, "representation_summary"), measure="overfit_deep_minus_shallow", statistic="co",
                    network="fgsm")
    summary = summary[summary["n_seeds"] > 0]
    if summary.empty or not np.isfinite(summary["baseline_estimate"].iloc[0]):
        raise NotMeasured("no FGSM representation run collapsed after its best network, or none ran on without CO")
    r = summary.iloc[0]
    estimate = r["estimate"] - r["baseline_estimate"]
    low, high = r["ci_low"] - r["baseline_ci_high"], r["ci_high"] - r["baseline_ci_low"]
    return Evidence({}, representation_setting(tables, "; FGSM runs with CO vs runs without"), unit="collapsed runs",
                    interval=(estimate, low, high, int(r["n_seeds"])),
                    note=f"CO runs {r['estimate']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}] over {int(r['n_seeds'])} "
                         f"seeds, without CO {r['baseline_estimate']:.3g} [{r['baseline_ci_low']:.3g}, "
                         f"{r['baseline_ci_high']:.3g}]; the interval of the difference is the conservative "
                         "difference of the two intervals")


# --- delayed robustness (Humayun et al. 2024; GrokAlign) -----------------------------------------------------------

def long_runs(tables: Tables) -> pd.DataFrame:
    """The unpenalised runs of the groups configured as long runs (grokking.long_runs), chosen by configuration,
    not by what they did."""
    onsets, groups = table(tables, "delayed_onsets"), table(tables, "long_run_groups")
    plain = onsets[onsets["jacobian_penalty"] == 0]
    keys = set(zip(groups["init_scale"].astype(float), groups["weight_decay"].astype(float)))
    long = plain[[(a, w) in keys for a, w in zip(plain["init_scale"], plain["weight_decay"])]]
    if long.empty:
        raise NotMeasured("grokking.long_runs names no group that ran")
    return long


def delayed_setting(runs: pd.DataFrame, extra: str = "") -> str:
    groups = sorted({f"α {a:g}, wd {w:g}" for a, w in zip(runs["init_scale"], runs["weight_decay"])})
    return f"{runs['dataset'].iloc[0]}; Omnigrok's MLP; {'; '.join(groups)}; {runs['seed'].nunique()} seeds{extra}"


def fall_rise_fall(tables: Tables, count: str) -> Evidence:
    runs = long_runs(tables)
    shape = runs[f"{count}_fall_rise_fall"]
    values = [(seed, math.nan if pd.isna(v) else float(str(v).lower() == "true" or v is True or v == 1))
              for seed, v in zip(runs["seed"], shape)]
    effects, note = by_seed(values, "untrained value to read the shape from")
    return Evidence(effects, delayed_setting(runs, "; trained to max_steps"), note=note)


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
    effects, note = by_seed([(r["seed"], log_ratio(r["robust_onset_step"], r["generalised_step"]))
                             for _, r in runs.iterrows()], "robustness onset after a generalised checkpoint")
    return Evidence(effects, delayed_setting(runs), note=note)


@claim("humayun_robust_in_final_descent", "Humayun et al. 2024 (region migration)",
       "Robustness arrives during the final descent of local complexity, not before it.",
       "robustness-onset step − start of the final local-complexity descent (steps), per long run", ">=")
def _robust_in_descent(tables: Tables) -> Evidence:
    runs = long_runs(tables)
    effects, note = by_seed([(r["seed"], float(r["robust_onset_step"] - r["lc_descent_step"]))
                             for _, r in runs.iterrows()], "robustness onset and final descent")
    return Evidence(effects, delayed_setting(runs), note=note)


def penalised_pairs(tables: Tables, column: str, censor: str | None = None) -> Evidence:
    """Per seed: log10 of `column` with the Jacobian penalty over without it (the same initialisation and batch
    order); with `censor`, a run that never reached `column` counts with its `censor` value."""
    onsets = table(tables, "delayed_onsets")
    penalised = onsets[onsets["jacobian_penalty"] > 0]
    if penalised.empty:
        raise NotMeasured("grokking.jacobian_penalties is empty")
    value = (lambda r: finished(r[column], r[censor])) if censor else (lambda r: r[column])  # noqa: E731
    values, censored = [], 0
    for _, r in penalised.iterrows():
        twin = onsets[(onsets["jacobian_penalty"] == 0) & (onsets["seed"] == r["seed"])
                      & (onsets["init_scale"] == r["init_scale"]) & (onsets["weight_decay"] == r["weight_decay"])
                      & (onsets["dataset"] == r["dataset"])]
        if len(twin):
            censored += int(censor is not None and not np.isfinite(r[column])) + \
                int(censor is not None and not np.isfinite(twin[column].iloc[0]))
            values.append((r["seed"], log_ratio(value(r), value(twin.iloc[0]))))
    effects, note = by_seed(values, f"{column.replace('_', ' ')} with and without the penalty")
    return Evidence(effects, delayed_setting(penalised), note=join(note, censored_note(censored, 2 * len(values),
                                                                                        "generalised")))


@claim("grokalign_generalises_sooner", "Walker, Humayun et al. 2025 (GrokAlign)",
       "Regularising the input Jacobian makes the network generalise sooner.",
       "log10(generalised step with the penalty / without), paired by seed (same initialisation and batches)", "<")
def _grokalign_generalisation(tables: Tables) -> Evidence:
    return penalised_pairs(tables, "generalised_step", censor="final_step")


@claim("grokalign_robust_sooner", "Walker, Humayun et al. 2025 (GrokAlign)",
       "Regularising the input Jacobian makes the network robust sooner: at generalisation it is already more "
       "robust than without the penalty.",
       "log10(adversarial radius at the generalised checkpoint, with the penalty / without), paired by seed", ">")
def _grokalign_robustness(tables: Tables) -> Evidence:
    return penalised_pairs(tables, "generalised_radius")
