"""The sensitivity stage: per-item measurements of a run's checkpoints and snapshots, and their summaries
(docs/protocols.md §5). One set of measurements per network, shared by checkpoints and snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..measures.network import measure_network
from ..measures.sensitivity import KINDS, region_slice, trajectory_anchors
from ..runs import RUN_COLUMNS, accuracy_by_step, milestone_snapshots, open_run, stored_checkpoints
from ..measures.stats import seed_mean
from ..settings import Bootstrap, RegionSlices, Sensitivity, SensitivityTrajectory
from ..tables import stack

ITEM_COLUMNS = ("checkpoint", "step", "where", "item", "jacobian_norm", "transitions", "length",
                "transition_density")
METRICS = ("jacobian_norm", "transitions", "transition_density")


def study_anchors(train_x: torch.Tensor, train_y: torch.Tensor, ellipses_per_kind: int, seed: int):
    """The anchors of every trajectory kind for one run, drawn with `seed` (the same for all its networks)."""
    generator = torch.Generator().manual_seed(seed)
    return {kind: trajectory_anchors(kind, train_x, train_y, ellipses_per_kind, generator) for kind in KINDS}

WHERE_ORDER = ("test_points", "train_points", "random", "different_class", "same_class")


def _inputs(split_path: Path, run_json: Path, s: Sensitivity, device: str):
    run = open_run(split_path, run_json, device)
    test_x = run.floats(run.split.test_x[:s.test_points])
    train_x = run.floats(run.split.train_x[:s.train_points])
    anchors = study_anchors(run.floats(run.split.train_x), run.split.train_y, s.ellipses, s.seed)
    return run, test_x, train_x, anchors


def _frame(run: dict, checkpoint: str, step: int, items: pd.DataFrame) -> pd.DataFrame:
    items = items.assign(checkpoint=checkpoint, step=step, **run)
    return items[[*RUN_COLUMNS, *ITEM_COLUMNS]]


def measure_checkpoints(split_path: Path, checkpoints_path: Path, run_json: Path, s: Sensitivity,
                        device: str) -> pd.DataFrame:
    """Per-item sensitivity of every reached checkpoint of a run."""
    run, test_x, train_x, anchors = _inputs(split_path, run_json, s, device)
    frames = [_frame(run.identity, name, step, measure_network(model, test_x, train_x, anchors,
                                                               ellipse_points=s.ellipse_points,
                                                               jacobian_every=s.jacobian_every))
              for name, step, model in stored_checkpoints(checkpoints_path, run.device)]
    return stack(frames, (*RUN_COLUMNS, *ITEM_COLUMNS))


def measure_trajectory(split_path: Path, snapshot_dir: Path, run_json: Path, t: SensitivityTrajectory,
                       device: str) -> pd.DataFrame:
    """Per-item sensitivity at `trajectory.snapshots` log-spaced milestone snapshots of a run (0 = all), with
    the trajectory's lighter sizes."""
    s = t.at_snapshots()
    run, test_x, train_x, anchors = _inputs(split_path, run_json, s, device)
    frames = [_frame(run.identity, "snapshot", step, measure_network(model, test_x, train_x, anchors,
                                                                     ellipse_points=s.ellipse_points,
                                                                     jacobian_every=s.jacobian_every))
              for step, model in milestone_snapshots(snapshot_dir, t.trajectory.snapshots, run.device)]
    return stack(frames, (*RUN_COLUMNS, *ITEM_COLUMNS))


def region_slices(split_path: Path, checkpoints_paths: list[Path], run_jsons: list[Path],
                  s: RegionSlices) -> list[dict]:
    """Novak's Figure 3 for the memorised and generalised networks of each run: the last hidden layer's
    region boundaries on the plane through three training points of different classes (the first
    different-class anchors of the run's ellipses)."""
    slices = []
    for checkpoints, run_json in zip(checkpoints_paths, run_jsons, strict=True):
        run = open_run(split_path, run_json, "cpu")
        anchors = trajectory_anchors("different_class", run.floats(run.split.train_x), run.split.train_y, 1,
                                     torch.Generator().manual_seed(s.seed))[0]
        for name, step, model in stored_checkpoints(checkpoints, "cpu"):
            if name in ("memorised", "generalised"):
                boundary, count, corners = region_slice(model, anchors, s.slice_resolution, s.slice_margin)
                slices.append(dict(run.identity, checkpoint=name, step=step, boundary=boundary.numpy(),
                                   regions=count, corners=corners, margin=s.slice_margin))
    return slices


SUMMARY_COLUMNS = ("scope", *RUN_COLUMNS, "checkpoint", "step", "status", "where", "metric", "n", "mean", "se",
                   "n_seeds", "ci_low", "ci_high")


def summary(items: pd.DataFrame, s: Bootstrap, runs: pd.DataFrame) -> pd.DataFrame:
    """sensitivity_summary.csv, per checkpoint, place and metric. Per run (scope=run): the mean over the
    items with its standard error and a bootstrap 95 % interval over the items. Per (dataset, α, wd)
    (scope=group): the mean over seeds of each seed's mean, its standard error over seeds (seeds are the
    unit of replication) and a hierarchical-bootstrap 95 % interval (seeds, then items; docs/protocols.md
    §10). `runs` (grokking_runs.csv) gives each run's status (a 'no_delay' run's memorised checkpoint comes
    after its generalised one)."""
    status = runs.set_index(list(RUN_COLUMNS))["status"].to_dict()
    rows = []
    for ident, frame in items.groupby([*RUN_COLUMNS, "checkpoint", "step", "where"], sort=False):
        for metric in METRICS:
            values = frame[metric].dropna().to_numpy(dtype=float)
            if len(values):
                found = seed_mean([values], resamples=s.resamples, seed=s.seed)
                se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else np.nan
                rows.append(dict(zip([*RUN_COLUMNS, "checkpoint", "step", "where"], ident), scope="run",
                                 status=status.get(ident[:4], ""), metric=metric, n=len(values), mean=found["mean"],
                                 se=se, n_seeds=1, ci_low=found["ci_low"], ci_high=found["ci_high"]))
    group_keys = ["dataset", "init_scale", "weight_decay", "checkpoint", "where"]
    for ident, frame in items.groupby(group_keys, sort=False):
        for metric in METRICS:
            per_seed = [f[metric].dropna().to_numpy(dtype=float) for _, f in frame.groupby("seed")]
            found = seed_mean(per_seed, resamples=s.resamples, seed=s.seed)
            if found["n_seeds"]:
                rows.append(dict(zip(group_keys, ident), scope="group", seed="all", step=np.nan, metric=metric,
                                 n=sum(len(v) for v in per_seed), **found))
    return _ordered(pd.DataFrame(rows, columns=SUMMARY_COLUMNS), ["scope", *RUN_COLUMNS, "checkpoint", "where",
                                                                 "metric"])


def _mean_se(values: pd.Series) -> dict:
    values = values.dropna().to_numpy(dtype=float)
    n = len(values)
    se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    return dict(n=n, mean=float(values.mean()) if n else np.nan, se=se)


def _long(items: pd.DataFrame, keys: list[str]) -> list[dict]:
    rows = []
    for ident, frame in items.groupby(keys, sort=False):
        for metric in METRICS:
            stats = _mean_se(frame[metric])
            if stats["n"]:
                rows.append(dict(zip(keys, ident), metric=metric, **stats))
    return rows


def trajectory_table(items: pd.DataFrame, metrics: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Per run, snapshot step, place and metric: mean and standard error over the items, beside train/test
    accuracy."""
    table = pd.DataFrame(_long(items, [*RUN_COLUMNS, "step", "where"]))
    table = table.merge(accuracy_by_step(metrics), on=[*RUN_COLUMNS, "step"], how="left")
    return _ordered(table, [*RUN_COLUMNS, "step", "where", "metric"])


def _ordered(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rank = {"checkpoint": {"memorised": 0, "generalised": 1, "final": 2},
            "where": {w: i for i, w in enumerate(WHERE_ORDER)}}

    def key(column):
        if column.name in rank:
            return column.map(rank[column.name])
        return column.astype(str) if column.name == "seed" else column

    return table.sort_values(keys, key=key, kind="stable").reset_index(drop=True)
