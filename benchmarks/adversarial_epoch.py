"""What does adversarial training cost? One training epoch of each method against standard training.

    python benchmarks/adversarial_epoch.py            # about 2 min on one CPU core

Everything comes from the study's config.yaml (`adversarial`: the embedded MNIST split, the model, batch size,
learning rate, PGD-k steps, ε = the largest of `adversarial.epsilons`). Each method trains the same fresh network
for one epoch through the study's one trainer and its `perturb` hook (no evaluations); the figure is the median
of `--reps` epochs, in seconds and as a multiple of the standard epoch. Also timed: the final evaluation attack
(PGD with restarts) of one network on `adversarial.evaluation.images` images.
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

from robustgen import data as datasets  # noqa: E402
from robustgen import settings as views  # noqa: E402
from robustgen.config import load  # noqa: E402
from robustgen.measures.attacks import linf_ascent, robust_correct  # noqa: E402
from robustgen.models import build  # noqa: E402
from robustgen.stages.adversarial import METHODS, evaluation_attack, network_spec, training_ascent  # noqa: E402
from robustgen.train import Data, adam_options, train  # noqa: E402

CONFIG = load([ROOT / "config.yaml"], [])
GRID = views.build(views.AdversarialGrid, CONFIG["adversarial"], "adversarial")
TRAINING = views.build(views.AdversarialTraining, CONFIG["adversarial"], "adversarial")


def fresh_model(split):
    torch.manual_seed(0)
    return build(network_spec(GRID.model, split))


def epoch_seconds(method: str, split, x, y, eps: float) -> float:
    model = fresh_model(split)
    ascent = training_ascent(method, TRAINING)
    generator = torch.Generator().manual_seed(0)
    perturb = None if ascent is None else (
        lambda m, xb, yb: linf_ascent(m, xb, yb, loss="cross_entropy", eps=eps, ascent=ascent, generator=generator))
    steps = math.ceil(len(x) / TRAINING.batch_size)
    start = time.perf_counter()
    train(model, Data(x, y), torch.optim.Adam(model.parameters(), lr=TRAINING.lr, **adam_options("cpu")),
          loss="cross_entropy", batch_size=TRAINING.batch_size, max_steps=steps, eval_steps=[],
          generator=torch.Generator().manual_seed(0), perturb=perturb)
    return time.perf_counter() - start  # includes one evaluation of the training set at the end, as every run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the training rule's threads: 1)")
    parser.add_argument("--reps", type=int, default=3, help="epochs timed per method (median reported)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = datasets.load_split(GRID.dataset, data_dir=Path(CONFIG["data"]["dir"]),
                                train_size=CONFIG["adversarial"]["train_size"],
                                split_seed=CONFIG["data"]["split_seed"], download=False,
                                subset=CONFIG["adversarial"]["train_subset"])
    x, y = datasets.as_float(split.train_x), split.train_y
    eps = max(GRID.epsilons)
    print(f"{GRID.dataset}: {len(x)} training images, {GRID.model}, batch {TRAINING.batch_size}, ε = {eps:g}, "
          f"PGD-k: {TRAINING.pgd.steps} steps, {args.threads} thread(s)\n")
    epoch_seconds("standard", split, x, y, eps)  # untimed: the first epoch pays one-time start-up costs
    print("| method | seconds per epoch | × standard |\n|---|---|---|")
    seconds = {}
    for method in METHODS:
        seconds[method] = statistics.median(epoch_seconds(method, split, x, y, eps) for _ in range(args.reps))
        print(f"| {method} | {seconds[method]:.2f} | {seconds[method] / seconds['standard']:.1f} |", flush=True)
    model = fresh_model(split).eval()
    test_x, test_y = datasets.as_float(split.test_x[:TRAINING.evaluation.images]), split.test_y[:TRAINING.evaluation.images]
    start = time.perf_counter()
    robust_correct(model, test_x, test_y, eps=eps, ascent=evaluation_attack(TRAINING.evaluation),
                   restarts=TRAINING.evaluation.restarts, generator=torch.Generator().manual_seed(0))
    e = TRAINING.evaluation
    print(f"\nevaluation attack (PGD-{e.steps}, {e.restarts} restarts) of an untrained network on {e.images} images: "
          f"{time.perf_counter() - start:.2f} s (a robust network costs up to {e.restarts}× more)")


if __name__ == "__main__":
    main()
