"""Robust vs standard representations (docs/protocols.md §7; Cianfarani et al. 2022).

Networks of one deeper architecture, trained by the adversarial stage (standard, PGD, FGSM; for the robust
ones the best network by held-out PGD accuracy beside the final one: early-stopped vs final, before vs after
catastrophic overfitting), compared layer by layer with CKA on benign test images and on PGD inputs; the
same comparisons between two seeds of one method are the baseline a difference must exceed. The grokking
checkpoints and snapshots are placed beside standard and robust networks of their own architecture.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import data as datasets
from ..io import load_file, read_json
from ..measures.perturbations import linf_ascent, pgd
from ..measures.similarity import Representation, hidden_and_output, structure
from ..measures.stats import seed_mean
from ..models import from_state
from ..runs import RUN_COLUMNS, milestone_snapshots, open_run, stored_checkpoints
from ..settings import (Bootstrap, CkaAlongRuns, CkaEstimator, GrokkingPlacement, OverfittingRule,
                        RepresentationComparison)
from ..train import DTYPES, resolve_device
from .adversarial import detect_overfitting

# The compared networks of a seed: standard training's final network; for PGD and FGSM training the final
# network and the best one (highest held-out PGD accuracy after the warm-up: the early-stopped network, for
# FGSM the one before catastrophic overfitting).
NETWORKS = ("standard", "pgd", "pgd_best", "fgsm", "fgsm_best")
# Pairs compared within one seed (rows, columns); every network is also compared with itself.
SAME_SEED = (("standard", "pgd"), ("standard", "fgsm"), ("pgd", "fgsm"), ("pgd_best", "pgd"), ("fgsm_best", "fgsm"))
# The seed baseline: one kind of network, two seeds.
ACROSS_SEEDS = ("standard", "pgd", "fgsm")
# On PGD inputs (made against the row network) only the final networks are compared.
ON_PGD_INPUTS = ("standard", "pgd", "fgsm")
CKA_COLUMNS = ("dataset", "model", "inputs", "network_a", "seed_a", "network_b", "seed_b", "layer_a", "layer_b", "cka")


def comparison_images(split: datasets.Split, run: dict, count: int, *, device, dtype):
    """The compared test images: the `count` after the runs' log and evaluation images (none of which chose
    or judged a network), in [0, 1], with their labels."""
    first = run["evaluation_images"][1] + 1
    if first + count > len(split.test_x):
        raise ValueError(f"representations.images = {count} asks for test images {first}..{first + count - 1}, but "
                         f"{split.meta['dataset']} has {len(split.test_x)} test images of which the adversarial "
                         f"runs use the first {first} (log and evaluation); lower representations.images")
    x = datasets.as_float(split.test_x[first:first + count], device=device, dtype=dtype)
    return x, split.test_y[first:first + count].to(device)


def kept_networks(method: str, steps: dict[str, int | None]) -> dict[str, str]:
    """{stored network (final, best): its name here} for a run of `method` whose stored networks are at
    `steps`: the final network, and for adversarial training the best one where it is another network (a
    best network at the final step, or none, is no second network)."""
    kept = {"final": method}
    if method != "standard" and steps.get("best") not in (None, steps["final"]):
        kept["best"] = f"{method}_best"
    return kept


def trained_networks(runs: list[Path], networks: list[Path], device) -> dict[tuple[str, int], torch.nn.Module]:
    """{(network name, seed): network} of the compared runs (see NETWORKS)."""
    found = {}
    for run_json, networks_path in zip(runs, networks, strict=True):
        settings = read_json(run_json)["settings"]
        blob = load_file(networks_path, device)
        stored = blob["networks"]
        for which, name in kept_networks(settings["method"], {k: v["step"] for k, v in stored.items()}).items():
            found[(name, settings["seed"])] = from_state(blob["model_spec"], stored[which]["state_dict"], device=device)
    return found


def compare(split_path: Path, runs: list[Path], networks: list[Path], s: RepresentationComparison,
            estimator: CkaEstimator, device: str) -> pd.DataFrame:
    """Layer × layer CKA (hidden layers and output) of every compared network with itself, of the pairs in
    SAME_SEED, and of each kind in ACROSS_SEEDS between two seeds — on benign images, and on PGD inputs made
    against the row network at the runs' ε (final networks only)."""
    device = resolve_device(device)
    first = read_json(runs[0])
    dtype, eps = DTYPES[first["settings"]["dtype"]], first["settings"]["eps"]
    split = datasets.read_split(split_path)
    x, y = comparison_images(split, first, s.images, device=device, dtype=dtype)
    nets = trained_networks(runs, networks, device)
    seeds = sorted({seed for _, seed in nets})
    attack = pgd(s.pgd_inputs.steps, s.pgd_inputs.step)
    inputs = {"benign": {}}  # inputs kind → {network made against: images}
    cache: dict[tuple, tuple[list[str], Representation]] = {}

    def images(kind, against):
        if kind == "benign":
            return x
        if against not in inputs.setdefault(kind, {}):
            generator = torch.Generator(device=device).manual_seed(1000 * NETWORKS.index(against[0]) + against[1])
            inputs[kind][against] = linf_ascent(nets[against], x, y, loss="cross_entropy", eps=eps, ascent=attack,
                                                generator=generator)
        return inputs[kind][against]

    def representation(net, kind, against):
        key = (net, kind, against)
        if key not in cache:
            acts = hidden_and_output(nets[net], images(kind, against))
            cache[key] = list(acts), Representation(list(acts.values()), estimator=estimator.estimator,
                                                    rbf_threshold=estimator.rbf_threshold,
                                                    batch_size=estimator.batch_size)
        return cache[key]

    pairs = [("benign", (n, seed), (n, seed)) for n in NETWORKS for seed in seeds]
    pairs += [("benign", (a, seed), (b, seed)) for a, b in SAME_SEED for seed in seeds]
    pairs += [("benign", (n, sa), (n, sb)) for n in ACROSS_SEEDS for sa, sb in itertools.combinations(seeds, 2)]
    pairs += [("pgd", (n, seed), (n, seed)) for n in ON_PGD_INPUTS for seed in seeds]
    pairs += [("pgd", (a, seed), (b, seed)) for a, b in SAME_SEED if a in ON_PGD_INPUTS and b in ON_PGD_INPUTS
              for seed in seeds]
    pairs += [("pgd", (n, sa), (n, sb)) for n in ON_PGD_INPUTS for sa, sb in itertools.combinations(seeds, 2)]
    rows = []
    identity = dict(dataset=first["data"]["dataset"], model=first["settings"]["model"])
    for kind, a, b in pairs:
        if a not in nets or b not in nets:
            continue  # a best network that was never kept (no step after the warm-up)
        against = a if kind == "pgd" else None
        (names_a, rep_a), (names_b, rep_b) = representation(a, kind, against), representation(b, kind, against)
        matrix = rep_a.cka(rep_b)
        rows += [dict(identity, inputs=kind, network_a=a[0], seed_a=a[1], network_b=b[0], seed_b=b[1],
                      layer_a=la, layer_b=lb, cka=matrix[i, j].item())
                 for (i, la), (j, lb) in itertools.product(enumerate(names_a), enumerate(names_b))]
    return pd.DataFrame(rows, columns=CKA_COLUMNS)


# --- the grokking networks beside their own family -----------------------------------------------------------

GROKKING_COLUMNS = (*RUN_COLUMNS, "checkpoint", "step", "family", "family_seed", "layer", "cka")
TRAJECTORY_COLUMNS = (*RUN_COLUMNS, "step", "near", "far", "block_index", "long_range", "cka_standard", "cka_pgd")


def place_grokking(grokking_split: Path, checkpoints: list[Path], snapshots: list[Path], grokking_runs: list[Path],
                   family_split: Path, family_runs: list[Path], family_networks: list[Path],
                   s: GrokkingPlacement, estimator: CkaAlongRuns, device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per layer, CKA of each grokking checkpoint with every standard and PGD-trained network of its own
    architecture; along each grokking run, at milestone snapshots, the structure scalars of its layer × layer
    CKA and its mean per-layer CKA with the standard and with the robust family) — on the representation
    stage's images, which no grokking run trained on (the grokking training set is the first
    grokking.train_size images of the same split order, the adversarial test set its last images)."""
    device = resolve_device(device)
    first = read_json(family_runs[0])
    x, _ = comparison_images(datasets.read_split(family_split), first, s.images, device=device,
                             dtype=DTYPES[first["settings"]["dtype"]])
    options = dict(estimator=estimator.estimator, rbf_threshold=estimator.rbf_threshold,
                   batch_size=estimator.batch_size)

    def represent(model):
        acts = hidden_and_output(model, x.to(next(model.parameters()).dtype))
        return list(acts), Representation(list(acts.values()), **options)

    family = {key: represent(net) for key, net in trained_networks(family_runs, family_networks, device).items()
              if key[0] in ("standard", "pgd")}
    rows, trajectory = [], []
    for checkpoints_path, snapshot_dir, run_json in zip(checkpoints, snapshots, grokking_runs, strict=True):
        run = open_run(grokking_split, run_json, device).identity
        for name, step, model in stored_checkpoints(checkpoints_path, device):
            names, rep = represent(model)
            for (kind, seed), (family_names, family_rep) in family.items():
                if family_names != names:
                    raise ValueError(f"representations.grokking.model has layers {family_names}, the grokking "
                                     f"networks {names}: set it to the grokking architecture (grokking.width, "
                                     "grokking.depth), e.g. mlp_w200_d3")
                diagonal = torch.diagonal(rep.cka(family_rep)).tolist()
                rows += [dict(run, checkpoint=name, step=step, family=kind, family_seed=seed, layer=layer, cka=value)
                         for layer, value in zip(names, diagonal)]
        for step, model in milestone_snapshots(snapshot_dir, estimator.snapshots, device):
            names, rep = represent(model)
            within = structure(rep.cka(rep))
            towards = {kind: float(np.mean([torch.diagonal(rep.cka(f_rep)).mean().item()
                                            for (k, _), (_, f_rep) in family.items() if k == kind]))
                       for kind in ("standard", "pgd")}
            trajectory.append(dict(run, step=step, **within, cka_standard=towards["standard"],
                                   cka_pgd=towards["pgd"]))
    return pd.DataFrame(rows, columns=GROKKING_COLUMNS), pd.DataFrame(trajectory, columns=TRAJECTORY_COLUMNS)


# --- tables --------------------------------------------------------------------------------------------------

def run_summaries(runs: list[Path], logs: list[Path], rule: OverfittingRule) -> pd.DataFrame:
    """Per compared network: its step, clean and PGD-50 accuracy, its run's CO verdict (§8's rule) and
    whether the network itself comes after the run's CO onset (`after_co`; a best network before a
    collapse does not)."""
    rows = []
    for run_json, log_csv in zip(runs, logs, strict=True):
        run = read_json(run_json)
        settings = run["settings"]
        co = detect_overfitting(pd.read_csv(log_csv), rule) if settings["method"] != "standard" else {}
        kept = kept_networks(settings["method"], {k: v["step"] for k, v in run["evaluation"].items()})
        for which, name in kept.items():
            e = run["evaluation"][which]
            after = bool(co.get("co")) and e["step"] >= co["co_step"]
            rows.append(dict(network=name, seed=settings["seed"], step=e["step"], steps=run["steps"],
                             clean_acc=e["clean_acc"], pgd50_acc=e["pgd_acc"], co=co.get("co", False),
                             co_form=co.get("co_form", ""), co_step=co.get("co_step"), after_co=after))
    return pd.DataFrame(rows)


STRUCTURE = ("near", "far", "block_index", "long_range")


def structure_table(cka: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """representation_structure.csv: per network, seed and inputs, the structure scalars of its own layer ×
    layer CKA, beside the network's accuracies and its run's CO verdict."""
    rows = []
    own = cka[(cka["network_a"] == cka["network_b"]) & (cka["seed_a"] == cka["seed_b"])]
    for (inputs, network, seed), part in own.groupby(["inputs", "network_a", "seed_a"], sort=True):
        names = list(dict.fromkeys(part["layer_a"]))
        matrix = part.pivot(index="layer_a", columns="layer_b", values="cka").reindex(index=names, columns=names)
        rows.append(dict(dataset=part["dataset"].iloc[0], model=part["model"].iloc[0], inputs=inputs,
                         network=network, seed=seed, **structure(torch.tensor(matrix.to_numpy()))))
    table = pd.DataFrame(rows)
    return table.merge(runs, on=["network", "seed"], how="left")


def _interval(values: list[float], b: Bootstrap) -> dict:
    """Mean over seeds (or seed pairs) with its bootstrap interval, and the range."""
    values = [v for v in values if not math.isnan(v)]
    found = seed_mean([np.array([v]) for v in values], resamples=b.resamples, seed=b.seed)
    return dict(n=found["n_seeds"], mean=found["mean"], ci_low=found["ci_low"], ci_high=found["ci_high"],
                min=min(values, default=np.nan), max=max(values, default=np.nan))


SUMMARY_COLUMNS = ("dataset", "model", "inputs", "network", "measure", "statistic", "n", "mean", "ci_low", "ci_high",
                   "min", "max")


def summary_table(structures: pd.DataFrame, b: Bootstrap) -> pd.DataFrame:
    """representation_summary.csv: per inputs, network and structure scalar —
    'value': its mean over seeds; 'minus_standard': the paired difference network − standard network of the
    same seed; 'seed_baseline': |difference| between two seeds of the same kind of network (what seed noise
    alone gives). Intervals: bootstrap over seeds (over seed pairs for the baseline)."""
    rows = []
    for (dataset, model, inputs), part in structures.groupby(["dataset", "model", "inputs"], sort=True):
        by = part.set_index(["network", "seed"])
        for network in [n for n in NETWORKS if n in set(part["network"])]:
            seeds = sorted(part.loc[part["network"] == network, "seed"])
            for measure in STRUCTURE:
                value = by.loc[network, measure] if len(seeds) else pd.Series(dtype=float)
                stats = {"value": [value[s] for s in seeds],
                         "seed_baseline": [abs(value[a] - value[b_]) for a, b_ in itertools.combinations(seeds, 2)]}
                if network != "standard":
                    stats["minus_standard"] = [value[s] - by.loc[("standard", s), measure] for s in seeds
                                               if ("standard", s) in by.index]
                rows += [dict(dataset=dataset, model=model, inputs=inputs, network=network, measure=measure,
                              statistic=statistic, **_interval(values, b)) for statistic, values in stats.items()]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


LAYER_COLUMNS = ("dataset", "model", "inputs", "comparison", "network_a", "network_b", "across", "layer", "n", "mean",
                 "ci_low", "ci_high", "min", "max")


def layers_table(cka: pd.DataFrame, b: Bootstrap) -> pd.DataFrame:
    """representation_layers.csv: per layer, the CKA of a layer with the same layer of another network — the
    pairs of one seed (e.g. pgd_best vs pgd: early-stopped vs final; fgsm_best vs fgsm: before vs after CO;
    standard vs pgd) and of one kind between two seeds (the baseline) — mean over seeds or seed pairs with
    its interval."""
    same = cka[cka["layer_a"] == cka["layer_b"]]
    own = (same["network_a"] == same["network_b"]) & (same["seed_a"] == same["seed_b"])
    same = same[~own]
    rows = []
    keys = ["dataset", "model", "inputs", "network_a", "network_b"]
    for key, part in same.groupby(keys, sort=False):
        for across, pairs in part.groupby(part["seed_a"] != part["seed_b"], sort=True):
            comparison = f"{key[3]} vs {key[4]}" + (" (two seeds)" if across else "")
            for layer in dict.fromkeys(pairs["layer_a"]):
                values = pairs.loc[pairs["layer_a"] == layer, "cka"].tolist()
                rows.append(dict(zip(keys, key), comparison=comparison, across=bool(across), layer=layer,
                                 **_interval(values, b)))
    return pd.DataFrame(rows, columns=LAYER_COLUMNS)


def grokking_table(placed: pd.DataFrame, b: Bootstrap) -> pd.DataFrame:
    """representation_grokking.csv: per (dataset, α, wd), checkpoint, family and layer, the CKA of the
    grokking checkpoint with the family network, averaged over family seeds within a grokking seed, then
    over grokking seeds with its interval; family 'pgd - standard': the paired difference per grokking seed
    (is the checkpoint nearer the robust network than the standard one?)."""
    groups = ["dataset", "init_scale", "weight_decay", "checkpoint", "layer"]
    per_seed = placed.groupby([*groups, "seed", "family"], sort=False)["cka"].mean().unstack("family")
    per_seed["pgd - standard"] = per_seed["pgd"] - per_seed["standard"]
    long = per_seed[["standard", "pgd", "pgd - standard"]].stack().rename("cka").reset_index()
    rows = [dict(zip([*groups, "family"], key), **_interval(part["cka"].tolist(), b))
            for key, part in long.groupby([*groups, "family"], sort=False)]
    return pd.DataFrame(rows, columns=[*groups, "family", "n", "mean", "ci_low", "ci_high", "min", "max"])
