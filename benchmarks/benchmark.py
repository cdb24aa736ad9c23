"""How fast is robustgen, against the Omnigrok protocol and against this machine's matmul rate?

    python benchmarks/benchmark.py                  # everything (about 25 min on a 2-core CPU)
    python benchmarks/benchmark.py --quick          # step rates, probes and DAG only (about 4 min)

Every size and setting comes from the study's config.yaml (the run timed is its α=8, wd=0.01, seed 0 run
on the embedded data, stopped at generalisation). Prints:
  - ms per step and GFLOP/s of robustgen's training loop and of the Omnigrok-protocol reference loop
    (benchmarks/omnigrok_reference.py), and their ratio to the float32 GEMM rate (2048² matmul, same
    threads) measured just before and after each timing — medians of `--step-reps` such pairs, because a
    shared machine's speed drifts by tens of percent from minute to minute;
  - wall time to the memorised and to the generalised checkpoint for each, alternating, `--reps` times,
    medians and the ratio (skipped with --quick);
  - the time to probe one checkpoint, Jacobian norms, transitions, a CKA heatmap;
  - the Snakemake DAG build time (dry run) for the default study and the largest configured sweep.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import gemm_gflops  # noqa: E402
from omnigrok_reference import reference_step_seconds, train_reference  # noqa: E402
from robustgen import data as datasets  # noqa: E402
from robustgen import settings as views  # noqa: E402
from robustgen.config import load  # noqa: E402
from robustgen.measures.sensitivity import jacobian_norms, trajectory_anchors, trajectory_sensitivity  # noqa: E402
from robustgen.measures.similarity import Representation, layer_activations  # noqa: E402
from robustgen.models import build, from_state, model_spec, scale_init_  # noqa: E402
from robustgen.runs import OpenRun  # noqa: E402
from robustgen.settings import build as settings  # noqa: E402
from robustgen.stages.checkpoints import extract  # noqa: E402
from robustgen.stages.grokking import run  # noqa: E402
from robustgen.measures.network import random_noise_probes  # noqa: E402
from robustgen.train import Data, adam_options, train  # noqa: E402

# The study's own configuration; the benchmark times its α = 8, wd = 0.01 run and stops it at generalisation.
CONFIG = load([ROOT / "config.yaml"], ["grokking.stop.steps_after=0", "device=cpu"])
ALPHA, WD, SEED = 8.0, 0.01, 0
TRAINING = settings(views.GrokkingTraining, CONFIG["grokking"], "grokking")


def step_flops(sizes=(784, 200, 200, 10), batch=200) -> float:
    """Matmul FLOPs of one training step: forward, weight gradients, and input gradients of every layer
    but the first (elementwise work, biases and the optimiser are not counted)."""
    products = [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def grokking_model():
    torch.manual_seed(SEED)
    return scale_init_(build(model_spec(784, TRAINING.width, TRAINING.depth, 10)), ALPHA)


def robustgen_step_seconds(split, steps: int) -> float:
    """Seconds per step of robustgen's `train` alone: the difference of two runs cancels the evaluations
    at their ends and the set-up."""
    x = datasets.as_float(split.train_x)

    def timed(n):
        model = grokking_model()
        opt = torch.optim.AdamW(model.parameters(), lr=TRAINING.lr, weight_decay=WD, **adam_options("cpu"))
        start = time.perf_counter()
        train(model, Data(x, split.train_y), opt, loss="mse", batch_size=TRAINING.batch_size, max_steps=n,
              eval_steps=[0], generator=torch.Generator().manual_seed(SEED))
        return time.perf_counter() - start

    timed(50)
    return (timed(steps + steps // 10) - timed(steps // 10)) / steps


def robustgen_to_checkpoints(split_path: Path, workdir: Path) -> dict:
    """One real grokking run (the workflow's code path, snapshots and all) stopped at generalisation."""
    summary = run(split_path, TRAINING, init_scale=ALPHA, weight_decay=WD, seed=SEED, jacobian_penalty=0.0,
                  long_run=False, device=CONFIG["device"],
                  metrics_path=workdir / "metrics.csv", run_path=workdir / "run.json",
                  snapshot_dir=workdir / "snapshots", state_every=CONFIG["grokking"]["state_every"])
    import pandas as pd

    metrics = pd.read_csv(workdir / "metrics.csv")
    found = extract(metrics, **CONFIG["checkpoints"])["checkpoints"]
    seconds = dict(zip(metrics["step"], summary["eval_seconds"]))
    out = dict(steps=summary["steps"], seconds=summary["wall_seconds"])
    for name in ("memorised", "generalised"):
        step = found[name]["step"]
        out[f"{name}_step"], out[f"{name}_seconds"] = step, seconds.get(step)
    return out


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def analysis_timings(split, model) -> dict:
    """Seconds for each analysis of one network, at config.yaml's sizes."""
    s = settings(views.CheckpointProbes, CONFIG["robustness"], "robustness")
    t = settings(views.Sensitivity, CONFIG["sensitivity"], "sensitivity")
    c = settings(views.Similarity, CONFIG["similarity"], "similarity")
    run = OpenRun({}, torch.device("cpu"), torch.float32, split)
    x, y, _ = run.test_images(s.images.first, s.images.count, "robustness.images")
    points = run.floats(split.test_x[:t.test_points])
    anchors = trajectory_anchors("different_class", run.floats(split.train_x), split.train_y, t.ellipses,
                                 torch.Generator().manual_seed(t.seed))
    cka_x, _, _ = run.test_images(c.images.first, c.images.count, "similarity.images")
    heatmap = lambda: Representation(list(layer_activations(model, cka_x).values())).cka(  # noqa: E731
        Representation(list(layer_activations(model, cka_x).values())))
    deltas = " and ".join(f"{d:g}" for d in s.grid_deltas)
    return {
        f"random-noise radius, bisection, {len(x)} images × {s.draws} rays": timed(random_noise_probes, model, x, y, s),
        f"random-noise radius, bisection + grid Δ {deltas}, {len(x)} images": timed(
            random_noise_probes, model, x, y, s, s.grid_deltas),
        f"Jacobian norm, {len(points)} points": timed(jacobian_norms, model, points),
        f"transitions + Jacobian along {t.ellipses} ellipses × {t.ellipse_points} points": timed(
            trajectory_sensitivity, model, anchors, k=t.ellipse_points, jacobian_every=t.jacobian_every),
        f"CKA heatmap, 6 × 6 layers, {len(cka_x)} images": timed(heatmap),
    }


def dag_seconds(*config_args: str) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "config.yaml").write_text((ROOT / "config.yaml").read_text())
        cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "--directory", workdir, "-n", "--quiet", "all",
               *config_args]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the training rule's threads: 1)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the runs to both checkpoints")
    parser.add_argument("--steps", type=int, default=2000, help="steps timed for the per-step rates")
    parser.add_argument("--step-reps", type=int, default=5, help="repetitions of the per-step timings")
    parser.add_argument("--quick", action="store_true", help="skip the runs to both checkpoints")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = dict(threads=args.threads, torch=torch.__version__)

    split = datasets.load_embedded_mnist(CONFIG["grokking"]["train_size"], CONFIG["data"]["split_seed"],
                                         CONFIG["grokking"]["train_subset"])
    flops = step_flops()
    x = datasets.as_float(split.train_x)
    reps = []  # the machine's speed drifts (a shared host): each step timing is paired with GEMMs beside it
    for _ in range(args.step_reps):
        gemm_before = gemm_gflops()
        rg = robustgen_step_seconds(split, args.steps)
        ref = reference_step_seconds(x, split.train_y, args.steps // 2)
        gemm = (gemm_before + gemm_gflops()) / 2
        reps.append(dict(gemm_gflops=gemm, robustgen_ms=rg * 1e3, reference_ms=ref * 1e3,
                         robustgen_of_gemm=flops / rg / 1e9 / gemm, reference_of_gemm=flops / ref / 1e9 / gemm))
    med = {k: statistics.median(r[k] for r in reps) for k in reps[0]}
    results["step"] = dict(flops=flops, reps=reps, median=med)
    print(f"machine: float32 GEMM 2048² at {med['gemm_gflops']:.1f} GFLOP/s with {args.threads} thread(s) "
          f"(median of {args.step_reps}, range {min(r['gemm_gflops'] for r in reps):.1f}–"
          f"{max(r['gemm_gflops'] for r in reps):.1f})")
    unit = results["reference_10k_steps_seconds"] = med["reference_ms"] * 10
    print(f"10 000 steps of the Omnigrok reference loop: {unit:.1f} s (the unit of the study's time budget: the "
          f"default study's wall time on 2 cores over this, measured beside it, at --threads 2)")
    print(f"\ntraining step ({flops / 1e6:.0f} MFLOP of matmuls, batch 200; medians of {args.step_reps} "
          "repetitions, each against the GEMM rate measured beside it)")
    print("| loop | ms/step | GFLOP/s | of GEMM |\n|---|---|---|---|")
    for name, key in (("robustgen (float32, explicit backprop, fused AdamW, on-device batches)", "robustgen"),
                      ("Omnigrok protocol (float64, DataLoader, autograd)", "reference")):
        ms = med[f"{key}_ms"]
        print(f"| {name} | {ms:.2f} | {flops / ms / 1e6:.1f} | {med[f'{key}_of_gemm']:.0%} |")

    model = grokking_model().eval()  # probed if there is no run
    if not args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            split_path = Path(tmp) / "mnist_embedded.pt"
            datasets.save_split(split, split_path)
            runs = {"robustgen": [], "reference": []}
            for rep in range(args.reps):  # alternating, so drifts of the machine hit both alike
                runs["robustgen"].append(robustgen_to_checkpoints(split_path, Path(tmp) / f"rep{rep}"))
                runs["reference"].append(train_reference(datasets.as_float(split.train_x), split.train_y,
                                                         datasets.as_float(split.test_x), split.test_y))
                print(f"rep {rep}: robustgen {runs['robustgen'][-1]}\n       reference {runs['reference'][-1]}",
                      flush=True)
            generalised = runs["robustgen"][0]["generalised_step"]
            if generalised is not None:  # probe the real generalised network
                blob = torch.load(Path(tmp) / "rep0" / "snapshots" / f"step_{generalised:07d}.pt", weights_only=True)
                model = from_state(blob["model_spec"], blob["state_dict"])
        results["to_checkpoints"] = runs
        print(f"\ntime to both checkpoints (α=8, wd=0.01, seed 0; median of {args.reps}, alternating)")
        print("| loop | memorised: step, s | generalised: step, s |\n|---|---|---|")
        medians = {}
        for name, reps in runs.items():
            med = {k: statistics.median(r[k] for r in reps if r[k] is not None)
                   for k in ("memorised_step", "memorised_seconds", "generalised_step", "generalised_seconds")}
            medians[name] = med
            print(f"| {name} | {med['memorised_step']:.0f}, {med['memorised_seconds']:.1f} "
                  f"| {med['generalised_step']:.0f}, {med['generalised_seconds']:.1f} |")
        ratio = medians["reference"]["generalised_seconds"] / medians["robustgen"]["generalised_seconds"]
        results["speedup_to_generalised"] = ratio
        print(f"robustgen reaches the generalised checkpoint {ratio:.1f}× sooner than the reference")

    timings = results["analysis_seconds"] = analysis_timings(split, model)
    print("\nanalyses of one α=8 network (default sizes)\n| analysis | seconds |\n|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.2f} |")

    dag = results["dag_seconds"] = {
        "default study (config.yaml)": dag_seconds(),
        "Novak-scale sweep (configs/novak_scale.yaml, 1080 networks)": dag_seconds(
            "--configfile", str(ROOT / "configs" / "novak_scale.yaml")),
    }
    print("\nSnakemake DAG build (dry run)\n| config | seconds |\n|---|---|")
    for name, seconds in dag.items():
        print(f"| {name} | {seconds:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
