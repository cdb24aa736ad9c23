"""The robustness stage: probe a run's checkpoints and snapshot trajectory, and summarise (docs/protocols.md §4).

Every network of a run is probed on the same test images. The bisection mode and PGD are paired: the
bisection rays are the same fixed draws for every network, and PGD is deterministic. Walker's grid mode is
not: it draws fresh directions at every amplitude for the images still unresolved, so two networks see
different draws. Paired comparisons (the same image under two networks) use the images both classify
correctly (docs/protocols.md §10).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..measures.network import adversarial_probes, random_noise_probes
from ..measures.stats import bootstrap_median_ratio, quartiles
from ..runs import RUN_COLUMNS, milestone_snapshots, open_run, stored_checkpoints
from ..settings import Bootstrap, CheckpointProbes, TrajectoryProbes
from ..tables import stack

PROBE_KEYS = ("measure", "mode", "norm", "delta")
PER_IMAGE_COLUMNS = (*RUN_COLUMNS, "checkpoint", "step", *PROBE_KEYS, "image", "label", "radius", "found_by")


def _rows(run: dict, checkpoint: str, step: int, probes, index, labels) -> pd.DataFrame:
    frames = []
    for key, radius in probes:
        key = dict(key)
        frame = pd.DataFrame(dict(image=index.numpy(), label=labels.cpu().numpy(), radius=radius.cpu().numpy(),
                                  found_by=key.pop("found_by", "")))
        for column, value in {**run, "checkpoint": checkpoint, "step": step, **key}.items():
            frame[column] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(PER_IMAGE_COLUMNS)]


def probe_checkpoints(split_path: Path, checkpoints_path: Path, run_json: Path, s: CheckpointProbes,
                      device: str) -> pd.DataFrame:
    """Per-image radii of every reached checkpoint (memorised, generalised, final): bisection and PGD for
    all, Walker's grid mode (the slowest) for his two, the memorised and the generalised."""
    run = open_run(split_path, run_json, device)
    x, y, index = run.test_images(s.images.first, s.images.count, "robustness.images")
    frames = []
    for name, step, model in stored_checkpoints(checkpoints_path, run.device):
        deltas = s.grid_deltas if name in ("memorised", "generalised") else ()
        probes = random_noise_probes(model, x, y, s, deltas) + adversarial_probes(model, x, y, s.adversarial, s.clip)
        frames.append(_rows(run.identity, name, step, probes, index, y))
    return stack(frames, PER_IMAGE_COLUMNS)


def probe_trajectory(split_path: Path, snapshot_dir: Path, run_json: Path, s: TrajectoryProbes,
                     device: str) -> pd.DataFrame:
    """Per-image bisection radii at a log-spaced subset of a run's snapshots (the first
    `trajectory.images` of the probed images)."""
    run = open_run(split_path, run_json, device)
    x, y, index = run.test_images(s.images.first, min(s.trajectory.images, s.images.count), "robustness.images")
    frames = []
    for step, model in milestone_snapshots(snapshot_dir, s.trajectory.snapshots, run.device):
        frames.append(_rows(run.identity, "snapshot", step, random_noise_probes(model, x, y, s), index, y))
    return stack(frames, PER_IMAGE_COLUMNS)


def _stats(radii: pd.Series) -> dict:
    probed = radii.dropna().to_numpy(dtype=float)
    q1, median, q3 = quartiles(probed)
    return dict(n_probed=len(probed), n_excluded=int(radii.isna().sum()), n_censored=int(np.isinf(probed).sum()),
                median=median, q1=q1, q3=q3)


SUMMARY_COLUMNS = ("scope", *RUN_COLUMNS, *PROBE_KEYS, "checkpoint", "step", "status", "n_seeds", "n_grokked",
                   "n_probed", "n_excluded", "n_censored", "median", "q1", "q3",
                   "ratio_to_memorised", "ratio_ci_low", "ratio_ci_high",
                   "paired_n", "paired_ratio", "paired_ci_low", "paired_ci_high", "seed_ratio_min", "seed_ratio_max",
                   "median_adversarial_to_random", "found_by")
GROUP_COLUMNS = ("dataset", "init_scale", "weight_decay")
GROKKED = "generalised"  # the status of a run that memorised first and generalised later (stages.checkpoints)


def _ratios(networks: pd.DataFrame, memorised: pd.DataFrame, s: Bootstrap) -> dict:
    """A checkpoint's radii against the memorised checkpoint's, over the seeds of `networks`: Walker's
    pooled ratio of medians (each network's correctly classified images), the paired ratio on the images
    both networks classify correctly, hierarchical-bootstrap intervals (seeds, then images) for both, and
    the spread of the per-seed paired ratios."""
    seeds = sorted(set(networks["seed"]) & set(memorised["seed"]))
    if not seeds:
        return {}
    per_seed = {seed: (networks[networks["seed"] == seed].set_index("image")["radius"],
                       memorised[memorised["seed"] == seed].set_index("image")["radius"]) for seed in seeds}
    ratio, low, high = bootstrap_median_ratio([a.dropna().to_numpy() for a, _ in per_seed.values()],
                                              [b.dropna().to_numpy() for _, b in per_seed.values()],
                                              resamples=s.resamples, seed=s.seed)
    common = {seed: pd.concat([a, b], axis=1, keys=["a", "b"]).dropna() for seed, (a, b) in per_seed.items()}
    paired = bootstrap_median_ratio([c["a"].to_numpy() for c in common.values()],
                                    [c["b"].to_numpy() for c in common.values()],
                                    resamples=s.resamples, seed=s.seed, paired=True)
    each = [float(np.median(c["a"]) / np.median(c["b"])) if len(c) else math.nan for c in common.values()]
    return dict(ratio_to_memorised=ratio, ratio_ci_low=low, ratio_ci_high=high,
                paired_n=sum(len(c) for c in common.values()), paired_ratio=paired[0], paired_ci_low=paired[1],
                paired_ci_high=paired[2], seed_ratio_min=np.nanmin(each) if len(each) else math.nan,
                seed_ratio_max=np.nanmax(each) if len(each) else math.nan)


def summary(per_image: pd.DataFrame, s: Bootstrap, runs: pd.DataFrame) -> pd.DataFrame:
    """robustness_summary.csv: per run (scope=run) and per (dataset, α, wd) over seeds (scope=group), per
    probe and checkpoint: median and quartiles of the radius; against the memorised checkpoint, Walker's
    ratio of medians and the paired ratio on common images, with 95 % hierarchical-bootstrap intervals
    (seeds, then images within a seed; docs/protocols.md §10) and the per-seed spread; and for adversarial
    probes the median per-image ratio of adversarial to random-noise (bisection) radius in the same norm.

    `runs` is grokking_runs.csv. A memorised-vs-later comparison is made only for runs that grokked
    (status 'generalised': memorised first, generalised later); a run whose generalisation came first
    ('no_delay') has no memorised network to compare with, and its ratio cells stay empty.
    """
    per_image = per_image.copy()
    per_image["delta"] = per_image["delta"].fillna(-1.0)  # a grouping key: −1 marks 'no grid'
    status = runs.set_index(list(RUN_COLUMNS))["status"].to_dict()
    per_image["status"] = [status.get(key, "") for key in zip(*(per_image[c] for c in RUN_COLUMNS))]
    rows = []
    for scope, keys in (("run", list(RUN_COLUMNS)), ("group", list(GROUP_COLUMNS))):
        for ident, frame in per_image.groupby(keys + list(PROBE_KEYS), sort=True):
            ident = dict(zip(keys + list(PROBE_KEYS), ident))
            grokked = frame[frame["status"] == GROKKED]
            memorised = grokked[grokked["checkpoint"] == "memorised"]
            for name, f in frame.groupby("checkpoint"):
                row = dict(scope=scope, seed="all") | ident | dict(
                    checkpoint=name, step=int(f["step"].iloc[0]) if scope == "run" else math.nan,
                    status=f["status"].iloc[0] if scope == "run" else "", n_seeds=f["seed"].nunique(),
                    n_grokked=grokked["seed"].nunique(), **_stats(f["radius"]))
                if name != "memorised":
                    row |= _ratios(grokked[grokked["checkpoint"] == name], memorised, s)
                if ident["measure"] == "adversarial":
                    row["median_adversarial_to_random"] = _adversarial_to_random(per_image, f, ident["norm"])
                if ident["mode"] == "tightest":
                    row["found_by"] = _shares(f.loc[f["radius"].notna() & np.isfinite(f["radius"]), "found_by"])
                rows.append(row)
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    table["delta"] = table["delta"].where(table["delta"] >= 0)
    order = {"memorised": 0, "generalised": 1, "final": 2}
    table["_order"] = table["checkpoint"].map(order)
    return (table.sort_values(["scope", *RUN_COLUMNS, "measure", "mode", "norm", "delta", "_order"],
                              key=lambda c: c.astype(str) if c.name == "seed" else c)
            .drop(columns="_order").reset_index(drop=True))


def _shares(found_by: pd.Series) -> str:
    """Which attack found the tightest radius, as shares of the images: 'fmn 0.71, pgd 0.20, …'."""
    shares = found_by.value_counts(normalize=True)
    return ", ".join(f"{name} {share:.2f}" for name, share in shares.items())


def _adversarial_to_random(per_image: pd.DataFrame, adversarial: pd.DataFrame, norm: str) -> float:
    """Median over images of adversarial / random-noise (bisection) radius, each image paired with the
    random radius of the same network (run and checkpoint) in the same norm."""
    random = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "bisection")
                       & (per_image["norm"] == norm)]
    keys = [*RUN_COLUMNS, "checkpoint", "image"]
    paired = adversarial.merge(random[keys + ["radius"]], on=keys, suffixes=("", "_random"))
    ratio = (paired["radius"] / paired["radius_random"]).replace([np.inf, -np.inf], np.nan).dropna()
    return float(ratio.median()) if len(ratio) else math.nan


TRAJECTORY_COLUMNS = (*RUN_COLUMNS, "step", "train_acc", "test_acc", "n_probed", "n_excluded", "n_censored",
                      "median", "q1", "q3")


def trajectory_table(per_image: pd.DataFrame, metrics: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Per run and snapshot step: the radius quartiles beside the run's train and test accuracy.
    `metrics` maps a run's (dataset, α, wd, seed) to its metric log."""
    rows = []
    for ident, frame in per_image.groupby([*RUN_COLUMNS, "step"], sort=True):
        log = metrics[tuple(ident[:4])].set_index("step")
        step = ident[4]
        rows.append(dict(zip([*RUN_COLUMNS, "step"], ident), train_acc=log.at[step, "train_acc"],
                         test_acc=log.at[step, "test_acc"], **_stats(frame["radius"])))
    return pd.DataFrame(rows, columns=TRAJECTORY_COLUMNS)
