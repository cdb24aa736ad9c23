"""The representation-similarity stage: layer × layer CKA within and between a run's checkpoints, across
seeds, and from every milestone snapshot to the final network (DESIGN.md §7; Cianfarani et al. 2022)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import data as datasets
from .grokking import RUN_COLUMNS, milestone_snapshots, run_identity, stored_checkpoints
from .similarity import Representation, layer_activations
from .train import DTYPES, resolve_device

CHECKPOINT_PAIRS = (("memorised", "memorised"), ("generalised", "generalised"), ("final", "final"),
                    ("memorised", "generalised"), ("memorised", "final"), ("generalised", "final"))


@dataclass
class SimilaritySettings:
    """Every knob of the CKA stage, as plain values (each arrives through the rule's params)."""

    image_first: int = 0
    image_count: int = 1000
    estimator: str = "linear"
    rbf_threshold: float = 1.0
    batch_size: int = 0
    snapshots: int = 24
    device: str = "auto"


def _images(split_path: Path, run_json: Path, s: SimilaritySettings):
    run, dtype = run_identity(run_json)
    device = resolve_device(s.device)
    split = datasets.read_split(split_path)
    if s.image_first + s.image_count > len(split.test_x):
        raise ValueError(f"similarity.images asks for test images {s.image_first}..{s.image_first + s.image_count - 1}"
                         f" but the test set has {len(split.test_x)}; lower similarity.images.first or .count")
    x = datasets.as_float(split.test_x[s.image_first:s.image_first + s.image_count], device=device,
                          dtype=DTYPES[dtype])
    return run, device, x


def _representation(model, x, s: SimilaritySettings) -> tuple[list[str], Representation]:
    """(layer names, the network's prepared representation of the images)."""
    acts = layer_activations(model, x)
    return list(acts), Representation(list(acts.values()), estimator=s.estimator, rbf_threshold=s.rbf_threshold,
                                      batch_size=s.batch_size)


def run_similarity(split_path: Path, checkpoints_path: Path, snapshot_dir: Path, run_json: Path,
                   s: SimilaritySettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(layer × layer CKA within and between the run's checkpoints, per-layer CKA of every milestone
    snapshot with the final network)."""
    run, device, x = _images(split_path, run_json, s)
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
                 s: SimilaritySettings) -> pd.DataFrame:
    """Per layer, the CKA between the same checkpoint of two seeds of one (dataset, α, wd)."""
    reps, identities = {}, {}
    for checkpoints, run_json in zip(checkpoints_paths, run_jsons, strict=True):
        run, device, x = _images(split_path, run_json, s)
        identities[run["seed"]] = run
        for name, _, model in stored_checkpoints(checkpoints, device):
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
