"""How long does local complexity take for one network? One snapshot's measurement, timed.

    python benchmarks/local_complexity.py                 # the study's sizes (config.yaml), one thread
    python benchmarks/local_complexity.py --points 1000 --radii 0.05 0.1 0.5 1 5   # Humayun et al.'s sizes

The network is the grokking MLP of config.yaml (grokking.width, grokking.depth, α = the largest of
grokking.init_scales) at initialisation; the points are the first `--points` training images, as many test
images and as many uniform random images of the embedded MNIST; frames of 2 × `--directions` points at each
of `--radii`. Without flags the sizes are delayed.complexity's. The figure is the median of `--reps` timings
of the whole measurement (all points, radii and layers, the output layer included as the stage counts it),
in seconds.
"""

from __future__ import annotations

import argparse
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
from robustgen.measures.complexity import frame_directions, local_complexity  # noqa: E402
from robustgen.models import mlp, scale_init_  # noqa: E402

CONFIG = load([ROOT / "config.yaml"], [])
GRID = views.build(views.GrokkingGrid, CONFIG["grokking"], "grokking")
TRAINING = views.build(views.GrokkingTraining, CONFIG["grokking"], "grokking")
TRAINING_SET = views.build(views.TrainingSet, CONFIG["grokking"], "grokking")
FRAMES = views.build(views.ComplexityFrames, CONFIG["delayed"]["complexity"], "delayed.complexity")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", type=int, default=FRAMES.points, help="points of each kind (train, test, random)")
    p.add_argument("--directions", type=int, default=FRAMES.directions, help="P: the frame has 2P points")
    p.add_argument("--radii", type=float, nargs="+", default=FRAMES.radii)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    split = datasets.load_embedded_mnist(train_size=TRAINING_SET.train_size, split_seed=CONFIG["data"]["split_seed"])
    generator = torch.Generator().manual_seed(0)
    x = torch.cat([datasets.as_float(split.train_x[:a.points]), datasets.as_float(split.test_x[:a.points]),
                   torch.rand(a.points, split.input_dim, generator=generator)])
    torch.manual_seed(0)
    model = scale_init_(mlp(split.input_dim, TRAINING.width, TRAINING.depth, split.num_classes),
                        max(GRID.init_scales))
    directions = frame_directions(split.input_dim, a.directions, generator)
    timings = []
    for _ in range(a.reps):
        start = time.perf_counter()
        lc = local_complexity(model, x, directions, a.radii, output=True)
        timings.append(time.perf_counter() - start)
    print(f"{len(x)} points × {len(a.radii)} radii × {2 * a.directions}-point frames, "
          f"{lc.shape[-1] - 1} hidden layers of {TRAINING.width} and the output layer, {a.threads} thread(s): "
          f"{statistics.median(timings):.2f} s (median of {a.reps}); "
          f"mean LC per layer (output last) at r = {a.radii[0]:g}: {lc[:, 0].double().mean(dim=0).tolist()}")

if __name__ == "__main__":
    main()
