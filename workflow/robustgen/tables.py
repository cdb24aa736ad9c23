"""Study tables assembled from per-run outputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .io import read_json

def stack(frames: list[pd.DataFrame], columns) -> pd.DataFrame:
    """Concatenate per-network frames into one with `columns`; without any (a run that reached no
    checkpoint, or diverged) an empty table with those columns, so the study's tables still assemble."""
    if not frames:
        return pd.DataFrame(columns=list(columns))
    return pd.concat(frames, ignore_index=True)[list(columns)]


def read_tables(paths) -> pd.DataFrame:
    """Per-run CSVs read and stacked into one table. Empty ones (a run with nothing to measure) add no
    rows and do not turn numeric columns into text."""
    frames = [pd.read_csv(p) for p in paths]
    filled = [f for f in frames if len(f)]
    if not filled:
        return frames[0] if frames else pd.DataFrame()
    return pd.concat(filled, ignore_index=True)


GROKKING_COLUMNS = (
    "dataset", "init_scale", "weight_decay", "seed",
    "memorised_step", "generalised_step",
    "memorised_train_acc", "memorised_test_acc", "generalised_train_acc", "generalised_test_acc",
    "final_train_acc", "final_test_acc", "final_weight_norm",
    "steps", "wall_seconds", "stop_reason", "status",
)


def grokking_row(run_json: Path, checkpoints_json: Path) -> dict:
    """One row of grokking_runs.csv from a run's run.json and checkpoints.json."""
    run = read_json(run_json)
    found = read_json(checkpoints_json)
    cps = found["checkpoints"]
    settings = run["settings"]
    return dict(
        dataset=run["data"]["dataset"],
        init_scale=settings["init_scale"],
        weight_decay=settings["weight_decay"],
        seed=settings["seed"],
        memorised_step=cps["memorised"]["step"],
        generalised_step=cps["generalised"]["step"],
        memorised_train_acc=cps["memorised"]["train_acc"],
        memorised_test_acc=cps["memorised"]["test_acc"],
        generalised_train_acc=cps["generalised"]["train_acc"],
        generalised_test_acc=cps["generalised"]["test_acc"],
        final_train_acc=cps["final"]["train_acc"],
        final_test_acc=cps["final"]["test_acc"],
        final_weight_norm=cps["final"]["weight_norm"],
        steps=run["steps"],
        wall_seconds=run["wall_seconds"],
        stop_reason=run["stop_reason"],
        status=found["status"],
    )


def grokking_table(run_jsons: list[Path], checkpoints_jsons: list[Path]) -> pd.DataFrame:
    """grokking_runs.csv: one row per run, sorted by (dataset, α, wd, seed); unreached steps are empty."""
    if len(run_jsons) != len(checkpoints_jsons):
        raise ValueError("need one checkpoints.json per run.json")
    rows = [grokking_row(r, c) for r, c in zip(run_jsons, checkpoints_jsons)]
    table = pd.DataFrame(rows, columns=GROKKING_COLUMNS)
    table = table.sort_values(["dataset", "init_scale", "weight_decay", "seed"], kind="stable")
    for column in ("memorised_step", "generalised_step"):
        table[column] = table[column].astype("Int64")
    return table.reset_index(drop=True)
