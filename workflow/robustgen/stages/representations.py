"""Robust vs standard representations (docs/protocols.md §7; Cianfarani et al. 2022).

Networks of one deeper architecture, trained by the adversarial stage (standard, PGD, FGSM; for the robust
ones the best network by held-out PGD accuracy beside the final one: early-stopped vs final, before vs after
catastrophic overfitting), and each seed's untrained network (their common initialisation: the control
every structure scalar is read against), compared layer by layer with CKA on benign test images and on PGD
inputs both compared networks see; kinds are compared between seeds, so that, like the seed baseline (one
kind, two seeds), no compared pair shares an initialisation. Scalars use debiased CKA (no floor). The grokking
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
from ..evaluation import evaluate
from ..io import atomic_torch_save, load_file, read_json, write_json
from ..measures.attacks import linf_ascent, pgd, robust_correct
from ..measures.similarity import (Representation, StreamedCka, gram_linear, hidden_and_output, minibatch_mode,
                                  minibatches, structure)
from ..measures.stats import seed_mean
from ..models import build, calibrate_batchnorm, from_state
from ..runs import RUN_COLUMNS, milestone_snapshots, open_run, stored_checkpoints
from ..settings import (BlockComparison, BlockTraining, Bootstrap, CkaAlongRuns, CkaBatches, CkaEstimator,
                        GrokkingPlacement, OverfittingRule, RepresentationComparison)
from ..train import DTYPES, Data, lr_schedule, make_optimizer, resolve_device, train
from .adversarial import inputs as run_inputs, network_spec, stream
from ..measures.overfitting import detect_overfitting, schedule

# The compared networks of a seed: standard training's final network; for PGD and FGSM training the final
# network and the best one (highest held-out PGD accuracy after the warm-up: the early-stopped network, for
# FGSM the one before catastrophic overfitting).
NETWORKS = ("standard", "pgd", "pgd_best", "fgsm", "fgsm_best")
# The block-structure control: the runs' initialisation (one per seed: every run of a seed starts from it).
UNTRAINED = "untrained"
# Pairs of one run (rows, columns): best vs final. They share everything up to the best network's step.
SAME_RUN = (("pgd_best", "pgd"), ("fgsm_best", "fgsm"))
# Pairs of final networks compared between two seeds (every ordered pair s ≠ s′), so that no compared pair shares
# an initialisation: between kinds, and each kind with itself (the seed baseline of the kinds starting it).
FINAL = ("standard", "pgd", "fgsm")
BETWEEN = (("standard", "pgd"), ("standard", "fgsm"), ("pgd", "fgsm"),
           ("standard", "standard"), ("pgd", "pgd"), ("fgsm", "fgsm"))
# `against`: the network the inputs were made against — none (benign), a (network_a) or b (network_b).
CKA_COLUMNS = ("dataset", "model", "inputs", "against", "network_a", "seed_a", "network_b", "seed_b", "layer_a",
               "layer_b", "cka", "cka_debiased")


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


def initial_network(spec: dict, seed: int, *, device, dtype, calibration: torch.Tensor | None = None) -> torch.nn.Module:
    """The initialisation of every run of `seed`, drawn as the adversarial stage's run() draws it
    (torch.manual_seed(seed), build(spec) on the CPU, then cast), without moving the global generator; with
    `calibration` (the runs' training images), its BatchNorm statistics those of the images at initialisation
    (`models.calibrate_batchnorm`), as the trained networks' are those of their training images."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build(spec)
    net = net.to(device=device, dtype=dtype)
    return calibrate_batchnorm(net, calibration.to(device=device, dtype=dtype)) if calibration is not None else net.eval()


def trained_networks(runs: list[Path], networks: list[Path], device,
                     calibration: torch.Tensor | None = None) -> dict[tuple[str, int], torch.nn.Module]:
    """{(network name, seed): network} of the compared runs (see NETWORKS); given the runs' training images
    (`calibration`), also each seed's initialisation (UNTRAINED), in the stored networks' dtype, its BatchNorm
    statistics (if any) those of the images (`initial_network`)."""
    found = {}
    for run_json, networks_path in zip(runs, networks, strict=True):
        settings = read_json(run_json)["settings"]
        blob = load_file(networks_path, device)
        stored = blob["networks"]
        for which, name in kept_networks(settings["method"], {k: v["step"] for k, v in stored.items()}).items():
            found[(name, settings["seed"])] = from_state(blob["model_spec"], stored[which]["state_dict"], device=device)
        if calibration is not None and (UNTRAINED, settings["seed"]) not in found:
            dtype = next(iter(stored["final"]["state_dict"].values())).dtype
            found[(UNTRAINED, settings["seed"])] = initial_network(blob["model_spec"], settings["seed"],
                                                                   device=device, dtype=dtype,
                                                                   calibration=calibration)
    return found


def compared_pairs(seeds: list[int]) -> list[tuple[str, str, tuple, tuple]]:
    """(inputs, against, network a, network b) of every comparison: each network and each seed's control with
    itself (on PGD inputs: final networks and the control, against themselves); best vs final of one run
    (benign); the BETWEEN pairs of final networks for every ordered pair of distinct seeds — benign, and on PGD
    inputs made against network a and, separately, against network b, both networks seeing the same inputs."""
    pairs = [("benign", "none", (n, s), (n, s)) for n in (*NETWORKS, UNTRAINED) for s in seeds]
    pairs += [("pgd", "a", (n, s), (n, s)) for n in (*FINAL, UNTRAINED) for s in seeds]
    pairs += [("benign", "none", (a, s), (b, s)) for a, b in SAME_RUN for s in seeds]
    two_seeds = [((a, sa), (b, sb)) for a, b in BETWEEN for sa, sb in itertools.permutations(seeds, 2)]
    pairs += [("benign", "none", a, b) for a, b in two_seeds]
    pairs += [("pgd", side, a, b) for a, b in two_seeds for side in ("a", "b")]
    return pairs


def _represent(held: dict, key, net: torch.nn.Module, images: torch.Tensor, estimator: CkaEstimator) -> tuple:
    """(layer names, Representation with the study's estimator, debiased one) of `net` on `images`, kept in
    `held` under `key` for the other pairs on the same images."""
    if key not in held:
        acts = list(hidden_and_output(net, images).items())
        values = [a for _, a in acts]
        linear = [gram_linear(a) for a in values]  # both estimators' kernel where the study's is linear
        shared = linear if estimator.estimator in ("linear", "debiased") else None
        study = Representation(values, grams=shared, **estimator.options())
        same = estimator.estimator == "debiased" and not study.minibatch
        debiased = study if same else Representation(values, estimator="debiased", grams=linear)
        held[key] = [name for name, _ in acts], study, debiased
    return held[key]


def whole_set_cka(nets: dict, pairs: list[tuple], images: torch.Tensor, estimator: CkaEstimator) -> dict:
    """{(a, b): (layers of a, layers of b, CKA with the study's estimator, debiased CKA)} on the whole image set
    at once, each network's representation prepared once for all its pairs."""
    held: dict[tuple, tuple] = {}
    found = {}
    for a, b in pairs:
        (names_a, study_a, debiased_a), (names_b, study_b, debiased_b) = (
            _represent(held, net, nets[net], images, estimator) for net in (a, b))
        found[a, b] = names_a, names_b, study_a.cka(study_b), debiased_a.cka(debiased_b)
    return found


def streamed_cka(nets: dict, pairs: list[tuple], images: torch.Tensor, batches: CkaBatches, *,
                 kernel: str = "linear", rbf_threshold: float = 1.0) -> dict:
    """The same as `whole_set_cka` by minibatch CKA over `measures.similarity.minibatches` of the images,
    streamed batch by batch (one network's activations on one batch held at a time, with every network's
    Gram matrices of the batch). Both CKAs use unbiased HSIC per batch:
    with a linear kernel (the scalars') they are one estimate; with `kernel` rbf the first has the RBF kernel."""
    study = StreamedCka(pairs, estimator=kernel, rbf_threshold=rbf_threshold)
    linear = study if kernel != "rbf" else StreamedCka(pairs, estimator="linear")
    accumulators = list(dict.fromkeys((study, linear)))
    keys = list(dict.fromkeys(net for pair in pairs for net in pair))
    names = {}
    for batch in minibatches(len(images), batches.batch_size, batches.passes):
        for key in keys:  # one network's activations at a time, dropped once turned into Gram matrices
            acts = hidden_and_output(nets[key], images[batch])
            names[key] = list(acts)
            for accumulator in accumulators:
                accumulator.prepare(key, list(acts.values()))
            del acts
        for accumulator in accumulators:
            accumulator.end_batch()
    return {(a, b): (names[a], names[b], study.cka(a, b), linear.cka(a, b)) for a, b in pairs}


def attacked_inputs(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, attack, generator,
                    chunk: int) -> torch.Tensor:
    """PGD inputs made against `net`, `chunk` images at a time (all at once where chunk is 0): the attack of
    each image depends on it alone (evaluation-mode networks), so chunks bound the memory, not the inputs' law."""
    chunk = chunk or len(x)
    return torch.cat([linf_ascent(net, x[i:i + chunk], y[i:i + chunk], loss="cross_entropy", eps=eps, ascent=attack,
                                  generator=generator) for i in range(0, len(x), chunk)])


def compare(split_path: Path, runs: list[Path], networks: list[Path], s: RepresentationComparison,
            estimator: CkaEstimator, device: str) -> pd.DataFrame:
    """Layer × layer CKA (hidden layers and output) of the pairs of `compared_pairs`, with the study's
    estimator (`cka`, the heatmaps) and with debiased linear CKA (`cka_debiased`, every scalar: the biased
    estimate has a floor that depends on the layers' widths) — on the whole image set, or where
    `similarity.batch_size` is below the number of images, both by minibatch CKA streamed over batches
    (`streamed_cka`; Cianfarani et al.'s protocol, for sets whose activations do not fit). One input set at a
    time (benign, then the PGD inputs against each attacked network), so only its representations are held."""
    device = resolve_device(device)
    first = read_json(runs[0])
    dtype, eps = DTYPES[first["settings"]["dtype"]], first["settings"]["eps"]
    split = datasets.read_split(split_path)
    x, y = comparison_images(split, first, s.images, device=device, dtype=dtype)
    train_x, _ = run_inputs(split, first["settings"]["beta"], device=device, dtype=dtype)  # what the runs trained on
    nets = trained_networks(runs, networks, device, calibration=train_x)
    seeds = sorted({seed for _, seed in nets})
    attack = pgd(s.pgd_inputs.steps, s.pgd_inputs.step)
    streamed = minibatch_mode(len(x), estimator.batch_size)
    by_inputs: dict[tuple, list] = {}  # (inputs, attacked network or None) → [(against, a, b)]
    for inputs, against, a, b in compared_pairs(seeds):
        if a in nets and b in nets:  # a best network that was never kept (no step after the warm-up) is skipped
            attacked = None if inputs == "benign" else (a if against == "a" else b)
            by_inputs.setdefault((inputs, attacked), []).append((against, a, b))
    rows = []
    identity = dict(dataset=first["data"]["dataset"], model=first["settings"]["model"])
    order = (*NETWORKS, UNTRAINED)
    for (inputs, attacked), pairs in by_inputs.items():
        images = x
        if attacked is not None:
            generator = torch.Generator(device=device).manual_seed(1000 * order.index(attacked[0]) + attacked[1])
            images = attacked_inputs(nets[attacked], x, y, eps=eps, attack=attack, generator=generator,
                                     chunk=estimator.batch_size if streamed else 0)
        compared = [(a, b) for _, a, b in pairs]
        found = (streamed_cka(nets, compared, images, estimator, kernel=estimator.estimator,
                              rbf_threshold=estimator.rbf_threshold) if streamed
                 else whole_set_cka(nets, compared, images, estimator))
        for against, a, b in pairs:
            names_a, names_b, matrix, debiased = found[a, b]
            rows += [dict(identity, inputs=inputs, against=against, network_a=a[0], seed_a=a[1], network_b=b[0],
                          seed_b=b[1], layer_a=la, layer_b=lb, cka=matrix[i, j].item(),
                          cka_debiased=debiased[i, j].item())
                     for (i, la), (j, lb) in itertools.product(enumerate(names_a), enumerate(names_b))]
    return pd.DataFrame(rows, columns=CKA_COLUMNS)


# --- block structure at depth --------------------------------------------------------------------------------

BLOCK_NETWORKS = ("untrained", "standard", "pgd")
BLOCK_COLUMNS = ("dataset", "train_size", "model", "seed", "network", "clean_acc", "pgd_acc", "layers", "threshold",
                 "near", "far", "block_index", "long_range", "largest_block")


def train_block_network(split_path: Path, b: BlockTraining, *, method: str, seed: int, device: str,
                        run_path: Path, networks_path: Path) -> dict:
    """One network of representations.blocks (standard, or PGD-k at `b.epsilon`) trained by the study's trainer:
    SGD with Nesterov momentum, weight decay and one learning-rate cycle, drawn from `seed` as every run of the
    study draws its network (torch.manual_seed(seed), then build). No log during training (the compared network
    is the final one); after it, clean and PGD accuracy on the first `b.evaluation_images` test images."""
    if method not in ("standard", "pgd"):
        raise ValueError(f"a block network is trained standard or with pgd, not {method!r}")
    device = resolve_device(device)
    split = datasets.read_split(split_path)
    if b.evaluation_images >= len(split.test_x):
        raise ValueError(f"representations.blocks.evaluation_images = {b.evaluation_images} leaves none of the "
                         f"{len(split.test_x)} test images of {split.meta['dataset']} to compare; lower it")
    train_x, train_y = datasets.as_float(split.train_x, device=device), split.train_y.to(device)
    eval_x = datasets.as_float(split.test_x[:b.evaluation_images], device=device)
    eval_y = split.test_y[:b.evaluation_images].to(device)
    spec = network_spec(b.model, split)
    torch.manual_seed(seed)
    net = build(spec).to(device)
    max_steps = b.epochs * math.ceil(len(train_x) / b.batch_size)
    attack = pgd(b.pgd.steps, b.pgd.step)
    generator = stream(seed, "training attack", device)

    def perturb(model, xb, yb):
        return linf_ascent(model, xb, yb, loss="cross_entropy", eps=b.epsilon, ascent=attack, generator=generator)

    optimizer = make_optimizer("sgd", net.parameters(), lr=b.lr, device=device, momentum=b.momentum, nesterov=True,
                               weight_decay=b.weight_decay)
    result = train(net, Data(train_x, train_y, eval_x, eval_y), optimizer, loss="cross_entropy",
                   batch_size=b.batch_size, max_steps=max_steps, eval_steps=[],
                   generator=torch.Generator(device=device).manual_seed(seed),
                   perturb=perturb if method == "pgd" else None,
                   learning_rate=lr_schedule("cyclic", b.lr, max_steps, peak=0.5))
    net.eval()
    correct = robust_correct(net, eval_x, eval_y, eps=b.epsilon, ascent=pgd(b.evaluation_steps, 0.25), restarts=1,
                             generator=stream(seed, "evaluation", device))
    summary = dict(settings=dict(model=b.model, method=method, eps=b.epsilon, seed=seed, device=str(device)),
                   data=split.meta, model_spec=spec, steps=result.steps, epochs=b.epochs,
                   evaluation=dict(final=dict(step=result.steps, clean_acc=float(evaluate(
                       net, eval_x, eval_y, "cross_entropy")[1]), pgd_acc=float(correct.double().mean()))),
                   evaluation_images=[0, b.evaluation_images - 1], train_acc=result.history[-1]["train_acc"],
                   wall_seconds=round(result.seconds, 3), threads=torch.get_num_threads())
    atomic_torch_save(dict(model_spec=spec, networks=dict(final=dict(step=result.steps, state_dict=net.state_dict()))),
                      networks_path)
    write_json(summary, run_path)
    return summary


def block_structure(split_path: Path, runs: list[Path], networks: list[Path], b: BlockComparison,
                    batches: CkaBatches, device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per network of one seed — its untrained control, standard and PGD network — the structure scalars of
    its own layer × layer debiased linear CKA (hidden layers' ReLU outputs and the output) on `b.images` test
    images after the runs' evaluation images, with its accuracies; the matrices, long) — largest_block at
    `b.threshold`. Where `batches.batch_size` is below `b.images`, the CKA is minibatch CKA streamed over
    batches (`streamed_cka`: unbiased HSIC per batch, as the debiased estimate on the whole set)."""
    device = resolve_device(device)
    split = datasets.read_split(split_path)
    first = read_json(runs[0])["evaluation_images"][1] + 1
    if first + b.images > len(split.test_x):
        raise ValueError(f"representations.blocks.images = {b.images} asks for test images {first}.."
                         f"{first + b.images - 1}, but {split.meta['dataset']} has {len(split.test_x)} test images; "
                         "lower representations.blocks.images or evaluation_images")
    x = datasets.as_float(split.test_x[first:first + b.images], device=device)
    nets, accuracy = {}, {}
    for run_json, networks_path in zip(runs, networks, strict=True):
        run = read_json(run_json)
        model = run["settings"]["model"]
        blob = load_file(networks_path, device)
        method, seed = run["settings"]["method"], run["settings"]["seed"]
        nets[method] = from_state(blob["model_spec"], blob["networks"]["final"]["state_dict"], device=device).eval()
        accuracy[method] = run["evaluation"]["final"]
        if UNTRAINED not in nets:
            nets[UNTRAINED] = initial_network(blob["model_spec"], seed, device=device, dtype=torch.float32,
                                              calibration=datasets.as_float(split.train_x, device=device))
    own = [(name, name) for name in BLOCK_NETWORKS]
    found = (streamed_cka(nets, own, x, batches) if minibatch_mode(len(x), batches.batch_size) else
             whole_set_cka(nets, own, x, CkaEstimator(batch_size=0, passes=1, estimator="debiased", rbf_threshold=1)))
    rows, cells = [], []
    for name in BLOCK_NETWORKS:
        names, _, _, matrix = found[name, name]
        matrix = matrix.double()
        scalars = structure(matrix, b.threshold)
        identity = dict(dataset=split.meta["dataset"], model=model, seed=seed, network=name)
        measured = accuracy.get(name, {})  # none for the control
        rows.append(dict(identity, train_size=len(split.train_x), clean_acc=measured.get("clean_acc", math.nan),
                         pgd_acc=measured.get("pgd_acc", math.nan), layers=len(names), threshold=b.threshold,
                         **scalars))
        cells += [dict(identity, layer_a=names[i], layer_b=names[j], cka_debiased=float(matrix[i, j]))
                  for i, j in itertools.product(range(len(names)), repeat=2)]
    return pd.DataFrame(rows, columns=BLOCK_COLUMNS), pd.DataFrame(cells)


def blocks_table(structures: list[Path]) -> pd.DataFrame:
    """representation_blocks.csv: every seed's networks (untrained, standard, PGD) with their structure
    scalars and, for each, `<scalar>_minus_untrained`: the same minus the untrained network of the seed (the
    control: a residual stream is alike across layers before any training)."""
    table = pd.concat([pd.read_csv(p) for p in structures], ignore_index=True)
    control = table[table["network"] == UNTRAINED].set_index("seed")
    for column in STRUCTURE:
        table[f"{column}_minus_untrained"] = table[column] - table["seed"].map(control[column])
    return table.sort_values(["seed", "network"], key=lambda c: c.map(BLOCK_NETWORKS.index) if c.name == "network"
                             else c).reset_index(drop=True)


# --- the grokking networks beside their own family -----------------------------------------------------------

GROKKING_COLUMNS = (*RUN_COLUMNS, "checkpoint", "step", "family", "family_seed", "layer", "cka")
TRAJECTORY_COLUMNS = (*RUN_COLUMNS, "step", "near", "far", "block_index", "long_range", "cka_standard", "cka_pgd")


def place_grokking(grokking_split: Path, checkpoints: list[Path], snapshots: list[Path], grokking_runs: list[Path],
                   family_split: Path, family_runs: list[Path], family_networks: list[Path],
                   s: GrokkingPlacement, estimator: CkaAlongRuns, device: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per layer, CKA of each grokking checkpoint with every standard and PGD-trained network of its own
    architecture; along each grokking run, at milestone snapshots, the structure scalars of its layer × layer
    debiased CKA and its mean per-layer CKA with the standard and with the robust family) — on the representation
    stage's images, which no grokking run trained on (the grokking training set is the first
    grokking.train_size images of the same split order, the adversarial test set its last images)."""
    device = resolve_device(device)
    first = read_json(family_runs[0])
    x, _ = comparison_images(datasets.read_split(family_split), first, s.images, device=device,
                             dtype=DTYPES[first["settings"]["dtype"]])
    def represent(model, **chosen):
        acts = hidden_and_output(model, x.to(next(model.parameters()).dtype))
        return list(acts), Representation(list(acts.values()), **(chosen or estimator.options()))

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
            own = represent(model, estimator="debiased")[1]  # the scalars: debiased, as the family's (no floor)
            within = structure(own.cka(own))
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
        adversarial = settings["method"] != "standard"
        co = detect_overfitting(pd.read_csv(log_csv), rule, **schedule(run)) if adversarial else {}
        kept = kept_networks(settings["method"], {k: v["step"] for k, v in run["evaluation"].items()})
        for which, name in kept.items():
            e = run["evaluation"][which]
            after = bool(co.get("co")) and e["step"] >= co["co_step"]
            rows.append(dict(network=name, seed=settings["seed"], step=e["step"], steps=run["steps"],
                             clean_acc=e["clean_acc"], pgd50_acc=e["pgd_acc"], co=co.get("co", False),
                             co_verdict=co.get("co_verdict", ""), co_step=co.get("co_step"), after_co=after))
    return pd.DataFrame(rows)


STRUCTURE = ("near", "far", "block_index", "long_range", "largest_block")


def _matrix(part: pd.DataFrame, value: str = "cka_debiased") -> torch.Tensor:
    """The layer × layer matrix of one network pair's rows, layers in the order computed."""
    names = list(dict.fromkeys(part["layer_a"]))
    matrix = part.pivot(index="layer_a", columns="layer_b", values=value).reindex(index=names, columns=names)
    return torch.tensor(matrix.to_numpy())


def structure_table(cka: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """representation_structure.csv: per network (the untrained control included), seed and inputs, the
    structure scalars of its own layer × layer debiased CKA; `<scalar>_minus_untrained`: the same minus the
    untrained network of the seed on the same kind of inputs (the control); beside them the network's
    accuracies and its run's CO verdict."""
    rows = []
    own = cka[(cka["network_a"] == cka["network_b"]) & (cka["seed_a"] == cka["seed_b"])]
    for (inputs, network, seed), part in own.groupby(["inputs", "network_a", "seed_a"], sort=True):
        rows.append(dict(dataset=part["dataset"].iloc[0], model=part["model"].iloc[0], inputs=inputs,
                         network=network, seed=seed, **structure(_matrix(part))))
    table = pd.DataFrame(rows)
    control = table.loc[table["network"] == UNTRAINED, ["inputs", "seed", *STRUCTURE]]
    table = table.merge(control, on=["inputs", "seed"], how="left", suffixes=("", "_untrained"))
    for measure in STRUCTURE:
        table[f"{measure}_minus_untrained"] = table[measure] - table.pop(f"{measure}_untrained")
    return table.merge(runs, on=["network", "seed"], how="left")


def _interval(values: list[float], b: Bootstrap) -> dict:
    """Seed-level estimate: the mean of one value per seed, its 95 % percentile bootstrap interval over seeds,
    the number of seeds and the range."""
    values = [v for v in values if not math.isnan(v)]
    found = seed_mean([np.array([v]) for v in values], resamples=b.resamples, seed=b.seed)
    return dict(n_seeds=found["n_seeds"], estimate=found["mean"], ci_low=found["ci_low"], ci_high=found["ci_high"],
                min=min(values, default=np.nan), max=max(values, default=np.nan))


def seed_spread(by_seed: dict[int, float]) -> list[float]:
    """Per seed s, the mean over the other seeds s′ of |x_s − x_s′|: how far two seeds of one kind lie apart,
    one value per seed (the seed baseline a difference must exceed)."""
    return [float(np.mean([abs(v - w) for t, w in by_seed.items() if t != s])) for s, v in by_seed.items()
            if len(by_seed) > 1]


SUMMARY_COLUMNS = ("dataset", "model", "inputs", "measure", "network", "statistic", "n_seeds", "estimate", "ci_low",
                   "ci_high", "min", "max", "baseline", "baseline_n_seeds", "baseline_estimate", "baseline_ci_low",
                   "baseline_ci_high")
OVERFITTING = ("overfit_shallow_change", "overfit_deep_change", "overfit_deep_minus_shallow")


def _with_baseline(key: dict, statistic: str, values: list[float], baseline: str, baseline_values: list[float],
                   b: Bootstrap) -> dict:
    found = _interval(values, b)
    base = _interval(baseline_values, b)
    return dict(key, statistic=statistic, **found, baseline=baseline, baseline_n_seeds=base["n_seeds"],
                baseline_estimate=base["estimate"], baseline_ci_low=base["ci_low"], baseline_ci_high=base["ci_high"])


def overfitting_changes(cka: pd.DataFrame, structures: pd.DataFrame) -> pd.DataFrame:
    """Per run with a best network (method, seed): 1 − debiased CKA of each layer of the best network with the
    same layer of the final one, averaged over the shallow half of the compared layers (the first ⌊L/2⌋) and
    the deep half (the rest), their difference, and whether the run collapsed after its best network (`co`:
    CO, and the best network before the onset) or never collapsed (`no_co`); else '' (best after the onset)."""
    same = cka[(cka["inputs"] == "benign") & (cka["layer_a"] == cka["layer_b"]) & (cka["seed_a"] == cka["seed_b"])]
    verdict = structures[structures["inputs"] == "benign"].set_index(["network", "seed"])
    rows = []
    for best, final in SAME_RUN:
        for seed, part in same[(same["network_a"] == best) & (same["network_b"] == final)].groupby("seed_a"):
            change = 1 - part["cka_debiased"].to_numpy()
            half = len(change) // 2
            run = verdict.loc[(best, seed)] if (best, seed) in verdict.index else {}
            co, after = (str(run.get(column)) == "True" for column in ("co", "after_co"))  # bools, or read back
            rows.append(dict(dataset=part["dataset"].iloc[0], model=part["model"].iloc[0], network=final, seed=seed,
                             overfit_shallow_change=change[:half].mean(), overfit_deep_change=change[half:].mean(),
                             overfit_deep_minus_shallow=change[half:].mean() - change[:half].mean(),
                             collapse="no_co" if not co else ("co" if not after else "")))
    return pd.DataFrame(rows, columns=["dataset", "model", "network", "seed", *OVERFITTING, "collapse"])


def summary_table(structures: pd.DataFrame, cka: pd.DataFrame, b: Bootstrap) -> pd.DataFrame:
    """representation_summary.csv: seed-level estimates (mean of one value per seed, 95 % bootstrap interval
    over seeds, n_seeds), each with its baseline beside it.

    Structure scalars (debiased CKA; per inputs and network, the untrained control included):
    'value' — the scalar; baseline: |seed s − seed s′| of the same network kind.
    'minus_untrained' — the scalar minus the untrained network of the same seed (control-subtracted);
      baseline: |seed s − seed s′| of that control-subtracted scalar.
    'minus_standard' — the scalar minus the standard network's of the same seed: the control-subtracted
      difference (the control of the seed cancels); baseline: |seed s − seed s′| of the standard network's
      control-subtracted scalar (two standard networks that share no initialisation).
    Overfitting (OVERFITTING, benign, network: pgd or fgsm): 'co' — best vs final network over the runs that
    collapsed after their best network; baseline: best vs final over the runs of either method without CO."""
    rows = []
    for (dataset, model, inputs), part in structures.groupby(["dataset", "model", "inputs"], sort=True):
        by = part.set_index(["network", "seed"])
        for network in [n for n in (*NETWORKS, UNTRAINED) if n in set(part["network"])]:
            for measure in STRUCTURE:
                key = dict(dataset=dataset, model=model, inputs=inputs, measure=measure, network=network)
                value = by.loc[network, measure].to_dict()
                rows.append(_with_baseline(key, "value", list(value.values()), f"|{network} seed s - seed s'|",
                                           seed_spread(value), b))
                if network == UNTRAINED:
                    continue
                control = by.loc[network, f"{measure}_minus_untrained"].to_dict()
                rows.append(_with_baseline(key, "minus_untrained", list(control.values()),
                                           f"|{network} - untrained, seed s - seed s'|", seed_spread(control), b))
                if network != "standard" and "standard" in by.index.get_level_values(0):
                    standard = by.loc["standard", f"{measure}_minus_untrained"].to_dict()
                    paired = [v - standard[s] for s, v in control.items() if s in standard]
                    rows.append(_with_baseline(key, "minus_standard", paired,
                                               "|standard - untrained, seed s - seed s'|", seed_spread(standard), b))
    changes = overfitting_changes(cka, structures)
    without = changes[changes["collapse"] == "no_co"]
    for (dataset, model, network), part in changes.groupby(["dataset", "model", "network"], sort=True):
        for measure in OVERFITTING:
            key = dict(dataset=dataset, model=model, inputs="benign", measure=measure, network=network)
            rows.append(_with_baseline(key, "co", part.loc[part["collapse"] == "co", measure].tolist(),
                                       "best vs final, runs without CO (PGD and FGSM)",
                                       without.loc[without["dataset"] == dataset, measure].tolist(), b))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


LAYER_COLUMNS = ("dataset", "model", "inputs", "against", "comparison", "network_a", "network_b", "init", "layer",
                 "n_seeds", "estimate", "ci_low", "ci_high", "min", "max", "baseline", "baseline_n_seeds",
                 "baseline_estimate", "baseline_ci_low", "baseline_ci_high")


def layers_table(cka: pd.DataFrame, b: Bootstrap) -> pd.DataFrame:
    """representation_layers.csv: per layer, the debiased CKA of a layer with the same layer of another
    network. One run: best vs final (init 'same run'). Two seeds (init 'independent'): per seed s of network
    a, the mean over the seeds s′ ≠ s of network b, then the seed-level estimate over s; beside a comparison
    of two kinds its baseline, network a's kind with itself between two seeds on the same kind of inputs."""
    same = cka[(cka["layer_a"] == cka["layer_b"])
               & ~((cka["network_a"] == cka["network_b"]) & (cka["seed_a"] == cka["seed_b"]))]
    keys = ["dataset", "model", "inputs", "against", "network_a", "network_b"]
    rows = []
    for key, part in same.groupby(keys, sort=False):
        across = bool((part["seed_a"] != part["seed_b"]).all())
        comparison = f"{key[4]} vs {key[5]}" + (" (two seeds)" if across else "")
        per_seed = part.groupby(["layer_a", "seed_a"], sort=False)["cka_debiased"].mean()
        for layer in dict.fromkeys(part["layer_a"]):
            rows.append(dict(zip(keys, key), comparison=comparison, init="independent" if across else "same run",
                             layer=layer, **_interval(per_seed.loc[layer].tolist(), b)))
    table = pd.DataFrame(rows, columns=LAYER_COLUMNS[:-5])
    table["baseline"] = [f"{a} vs {a} (two seeds)" if init == "independent" and a != bb else ""
                         for a, bb, init in zip(table["network_a"], table["network_b"], table["init"])]
    base = table[["dataset", "model", "inputs", "against", "comparison", "layer", "n_seeds", "estimate", "ci_low",
                  "ci_high"]].rename(columns={"comparison": "baseline", "n_seeds": "baseline_n_seeds",
                                              "estimate": "baseline_estimate", "ci_low": "baseline_ci_low",
                                              "ci_high": "baseline_ci_high"})
    table = table.merge(base, on=["dataset", "model", "inputs", "against", "baseline", "layer"], how="left")
    return table[list(LAYER_COLUMNS)]


def grokking_table(placed: pd.DataFrame, b: Bootstrap) -> pd.DataFrame:
    """representation_grokking.csv: per (dataset, α, wd), checkpoint, family and layer, the CKA of the
    grokking checkpoint with the family network, averaged over family seeds within a grokking seed, then
    over grokking seeds with its interval; family 'pgd - standard': the paired difference per grokking seed
    (is the checkpoint nearer the robust network than the standard one?)."""
    groups = ["dataset", "init_scale", "weight_decay", "checkpoint", "layer"]
    per_seed = placed.groupby([*groups, "seed", "family"], sort=False)["cka"].mean().unstack("family")
    per_seed["pgd - standard"] = per_seed["pgd"] - per_seed["standard"]
    long = per_seed[["standard", "pgd", "pgd - standard"]].stack().rename("cka").reset_index()
    rows = []
    for key, part in long.groupby([*groups, "family"], sort=False):
        found = _interval(part["cka"].tolist(), b)
        rows.append(dict(zip([*groups, "family"], key), n=found.pop("n_seeds"), mean=found.pop("estimate"), **found))
    return pd.DataFrame(rows, columns=[*groups, "family", "n", "mean", "ci_low", "ci_high", "min", "max"])
