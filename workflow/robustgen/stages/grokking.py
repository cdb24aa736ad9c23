"""One Omnigrok MNIST grokking run (docs/protocols.md §2): build, scale, train, keep snapshots and metrics."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from .. import data as datasets
from ..io import atomic_torch_save, read_json, write_csv, write_json
from ..models import build, model_spec, scale_init_
from ..runs import read_metrics, snapshot_path, snapshot_steps
from ..settings import GrokkingTraining
from ..train import (DTYPES, METRICS, PROGRESS_SECONDS, Data, Resume, adam_options, evaluation_steps, resolve_device,
                     train)


def stop_after_generalising(test_acc: float, steps_after: int):
    """Stopping rule: `steps_after` steps after the first evaluation with test accuracy > `test_acc`."""

    def should_stop(history: list[dict]) -> str | None:
        first = next((r["step"] for r in history if r["test_acc"] > test_acc), None)
        if first is not None and history[-1]["step"] >= first + steps_after:
            return "generalised"
        return None

    return should_stop


def run(split_path: Path, training: GrokkingTraining, *, init_scale: float, weight_decay: float, seed: int,
        jacobian_penalty: float, long_run: bool, device: str, metrics_path: Path, run_path: Path,
        snapshot_dir: Path, state_every: int) -> dict:
    """Train the run (α = `init_scale`, `weight_decay`, `seed`, GrokAlign's `jacobian_penalty` λ, 0 for
    Omnigrok's run); write its metric log, its summary (returned) and a snapshot per evaluation. A
    `long_run` trains to `max_steps` without the early stop (docs/protocols.md §9).

    Work in progress lives in `in_progress/` beside run.json: the snapshots so far and the full training
    state (saved every `state_every` steps and on SIGTERM), so a killed job that is rerun resumes where it
    was. Only a finished run moves its snapshots into `snapshot_dir` and writes its metrics and summary.
    """
    settings = dict(init_scale=init_scale, weight_decay=weight_decay, seed=seed, jacobian_penalty=jacobian_penalty,
                    long_run=long_run, **asdict(training), device=device)
    device = resolve_device(device)
    dtype = DTYPES[training.dtype]
    in_progress = Path(run_path).parent / "in_progress"
    staged_snapshots = in_progress / "snapshots"
    staged_snapshots.mkdir(parents=True, exist_ok=True)

    split = datasets.read_split(split_path)
    data = Data(
        datasets.as_float(split.train_x, device=device, dtype=dtype), split.train_y.to(device),
        datasets.as_float(split.test_x, device=device, dtype=dtype), split.test_y.to(device),
    )
    spec = model_spec(split.input_dim, training.width, training.depth, split.num_classes)
    torch.manual_seed(seed)  # PyTorch default init draws from the global generator
    model = scale_init_(build(spec), init_scale).to(device=device, dtype=dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=training.lr, weight_decay=weight_decay,
                                  **adam_options(device))
    generator = torch.Generator(device=device).manual_seed(seed)
    identity = dict(settings=settings, data=hashlib.sha256(Path(split_path).read_bytes()).hexdigest())

    print(f"grokking run: init_scale {init_scale}, weight_decay {weight_decay}, seed {seed}, jacobian_penalty "
          f"{jacobian_penalty}{', long run' if long_run else ''}: up to {training.max_steps} steps on {device}; "
          f"a progress line at most every {PROGRESS_SECONDS:g} s", flush=True)

    def keep_snapshot(step, model, record):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        atomic_torch_save(dict(step=step, model_spec=spec, state_dict=state, metrics=record),
                          snapshot_path(staged_snapshots, step))

    result = train(
        model, data, optimizer,
        loss="mse",
        batch_size=training.batch_size,
        max_steps=training.max_steps,
        eval_steps=evaluation_steps(training.max_steps, training.evaluation.per_decade,
                                    training.evaluation.max_interval),
        generator=generator,
        should_stop=(lambda history: None) if long_run else stop_after_generalising(training.stop.test_acc,
                                                                                 training.stop.steps_after),
        jacobian_penalty=jacobian_penalty,
        on_evaluation=keep_snapshot,
        resume=Resume(in_progress / "state.pt", state_every, identity),
    )
    kept = {record["step"] for record in result.history}
    for step, path in snapshot_steps(staged_snapshots).items():
        if step not in kept:  # written after the last saved state by a run that was then killed
            path.unlink()
    write_csv(pd.DataFrame(result.history, columns=METRICS), metrics_path)
    summary = dict(
        settings=settings,
        data=split.meta,
        model_spec=spec,
        steps=result.steps,
        stop_reason=result.stop_reason,
        wall_seconds=round(result.seconds, 3),
        eval_seconds=result.eval_seconds,
        resumed_from=result.resumed_from,
        device=str(device),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version(),
    )
    if Path(snapshot_dir).exists():
        shutil.rmtree(snapshot_dir)
    os.replace(staged_snapshots, snapshot_dir)
    write_json(summary, run_path)
    shutil.rmtree(in_progress)
    return summary


GROKKING_COLUMNS = (
    "dataset", "init_scale", "weight_decay", "seed", "status",
    "memorised_step", "generalised_step", "grokking_delay", "memorised_previous_step", "generalised_previous_step",
    "memorised_train_acc", "memorised_test_acc", "generalised_train_acc", "generalised_test_acc",
    "final_train_acc", "final_test_acc", "final_weight_norm",
    "steps", "wall_seconds", "stop_reason",
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
        status=found["status"],
        memorised_step=cps["memorised"]["step"],
        generalised_step=cps["generalised"]["step"],
        # generalised − memorised: positive for a run that grokked, ≤ 0 for one that generalised first
        grokking_delay=(cps["generalised"]["step"] - cps["memorised"]["step"]
                        if cps["memorised"]["reached"] and cps["generalised"]["reached"] else None),
        memorised_previous_step=cps["memorised"].get("previous_step"),
        generalised_previous_step=cps["generalised"].get("previous_step"),
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
    )


def grokking_table(run_jsons: list[Path], checkpoints_jsons: list[Path]) -> pd.DataFrame:
    """grokking_runs.csv: one row per run, sorted by (dataset, α, wd, seed); unreached steps are empty."""
    if len(run_jsons) != len(checkpoints_jsons):
        raise ValueError("need one checkpoints.json per run.json")
    rows = [grokking_row(r, c) for r, c in zip(run_jsons, checkpoints_jsons)]
    table = pd.DataFrame(rows, columns=GROKKING_COLUMNS)
    table = table.sort_values(["dataset", "init_scale", "weight_decay", "seed"], kind="stable")
    for column in ("memorised_step", "generalised_step", "grokking_delay", "memorised_previous_step",
                   "generalised_previous_step"):
        table[column] = table[column].astype("Int64")
    return table.reset_index(drop=True)


def stored_runs(run_jsons: list[Path], metric_csvs: list[Path], checkpoints_jsons: list[Path]) -> list[dict]:
    """The runs as the grokking figures draw them: α, wd, seed, metric log and checkpoints of each."""
    runs = []
    for run_json, metrics, checkpoints in zip(run_jsons, metric_csvs, checkpoints_jsons, strict=True):
        run = read_json(run_json)
        settings = run["settings"]
        runs.append(dict(init_scale=settings["init_scale"], weight_decay=settings["weight_decay"],
                         seed=settings["seed"], metrics=read_metrics(metrics, run_json, run),
                         checkpoints=read_json(checkpoints)["checkpoints"]))
    return runs
