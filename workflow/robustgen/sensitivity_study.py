"""The sensitivity stage: per-item measurements of a run's checkpoints and snapshots, and their summaries
(DESIGN.md §5). One set of measurements per network, shared by checkpoints and snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data as datasets
from .grokking import RUN_COLUMNS, milestone_snapshots, run_identity, stored_checkpoints
from .tables import stack
from .sensitivity import KINDS, jacobian_norms, trajectory_anchors, trajectory_sensitivity
from .train import DTYPES, resolve_device

ITEM_COLUMNS = ("checkpoint", "step", "where", "item", "jacobian_norm", "transitions", "length",
                "transition_density")
METRICS = ("jacobian_norm", "transitions", "transition_density")


def measure_network(model: torch.nn.Sequential, test_x: torch.Tensor, train_x: torch.Tensor,
                    anchors: dict[str, torch.Tensor], *, ellipse_points: int, jacobian_every: int):
    """Per-item sensitivity of one network: the Jacobian norm at test and at training points, and the
    transitions, length, transition density and mean Jacobian norm along every ellipse of each kind."""
    frames = []
    for where, x in (("test_points", test_x), ("train_points", train_x)):
        frames.append(pd.DataFrame(dict(where=where, item=range(len(x)),
                                        jacobian_norm=jacobian_norms(model, x).double().cpu().numpy())))
    for kind, kind_anchors in anchors.items():
        result = trajectory_sensitivity(model, kind_anchors, k=ellipse_points, jacobian_every=jacobian_every)
        frames.append(pd.DataFrame(dict(where=kind, item=range(len(kind_anchors)),
                                        **{k: v.cpu().numpy() for k, v in result.items()})))
    return pd.concat(frames, ignore_index=True)


def study_anchors(train_x: torch.Tensor, train_y: torch.Tensor, ellipses_per_kind: int, seed: int):
    """The anchors of every trajectory kind for one run, drawn with `seed` (the same for all its networks)."""
    generator = torch.Generator().manual_seed(seed)
    return {kind: trajectory_anchors(kind, train_x, train_y, ellipses_per_kind, generator) for kind in KINDS}

WHERE_ORDER = ("test_points", "train_points", "random", "different_class", "same_class")


@dataclass
class SensitivitySettings:
    """Every knob of the sensitivity measurements, as plain values (each arrives through params)."""

    test_points: int = 1000
    train_points: int = 1000
    ellipses: int = 100
    ellipse_points: int = 256
    jacobian_every: int = 8
    seed: int = 0
    device: str = "auto"


def _inputs(split_path: Path, run_json: Path, s: SensitivitySettings):
    run, dtype = run_identity(run_json)
    device = resolve_device(s.device)
    split = datasets.read_split(split_path)
    as_float = lambda images: datasets.as_float(images, device=device, dtype=DTYPES[dtype])
    test_x = as_float(split.test_x[:s.test_points])
    train_x = as_float(split.train_x[:s.train_points])
    anchors = study_anchors(as_float(split.train_x), split.train_y, s.ellipses, s.seed)
    return run, device, test_x, train_x, anchors


def _frame(run: dict, checkpoint: str, step: int, items: pd.DataFrame) -> pd.DataFrame:
    items = items.assign(checkpoint=checkpoint, step=step, **run)
    return items[[*RUN_COLUMNS, *ITEM_COLUMNS]]


def measure_checkpoints(split_path: Path, checkpoints_path: Path, run_json: Path,
                        s: SensitivitySettings) -> pd.DataFrame:
    """Per-item sensitivity of every reached checkpoint of a run."""
    run, device, test_x, train_x, anchors = _inputs(split_path, run_json, s)
    frames = [_frame(run, name, step, measure_network(model, test_x, train_x, anchors,
                                                      ellipse_points=s.ellipse_points,
                                                      jacobian_every=s.jacobian_every))
              for name, step, model in stored_checkpoints(checkpoints_path, device)]
    return stack(frames, (*RUN_COLUMNS, *ITEM_COLUMNS))


def measure_trajectory(split_path: Path, snapshot_dir: Path, run_json: Path, s: SensitivitySettings, *,
                       snapshots: int) -> pd.DataFrame:
    """Per-item sensitivity at `snapshots` log-spaced milestone snapshots of a run (0 = all)."""
    run, device, test_x, train_x, anchors = _inputs(split_path, run_json, s)
    frames = [_frame(run, "snapshot", step, measure_network(model, test_x, train_x, anchors,
                                                            ellipse_points=s.ellipse_points,
                                                            jacobian_every=s.jacobian_every))
              for step, model in milestone_snapshots(snapshot_dir, snapshots, device)]
    return stack(frames, (*RUN_COLUMNS, *ITEM_COLUMNS))


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


SUMMARY_COLUMNS = ("scope", *RUN_COLUMNS, "checkpoint", "step", "where", "metric", "n", "mean", "se")


def summary(items: pd.DataFrame) -> pd.DataFrame:
    """sensitivity_summary.csv: mean and standard error of each metric per run (scope=run) and per
    (dataset, α, wd) over seeds (scope=group), per checkpoint and where it was measured."""
    run_rows = _long(items, [*RUN_COLUMNS, "checkpoint", "step", "where"])
    group_rows = _long(items, ["dataset", "init_scale", "weight_decay", "checkpoint", "where"])
    table = pd.DataFrame([dict(scope="run", **r) for r in run_rows]
                         + [dict(scope="group", seed="all", step=np.nan, **r) for r in group_rows],
                         columns=SUMMARY_COLUMNS)
    return _ordered(table, ["scope", *RUN_COLUMNS, "checkpoint", "where", "metric"])


def trajectory_table(items: pd.DataFrame, metrics: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Per run, snapshot step, place and metric: mean and standard error, beside train/test accuracy."""
    table = pd.DataFrame(_long(items, [*RUN_COLUMNS, "step", "where"]))
    accuracy = pd.concat([log.assign(**dict(zip(RUN_COLUMNS, key)))[[*RUN_COLUMNS, "step", "train_acc", "test_acc"]]
                          for key, log in metrics.items()], ignore_index=True)
    table = table.merge(accuracy, on=[*RUN_COLUMNS, "step"], how="left")
    return _ordered(table, [*RUN_COLUMNS, "step", "where", "metric"])


def _ordered(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rank = {"checkpoint": {"memorised": 0, "generalised": 1, "final": 2},
            "where": {w: i for i, w in enumerate(WHERE_ORDER)}}

    def key(column):
        if column.name in rank:
            return column.map(rank[column.name])
        return column.astype(str) if column.name == "seed" else column

    return table.sort_values(keys, key=key, kind="stable").reset_index(drop=True)
