"""Delayed robustness through grokking (docs/protocols.md §9): local complexity, the adversarial radius and
robust accuracy at a run's milestone snapshots and checkpoints; every measure of a run on one step axis; the
steps of memorisation, generalisation, robustness onset and the local-complexity peak and descent; the lags
between them over seeds; and GrokAlign's Jacobian-penalised runs against their unpenalised twins.
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
from .robustness import adversarial_probes

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
    radius and hidden layer (mean count per point; layer 'all' is their sum); the median adversarial radius
    of the correctly classified probe images (quartiles beside); robust accuracy at every ε."""
    rows = []
    for name, inputs in points.items():
        counts = local_complexity(model, inputs, directions, radii).double()  # (N, radii, layers)
        for r, radius in enumerate(radii):
            per_layer = counts[:, r, :]
            for layer in range(per_layer.shape[1]):
                rows.append(dict(measure="local_complexity", points=name, radius=radius, layer=str(layer + 1),
                                 value=per_layer[:, layer].mean().item(), n=len(inputs)))
            rows.append(dict(measure="local_complexity", points=name, radius=radius, layer="all",
                             value=per_layer.sum(dim=1).mean().item(), n=len(inputs)))
    attacks = dataclasses.replace(search.adversarial, norms=[d.adversarial.norm])
    probes = {key["mode"]: radius for key, radius in adversarial_probes(model, x, y, attacks, search.clip)}
    radius = probes.get("tightest", probes["pgd"]).cpu().numpy()  # NaN: misclassified, not probed
    correct = radius[~np.isnan(radius)]
    q1, median, q3 = np.quantile(correct, [0.25, 0.5, 0.75]) if len(correct) else (math.nan,) * 3
    rows.append(dict(measure="adversarial_radius", points="probe", radius=math.nan, layer="", value=median,
                     q1=q1, q3=q3, n=len(correct)))
    for eps in d.adversarial.epsilons:
        robust = np.nan_to_num(radius, nan=0.0) > eps
        rows.append(dict(measure="robust_accuracy", points="probe", radius=eps, layer="", value=robust.mean(),
                         n=len(radius)))
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

def _wide(measures: pd.DataFrame) -> pd.DataFrame:
    """Per run, checkpoint and step: one column per measure (lc_<points>_r<radius>, adversarial_radius,
    robust_acc_eps<ε>), local complexity summed over the hidden layers."""
    m = measures[(measures["measure"] != "local_complexity") | (measures["layer"] == "all")].copy()
    m["column"] = np.select(
        [m["measure"] == "local_complexity", m["measure"] == "robust_accuracy"],
        ["lc_" + m["points"] + "_r" + m["radius"].map("{:g}".format),
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

LAGS = {  # name: (later step, earlier step)
    "grokking_lag": ("generalised_step", "memorised_step"),
    "robust_lag": ("robust_onset_step", "generalised_step"),
    "lc_peak_lag": ("lc_peak_step", "memorised_step"),
    "lc_descent_lag": ("lc_descent_step", "generalised_step"),
}


def complexity_shape(curve: pd.Series, after: int) -> dict:
    """The local-complexity curve (indexed by step) read as fall, rise, fall: its initial value, the minimum
    before the peak, the peak (the largest value at or after step `after`, the memorised step: the rise comes
    after memorisation), the final value, and the descent step: the first step after the peak at which the
    curve is below the midpoint of peak and final value. `fall_rise_fall`: the initial value is above the
    minimum, the peak above both the minimum and the final value, each by more than 5 % of the peak."""
    curve = curve.dropna().sort_index()
    late = curve[curve.index >= after]
    if late.empty:
        return dict(lc_initial=math.nan, lc_min=math.nan, lc_peak=math.nan, lc_final=math.nan,
                    lc_peak_step=math.nan, lc_descent_step=math.nan, fall_rise_fall=False)
    peak_step = late.idxmax()
    peak, initial, final = late.max(), curve.iloc[0], curve.iloc[-1]
    before = curve[curve.index <= peak_step]
    low = before.min()
    below = curve[(curve.index > peak_step) & (curve < (peak + final) / 2)]
    margin = 0.05 * abs(peak)
    return dict(lc_initial=initial, lc_min=low, lc_peak=peak, lc_final=final, lc_peak_step=peak_step,
                lc_descent_step=below.index[0] if len(below) else math.nan,
                fall_rise_fall=bool(initial - low > margin and peak - low > margin and peak - final > margin))


def robust_onset(radius: pd.Series, memorised_step: int, memorised_radius: float, factor: float) -> float:
    """The first measured step after memorisation at which the median adversarial radius reaches `factor` ×
    its value at the memorised checkpoint (NaN if never)."""
    later = radius[(radius.index > memorised_step) & (radius >= factor * memorised_radius)]
    return float(later.index.min()) if len(later) else math.nan


def onset_table(trajectory: pd.DataFrame, checkpoints: list[dict], runs: list[dict], rule: OnsetRule,
                epsilons: list[float]) -> pd.DataFrame:
    """Per run: its checkpoints' steps, the robustness onset, the local-complexity shape and the lags; the
    adversarial radius and robust accuracy at the memorised, generalised and final checkpoints."""
    lc = f"lc_{rule.complexity_points}_r{rule.complexity_radius:g}"
    rows = []
    for key, found in zip(runs, checkpoints, strict=True):
        run = trajectory[np.logical_and.reduce([trajectory[k] == v for k, v in key.items()])]
        steps = {name: (cp["step"] if cp["reached"] else math.nan) for name, cp in found["checkpoints"].items()}
        at = {name: run[run["checkpoint"] == name].iloc[0] if (run["checkpoint"] == name).any() else None
              for name in steps}
        row = dict(key, status=found["status"], final_step=steps.get("final"),
                   memorised_step=steps.get("memorised"), generalised_step=steps.get("generalised"))
        for name in ("memorised", "generalised", "final"):
            row[f"{name}_radius"] = at[name]["adversarial_radius"] if at.get(name) is not None else math.nan
            for eps in epsilons:
                column = f"robust_acc_eps{eps:g}"
                row[f"{name}_{column}"] = at[name][column] if at.get(name) is not None else math.nan
        # every measured network, a checkpoint at a step between milestones included, on one curve
        measured = run.drop_duplicates("step").set_index("step").sort_index()
        memorised = row["memorised_step"]
        row["robust_onset_step"] = (robust_onset(measured["adversarial_radius"], memorised, row["memorised_radius"],
                                                 rule.robust_factor) if not math.isnan(memorised) else math.nan)
        row.update(complexity_shape(measured[lc], 0 if math.isnan(memorised) else memorised))
        for lag, (later, earlier) in LAGS.items():
            row[lag] = row[later] - row[earlier]
        rows.append(row)
    return pd.DataFrame(rows)


LAG_QUANTITIES = ("memorised_step", "generalised_step", "robust_onset_step", "lc_peak_step", "lc_descent_step",
                  *LAGS, "memorised_radius", "generalised_radius", "final_radius")
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
