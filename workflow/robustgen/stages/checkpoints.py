"""Memorised / generalised / final checkpoints from a run's metric log (docs/protocols.md §3, Walker's protocol)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..io import CorruptFile, load_file, read_json
from ..runs import read_metrics, snapshot_path
from ..settings import CheckpointThresholds

CHECKPOINTS = ("memorised", "generalised", "final")


def first_evaluation(metrics: pd.DataFrame, column: str, threshold: float, strict: bool) -> dict | None:
    """The first row whose `column` is > `threshold` (strict) or >= it, as a dict with the step of the
    evaluation before it (`previous_step`: the crossing lies between the two); None if never."""
    values = metrics[column]
    hits = metrics[values > threshold] if strict else metrics[values >= threshold]
    if hits.empty:
        return None
    position = metrics.index.get_loc(hits.index[0])
    return hits.iloc[0].to_dict() | dict(previous_step=int(metrics["step"].iloc[position - 1]) if position else None)


def _entry(row: dict | None) -> dict:
    if row is None:
        return dict(reached=False, step=None, previous_step=None, train_acc=None, test_acc=None, train_loss=None,
                    test_loss=None, weight_norm=None)
    return dict(reached=True, step=int(row["step"]), previous_step=row.get("previous_step"),
                train_acc=row["train_acc"], test_acc=row["test_acc"], train_loss=row["train_loss"],
                test_loss=row["test_loss"], weight_norm=row["weight_norm"])


def status(found: dict, stop_reason: str) -> str:
    """One word per run: diverged; generalised (memorised first, generalised at a later evaluation: it
    grokked, with a delay); no_delay (generalised without having memorised first: no grokking delay, and no
    memorised network to compare with); memorised_only; neither."""
    if stop_reason == "diverged":
        return "diverged"
    memorised, generalised = found["memorised"], found["generalised"]
    if generalised["reached"]:
        return "generalised" if memorised["reached"] and memorised["step"] < generalised["step"] else "no_delay"
    if memorised["reached"]:
        return "memorised_only"
    return "neither"


def extract(metrics: pd.DataFrame, *, memorised_train_acc: float, generalised_test_acc: float,
            stop_reason: str = "") -> dict:
    """Find the checkpoints in an evaluation log (rows in step order, columns as train.METRICS).

    memorised: the first evaluation with train accuracy >= `memorised_train_acc`;
    generalised: the first with test accuracy > `generalised_test_acc`;
    final: the last evaluation of a finite network (a diverged run's last evaluation is not one).
    A threshold never met is recorded as not reached. Each checkpoint records the evaluation before it
    (`previous_step`): the threshold was crossed between the two (the resolution of the checkpoint).
    """
    metrics = metrics.sort_values("step").reset_index(drop=True)
    finite = metrics[metrics["train_loss"].map(math.isfinite) & metrics["weight_norm"].map(math.isfinite)]
    found = {
        "memorised": _entry(first_evaluation(finite, "train_acc", memorised_train_acc, strict=False)),
        "generalised": _entry(first_evaluation(finite, "test_acc", generalised_test_acc, strict=True)),
        "final": _entry(finite.iloc[-1].to_dict() | dict(previous_step=None) if len(finite) else None),
    }
    return dict(
        checkpoints=found,
        thresholds=dict(memorised_train_acc=memorised_train_acc, generalised_test_acc=generalised_test_acc),
        status=status(found, stop_reason),
    )


def extract_run(metrics_csv: Path, run_json: Path, snapshot_dir: Path, thresholds: CheckpointThresholds):
    """(checkpoints.json content, checkpoints.pt content) of a run: the checkpoints found in its metric log,
    and the weights of each reached one, taken from its snapshot."""
    run = read_json(run_json)
    found = extract(read_metrics(metrics_csv, run_json, run), memorised_train_acc=thresholds.memorised_train_acc,
                    generalised_test_acc=thresholds.generalised_test_acc, stop_reason=run["stop_reason"])
    weights = {}
    for name, cp in found["checkpoints"].items():
        if cp["reached"]:
            path = snapshot_path(snapshot_dir, cp["step"])
            if not path.exists():
                raise CorruptFile(
                    f"{metrics_csv} records an evaluation at step {cp['step']} (the {name} checkpoint), but its "
                    f"snapshot {path} is missing: the run's files disagree. Delete the run's directory "
                    f"({Path(run_json).parent}) and rerun snakemake to train the run again.")
            cp["snapshot"] = path.name
            weights[name] = dict(step=cp["step"], state_dict=load_file(path)["state_dict"])
    return found, dict(model_spec=run["model_spec"], checkpoints=weights)
