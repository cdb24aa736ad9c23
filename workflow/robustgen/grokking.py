"""One Omnigrok MNIST grokking run (DESIGN.md §2): build, scale, train, keep snapshots and metrics."""

from __future__ import annotations

import hashlib
import math
import os
import platform
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data as datasets
from .io import atomic_torch_save, load_file, read_json, write_csv, write_json
from .models import build, from_state, model_spec, scale_init_
from .train import DTYPES, METRICS, Data, Resume, adam_options, evaluation_steps, resolve_device, train


@dataclass
class GrokkingSettings:
    """Every knob of a grokking run, as plain values (each arrives through the rule's params)."""

    init_scale: float
    weight_decay: float
    seed: int
    width: int = 200
    depth: int = 3
    lr: float = 1e-3
    batch_size: int = 200
    max_steps: int = 100_000
    dtype: str = "float32"
    device: str = "auto"
    eval_per_decade: int = 20
    eval_max_interval: int = 1000
    stop_test_acc: float = 0.85
    stop_steps_after: int = 5000


def stop_after_generalising(test_acc: float, steps_after: int):
    """Stopping rule: `steps_after` steps after the first evaluation with test accuracy > `test_acc`."""

    def should_stop(history: list[dict]) -> str | None:
        first = next((r["step"] for r in history if r["test_acc"] > test_acc), None)
        if first is not None and history[-1]["step"] >= first + steps_after:
            return "generalised"
        return None

    return should_stop


def snapshot_path(snapshot_dir: Path, step: int) -> Path:
    return Path(snapshot_dir) / f"step_{step:07d}.pt"


def run(split_path: Path, settings: GrokkingSettings, *, metrics_path: Path, run_path: Path,
        snapshot_dir: Path, state_every: int = 2000) -> dict:
    """Train one network; write its metric log, its summary (returned) and a snapshot per evaluation.

    Work in progress lives in `in_progress/` beside run.json: the snapshots so far and the full training
    state (saved every `state_every` steps and on SIGTERM), so a killed job that is rerun resumes where it
    was. Only a finished run moves its snapshots into `snapshot_dir` and writes its metrics and summary.
    """
    device = resolve_device(settings.device)
    dtype = DTYPES[settings.dtype]
    in_progress = Path(run_path).parent / "in_progress"
    staged_snapshots = in_progress / "snapshots"
    staged_snapshots.mkdir(parents=True, exist_ok=True)

    split = datasets.read_split(split_path)
    data = Data(
        datasets.as_float(split.train_x, device=device, dtype=dtype), split.train_y.to(device),
        datasets.as_float(split.test_x, device=device, dtype=dtype), split.test_y.to(device),
    )
    spec = model_spec(split.input_dim, settings.width, settings.depth, split.num_classes)
    torch.manual_seed(settings.seed)  # PyTorch default init draws from the global generator
    model = scale_init_(build(spec), settings.init_scale).to(device=device, dtype=dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay,
                                  **adam_options(device))
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    identity = dict(settings=asdict(settings), data=hashlib.sha256(Path(split_path).read_bytes()).hexdigest())

    def keep_snapshot(step, model, record):
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        atomic_torch_save(dict(step=step, model_spec=spec, state_dict=state, metrics=record),
                          snapshot_path(staged_snapshots, step))

    result = train(
        model, data, optimizer,
        loss="mse",
        batch_size=settings.batch_size,
        max_steps=settings.max_steps,
        eval_steps=evaluation_steps(settings.max_steps, settings.eval_per_decade, settings.eval_max_interval),
        generator=generator,
        should_stop=stop_after_generalising(settings.stop_test_acc, settings.stop_steps_after),
        on_evaluation=keep_snapshot,
        resume=Resume(in_progress / "state.pt", state_every, identity),
    )
    kept = {record["step"] for record in result.history}
    for step, path in snapshot_steps(staged_snapshots).items():
        if step not in kept:  # written after the last saved state by a run that was then killed
            path.unlink()
    write_csv(pd.DataFrame(result.history, columns=METRICS), metrics_path)
    summary = dict(
        settings=asdict(settings),
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


# Reading a run's stored outputs back, for the stages that probe its networks.

RUN_COLUMNS = ("dataset", "init_scale", "weight_decay", "seed")  # what identifies a run in every table


def run_identity(run_json: Path) -> tuple[dict, str]:
    """({dataset, init_scale, weight_decay, seed}, training dtype) of a run, from its run.json."""
    run = read_json(run_json)
    settings = run["settings"]
    return dict(dataset=run["data"]["dataset"], init_scale=settings["init_scale"],
                weight_decay=settings["weight_decay"], seed=settings["seed"]), settings["dtype"]


def stored_checkpoints(checkpoints_path: Path, device):
    """(name, step, network in eval mode) for every reached checkpoint in a checkpoints.pt."""
    blob = load_file(checkpoints_path, device)
    for name, cp in blob["checkpoints"].items():
        yield name, cp["step"], from_state(blob["model_spec"], cp["state_dict"], device=device)


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
