"""The capacity-vs-generalisation sweep (Novak et al. Figure 1; docs/protocols.md §6): fully-connected networks of
many widths and depths trained to 100 % training accuracy with the one trainer, their generalisation gap,
and its relation to parameter count and to the sensitivity measures."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import data as datasets
from ..evaluation import evaluate
from ..io import atomic_torch_save, load_file, read_json, write_csv, write_json
from ..measures.sensitivity import trajectory_anchors
from ..measures.stats import bootstrap_correlation
from ..models import build, from_state, model_spec, num_parameters
from ..settings import Bootstrap, CapacityTraining, Sensitivity
from ..train import DTYPES, METRICS, Data, make_optimizer, resolve_device, train
from ..measures.network import measure_network



def standardised_inputs(split: datasets.Split, *, device, dtype):
    """Train and test inputs in [0, 1], standardised per channel with the training set's statistics."""
    channels = split.meta["image_shape"][0]
    train_x, test_x, _, _ = datasets.standardise(datasets.as_float(split.train_x, device=device, dtype=dtype),
                                                 datasets.as_float(split.test_x, device=device, dtype=dtype),
                                                 channels)
    return train_x, test_x


def fitted(history: list[dict]) -> str | None:
    """Stopping rule of the sweep: every training point classified correctly."""
    return "fitted" if history[-1]["train_acc"] == 1.0 else None


def run(split_path: Path, training: CapacityTraining, *, width: int, depth: int, optimizer: str, lr: float,
        batch_size: int, seed: int, device: str, metrics_path: Path, run_path: Path, model_path: Path) -> dict:
    """Train one network (of `width`, `depth`, trained by `optimizer` at `lr` in batches of `batch_size`
    from `seed`) with cross-entropy until 100 % training accuracy or `max_epochs` (evaluated once per
    epoch); write its per-epoch log, its summary (returned) and its final weights."""
    settings = dict(width=width, depth=depth, optimizer=optimizer, lr=lr, batch_size=batch_size, seed=seed,
                    **asdict(training), device=device)
    device, dtype = resolve_device(device), DTYPES[training.dtype]
    split = datasets.read_split(split_path)
    train_x, test_x = standardised_inputs(split, device=device, dtype=dtype)
    train_y, test_y = split.train_y.to(device), split.test_y.to(device)
    spec = model_spec(split.input_dim, width, depth, split.num_classes)
    torch.manual_seed(seed)
    model = build(spec).to(device=device, dtype=dtype)
    steps_per_epoch = math.ceil(len(train_x) / batch_size)
    max_steps = training.max_epochs * steps_per_epoch
    result = train(model, Data(train_x, train_y), make_optimizer(optimizer, model.parameters(), lr=lr, device=device),
                   loss="cross_entropy", batch_size=batch_size, max_steps=max_steps,
                   eval_steps=range(0, max_steps + 1, steps_per_epoch),
                   generator=torch.Generator(device=device).manual_seed(seed), should_stop=fitted)
    model.eval()
    test_loss, test_acc = evaluate(model, test_x, test_y, "cross_entropy").tolist()
    log = pd.DataFrame(result.history, columns=METRICS).drop(columns=["test_loss", "test_acc"])
    log.insert(1, "epoch", log["step"] // steps_per_epoch)
    write_csv(log, metrics_path)
    final = result.history[-1]
    summary = dict(
        settings=settings, data=split.meta, model_spec=spec, parameters=num_parameters(model),
        epochs=result.steps // steps_per_epoch, steps=result.steps, stop_reason=result.stop_reason,
        reached_full_train_acc=final["train_acc"] == 1.0,
        train_loss=final["train_loss"], train_acc=final["train_acc"], test_loss=test_loss, test_acc=test_acc,
        wall_seconds=round(result.seconds, 3), device=str(device), threads=torch.get_num_threads(),
        torch=torch.__version__, python=platform.python_version(),
    )
    atomic_torch_save(dict(model_spec=spec, state_dict=model.state_dict()), model_path)
    write_json(summary, run_path)
    return summary


def measure(split_path: Path, model_path: Path, run_path: Path, s: Sensitivity, device: str) -> pd.DataFrame:
    """Per-item sensitivity of one trained network: the Jacobian norm at test and training points and the
    transitions along ellipses through test points of different and of the same class (the grokking
    study's settings and measurement, on the sweep's standardised inputs)."""
    device = resolve_device(device)
    blob = load_file(model_path, device)
    model = from_state(blob["model_spec"], blob["state_dict"], device=device)
    dtype = next(model.parameters()).dtype
    split = datasets.read_split(split_path)
    train_x, test_x = standardised_inputs(split, device=device, dtype=dtype)
    generator = torch.Generator().manual_seed(s.seed)
    anchors = {kind: trajectory_anchors(kind, test_x, split.test_y, s.ellipses, generator)
               for kind in ("different_class", "same_class")}
    items = measure_network(model, test_x[:s.test_points], train_x[:s.train_points], anchors,
                            ellipse_points=s.ellipse_points, jacobian_every=s.jacobian_every)
    return items.assign(network=Path(run_path).parent.name)


NETWORK_COLUMNS = ("dataset", "width", "depth", "optimizer", "lr", "batch_size", "seed", "parameters",
                   "train_acc", "test_acc", "train_loss", "test_loss", "gap_acc", "gap_loss",
                   "jacobian_test", "jacobian_train", "hidden_units", "transitions_different_class",
                   "transitions_same_class", "transition_density_different_class", "transition_density_same_class",
                   "transitions_per_unit_different_class", "transitions_per_unit_same_class",
                   "epochs", "wall_seconds", "reached_full_train_acc", "stop_reason")


def network_row(run_json: Path, items_csv: Path) -> dict:
    """One row of capacity_sweep.csv: a network's settings, accuracies, gaps and mean sensitivities."""
    run = read_json(run_json)
    items = pd.read_csv(items_csv)
    mean = lambda where, column: float(items.loc[items["where"] == where, column].mean())
    s = run["settings"]
    hidden = s["width"] * (s["depth"] - 1)  # every hidden ReLU unit adds to the activation code
    return dict(
        dataset=run["data"]["dataset"], width=s["width"], depth=s["depth"], optimizer=s["optimizer"], lr=s["lr"],
        batch_size=s["batch_size"], seed=s["seed"], parameters=run["parameters"],
        train_acc=run["train_acc"], test_acc=run["test_acc"], train_loss=run["train_loss"],
        test_loss=run["test_loss"], gap_acc=run["train_acc"] - run["test_acc"],
        gap_loss=run["test_loss"] - run["train_loss"],
        jacobian_test=mean("test_points", "jacobian_norm"), jacobian_train=mean("train_points", "jacobian_norm"),
        hidden_units=hidden,
        transitions_different_class=mean("different_class", "transitions"),
        transitions_same_class=mean("same_class", "transitions"),
        transition_density_different_class=mean("different_class", "transition_density"),
        transition_density_same_class=mean("same_class", "transition_density"),
        # a wider or deeper network has more units that can switch: transitions per unit remove that
        transitions_per_unit_different_class=mean("different_class", "transitions") / hidden if hidden else np.nan,
        transitions_per_unit_same_class=mean("same_class", "transitions") / hidden if hidden else np.nan,
        epochs=run["epochs"], wall_seconds=run["wall_seconds"],
        reached_full_train_acc=run["reached_full_train_acc"], stop_reason=run["stop_reason"],
    )


def sweep_table(run_jsons: list[Path], items_csvs: list[Path]) -> pd.DataFrame:
    rows = [network_row(r, i) for r, i in zip(run_jsons, items_csvs, strict=True)]
    table = pd.DataFrame(rows, columns=NETWORK_COLUMNS)
    return table.sort_values(["dataset", "depth", "width", "optimizer", "lr", "batch_size", "seed"],
                             kind="stable").reset_index(drop=True)


CORRELATIONS = (  # (x, transform of x, y): what Novak relates the generalisation gap to
    ("parameters", "log10", "gap_acc"),
    ("jacobian_test", "log10", "gap_acc"),
    ("transition_density_different_class", "none", "gap_acc"),
    ("transitions_per_unit_different_class", "none", "gap_acc"),
    ("jacobian_test", "log10", "gap_loss"),
)
ARCHITECTURE = ["width", "depth"]
CONFIGURATION = ["width", "depth", "optimizer", "lr", "batch_size"]  # a network but for its seed


def correlations(table: pd.DataFrame, s: Bootstrap) -> pd.DataFrame:
    """Pearson and Spearman correlations of the generalisation gap with log parameter count, log Jacobian
    norm and transitions (per unit length, and per unit length and hidden unit), over the networks that
    reached 100 % training accuracy (Novak's population). Two scopes: `all` networks, and `within_architecture`
    (x and the gap centred on each width × depth's mean, so size itself cannot drive the correlation; it
    needs several networks per architecture: seeds and the other factors of the grid). The 95 % intervals
    resample configurations with all their seeds (a configuration's seeds are not independent networks)."""
    fitted_nets = table[table["reached_full_train_acc"].astype(bool)].copy()
    clusters = fitted_nets[CONFIGURATION].astype(str).agg("/".join, axis=1).to_numpy()
    rows = []
    for x_name, transform, y_name in CORRELATIONS:
        x = fitted_nets[x_name].to_numpy(dtype=float)
        x = np.log10(x) if transform == "log10" else x
        y = fitted_nets[y_name].to_numpy(dtype=float)
        for scope in ("all", "within_architecture"):
            if scope == "within_architecture":
                groups = fitted_nets.groupby(ARCHITECTURE).ngroup().to_numpy()
                x, y = _centred(x, groups), _centred(y, groups)
            row = dict(scope=scope, x=x_name, x_transform=transform, y=y_name, n=len(x))
            for method in ("pearson", "spearman"):
                r, low, high = bootstrap_correlation(x, y, method=method, resamples=s.resamples, seed=s.seed,
                                                     clusters=clusters)
                row |= {method: r, f"{method}_ci_low": low, f"{method}_ci_high": high}
            rows.append(row)
    return pd.DataFrame(rows)


def _centred(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """`values` minus the mean of their group."""
    means = pd.Series(values).groupby(groups).transform("mean").to_numpy()
    return values - means
