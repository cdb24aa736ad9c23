"""Command-line entry points the Snakemake rules call: `python -m robustgen <command> ...`.

Each command reads its inputs, calls the library, and writes its outputs atomically; every knob is
a flag, so the rule's params carry it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def cmd_prepare_data(args) -> None:
    from . import data

    split = data.load_split(args.dataset, data_dir=args.data_dir, train_size=args.train_size,
                            split_seed=args.split_seed, download=args.download)
    data.save_split(split, args.output)
    print(f"{args.dataset}: {split.meta['train_size']} train / {split.meta['test_size']} test -> {args.output}")


def cmd_download(args) -> None:
    from . import data

    split = data.load_torchvision(args.dataset, args.data_dir, None, download=True)
    print(f"{args.dataset}: {split.meta['train_size']} train / {split.meta['test_size']} test in {args.data_dir}")


def cmd_train_grokking(args) -> None:
    from .grokking import GrokkingSettings, run

    _threads(args.threads)
    settings = GrokkingSettings(
        init_scale=args.init_scale, weight_decay=args.weight_decay, seed=args.seed, width=args.width,
        depth=args.depth, lr=args.lr, batch_size=args.batch_size, max_steps=args.max_steps, dtype=args.dtype,
        device=args.device, eval_per_decade=args.eval_per_decade, eval_max_interval=args.eval_max_interval,
        stop_test_acc=args.stop_test_acc, stop_steps_after=args.stop_steps_after,
    )
    summary = run(args.data, settings, metrics_path=args.metrics, run_path=args.run_json,
                  snapshot_dir=args.snapshots)
    print(f"{summary['steps']} steps in {summary['wall_seconds']:.1f} s on {summary['device']} "
          f"({summary['threads']} threads), stopped: {summary['stop_reason']}")


def cmd_extract_checkpoints(args) -> None:
    import torch

    from .checkpoints import extract
    from .grokking import snapshot_path
    from .io import atomic_torch_save, read_json, write_json

    run = read_json(args.run_json)
    found = extract(pd.read_csv(args.metrics), memorised_train_acc=args.memorised_train_acc,
                    generalised_test_acc=args.generalised_test_acc, stop_reason=run["stop_reason"])
    weights = {}
    for name, cp in found["checkpoints"].items():
        if cp["reached"]:
            path = snapshot_path(args.snapshots, cp["step"])
            cp["snapshot"] = path.name
            weights[name] = dict(step=cp["step"], state_dict=torch.load(path, weights_only=True)["state_dict"])
        print(f"{name}: " + (f"step {cp['step']} (train {cp['train_acc']:.3f}, test {cp['test_acc']:.4f})"
                             if cp["reached"] else "not reached"))
    atomic_torch_save(dict(model_spec=run["model_spec"], checkpoints=weights), args.output_weights)
    write_json(found, args.output_json)


def cmd_grokking_table(args) -> None:
    from .io import write_csv
    from .tables import grokking_table

    table = grokking_table(args.runs, args.checkpoints)
    write_csv(table, args.output)
    print(table.to_string(index=False))


def cmd_grokking_figures(args) -> None:
    from . import figures
    from .io import read_json, save_figure

    table = pd.read_csv(args.table)
    if not len(args.runs) == len(args.metrics) == len(args.checkpoints):
        raise SystemExit("grokking-figures: give one --metrics and one --checkpoints file per --runs file")
    runs = []
    for run_json, metrics, checkpoints in zip(args.runs, args.metrics, args.checkpoints):
        settings = read_json(run_json)["settings"]
        runs.append(dict(init_scale=settings["init_scale"], weight_decay=settings["weight_decay"],
                         seed=settings["seed"], metrics=pd.read_csv(metrics),
                         checkpoints=read_json(checkpoints)["checkpoints"]))
    save_figure(figures.grokking_curves(runs), args.curves_png, args.curves_pdf)
    save_figure(figures.steps_to_generalise(table), args.grid_png, args.grid_pdf)


def parser() -> argparse.ArgumentParser:
    from .data import DATASETS, TORCHVISION
    from .train import DTYPES

    top = argparse.ArgumentParser(prog="robustgen", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare-data", help="load a dataset through its loader and store its split")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--train-size", type=int)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--download", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=cmd_prepare_data)

    p = sub.add_parser("download", help="download a torchvision dataset into --data-dir (needs internet)")
    p.add_argument("dataset", choices=sorted(TORCHVISION))
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("train-grokking", help="one Omnigrok grokking run")
    p.add_argument("--data", type=Path, required=True, help="prepared split (prepare-data)")
    p.add_argument("--metrics", type=Path, required=True, help="output: metric log (CSV)")
    p.add_argument("--run-json", type=Path, required=True, help="output: run summary (JSON)")
    p.add_argument("--snapshots", type=Path, required=True, help="output: directory of snapshots")
    p.add_argument("--init-scale", type=float, required=True)
    p.add_argument("--weight-decay", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--width", type=int, default=200)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--device", default="auto")
    p.add_argument("--eval-per-decade", type=int, default=20)
    p.add_argument("--eval-max-interval", type=int, default=1000)
    p.add_argument("--stop-test-acc", type=float, default=0.85)
    p.add_argument("--stop-steps-after", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_train_grokking)

    p = sub.add_parser("extract-checkpoints", help="memorised / generalised / final checkpoints of a run")
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--snapshots", type=Path, required=True)
    p.add_argument("--memorised-train-acc", type=float, default=0.99)
    p.add_argument("--generalised-test-acc", type=float, default=0.85)
    p.add_argument("--output-json", type=Path, required=True)
    p.add_argument("--output-weights", type=Path, required=True)
    p.set_defaults(func=cmd_extract_checkpoints)

    p = sub.add_parser("grokking-table", help="results/tables/grokking_runs.csv from the runs' summaries")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run.json of each run")
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True, help="checkpoints.json, same order")
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=cmd_grokking_table)

    p = sub.add_parser("grokking-figures", help="accuracy curves and steps-to-generalise grid")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run.json of each run")
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="metrics.csv, same order")
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True, help="checkpoints.json, same order")
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--curves-png", type=Path, required=True)
    p.add_argument("--curves-pdf", type=Path, required=True)
    p.add_argument("--grid-png", type=Path, required=True)
    p.add_argument("--grid-pdf", type=Path, required=True)
    p.set_defaults(func=cmd_grokking_figures)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .data import DatasetUnavailable

    try:
        args.func(args)
    except DatasetUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
