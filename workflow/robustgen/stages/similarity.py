"""The representation-similarity stage: layer × layer CKA within and between a run's checkpoints, across
seeds, and from every milestone snapshot to the final network (docs/protocols.md §7; Cianfarani et al. 2022)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import torch

from ..measures.similarity import Representation, layer_activations
from ..runs import RUN_COLUMNS, accuracy_by_step, milestone_snapshots, open_run, stored_checkpoints
from ..settings import Similarity

CHECKPOINT_PAIRS = (("memorised", "memorised"), ("generalised", "generalised"), ("final", "final"),
                    ("memorised", "generalised"), ("memorised", "final"), ("generalised", "final"))


def _images(split_path: Path, run_json: Path, s: Similarity, device: str):
    run = open_run(split_path, run_json, device)
    x, _, _ = run.test_images(s.images.first, s.images.count, "similarity.images")
    return run.identity, run.device, x


def _representation(model, x, s: Similarity) -> tuple[list[str], Representation]:
    """(layer names, the network's prepared representation of the images)."""
    acts = layer_activations(model, x)
    return list(acts), Representation(list(acts.values()), **s.options())


def run_similarity(split_path: Path, checkpoints_path: Path, snapshot_dir: Path, run_json: Path,
                   s: Similarity, device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(layer × layer CKA within and between the run's checkpoints, per-layer CKA of every milestone
    snapshot with the final network)."""
    run, device, x = _images(split_path, run_json, s, device)
    reps = {name: _representation(model, x, s) for name, _, model in stored_checkpoints(checkpoints_path, device)}
    rows = []
    for a, b in CHECKPOINT_PAIRS:
        if a in reps and b in reps:
            (names_a, rep_a), (names_b, rep_b) = reps[a], reps[b]
            matrix = rep_a.cka(rep_b)
            for (i, layer_a), (j, layer_b) in itertools.product(enumerate(names_a), enumerate(names_b)):
                rows.append(dict(run, checkpoint_a=a, checkpoint_b=b, layer_a=layer_a, layer_b=layer_b,
                                 cka=matrix[i, j].item()))
    trajectory = []
    if "final" in reps:  # a run that diverged at once has no finite network to compare with
        names, final = reps["final"]
        for step, model in milestone_snapshots(snapshot_dir, s.snapshots, device):
            same_layer = torch.diagonal(_representation(model, x, s)[1].cka(final))
            trajectory += [dict(run, step=step, layer=layer, cka_to_final=value)
                           for layer, value in zip(names, same_layer.tolist())]
    return (pd.DataFrame(rows, columns=[*RUN_COLUMNS, "checkpoint_a", "checkpoint_b", "layer_a", "layer_b", "cka"]),
            pd.DataFrame(trajectory, columns=[*RUN_COLUMNS, "step", "layer", "cka_to_final"]))


def across_seeds(split_path: Path, checkpoints_paths: list[Path], run_jsons: list[Path],
                 s: Similarity, device: str) -> pd.DataFrame:
    """Per layer, the CKA between the same checkpoint of two seeds of one (dataset, α, wd)."""
    reps, identities = {}, {}
    for checkpoints, run_json in zip(checkpoints_paths, run_jsons, strict=True):
        run, run_device, x = _images(split_path, run_json, s, device)
        identities[run["seed"]] = run
        for name, _, model in stored_checkpoints(checkpoints, run_device):
            reps[(run["seed"], name)] = _representation(model, x, s)
    rows = []  # stays empty for a single seed
    for seed_a, seed_b in itertools.combinations(sorted(identities), 2):
        for name in ("memorised", "generalised", "final"):
            if (seed_a, name) in reps and (seed_b, name) in reps:
                names, rep_a = reps[(seed_a, name)]
                matrix = rep_a.cka(reps[(seed_b, name)][1])
                for i, layer in enumerate(names):
                    rows.append(dict({k: identities[seed_a][k] for k in RUN_COLUMNS if k != "seed"},
                                     checkpoint=name, seed_a=seed_a, seed_b=seed_b, layer=layer,
                                     cka=matrix[i, i].item()))
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


SEED_COLUMNS = ("dataset", "init_scale", "weight_decay", "checkpoint", "seed_a", "seed_b", "layer", "cka")


def trajectory_with_accuracy(trajectory: pd.DataFrame, metrics: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """cka_trajectory.csv: the per-layer CKA to the final network beside each snapshot's test accuracy."""
    keys = [*RUN_COLUMNS, "step"]
    return trajectory.merge(accuracy_by_step(metrics)[keys + ["test_acc"]], on=keys, how="left")
