"""The robustness stage: probe a run's checkpoints and snapshot trajectory, and summarise (docs/protocols.md §4).

Every probe of a run uses the same test images and, for each search mode, the same random draws, so
memorised and generalised networks are compared on paired inputs.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..measures.probes import adversarial_radius, bisection_radius, grid_radius, noise_norm
from ..measures.stats import bootstrap_median_ratio, quartiles
from ..runs import RUN_COLUMNS, milestone_snapshots, open_run, stored_checkpoints
from ..settings import Adversarial, Bootstrap, CheckpointProbes, RandomNoise, TrajectoryProbes
from ..tables import stack

PROBE_KEYS = ("measure", "mode", "norm", "delta")
PER_IMAGE_COLUMNS = (*RUN_COLUMNS, "checkpoint", "step", *PROBE_KEYS, "image", "label", "radius")


def _generator(seed: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def random_noise_probes(model, x, y, s: RandomNoise, grid_deltas=()) -> list[tuple[dict, torch.Tensor]]:
    """(probe key, radii) for the bisection mode and Walker's grid mode at every Δ of `grid_deltas`."""
    norm = noise_norm(s.noise)
    out = [(dict(measure="random", mode="bisection", norm=norm, delta=math.nan),
            bisection_radius(model, x, y, k=s.draws, noise=s.noise, max_radius=s.max_radius,
                             bracket_step=s.bisection.bracket_step, tol=s.bisection.tol,
                             generator=_generator(s.seed, x.device), clip=s.clip))]
    for delta in grid_deltas:
        out.append((dict(measure="random", mode="grid", norm=norm, delta=float(delta)),
                    grid_radius(model, x, y, delta=delta, k=s.draws, noise=s.noise, max_radius=s.max_radius,
                                generator=_generator(s.seed, x.device), clip=s.clip)))
    return out


def adversarial_probes(model, x, y, a: Adversarial, clip: bool) -> list[tuple[dict, torch.Tensor]]:
    """(probe key, radii) of the PGD radius in every norm of `a.norms`."""
    return [(dict(measure="adversarial", mode="pgd", norm=norm, delta=math.nan),
             adversarial_radius(model, x, y, norm=norm, steps=a.steps, step_size=a.step_size,
                                max_eps=getattr(a.max_eps, norm), tol=getattr(a.tol, norm), clip=clip,
                                targeted=a.targeted))
            for norm in a.norms]


def _rows(run: dict, checkpoint: str, step: int, probes, index, labels) -> pd.DataFrame:
    frames = []
    for key, radius in probes:
        frame = pd.DataFrame(dict(image=index.numpy(), label=labels.cpu().numpy(), radius=radius.cpu().numpy()))
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


SUMMARY_COLUMNS = ("scope", *RUN_COLUMNS, *PROBE_KEYS, "checkpoint", "step", "n_probed", "n_excluded",
                   "n_censored", "median", "q1", "q3", "ratio_to_memorised", "ratio_ci_low", "ratio_ci_high",
                   "median_adversarial_to_random")


def summary(per_image: pd.DataFrame, s: Bootstrap) -> pd.DataFrame:
    """robustness_summary.csv: per run and per (dataset, α, wd) over seeds, per probe and checkpoint:
    median and quartiles of the radius, the ratio of its median to the memorised checkpoint's with a
    bootstrap 95 % interval (images resampled within each seed), and for adversarial probes the median
    per-image ratio of adversarial to random-noise (bisection) radius in the same norm."""
    per_image = per_image.copy()
    per_image["delta"] = per_image["delta"].fillna(-1.0)  # a grouping key: −1 marks 'no grid'
    rows = []
    group_keys = ["dataset", "init_scale", "weight_decay"]
    for scope, keys in (("run", list(RUN_COLUMNS)), ("group", group_keys)):
        for ident, frame in per_image.groupby(keys + list(PROBE_KEYS), sort=True):
            ident = dict(zip(keys + list(PROBE_KEYS), ident))
            by_checkpoint = {name: f for name, f in frame.groupby("checkpoint")}
            for name, f in by_checkpoint.items():
                row = dict(scope=scope, seed="all") | ident | dict(
                    checkpoint=name, step=int(f["step"].iloc[0]) if scope == "run" else math.nan,
                    **_stats(f["radius"]))
                if name != "memorised" and "memorised" in by_checkpoint:
                    mem = by_checkpoint["memorised"]
                    row["ratio_to_memorised"], row["ratio_ci_low"], row["ratio_ci_high"] = bootstrap_median_ratio(
                        [g["radius"].dropna().to_numpy() for _, g in f.groupby("seed")],
                        [g["radius"].dropna().to_numpy() for _, g in mem.groupby("seed")],
                        resamples=s.resamples, seed=s.seed)
                if ident["measure"] == "adversarial":
                    row["median_adversarial_to_random"] = _adversarial_to_random(per_image, f, ident["norm"])
                rows.append(row)
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    table["delta"] = table["delta"].where(table["delta"] >= 0)
    order = {"memorised": 0, "generalised": 1, "final": 2}
    table["_order"] = table["checkpoint"].map(order)
    return (table.sort_values(["scope", *RUN_COLUMNS, "measure", "mode", "norm", "delta", "_order"],
                              key=lambda c: c.astype(str) if c.name == "seed" else c)
            .drop(columns="_order").reset_index(drop=True))


def _adversarial_to_random(per_image: pd.DataFrame, adversarial: pd.DataFrame, norm: str) -> float:
    random = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "bisection")
                       & (per_image["norm"] == norm)]
    keys = ["seed", "checkpoint", "image"]
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
