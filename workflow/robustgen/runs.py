"""Reading a grokking run's stored outputs back: its identity, data, checkpoints and snapshots.

Every stage that probes a run's networks opens it here (`open_run`), so the identity, device, split and
dtype of a run are worked out in one place.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data as datasets
from .io import CorruptFile, load_file, read_json
from .models import from_state
from .train import DTYPES, METRICS, resolve_device

RUN_COLUMNS = ("dataset", "init_scale", "weight_decay", "seed")  # what identifies a run in every table


def run_identity(run_json: Path) -> tuple[dict, str]:
    """({dataset, init_scale, weight_decay, seed}, training dtype) of a run, from its run.json."""
    run = read_json(run_json)
    settings = run["settings"]
    return dict(dataset=run["data"]["dataset"], init_scale=settings["init_scale"],
                weight_decay=settings["weight_decay"], seed=settings["seed"]), settings["dtype"]


@dataclass
class OpenRun:
    """A run's identity and its data, on the device where its networks are probed, in its training dtype."""

    identity: dict
    device: torch.device
    dtype: torch.dtype
    split: datasets.Split

    def floats(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images as the run's network inputs."""
        return datasets.as_float(images, device=self.device, dtype=self.dtype)

    def test_images(self, first: int, count: int, key: str):
        """Test images first … first+count−1 as inputs, their labels and indices; `key` names the config
        key that chose them, for the error when the test set is too small."""
        end = first + count
        if first < 0 or count < 1 or end > len(self.split.test_x):
            raise ValueError(f"{key} asks for test images {first}..{end - 1}, but the test set of "
                             f"{self.split.meta['dataset']} has {len(self.split.test_x)} images "
                             f"(0..{len(self.split.test_x) - 1}); lower {key}.first or {key}.count")
        return self.floats(self.split.test_x[first:end]), self.split.test_y[first:end].to(self.device), \
            torch.arange(first, end)


@functools.lru_cache(maxsize=4)
def _split(split_path: Path) -> datasets.Split:
    return datasets.read_split(split_path)  # read once per process, however many runs share it


def open_run(split_path: Path, run_json: Path, device: str) -> OpenRun:
    """The run of `run_json`, with the prepared split it was trained on, on `device` ('auto' allowed)."""
    identity, dtype = run_identity(run_json)
    return OpenRun(identity, resolve_device(device), DTYPES[dtype], _split(Path(split_path)))


def stored_checkpoints(checkpoints_path: Path, device):
    """(name, step, network in eval mode) for every reached checkpoint in a checkpoints.pt."""
    blob = load_file(checkpoints_path, device)
    for name, cp in blob["checkpoints"].items():
        yield name, cp["step"], from_state(blob["model_spec"], cp["state_dict"], device=device)


def snapshot_path(snapshot_dir: Path, step: int) -> Path:
    return Path(snapshot_dir) / f"step_{step:07d}.pt"


def snapshot_steps(snapshot_dir: Path) -> dict[int, Path]:
    """{step: file} of a run's snapshots (snapshots/step_XXXXXXX.pt)."""
    found = {}
    for path in Path(snapshot_dir).glob("step_*.pt"):
        match = re.fullmatch(r"step_(\d+)\.pt", path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def log_spaced_subset(steps: list[int], count: int) -> list[int]:
    """At most `count` of `steps`, spread evenly in log(1 + step), always with the first and last; 0 = all."""
    steps = sorted(steps)
    if count <= 0 or count >= len(steps):
        return steps
    targets = np.geomspace(1 + steps[0], 1 + steps[-1], count) - 1
    chosen = {steps[0], steps[-1]}
    for t in targets:
        chosen.add(min(steps, key=lambda s: abs(math.log1p(s) - math.log1p(t))))
    return sorted(chosen)


def milestone_snapshots(snapshot_dir: Path, count: int, device):
    """(step, network in eval mode) at `count` log-spaced snapshots of a run (0 = every snapshot)."""
    available = snapshot_steps(snapshot_dir)
    for step in log_spaced_subset(list(available), count):
        blob = load_file(available[step], device)
        if not all(math.isfinite(blob["metrics"][k]) for k in ("train_loss", "weight_norm")):
            continue  # the network of a diverged run once it has diverged: nothing to probe
        yield step, from_state(blob["model_spec"], blob["state_dict"], device=device)


def read_metrics(metrics_csv: Path, run_json: Path, run: dict | None = None) -> pd.DataFrame:
    """A grokking run's metric log, checked against its run.json (`run`: its content, if already read): the
    same evaluations (one row per evaluation recorded, the last at the run's final step). A log that is
    truncated, or that belongs to another run, raises CorruptFile naming both files and what to do."""
    run = read_json(run_json) if run is None else run
    redo = (f"Delete the run's directory ({Path(run_json).parent}) and rerun snakemake to train the run again "
            f"(or restore both files from the same run).")
    try:
        metrics = pd.read_csv(metrics_csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CorruptFile(f"cannot read {metrics_csv}: {type(error).__name__}: {error}. {redo}") from error
    text = Path(metrics_csv).read_text()
    header, *rows = text.splitlines() or [""]
    ragged = [i for i, row in enumerate(rows, 2) if row.count(",") != header.count(",")]
    if not text.endswith("\n") or ragged:
        raise CorruptFile(f"{metrics_csv} is cut short: " + (f"line {ragged[0]} has fewer fields than its header"
                          if ragged else "its last line is incomplete (no final newline)") + f". {redo}")
    missing = [c for c in METRICS if c not in metrics.columns]
    if missing:
        raise CorruptFile(f"{metrics_csv} lacks the columns {missing} of a metric log (it has "
                          f"{list(metrics.columns)}): it is truncated or not a grokking run's log. {redo}")
    evaluations = len(run.get("eval_seconds", [])) or None
    last = metrics["step"].max() if len(metrics) else None
    if metrics["step"].isna().any() or last != run["steps"] or (evaluations and len(metrics) != evaluations):
        raise CorruptFile(
            f"{metrics_csv} disagrees with {run_json}: the metric log has {len(metrics)} evaluations up to step "
            f"{last}, but the run recorded {evaluations or 'its'} evaluations up to step {run['steps']} "
            f"(stopped: {run.get('stop_reason')}). One of them is truncated or comes from another run. {redo}")
    return metrics


def metric_logs(run_jsons: list[Path], metric_csvs: list[Path]) -> dict[tuple, pd.DataFrame]:
    """{(dataset, α, wd, seed): metric log} of the runs."""
    return {tuple(run_identity(r)[0].values()): read_metrics(m, r) for r, m in zip(run_jsons, metric_csvs, strict=True)}


def accuracy_by_step(logs: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """The runs' train and test accuracy at every evaluation, as one table keyed by run and step."""
    return pd.concat([log.assign(**dict(zip(RUN_COLUMNS, key)))[[*RUN_COLUMNS, "step", "train_acc", "test_acc"]]
                      for key, log in logs.items()], ignore_index=True)
