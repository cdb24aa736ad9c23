"""What does adversarial training cost? One training epoch of each method against standard training.

    python benchmarks/adversarial_epoch.py            # the default study's setting: about 2 min on one CPU core
    python benchmarks/adversarial_epoch.py --configfile configs/ortiz_wong.yaml --random 50000 --device cuda \
        --methods standard fgsm pgd                   # PreActResNet-18, CIFAR-sized data, the fast-AT recipe

Everything comes from the study's config (`adversarial`: the data, the model, batch size, the optimiser, its
schedule and the augmentation, PGD-k steps, ε = the largest of `adversarial.epsilons`); `--configfile` layers a
paper's config over config.yaml. `--random N` trains on N random images of the dataset's shape instead of the
dataset (a timing needs no real pixels: CIFAR10 need not be downloaded). Each method trains the same fresh
network for one epoch through the study's one trainer with the run's recipe (`stages.adversarial.recipe`) and its
`perturb` hook (no evaluations); the figure is the median of `--reps` epochs, in seconds and as a multiple of the
standard epoch. Also timed: the final evaluation attack (PGD with restarts) of one network on
`adversarial.evaluation.images` images. Every timing is printed beside the machine's float32 GEMM rate.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import gemm_gflops, synchronise  # noqa: E402
from robustgen import data as datasets  # noqa: E402
from robustgen import settings as views  # noqa: E402
from robustgen.config import load  # noqa: E402
from robustgen.measures.attacks import alignment_penalty, linf_ascent, robust_correct  # noqa: E402
from robustgen.models import build, num_parameters  # noqa: E402
from robustgen.stages.adversarial import METHODS, evaluation_attack, network_spec, recipe, training_ascent  # noqa: E402
from robustgen.train import Data, resolve_device, train  # noqa: E402


def epoch_seconds(method: str, split, x, y, eps: float, training, grid, device) -> float:
    torch.manual_seed(0)
    model = build(network_spec(grid.model, split)).to(device)
    ascent = training_ascent(method, training)
    generator = torch.Generator(device=device).manual_seed(0)
    perturb = None if ascent is None else (
        lambda m, xb, yb: linf_ascent(m, xb, yb, loss="cross_entropy", eps=eps, ascent=ascent, generator=generator))
    regulariser = None if method != "grad_align" else (
        lambda m, xb, yb: training.single_step.grad_align * alignment_penalty(m, xb, yb, eps=eps, generator=generator))
    steps = math.ceil(len(x) / training.batch_size)
    synchronise(device)
    start = time.perf_counter()
    train(model, Data(x, y), loss="cross_entropy", batch_size=training.batch_size, max_steps=steps, eval_steps=[],
          generator=torch.Generator(device=device).manual_seed(0), perturb=perturb, regulariser=regulariser,
          progress_every=None,
          **recipe(training, model, device=device, max_steps=steps, image_shape=split.meta["image_shape"]))
    synchronise(device)
    return time.perf_counter() - start  # includes one evaluation of the training set at the end, as every run


def random_split(dataset: str, n: int, test: int) -> datasets.Split:
    """n training and `test` test images of `dataset`'s shape, uniform pixels and labels (timing only)."""
    shape = [3, 32, 32] if dataset.startswith("cifar") else [1, 28, 28]
    g = torch.Generator().manual_seed(0)
    pixels = lambda k: torch.randint(0, 256, (k, math.prod(shape)), generator=g, dtype=torch.uint8)  # noqa: E731
    labels = lambda k: torch.randint(0, 10, (k,), generator=g)  # noqa: E731
    return datasets.Split(pixels(n), labels(n), pixels(test), labels(test),
                          dict(dataset=f"random {dataset}-shaped", image_shape=shape, num_classes=10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, action="append", default=[],
                        help="a config layered over config.yaml (e.g. configs/ortiz_wong.yaml); repeatable")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the training rule's threads: 1)")
    parser.add_argument("--reps", type=int, default=3, help="epochs timed per method (median reported)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--random", type=int, default=0, metavar="N",
                        help="time on N random images of the dataset's shape instead of the dataset")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods timed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = load([ROOT / "config.yaml", *args.configfile], [])
    grid = views.build(views.AdversarialGrid, config["adversarial"], "adversarial")
    training = views.build(views.AdversarialTraining, config["adversarial"], "adversarial")
    if args.random:
        split = random_split(grid.dataset, args.random, training.evaluation.images)
    else:
        split = datasets.load_split(grid.dataset, data_dir=Path(config["data"]["dir"]),
                                    train_size=config["adversarial"]["train_size"],
                                    split_seed=config["data"]["split_seed"], download=False,
                                    subset=config["adversarial"]["train_subset"])
    x, y = datasets.as_float(split.train_x, device=device), split.train_y.to(device)
    eps = max(grid.epsilons)
    print(f"{split.meta['dataset']}: {len(x)} training images, {grid.model} "
          f"({num_parameters(build(network_spec(grid.model, split))):,} parameters), batch {training.batch_size}, "
          f"{training.optimizer.name} {training.optimizer.schedule} lr {training.lr:g}, augment {training.augment}, "
          f"ε = {eps:g}, PGD-k: {training.pgd.steps} steps; {device}, {args.threads} thread(s), "
          f"GEMM {gemm_gflops(device):.0f} GFLOP/s (float32)\n")
    epoch_seconds("standard", split, x[:training.batch_size * 2], y[:training.batch_size * 2], eps, training, grid,
                  device)  # untimed: the first steps pay one-time start-up costs
    print("| method | seconds per epoch | × standard |\n|---|---|---|")
    seconds = {}
    for method in args.methods:
        seconds[method] = statistics.median(epoch_seconds(method, split, x, y, eps, training, grid, device)
                                            for _ in range(args.reps))
        ratio = f"{seconds[method] / seconds['standard']:.1f}" if "standard" in seconds else "–"
        print(f"| {method} | {seconds[method]:.2f} | {ratio} |", flush=True)
    torch.manual_seed(0)
    model = build(network_spec(grid.model, split)).to(device).eval()
    e = training.evaluation
    test_x, test_y = datasets.as_float(split.test_x[:e.images], device=device), split.test_y[:e.images].to(device)
    synchronise(device)
    start = time.perf_counter()
    robust_correct(model, test_x, test_y, eps=eps, ascent=evaluation_attack(e), restarts=e.restarts,
                   generator=torch.Generator(device=device).manual_seed(0))
    synchronise(device)
    print(f"\nevaluation attack (PGD-{e.steps}, {e.restarts} restarts) of an untrained network on {len(test_x)} "
          f"images: {time.perf_counter() - start:.2f} s (a robust network costs up to {e.restarts}× more)")


if __name__ == "__main__":
    main()
