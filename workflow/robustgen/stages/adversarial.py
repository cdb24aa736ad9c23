"""Adversarial training and catastrophic overfitting (docs/protocols.md §8).

One run trains a network with the study's one trainer, its batches replaced by L∞ adversarial examples
(`measures.attacks`), and logs through training, on a fixed held-out set of test images and on the
current training batch, what reveals catastrophic overfitting (CO): clean, FGSM and PGD accuracy, the
gradient alignment and the input-gradient norm. The rule of §8 says whether and when CO happened;
the best network (by held-out PGD accuracy) and the final one are kept and evaluated with a stronger
attack than any training attack (PGD-50 with restarts) on other test images. The rule is applied to the
stored logs by the tables and the probes, so changing it retrains nothing.

The data intervention of Ortiz-Jiménez et al.: x + β·v_y, not clamped, v_y their ±1 low-frequency carrier of
class y, added to training and test images alike.
"""

from __future__ import annotations

import dataclasses
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
from ..measures.attacks import (METHODS as PRESETS, SINGLE_STEP, Ascent, alignment_penalty, autoattack_correct,
                                gradient_alignment, grad_align_weight, linf_ascent, pgd, robust_correct, single_step)
from ..measures.sensitivity import trajectory_anchors
from ..models import architecture_spec, build, from_state
from ..settings import (AdversarialProbes, AdversarialTraining, AutoAttackCheck, EllipseSampling, OverfittingRule,
                        RadiusProbes, RobustEvaluation)
from ..train import DTYPES, METRICS, Data, lr_schedule, make_optimizer, resolve_device, train
from ..measures.network import adversarial_probes, measure_network, random_noise_probes
from ..measures.overfitting import VERDICT_KEYS, detect_overfitting, schedule

METHODS = ("standard", *SINGLE_STEP, "pgd")
RUN_COLUMNS = ("dataset", "model", "method", "eps", "beta", "seed")  # what identifies a run in every table
NETWORKS = ("best", "final")
LOG_COLUMNS = (*METRICS, "epoch", "eps_train", "clean_acc", "fgsm_acc", "pgd_acc", "alignment", "grad_norm",
               "batch_clean_acc", "batch_pgd_acc")


# --- the data intervention --------------------------------------------------------------------------------

# Ortiz-Jiménez et al.'s carrier: the 2-D DCT coefficient (row frequency, column frequency) of classes 0-4;
# classes 5-9 carry the negatives of 0-4.
CARRIER_FREQUENCIES = ((0, 1), (1, 0), (1, 1), (2, 1), (1, 2))


def class_patterns(image_shape: list[int], num_classes: int) -> torch.Tensor:
    """(10, C·H·W): Ortiz-Jiménez et al.'s carrier v_y = sign(IDCT of one low-frequency DCT coefficient),
    coefficient `CARRIER_FREQUENCIES[y]` for y < 5 and the negative of v_{y−5} for y ≥ 5; the same 2-D pattern
    on every channel. Every entry is ±1 (L∞ norm 1, L2 norm √(C·H·W)), so β is in the units of ε. The
    orthonormal 2-D IDCT of a one-hot coefficient (u, v) is a positive multiple of
    cos(πu(2i+1)/2H)·cos(πv(2j+1)/2W), whose sign this takes (no entry is 0 for u, v ≤ 2 and even H, W)."""
    if num_classes != 2 * len(CARRIER_FREQUENCIES):
        raise ValueError(f"the injected feature is defined for 10 classes (Ortiz-Jiménez et al.'s carrier), not "
                         f"{num_classes}: use adversarial.feature.betas: [0] on this dataset")
    channels, height, width = image_shape
    rows, cols = torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64)
    patterns = [torch.outer(torch.cos(math.pi * u * (2 * rows + 1) / (2 * height)),
                            torch.cos(math.pi * v * (2 * cols + 1) / (2 * width))).sign()
                for u, v in CARRIER_FREQUENCIES]
    patterns = torch.stack(patterns + [-p for p in patterns])
    return patterns[:, None].expand(num_classes, channels, height, width).reshape(num_classes, -1).float()


def inputs(split: datasets.Split, beta: float, *, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """A run's training and test inputs: the split's images in [0, 1] plus β·v_y, not clamped (as Ortiz-Jiménez
    et al.: clamping would cut the feature wherever the image is black or white)."""
    def feature(images, labels):
        x = datasets.as_float(images, device=device, dtype=dtype)
        if not beta:
            return x
        patterns = class_patterns(split.meta["image_shape"], split.num_classes).to(device=device, dtype=dtype)
        return x + beta * patterns[labels.to(device)]

    return feature(split.train_x, split.train_y), feature(split.test_x, split.test_y)


# --- one run -------------------------------------------------------------------------------------------------

def network_spec(model: str, split: datasets.Split) -> dict:
    """An architecture by name (`models.ARCHITECTURE`), for `split`'s images; a residual network normalises
    its input by the per-channel mean and standard deviation of the training images (rounded to 4 digits)."""
    shape = split.meta["image_shape"]
    total, squares, count = torch.zeros(shape[0], dtype=torch.float64), torch.zeros(shape[0], dtype=torch.float64), 0
    for chunk in split.train_x.split(4096):  # by chunks: CIFAR10's pixels as doubles would take 1.2 GB
        pixels = chunk.view(len(chunk), shape[0], -1).double() / 255
        total, squares = total + pixels.sum(dim=(0, 2)), squares + pixels.square().sum(dim=(0, 2))
        count += pixels.shape[0] * pixels.shape[2]
    mean = total / count
    std = ((squares - count * mean.square()) / (count - 1)).clamp_min(1e-8).sqrt()
    return architecture_spec(model, shape, split.num_classes, [round(float(v), 4) for v in mean],
                             [round(float(v), 4) for v in std.clamp_min(1e-4)])


def training_ascent(method: str, training: AdversarialTraining) -> Ascent | None:
    """The perturbation each batch receives: none (standard), a single-step method, or PGD-k."""
    if method == "standard":
        return None
    if method == "pgd":
        return pgd(training.pgd.steps, training.pgd.step)
    if method in SINGLE_STEP:
        return single_step(method, rs_fgsm_step=training.single_step.rs_fgsm_step,
                           n_fgsm_noise=training.single_step.n_fgsm_noise)
    raise ValueError(f"unknown adversarial.methods entry {method!r}; allowed: {', '.join(METHODS)}")


def recipe(training: AdversarialTraining, net: torch.nn.Module, *, device, max_steps: int,
           image_shape: list[int]) -> dict:
    """The trainer's optimizer, learning-rate schedule and batch augmentation of a run (`adversarial.optimizer`,
    `adversarial.lr`, `adversarial.augment`), as `train` takes them."""
    o = training.optimizer
    optimizer = make_optimizer(o.name, net.parameters(), lr=training.lr, device=device, momentum=o.momentum,
                               nesterov=o.nesterov, weight_decay=o.weight_decay)
    schedule = None if o.schedule == "constant" else lr_schedule(o.schedule, training.lr, max_steps, peak=o.peak,
                                                                 milestones=o.milestones)
    if training.augment not in ("none", "crop_flip"):
        raise ValueError(f"unknown adversarial.augment {training.augment!r}; allowed: none, crop_flip")
    augment = None if training.augment == "none" else (
        lambda x, generator: datasets.crop_flip(x, image_shape, generator))
    return dict(optimizer=optimizer, learning_rate=schedule, augment=augment)


def epsilon_schedule(eps: float, warmup_steps: int):
    """ε at training step s: a linear ramp from 0 to `eps` over the warm-up (robust training on MNIST
    needs it), then `eps`."""
    return lambda step: eps * min(1.0, step / warmup_steps) if warmup_steps else eps


def log_steps(max_steps: int, every: int, steps_per_epoch: int) -> list[int]:
    """Every `every` iterations and at every epoch's end."""
    return sorted(set(range(0, max_steps + 1, every)) | set(range(0, max_steps + 1, steps_per_epoch)))


def _accuracy(model, x, y) -> float:
    """Accuracy by the study's one evaluation."""
    return float(evaluate(model, x, y, "cross_entropy")[1])


def robustness_record(model, x, y, *, eps: float, pgd_steps: int, generator: torch.Generator) -> dict:
    """Clean, FGSM and PGD-`pgd_steps` accuracy (uniform start, steps of ε/4) at `eps`, the mean gradient
    alignment and the mean input-gradient norm, on (x, y)."""
    fgsm = linf_ascent(model, x, y, loss="cross_entropy", eps=eps, ascent=PRESETS["fgsm"], generator=generator)
    strong = linf_ascent(model, x, y, loss="cross_entropy", eps=eps, ascent=pgd(pgd_steps, 0.25), generator=generator)
    alignment, norms = gradient_alignment(model, x, y, eps=eps, generator=generator)
    return dict(clean_acc=_accuracy(model, x, y), fgsm_acc=_accuracy(model, fgsm, y),
                pgd_acc=_accuracy(model, strong, y), alignment=float(alignment.nanmean()),
                grad_norm=float(norms.mean()))


STREAMS = ("training attack", "log", "evaluation", "autoattack check")


def stream(seed: int, purpose: str, device) -> torch.Generator:
    """An independent generator per (run seed, purpose): no two runs or purposes share draws."""
    state = np.random.SeedSequence([seed, STREAMS.index(purpose)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & (2**63 - 1))


def evaluation_attack(e: RobustEvaluation) -> Ascent:
    """The final evaluation: PGD with a uniform start, `steps` steps of `step`·ε (restarts: `e.restarts`)."""
    return pgd(e.steps, e.step)


def run(split_path: Path, training: AdversarialTraining, *, model: str, method: str, eps: float, beta: float,
        seed: int, device: str, log_path: Path, run_path: Path, networks_path: Path) -> dict:
    """Train one network of architecture `model` (`network_spec`) with `method` at L∞ radius `eps` on data with
    the feature β·v_y, from `seed`; write
    its training log, its summary (returned; CO detection and the final evaluation included) and its best
    and final networks (the best: the highest held-out PGD accuracy during training)."""
    settings = dict(model=model, method=method, eps=eps, beta=beta, seed=seed, **asdict(training), device=device)
    ascent = training_ascent(method, training)
    device, dtype = resolve_device(device), DTYPES[training.dtype]
    split = datasets.read_split(split_path)
    train_x, test_x = inputs(split, beta, device=device, dtype=dtype)
    train_y, test_y = split.train_y.to(device), split.test_y.to(device)
    log_n, eval_n = training.log.images, training.evaluation.images
    if log_n + eval_n > len(test_x):
        raise ValueError(f"adversarial.log.images + adversarial.evaluation.images = {log_n + eval_n} exceeds the "
                         f"{len(test_x)} test images of {split.meta['dataset']}; lower them")
    log_x, log_y = test_x[:log_n], test_y[:log_n]
    spec = network_spec(model, split)
    torch.manual_seed(seed)
    net = build(spec).to(device=device, dtype=dtype)
    steps_per_epoch = math.ceil(len(train_x) / training.batch_size)
    max_steps = training.epochs * steps_per_epoch
    eps_at = epsilon_schedule(eps, training.warmup_epochs * steps_per_epoch)
    attack_generator = stream(seed, "training attack", device)  # the training attack's random starts
    log_generator = stream(seed, "log", device)  # the logged attacks' draws
    warmup_steps = training.warmup_epochs * steps_per_epoch
    current = dict(step=0, batch=None, eps=0.0)
    extra, best = {}, dict(pgd_acc=-1.0, step=None, state=None)

    def perturb(model, xb, yb):
        """The training batch, perturbed at the scheduled ε (recorded for the batch log)."""
        current["batch"], current["eps"] = (xb, yb), eps_at(current["step"])
        if ascent is not None:
            xb = linf_ascent(model, xb, yb, loss="cross_entropy", eps=current["eps"], ascent=ascent,
                             generator=attack_generator)
        current["step"] += 1
        return xb

    def log(step, model, record):
        entry = dict(epoch=step / steps_per_epoch, eps_train=eps_at(step - 1) if step else 0.0,  # the last batch's
                     **robustness_record(model, log_x, log_y, eps=eps, pgd_steps=training.log.pgd_steps,
                                         generator=log_generator))
        if current["batch"] is not None:
            xb, yb = current["batch"]
            strong = linf_ascent(model, xb, yb, loss="cross_entropy", eps=eps,
                                 ascent=pgd(training.log.pgd_steps, 0.25), generator=log_generator)
            entry |= dict(batch_clean_acc=_accuracy(model, xb, yb), batch_pgd_acc=_accuracy(model, strong, yb))
        extra[step] = entry
        # the best network: trained at the full ε (after the warm-up, never the untrained one) and finite
        eligible = step >= max(warmup_steps, 1) and math.isfinite(record["train_loss"])
        if eligible and entry["pgd_acc"] > best["pgd_acc"]:
            best.update(pgd_acc=entry["pgd_acc"], step=step,
                        state={k: v.detach().clone() for k, v in model.state_dict().items()})

    weight = grad_align_weight(training.single_step.grad_align, eps, training.single_step.grad_align_epsilon)

    def align(model, xb, yb):
        """GradAlign's term on the clean batch, at the batch's scheduled ε, weighted for the run's ε."""
        return weight * alignment_penalty(model, xb, yb, eps=current["eps"], generator=attack_generator)

    # the log measures the whole training set, not the test set: held-out accuracy along training is the log
    # images' (clean_acc), and the whole test set is evaluated once at the end (test_acc of the evaluation)
    result = train(net, Data(train_x, train_y), loss="cross_entropy",
                   batch_size=training.batch_size, max_steps=max_steps,
                   eval_steps=log_steps(max_steps, training.log.every, steps_per_epoch),
                   generator=torch.Generator(device=device).manual_seed(seed), on_evaluation=log, perturb=perturb,
                   regulariser=align if method == "grad_align" else None,
                   **recipe(training, net, device=device, max_steps=max_steps, image_shape=split.meta["image_shape"]))
    net.eval()
    history = pd.DataFrame([{**record, **extra[record["step"]]} for record in result.history],
                           columns=LOG_COLUMNS)
    write_csv(history, log_path)

    eval_x, eval_y = test_x[log_n:log_n + eval_n], test_y[log_n:log_n + eval_n]
    final_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    networks = dict(final=dict(step=result.steps, state_dict=final_state),
                    best=dict(step=best["step"], state_dict=best["state"]))
    evaluation = {}
    for name, network in networks.items():
        if name == "best" and network["step"] in (None, result.steps):  # none, or the final network itself
            evaluation[name] = dict(evaluation["final"], step=network["step"])
            continue
        net.load_state_dict(network["state_dict"])
        correct = robust_correct(net, eval_x, eval_y, eps=eps, ascent=evaluation_attack(training.evaluation),
                                 restarts=training.evaluation.restarts,
                                 generator=stream(seed, "evaluation", device))
        evaluation[name] = dict(step=network["step"], clean_acc=_accuracy(net, eval_x, eval_y),
                                pgd_acc=float(correct.double().mean()),
                                # test accuracy: every unlogged image
                                test_acc=_accuracy(net, test_x[log_n:], test_y[log_n:]))
    summary = dict(
        settings=settings, data=split.meta, model_spec=spec, steps=result.steps, epochs=training.epochs,
        evaluation=evaluation,
        evaluation_images=[log_n, log_n + eval_n - 1], log_images=[0, log_n - 1],
        wall_seconds=round(result.seconds, 3), device=str(device), threads=torch.get_num_threads(),
        torch=torch.__version__, python=platform.python_version(),
    )
    atomic_torch_save(dict(model_spec=spec, networks=networks), networks_path)
    write_json(summary, run_path)
    return summary


# --- catastrophic overfitting ----------------------------------------------------------------------------

# --- the study's measures on the adversarially trained networks ---------------------------------------------

def probe(split_path: Path, networks_path: Path, run_json: Path, log_csv: Path, s: AdversarialProbes,
          radii_settings: RadiusProbes, ellipse_settings: EllipseSampling, device: str) -> pd.DataFrame:
    """Per item, for the final network of a run, and for its best network where that is the network just
    before a collapse (the best step before CO): the random-noise radius and the adversarial radii (the
    robustness stage's probes, with its settings), the Jacobian norm, and the transition density along
    ellipses through test points of different and of the same class (the sensitivity stage's), on the first
    `probes.images` of the run's evaluation images (with the run's feature β·v_y)."""
    sizes = s.probes
    run = read_json(run_json)
    settings = run["settings"]
    co = detect_overfitting(pd.read_csv(log_csv), s.overfitting, **schedule(run))
    collapsed = co["co"] and settings["method"] != "standard"
    before_collapse = co["step_before"] if collapsed else None
    device = resolve_device(device)
    dtype = DTYPES[settings["dtype"]]
    split = datasets.read_split(split_path)
    _, test_x = inputs(split, settings["beta"], device=device, dtype=dtype)
    first, last = run["evaluation_images"]
    count = min(sizes.images, last - first + 1)
    x, y = test_x[first:first + count], split.test_y[first:first + count].to(device)
    generator = torch.Generator().manual_seed(ellipse_settings.seed)
    anchors = {kind: trajectory_anchors(kind, test_x[first:last + 1], split.test_y[first:last + 1], sizes.ellipses,
                                        generator).to(device)
               for kind in ("different_class", "same_class")}
    blob = load_file(networks_path, device)
    identity = {"dataset": run["data"]["dataset"], **{k: settings[k] for k in RUN_COLUMNS[1:]}}
    search = dataclasses.replace(radii_settings.adversarial, norms=sizes.norms)
    frames = []
    for name in NETWORKS:
        network = blob["networks"][name]
        if name == "best" and network["step"] != before_collapse:
            continue  # probed only as the network before a collapse (the best step before CO)
        model = from_state(blob["model_spec"], network["state_dict"], device=device)
        radii = random_noise_probes(model, x, y, radii_settings) + adversarial_probes(
            model, x, y, search, radii_settings.clip)
        parts = [pd.DataFrame(dict(measure=f"{key['measure']}_{key['mode']}_{key['norm']}", item=np.arange(count),
                                   value=radius.double().cpu().numpy())) for key, radius in radii]
        items = measure_network(model, x, x[:0], anchors, ellipse_points=ellipse_settings.ellipse_points,
                                jacobian_every=ellipse_settings.jacobian_every)
        parts.append(pd.DataFrame(dict(measure="jacobian_norm", item=np.arange(count),
                                       value=items.loc[items["where"] == "test_points", "jacobian_norm"].to_numpy())))
        for kind in anchors:
            part = items[items["where"] == kind]
            parts.append(pd.DataFrame(dict(measure=f"transition_density_{kind}", item=part["item"].to_numpy(),
                                           value=part["transition_density"].to_numpy())))
        frames.append(pd.concat(parts, ignore_index=True).assign(network=name, step=network["step"]))
    table = pd.concat(frames, ignore_index=True).assign(**identity)
    return table[[*identity, "network", "step", "measure", "item", "value"]]


AUTOATTACK_COLUMNS = (*RUN_COLUMNS, "network", "step", "images", "clean_acc", "pgd_acc", "autoattack_acc",
                      "broken_by_autoattack_only", "broken_by_pgd_only")


def autoattack_check(split_path: Path, networks_path: Path, run_json: Path, s: AutoAttackCheck,
                     device: str) -> pd.DataFrame:
    """Per network of a run (the final one, and the best one where it is another network), on the first
    `autoattack.images` evaluation images (with the run's feature β·v_y): clean accuracy, the accuracy under
    the study's evaluation PGD (adversarial.evaluation, its own random starts) and under AutoAttack, and the
    shares of images only one of the two breaks. AutoAttack below PGD by a little is the expected check; many
    images only PGD breaks would say AutoAttack is run wrongly."""
    run = read_json(run_json)
    settings = run["settings"]
    device = resolve_device(device)
    split = datasets.read_split(split_path)
    _, test_x = inputs(split, settings["beta"], device=device, dtype=DTYPES[settings["dtype"]])
    first, last = run["evaluation_images"]
    count = min(s.autoattack.images, last - first + 1)
    x, y = test_x[first:first + count], split.test_y[first:first + count].to(device)
    blob = load_file(networks_path, device)
    identity = {"dataset": run["data"]["dataset"], **{k: settings[k] for k in RUN_COLUMNS[1:]}}
    eps, seed = settings["eps"], settings["seed"]
    rows = []
    for name in ("final", "best"):
        network = blob["networks"][name]
        if name == "best" and network["step"] in (None, blob["networks"]["final"]["step"]):
            continue  # no best network, or the final one itself
        model = from_state(blob["model_spec"], network["state_dict"], device=device).eval()
        pgd_ok = robust_correct(model, x, y, eps=eps, ascent=evaluation_attack(s.evaluation),
                                restarts=s.evaluation.restarts, generator=stream(seed, "autoattack check", device))
        autoattack_ok = autoattack_correct(model, x, y, eps=eps, image_shape=split.meta["image_shape"], seed=seed,
                                           batch_size=s.autoattack.batch_size)
        rows.append(dict(identity, network=name, step=network["step"], images=count,
                         clean_acc=_accuracy(model, x, y), pgd_acc=float(pgd_ok.double().mean()),
                         autoattack_acc=float(autoattack_ok.double().mean()),
                         broken_by_autoattack_only=float((pgd_ok & ~autoattack_ok).double().mean()),
                         broken_by_pgd_only=float((autoattack_ok & ~pgd_ok).double().mean())))
    return pd.DataFrame(rows, columns=AUTOATTACK_COLUMNS)


def autoattack_table(checks: list[Path]) -> pd.DataFrame:
    """adversarial_autoattack.csv: every checked network, in the runs table's order."""
    table = pd.concat([pd.read_csv(p) for p in checks], ignore_index=True)
    order = {m: i for i, m in enumerate(METHODS)}
    return table.sort_values(["dataset", "model", "beta", "method", "eps", "seed", "network"],
                             key=lambda c: c.map(order) if c.name == "method" else c,
                             kind="stable").reset_index(drop=True)[list(AUTOATTACK_COLUMNS)]


# --- tables --------------------------------------------------------------------------------------------------

RUNS_COLUMNS = (*RUN_COLUMNS, "co", "co_verdict", "co_step", "co_epoch", "co_wong", "co_wong_step", "best_pgd_acc",
                "best_step", "final_pgd_acc", "final_fgsm_acc", "final_clean_acc", "pgd_before", "step_before",
                "pgd_after", "step_after", "steps_to_collapse", "alignment_before", "alignment_after", "pgd50_final",
                "clean_final", "pgd50_best", "clean_best", "test_acc_final", "test_acc_best", "warmup_steps", "steps",
                "wall_seconds")


def run_row(run_json: Path, log_csv: Path, rule: OverfittingRule) -> dict:
    """One row of adversarial_runs.csv: a run's identity, its CO verdicts (the rules applied to its training
    log) and its final evaluation."""
    run, log = read_json(run_json), pd.read_csv(log_csv)
    s, ev, timing = run["settings"], run["evaluation"], schedule(run)
    co = detect_overfitting(log, rule, **timing)
    if s["method"] == "standard":  # no adversarial training, nothing to overfit catastrophically
        co |= dict(co=False, co_verdict="not_applicable", co_step=None, co_wong=False, co_wong_step=None)
    epoch_of = dict(zip(log["step"], log["epoch"]))
    return dict(
        dataset=run["data"]["dataset"], **{k: s[k] for k in RUN_COLUMNS[1:]},
        **{k: co[k] for k in ("co", "co_verdict", "co_step", "co_wong", "co_wong_step", "final_pgd_acc",
                              "final_fgsm_acc", "final_clean_acc", *VERDICT_KEYS)},
        co_epoch=epoch_of[co["co_step"]] if co["co"] else math.nan,
        steps_to_collapse=co["step_after"] - co["step_before"] if co["co"] else math.nan,
        pgd50_final=ev["final"]["pgd_acc"], clean_final=ev["final"]["clean_acc"],
        pgd50_best=ev["best"]["pgd_acc"], clean_best=ev["best"]["clean_acc"],
        test_acc_final=ev["final"]["test_acc"], test_acc_best=ev["best"]["test_acc"],
        warmup_steps=timing["warmup_steps"], steps=run["steps"], wall_seconds=run["wall_seconds"],
    )


def runs_table(run_jsons: list[Path], log_csvs: list[Path], rule: OverfittingRule) -> pd.DataFrame:
    table = pd.DataFrame([run_row(run, log, rule) for run, log in zip(run_jsons, log_csvs, strict=True)],
                         columns=RUNS_COLUMNS)
    order = {m: i for i, m in enumerate(METHODS)}
    return table.sort_values(["dataset", "model", "beta", "method", "eps", "seed"], key=lambda c: c.map(order)
                             if c.name == "method" else c, kind="stable").reset_index(drop=True)


ONSET_COLUMNS = ("scope", "dataset", "model", "method", "beta", "seed", "epsilons", "onset_eps", "n_seeds", "n_with_co",
                 "onset_median", "onset_min", "onset_max")


def onset_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The CO onset ε*: per seed, the smallest ε of the grid at which the run overfitted (+inf where none did:
    ε* lies above the largest ε tried); per method (and β), the median, minimum and maximum over all its
    seeds, +inf counted as such (a median of inf: most seeds had no CO at any ε tried), and how many seeds
    had CO. The true onset lies between the grid's ε* and the ε below it. Adversarial methods with at least
    two ε only."""
    rows = []
    for (dataset, model, method, beta), group in runs.groupby(["dataset", "model", "method", "beta"], sort=False):
        epsilons = sorted(group["eps"].unique())
        if len(epsilons) < 2 or method == "standard":
            continue
        tried = " ".join(f"{e:g}" for e in epsilons)
        onsets = []
        for seed, g in group.groupby("seed"):
            with_co = g.loc[g["co"].astype(bool), "eps"]
            onset = float(with_co.min()) if len(with_co) else math.inf
            onsets.append(onset)
            rows.append(dict(scope="seed", dataset=dataset, model=model, method=method, beta=beta, seed=seed,
                             epsilons=tried, onset_eps=onset))
        onsets = np.array(onsets)
        rows.append(dict(scope="method", dataset=dataset, model=model, method=method, beta=beta, epsilons=tried,
                         n_seeds=len(onsets), n_with_co=int(np.isfinite(onsets).sum()),
                         onset_median=float(np.median(onsets)),
                         onset_min=float(onsets.min()), onset_max=float(onsets.max())))
    counts = {column: "Int64" for column in ("seed", "n_seeds", "n_with_co")}
    return pd.DataFrame(rows, columns=ONSET_COLUMNS).astype(counts)


PROBE_COLUMNS = (*RUN_COLUMNS, "network", "step", "measure", "n_items", "n_censored", "median", "mean")


def probe_table(items: pd.DataFrame) -> pd.DataFrame:
    """Per run, network and measure: the median (radii: over the images the network classifies correctly,
    censored radii counted as +inf) and the mean (finite values) over the probed items."""
    rows = []
    for key, g in items.groupby([*RUN_COLUMNS, "network", "step", "measure"], sort=False):
        values = g["value"].dropna().to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        rows.append(dict(zip((*RUN_COLUMNS, "network", "step", "measure"), key), n_items=len(values),
                         n_censored=int(np.isinf(values).sum()),
                         median=float(np.median(values)) if len(values) else math.nan,
                         mean=float(finite.mean()) if len(finite) else math.nan))
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


def co_event(runs: pd.DataFrame) -> pd.Series | None:
    """The run whose collapse is shown in the training-curve figure: of the runs with CO (a collapse), the one
    with the largest fall of held-out PGD accuracy, a run without the feature first."""
    for candidates in (runs[runs["co"].astype(bool) & (runs["beta"] == 0)], runs[runs["co"].astype(bool)]):
        if len(candidates):
            fall = candidates["pgd_before"] - candidates["pgd_after"]
            return candidates.loc[fall.idxmax()]
    return None


def event_logs(runs: pd.DataFrame, run_files: list[Path], log_files: list[Path], feature) -> tuple:
    """What the figures draw from the training logs: the CO event (`co_event`) and its log, the PGD run of the
    same ε, β and seed as its reference (None if not run), and the feature sweep's logs by (β, seed) (at
    `feature`.method and .epsilon)."""
    logs = {}
    for run_json, log in zip(run_files, log_files, strict=True):
        s = read_json(run_json)["settings"]
        logs[(s["method"], s["eps"], s["beta"], s["seed"])] = log
    event = co_event(runs)
    curves, reference = {}, None
    if event is not None:
        curves["event"] = pd.read_csv(logs[(event["method"], event["eps"], event["beta"], event["seed"])])
        key = ("pgd", event["eps"], event["beta"], event["seed"])
        reference = pd.read_csv(logs[key]) if key in logs else None
    feature_logs = {(beta, seed): pd.read_csv(path) for (method, eps, beta, seed), path in logs.items()
                    if method == feature.method and np.isclose(eps, feature.epsilon)}
    return event, curves, reference, feature_logs
