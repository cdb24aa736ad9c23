"""Delayed robustness through grokking (docs/protocols.md §9): local complexity, the adversarial radius and
robust accuracy at a run's milestone snapshots and checkpoints; every measure of a run on one step axis; the
steps of memorisation, generalisation, robustness onset and the local-complexity peak and final descent (hidden
layers, and with the output layer); the lags between them over seeds; and GrokAlign's Jacobian-penalised runs
against their unpenalised twins.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..io import read_json
from ..measures.complexity import frame_directions, local_complexity
from ..measures.stats import seed_mean
from ..runs import milestone_snapshots, open_run, stored_checkpoints
from ..settings import AdversarialSearch, Bootstrap, DelayedMeasures, OnsetRule
from ..measures.network import adversarial_probes

RUN_KEYS = ("dataset", "init_scale", "weight_decay", "jacobian_penalty", "seed")  # λ = 0: Omnigrok's run
GROUP_KEYS = ("dataset", "init_scale", "weight_decay", "jacobian_penalty")
MEASURE_COLUMNS = (*RUN_KEYS, "checkpoint", "step", "measure", "points", "radius", "layer", "value", "q1", "q3", "n")
POINT_SETS = ("train", "test", "random")


def run_key(run_json: Path) -> dict:
    """A run's identity with its Jacobian penalty, from its run.json."""
    run = read_json(run_json)
    s = run["settings"]
    return dict(dataset=run["data"]["dataset"], init_scale=s["init_scale"], weight_decay=s["weight_decay"],
                jacobian_penalty=s.get("jacobian_penalty", 0.0), seed=s["seed"])


def complexity_points(run, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The first n training and test images of an open run and n uniform random points in [0, 1]^d, as its
    network inputs."""
    split = run.split
    for name, images in (("train", split.train_x), ("test", split.test_x)):
        if n > len(images):
            raise ValueError(f"delayed.complexity.points = {n}, but the {name} set of {split.meta['dataset']} has "
                             f"{len(images)} images; lower delayed.complexity.points")
    random = torch.rand(n, split.input_dim, generator=generator, dtype=torch.float64)
    return dict(train=run.floats(split.train_x[:n]), test=run.floats(split.test_x[:n]),
                random=random.to(device=run.device, dtype=run.dtype))


def measure_network(model, points: dict, directions: torch.Tensor, radii: list[float], x, y,
                    search: AdversarialSearch, d: DelayedMeasures) -> list[dict]:
    """Rows (measure, points, radius, layer, value, q1, q3, n) of one network: local complexity per point set,
    radius and layer (mean count per point; layers '1'… hidden, 'output' the output layer; 'all' the hidden
    sum, 'all_with_output' the sum as Humayun et al.'s code counts it); the median adversarial radius over
    the fixed set of probe images (quartiles beside); robust accuracy at every ε.

    The radius is over every image, a misclassified one counting as 0 and one with no attack succeeding
    within max_eps as max_eps (censored), so every network of a run is summarised over the same images: its
    median is the ε at which robust accuracy crosses 1/2."""
    rows = []
    for name, inputs in points.items():
        counts = local_complexity(model, inputs, directions, radii, output=True).double()  # (N, radii, layers)
        for r, radius in enumerate(radii):
            per_layer = counts[:, r, :]
            names = [str(layer + 1) for layer in range(per_layer.shape[1] - 1)] + ["output"]
            sums = dict(all=per_layer[:, :-1].sum(dim=1), all_with_output=per_layer.sum(dim=1))
            for layer, values in [*zip(names, per_layer.T), *sums.items()]:
                rows.append(dict(measure="local_complexity", points=name, radius=radius, layer=layer,
                                 value=values.mean().item(), n=len(inputs)))
    attacks = dataclasses.replace(search.adversarial, norms=[d.adversarial.norm])
    probes = {key["mode"]: radius for key, radius in adversarial_probes(model, x, y, attacks, search.clip)}
    radius = np.nan_to_num(probes.get("tightest", probes["pgd"]).cpu().numpy(), nan=0.0)  # NaN: misclassified
    ceiling = getattr(search.adversarial.max_eps, d.adversarial.norm)
    q1, median, q3 = np.quantile(np.minimum(radius, ceiling), [0.25, 0.5, 0.75])
    rows.append(dict(measure="adversarial_radius", points="probe", radius=math.nan, layer="", value=median,
                     q1=q1, q3=q3, n=len(radius)))
    for eps in d.adversarial.epsilons:
        rows.append(dict(measure="robust_accuracy", points="probe", radius=eps, layer="",
                         value=(radius > eps).mean(), n=len(radius)))
    return rows


def measure_run(split_path: Path, snapshot_dir: Path, checkpoints_path: Path, run_json: Path, d: DelayedMeasures,
                search: AdversarialSearch, device: str) -> pd.DataFrame:
    """Every measure of `measure_network` at the run's milestone snapshots (`d.snapshots`, log-spaced, the
    same steps as the other stages' trajectories) and at its checkpoints. The frame directions and random
    points are drawn once (seed `d.complexity.seed`), so every network of the run sees the same ones."""
    run = open_run(split_path, run_json, device)
    generator = torch.Generator().manual_seed(d.complexity.seed)
    points = complexity_points(run, d.complexity.points, generator)
    directions = frame_directions(run.split.input_dim, d.complexity.directions, generator, dtype=run.dtype)
    count = min(d.adversarial.images, search.images.count)
    x, y, _ = run.test_images(search.images.first, count, "robustness.images")
    networks = [("snapshot", step, model) for step, model in milestone_snapshots(snapshot_dir, d.snapshots, run.device)]
    networks += list(stored_checkpoints(checkpoints_path, run.device))
    key = run_key(run_json)
    rows = []
    for name, step, model in networks:
        for row in measure_network(model, points, directions, d.complexity.radii, x, y, search, d):
            rows.append({**key, "checkpoint": name, "step": step, **row})
    return pd.DataFrame(rows, columns=MEASURE_COLUMNS)


# --- one step axis --------------------------------------------------------------------------------------------

LC_COUNTS = {"all": "lc", "all_with_output": "lc_with_output"}  # layer of the measures: column prefix


def _wide(measures: pd.DataFrame) -> pd.DataFrame:
    """Per run, checkpoint and step: one column per measure (lc_<points>_r<radius>: local complexity summed
    over the hidden layers; lc_with_output_<points>_r<radius>: with the output layer, as the reference code
    counts; adversarial_radius; robust_acc_eps<ε>)."""
    m = measures[(measures["measure"] != "local_complexity") | measures["layer"].isin(list(LC_COUNTS))].copy()
    lc = m["measure"] == "local_complexity"
    m["column"] = np.select(
        [lc, m["measure"] == "robust_accuracy"],
        [m["layer"].map(LC_COUNTS).fillna("") + "_" + m["points"] + "_r" + m["radius"].map("{:g}".format),
         "robust_acc_eps" + m["radius"].map("{:g}".format)],
        m["measure"])
    return m.pivot_table(index=[*RUN_KEYS, "checkpoint", "step"], columns="column", values="value",
                         aggfunc="first").reset_index()


def trajectory_table(measures: pd.DataFrame, runs: list[dict], metrics: list[pd.DataFrame],
                     noise: list[pd.DataFrame], sensitivity: list[pd.DataFrame]) -> pd.DataFrame:
    """Every measure of every run on one step axis: train and test accuracy (metric log), local complexity,
    adversarial radius and robust accuracy (this stage), the median random-noise radius (robustness
    trajectory) and the mean Jacobian norm at test points (sensitivity trajectory), at the milestone steps
    and the checkpoints. The lists are per run, in the order of `runs` (their keys)."""
    wide = _wide(measures)
    rows = []
    for key, log, radii, items in zip(runs, metrics, noise, sensitivity, strict=True):
        mine = wide[np.logical_and.reduce([wide[k] == v for k, v in key.items()])]
        extra = pd.DataFrame(dict(step=sorted(set(radii["step"]) | set(items["step"]))))
        extra["noise_radius"] = extra["step"].map(radii.groupby("step")["radius"].median())
        tests = items[items["where"] == "test_points"]
        extra["jacobian_norm"] = extra["step"].map(tests.groupby("step")["jacobian_norm"].mean())
        merged = mine.merge(extra, on="step", how="outer")
        for k, v in key.items():
            merged[k] = v
        merged["checkpoint"] = merged["checkpoint"].fillna("snapshot")
        accuracy = log.set_index("step")[["train_acc", "test_acc"]]
        merged = merged.join(accuracy, on="step")
        rows.append(merged)
    table = pd.concat(rows, ignore_index=True)
    first = [*RUN_KEYS, "checkpoint", "step", "train_acc", "test_acc"]
    return table[first + [c for c in table.columns if c not in first]].sort_values(
        [*RUN_KEYS, "step", "checkpoint"], ignore_index=True)


# --- onset steps and lags -------------------------------------------------------------------------------------

ROBUST_FRACTIONS = (0.25, 0.5, 0.75)  # the onset at these fractions too: its sensitivity to the threshold
RISE_TOLERANCE = 0.05  # of the curve's range: a smaller re-rise does not end a descent
DESCENT_FRACTION = 0.10  # of the curve's range: a smaller fall is no final descent
DIP_MARGIN = 0.05  # of the largest value: fall-rise-fall's minimum lies this far below both sides

LAGS = {  # name: (later step, earlier step)
    "grokking_lag": ("generalised_step", "memorised_step"),
    "robust_lag": ("robust_onset_step", "generalised_step"),
    **{f"{p}_{lag}": (f"{p}_{later}", earlier) for p in LC_COUNTS.values()
       for lag, later, earlier in (("peak_lag", "peak_step", "memorised_step"),
                                   ("descent_lag", "descent_step", "generalised_step"))},
    **{f"robust_after_{p}_descent": ("robust_onset_step", f"{p}_descent_step") for p in LC_COUNTS.values()},
}


def complexity_shape(curve: pd.Series, after: float) -> dict:
    """The local-complexity curve (indexed by step, step 0 the untrained network) read from its whole course,
    so that a transient dip is not taken for the descent (docs/protocols.md §9). The final descent starts at
    the first step at or after `after` (the memorised step) from which the curve never again rises more than
    `RISE_TOLERANCE` of its range above its lowest value since (a dip followed by a re-rise is not a
    descent), provided it then falls by more than `DESCENT_FRACTION` of the range to its final value (else
    there is none: NaN). The peak is the largest value at or after `after`. `fall_rise_fall`: the smallest
    value strictly between step 0 and the descent start lies below both the untrained value and the value at
    the descent start by more than `DIP_MARGIN` of the largest value."""
    lc = curve.dropna().sort_index()
    late = lc[lc.index >= after]
    if late.empty:
        return dict(initial=math.nan, min=math.nan, peak=math.nan, final=math.nan, peak_step=math.nan,
                    descent_step=math.nan, fall_rise_fall=False)
    initial = lc.iloc[0] if lc.index[0] == 0 else math.nan  # no untrained network, no initial value
    final, spread = lc.iloc[-1], lc.max() - lc.min()
    values, tolerance = late.to_numpy(), RISE_TOLERANCE * spread
    rises = lambda tail: (tail - np.minimum.accumulate(tail) > tolerance).any()  # noqa: E731
    start = next(i for i in range(len(values)) if not rises(values[i:]))  # the last step always qualifies
    top = values[start]
    descent = late.index[start] if top - final > DESCENT_FRACTION * spread else math.nan
    low = lc[(lc.index > 0) & (lc.index < descent)].min()  # NaN without a descent
    margin = DIP_MARGIN * lc.max()
    return dict(initial=initial, min=low, peak=late.max(), final=final, peak_step=late.idxmax(),
                descent_step=descent,
                # without the untrained value the shape cannot be read: not False but unknown
                fall_rise_fall=(bool(initial - low > margin and top - low > margin) if not math.isnan(initial)
                                else math.nan))


def robust_onset(radius: pd.Series, untrained: float, final: float, fraction: float) -> float:
    """The first measured step from which the median adversarial radius (indexed by step) stays at or above
    untrained + fraction · (final − untrained): a threshold between the untrained and the final network, so it
    cannot sit below where training started, and a transient spike that falls back does not set it. NaN if
    either end is unmeasured or the radius did not grow."""
    if not final > untrained:  # NaN included
        return math.nan
    radius = radius.sort_index()
    below = np.flatnonzero((radius < untrained + fraction * (final - untrained)).to_numpy())
    start = below[-1] + 1 if len(below) else 0
    return float(radius.index[start]) if start < len(radius) else math.nan


def onset_table(trajectory: pd.DataFrame, checkpoints: list[dict], runs: list[dict], rule: OnsetRule,
                epsilons: list[float]) -> pd.DataFrame:
    """Per run: its checkpoints' steps; the robustness onset at `rule.robust_fraction` and at every
    `ROBUST_FRACTIONS`; the local-complexity shape of both counts (hidden layers, `lc_*`; output layer
    included, `lc_with_output_*`); the lags; the adversarial radius and robust accuracy of the untrained
    network (step 0) and at the memorised, generalised and final checkpoints."""
    rows = []
    for key, found in zip(runs, checkpoints, strict=True):
        run = trajectory[np.logical_and.reduce([trajectory[k] == v for k, v in key.items()])]
        steps = {name: (cp["step"] if cp["reached"] else math.nan) for name, cp in found["checkpoints"].items()}
        at = {name: run[run["checkpoint"] == name].iloc[0] if (run["checkpoint"] == name).any() else None
              for name in steps}
        at["untrained"] = run[run["step"] == 0].iloc[0] if (run["step"] == 0).any() else None
        row = dict(key, status=found["status"], final_step=steps.get("final"),
                   memorised_step=steps.get("memorised"), generalised_step=steps.get("generalised"))
        for name in ("untrained", "memorised", "generalised", "final"):
            row[f"{name}_radius"] = at[name]["adversarial_radius"] if at.get(name) is not None else math.nan
            for eps in epsilons:
                column = f"robust_acc_eps{eps:g}"
                row[f"{name}_{column}"] = at[name][column] if at.get(name) is not None else math.nan
        # every measured network, a checkpoint at a step between milestones included, on one curve
        measured = run.drop_duplicates("step").set_index("step").sort_index()
        onset = lambda f: robust_onset(measured["adversarial_radius"], row["untrained_radius"],  # noqa: E731
                                       row["final_radius"], f)
        row["robust_onset_step"] = onset(rule.robust_fraction)
        row.update({f"robust_onset_step_f{f:g}": onset(f) for f in ROBUST_FRACTIONS})
        memorised = row["memorised_step"]
        for prefix in LC_COUNTS.values():
            column = f"{prefix}_{rule.complexity_points}_r{rule.complexity_radius:g}"
            shape = complexity_shape(measured[column], 0 if math.isnan(memorised) else memorised)
            row.update({f"{prefix}_{k}": v for k, v in shape.items()})
        for lag, (later, earlier) in LAGS.items():
            row[lag] = row[later] - row[earlier]
        rows.append(row)
    return pd.DataFrame(rows)


LAG_QUANTITIES = ("memorised_step", "generalised_step", "robust_onset_step",
                  *(f"robust_onset_step_f{f:g}" for f in ROBUST_FRACTIONS),
                  *(f"{p}_{q}" for p in LC_COUNTS.values() for q in ("peak_step", "descent_step")), *LAGS,
                  "untrained_radius", "memorised_radius", "generalised_radius", "final_radius")
LAG_COLUMNS = (*GROUP_KEYS, "quantity", "statistic", "n_seeds", "value", "ci_low", "ci_high", "seed_min", "seed_max",
               "seeds")


def _summary(values: pd.Series, s: Bootstrap) -> dict:
    values = values.dropna()
    stats = seed_mean([np.array([v]) for v in values], resamples=s.resamples, seed=s.seed)
    return dict(n_seeds=stats["n_seeds"], value=stats["mean"], ci_low=stats["ci_low"], ci_high=stats["ci_high"],
                seed_min=values.min() if len(values) else math.nan,
                seed_max=values.max() if len(values) else math.nan,
                seeds=" ".join(f"{v:g}" for v in values))


def lag_table(onsets: pd.DataFrame, s: Bootstrap) -> pd.DataFrame:
    """Per (dataset, α, wd, λ) group and quantity: the mean over seeds with a bootstrap interval over seeds
    (runs where the step is undefined left out, n_seeds says how many remain); and for every penalised group,
    the paired difference from the unpenalised run of the same seed (same initialisation and batch order)."""
    rows = []
    quantities = [q for q in LAG_QUANTITIES if q in onsets]
    for group, frame in onsets.groupby(list(GROUP_KEYS), sort=True):
        for q in quantities:
            rows.append(dict(zip(GROUP_KEYS, group), quantity=q, statistic="mean over seeds",
                             **_summary(frame.set_index("seed")[q], s)))
        if group[3] == 0:
            continue
        twins = onsets[np.logical_and.reduce([onsets[k] == v for k, v in zip(GROUP_KEYS[:3], group[:3])])
                       & (onsets["jacobian_penalty"] == 0)].set_index("seed")
        mine = frame.set_index("seed")
        for q in quantities:
            difference = (mine[q] - twins[q].reindex(mine.index)).rename(q)
            rows.append(dict(zip(GROUP_KEYS, group), quantity=q, statistic="paired difference from λ = 0",
                             **_summary(difference, s)))
    return pd.DataFrame(rows, columns=LAG_COLUMNS)
