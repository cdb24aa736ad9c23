"""The robustness stage: probe a run's checkpoints and snapshot trajectory, and summarise (DESIGN.md §4).

Every probe of a run uses the same test images and, for each search mode, the same random draws, so
memorised and generalised networks are compared on paired inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data as datasets
from .grokking import RUN_COLUMNS, milestone_snapshots, run_identity, stored_checkpoints
from .tables import stack
from .probes import adversarial_radius, bisection_radius, grid_radius, noise_norm
from .stats import bootstrap_median_ratio, quartiles
from .train import DTYPES, resolve_device

PROBE_KEYS = ("measure", "mode", "norm", "delta")
PER_IMAGE_COLUMNS = (*RUN_COLUMNS, "checkpoint", "step", *PROBE_KEYS, "image", "label", "radius")


@dataclass
class ProbeSettings:
    """Every knob of the robustness probes, as plain values (each arrives through the rule's params)."""

    image_first: int = 1000
    image_count: int = 500
    seed: int = 0
    noise: str = "uniform"
    k: int = 5
    clip: bool = False
    max_radius: float = 30.0
    grid_deltas: tuple[float, ...] = (0.01, 0.05)
    bracket_step: float = 0.25
    tol: float = 1e-3
    adversarial_norms: tuple[str, ...] = ("l2", "linf")
    pgd_steps: int = 20
    pgd_step_size: float = 0.125
    pgd_targeted: bool = False
    max_eps_l2: float = 10.0
    max_eps_linf: float = 1.0
    tol_l2: float = 1e-3
    tol_linf: float = 1e-4
    device: str = "auto"


def probe_images(split: datasets.Split, first: int, count: int, *, device, dtype):
    """Test images first … first+count−1 (Walker: 1000–1499) as floats, their labels and indices."""
    end = first + count
    if first < 0 or count < 1 or end > len(split.test_x):
        raise ValueError(f"robustness.images asks for test images {first}..{end - 1}, but the test set of "
                         f"{split.meta['dataset']} has {len(split.test_x)} images (0..{len(split.test_x) - 1}); "
                         f"lower robustness.images.first or robustness.images.count")
    index = torch.arange(first, end)
    x = datasets.as_float(split.test_x[first:end], device=device, dtype=dtype)
    return x, split.test_y[first:end].to(device), index


def _generator(seed: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def random_noise_probes(model, x, y, s: ProbeSettings, *, grid: bool = True) -> list[tuple[dict, torch.Tensor]]:
    """(probe key, radii) for the bisection mode and, if `grid`, the grid mode at every Δ."""
    norm = noise_norm(s.noise)
    out = [(dict(measure="random", mode="bisection", norm=norm, delta=math.nan),
            bisection_radius(model, x, y, k=s.k, noise=s.noise, max_radius=s.max_radius,
                             bracket_step=s.bracket_step, tol=s.tol, generator=_generator(s.seed, x.device),
                             clip=s.clip))]
    if grid:
        for delta in s.grid_deltas:
            out.append((dict(measure="random", mode="grid", norm=norm, delta=float(delta)),
                        grid_radius(model, x, y, delta=delta, k=s.k, noise=s.noise, max_radius=s.max_radius,
                                    generator=_generator(s.seed, x.device), clip=s.clip)))
    return out


def adversarial_probes(model, x, y, s: ProbeSettings) -> list[tuple[dict, torch.Tensor]]:
    limits = dict(l2=(s.max_eps_l2, s.tol_l2), linf=(s.max_eps_linf, s.tol_linf))
    return [(dict(measure="adversarial", mode="pgd", norm=norm, delta=math.nan),
             adversarial_radius(model, x, y, norm=norm, steps=s.pgd_steps, step_size=s.pgd_step_size,
                                max_eps=limits[norm][0], tol=limits[norm][1], clip=s.clip,
                                targeted=s.pgd_targeted))
            for norm in s.adversarial_norms]


def _rows(run: dict, checkpoint: str, step: int, probes, index, labels) -> pd.DataFrame:
    frames = []
    for key, radius in probes:
        frame = pd.DataFrame(dict(image=index.numpy(), label=labels.cpu().numpy(), radius=radius.cpu().numpy()))
        for column, value in {**run, "checkpoint": checkpoint, "step": step, **key}.items():
            frame[column] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[list(PER_IMAGE_COLUMNS)]


def probe_checkpoints(split_path: Path, checkpoints_path: Path, run_json: Path, s: ProbeSettings) -> pd.DataFrame:
    """Per-image radii of every reached checkpoint (memorised, generalised, final): bisection and PGD for
    all, Walker's grid mode (the slowest) for his two, the memorised and the generalised."""
    run, dtype = run_identity(run_json)
    device = resolve_device(s.device)
    x, y, index = probe_images(datasets.read_split(split_path), s.image_first, s.image_count,
                               device=device, dtype=DTYPES[dtype])
    frames = []
    for name, step, model in stored_checkpoints(checkpoints_path, device):
        grid = name in ("memorised", "generalised")
        probes = random_noise_probes(model, x, y, s, grid=grid) + adversarial_probes(model, x, y, s)
        frames.append(_rows(run, name, step, probes, index, y))
    return stack(frames, PER_IMAGE_COLUMNS)


def probe_trajectory(split_path: Path, snapshot_dir: Path, run_json: Path, s: ProbeSettings, *,
                     snapshots: int, images: int) -> pd.DataFrame:
    """Per-image bisection radii at a log-spaced subset of a run's snapshots (the first `images` images)."""
    run, dtype = run_identity(run_json)
    device = resolve_device(s.device)
    x, y, index = probe_images(datasets.read_split(split_path), s.image_first, min(images, s.image_count),
                               device=device, dtype=DTYPES[dtype])
    frames = []
    for step, model in milestone_snapshots(snapshot_dir, snapshots, device):
        frames.append(_rows(run, "snapshot", step, random_noise_probes(model, x, y, s, grid=False), index, y))
    return stack(frames, PER_IMAGE_COLUMNS)


def _stats(radii: pd.Series) -> dict:
    probed = radii.dropna().to_numpy(dtype=float)
    q1, median, q3 = quartiles(probed)
    return dict(n_probed=len(probed), n_excluded=int(radii.isna().sum()), n_censored=int(np.isinf(probed).sum()),
                median=median, q1=q1, q3=q3)


SUMMARY_COLUMNS = ("scope", *RUN_COLUMNS, *PROBE_KEYS, "checkpoint", "step", "n_probed", "n_excluded",
                   "n_censored", "median", "q1", "q3", "ratio_to_memorised", "ratio_ci_low", "ratio_ci_high",
                   "median_adversarial_to_random")


def summary(per_image: pd.DataFrame, *, resamples: int, seed: int) -> pd.DataFrame:
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
                        resamples=resamples, seed=seed)
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
