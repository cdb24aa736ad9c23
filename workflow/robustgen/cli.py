"""Command-line entry points the Snakemake rules call: `python -m robustgen <command> ...`.

Each command reads its inputs, calls the library, and writes its outputs atomically; every knob is
a flag, so the rule's params carry it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from .tables import read_tables


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


def cmd_prepare_data(args) -> None:
    from . import data

    split = data.load_split(args.dataset, data_dir=args.data_dir, train_size=args.train_size,
                            split_seed=args.split_seed, download=args.download, subset=args.subset,
                            verify=args.verify)
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
                  snapshot_dir=args.snapshots, state_every=args.state_every)
    print(f"{summary['steps']} steps in {summary['wall_seconds']:.1f} s on {summary['device']} "
          f"({summary['threads']} threads), stopped: {summary['stop_reason']}")


def cmd_extract_checkpoints(args) -> None:
    from .checkpoints import extract
    from .grokking import snapshot_path
    from .io import atomic_torch_save, load_file, read_json, write_json

    run = read_json(args.run_json)
    found = extract(pd.read_csv(args.metrics), memorised_train_acc=args.memorised_train_acc,
                    generalised_test_acc=args.generalised_test_acc, stop_reason=run["stop_reason"])
    weights = {}
    for name, cp in found["checkpoints"].items():
        if cp["reached"]:
            path = snapshot_path(args.snapshots, cp["step"])
            cp["snapshot"] = path.name
            weights[name] = dict(step=cp["step"], state_dict=load_file(path)["state_dict"])
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
    table = table[table["dataset"] == args.dataset]
    if not len(args.runs) == len(args.metrics) == len(args.checkpoints):
        raise SystemExit("grokking-figures: give one --metrics and one --checkpoints file per --runs file")
    runs = []
    for run_json, metrics, checkpoints in zip(args.runs, args.metrics, args.checkpoints):
        settings = read_json(run_json)["settings"]
        runs.append(dict(init_scale=settings["init_scale"], weight_decay=settings["weight_decay"],
                         seed=settings["seed"], metrics=pd.read_csv(metrics),
                         checkpoints=read_json(checkpoints)["checkpoints"]))
    save_figure(figures.grokking_curves(runs), args.curves, args.curves_pdf)
    save_figure(figures.steps_to_generalise(table), args.grid, args.grid_pdf)


def _probe_settings(args):
    from .robustness import ProbeSettings

    return ProbeSettings(
        image_first=args.image_first, image_count=args.image_count, seed=args.noise_seed, noise=args.noise,
        k=args.draws, clip=args.clip, max_radius=args.max_radius, grid_deltas=tuple(args.grid_deltas),
        bracket_step=args.bracket_step, tol=args.tol, adversarial_norms=tuple(args.adversarial_norms),
        pgd_steps=args.pgd_steps, pgd_step_size=args.pgd_step_size, pgd_targeted=args.pgd_targeted,
        max_eps_l2=args.max_eps_l2, max_eps_linf=args.max_eps_linf, tol_l2=args.tol_l2, tol_linf=args.tol_linf,
        device=args.device,
    )


def cmd_probe_checkpoints(args) -> None:
    from .io import write_csv
    from .robustness import probe_checkpoints

    _threads(args.threads)
    table = probe_checkpoints(args.data, args.checkpoints, args.run_json, _probe_settings(args))
    write_csv(table, args.output)
    print(table.groupby(["checkpoint", "measure", "mode", "norm", "delta"], dropna=False)["radius"].median())


def cmd_probe_trajectory(args) -> None:
    from .io import write_csv
    from .robustness import probe_trajectory

    _threads(args.threads)
    table = probe_trajectory(args.data, args.snapshots, args.run_json, _probe_settings(args),
                             snapshots=args.trajectory_snapshots, images=args.trajectory_images)
    write_csv(table, args.output)
    print(f"{table['step'].nunique()} snapshots probed")


def cmd_robustness_tables(args) -> None:
    from .io import write_csv
    from .robustness import summary, trajectory_table

    per_image = read_tables(args.checkpoint_probes)
    write_csv(summary(per_image, resamples=args.resamples, seed=args.bootstrap_seed), args.summary)
    trajectory = read_tables(args.trajectory_probes)
    write_csv(trajectory_table(trajectory, _metric_logs(args.runs, args.metrics)), args.trajectory)


def cmd_robustness_figures(args) -> None:
    from . import figures
    from .io import save_figure

    per_image = read_tables(args.checkpoint_probes)
    save_figure(figures.robustness_histograms(per_image), args.histograms, args.histograms_pdf)
    trajectory = pd.read_csv(args.trajectory)
    save_figure(figures.robustness_trajectory(trajectory[trajectory["dataset"] == args.dataset]), args.trajectory_figure,
                args.trajectory_figure_pdf)
    save_figure(figures.random_vs_adversarial(per_image), args.random_vs_adversarial,
                args.random_vs_adversarial_pdf)


def _sensitivity_settings(args):
    from .sensitivity_study import SensitivitySettings

    return SensitivitySettings(test_points=args.test_points, train_points=args.train_points,
                               ellipses=args.ellipses, ellipse_points=args.ellipse_points,
                               jacobian_every=args.jacobian_every, seed=args.anchor_seed, device=args.device)


def cmd_sensitivity_checkpoints(args) -> None:
    from .io import write_csv
    from .sensitivity_study import measure_checkpoints

    _threads(args.threads)
    items = measure_checkpoints(args.data, args.checkpoints, args.run_json, _sensitivity_settings(args))
    write_csv(items, args.output)
    print(items.groupby(["checkpoint", "where"], sort=False)[["jacobian_norm", "transition_density"]].mean())


def cmd_sensitivity_trajectory(args) -> None:
    from .io import write_csv
    from .sensitivity_study import measure_trajectory

    _threads(args.threads)
    items = measure_trajectory(args.data, args.snapshots, args.run_json, _sensitivity_settings(args),
                               snapshots=args.trajectory_snapshots)
    write_csv(items, args.output)
    print(f"{items['step'].nunique()} snapshots measured")


def _metric_logs(run_jsons, metric_csvs) -> dict[tuple, pd.DataFrame]:
    """{(dataset, α, wd, seed): metric log} of the runs."""
    from .grokking import run_identity

    return {tuple(run_identity(r)[0].values()): pd.read_csv(m) for r, m in zip(run_jsons, metric_csvs, strict=True)}


def cmd_sensitivity_tables(args) -> None:
    from .io import write_csv
    from .sensitivity_study import summary, trajectory_table

    items = read_tables(args.checkpoint_items)
    write_csv(summary(items), args.summary)
    trajectory = read_tables(args.trajectory_items)
    write_csv(trajectory_table(trajectory, _metric_logs(args.runs, args.metrics)), args.trajectory)


def cmd_sensitivity_figures(args) -> None:
    from . import figures
    from .io import save_figure

    summary, trajectory = pd.read_csv(args.summary), pd.read_csv(args.trajectory)
    save_figure(figures.sensitivity_comparison(summary[summary["dataset"] == args.dataset]), args.comparison,
                args.comparison_pdf)
    save_figure(figures.sensitivity_trajectory(trajectory[trajectory["dataset"] == args.dataset]),
                args.trajectory_figure, args.trajectory_figure_pdf)


def cmd_sensitivity_slices(args) -> None:
    import torch

    from . import data as datasets
    from . import figures
    from .grokking import run_identity, stored_checkpoints
    from .io import save_figure
    from .sensitivity import region_slice, trajectory_anchors
    from .train import DTYPES

    _threads(args.threads)
    slices = []
    for checkpoints, run_json in zip(args.checkpoints, args.runs, strict=True):
        run, dtype = run_identity(run_json)
        split = datasets.read_split(args.data)
        train_x = datasets.as_float(split.train_x, dtype=DTYPES[dtype])
        anchors = trajectory_anchors("different_class", train_x, split.train_y, 1,
                                     torch.Generator().manual_seed(args.anchor_seed))[0]
        for name, step, model in stored_checkpoints(checkpoints, "cpu"):
            if name in ("memorised", "generalised"):
                boundary, count, corners = region_slice(model, anchors, args.resolution, args.margin)
                slices.append(dict(run, checkpoint=name, step=step, boundary=boundary.numpy(), regions=count,
                                   corners=corners, margin=args.margin))
    save_figure(figures.region_slices(slices), args.png, args.pdf)


def cmd_train_capacity(args) -> None:
    from .capacity import CapacitySettings, run

    _threads(args.threads)
    settings = CapacitySettings(width=args.width, depth=args.depth, optimizer=args.optimizer, lr=args.lr,
                                batch_size=args.batch_size, seed=args.seed, max_epochs=args.max_epochs,
                                dtype=args.dtype, device=args.device)
    summary = run(args.data, settings, metrics_path=args.metrics, run_path=args.run_json, model_path=args.model)
    print(f"{summary['parameters']} parameters, {summary['epochs']} epochs in {summary['wall_seconds']:.1f} s: "
          f"train acc {summary['train_acc']:.4f}, test acc {summary['test_acc']:.4f} ({summary['stop_reason']})")


def cmd_capacity_sensitivity(args) -> None:
    from .capacity import measure
    from .io import write_csv

    _threads(args.threads)
    items = measure(args.data, args.model, args.run_json, _sensitivity_settings(args))
    write_csv(items, args.output)
    print(items.groupby("where")[["jacobian_norm", "transition_density"]].mean())


def cmd_capacity_tables(args) -> None:
    from .capacity import correlations, sweep_table
    from .io import write_csv

    table = sweep_table(args.runs, args.items)
    write_csv(table, args.sweep)
    found = correlations(table, resamples=args.resamples, seed=args.bootstrap_seed)
    write_csv(found, args.correlations)
    print(found.to_string(index=False))


def cmd_capacity_figures(args) -> None:
    from . import figures
    from .io import save_figure

    table, found = pd.read_csv(args.sweep), pd.read_csv(args.correlations)
    table = table[table["dataset"] == args.dataset]
    save_figure(figures.capacity_generalisation(table), args.generalisation, args.generalisation_pdf)
    save_figure(figures.capacity_sensitivity(table, found), args.sensitivity, args.sensitivity_pdf)


def _similarity_settings(args):
    from .similarity_study import SimilaritySettings

    return SimilaritySettings(image_first=args.image_first, image_count=args.image_count, estimator=args.estimator,
                              rbf_threshold=args.rbf_threshold, batch_size=args.batch_size,
                              snapshots=args.trajectory_snapshots, device=args.device)


def cmd_similarity_run(args) -> None:
    from .io import write_csv
    from .similarity_study import run_similarity

    _threads(args.threads)
    layers, trajectory = run_similarity(args.data, args.checkpoints, args.snapshots, args.run_json,
                                        _similarity_settings(args))
    write_csv(layers, args.layers)
    write_csv(trajectory, args.trajectory)
    diagonal = layers[(layers.checkpoint_a == "memorised") & (layers.checkpoint_b == "generalised")
                      & (layers.layer_a == layers.layer_b)]
    print(diagonal[["layer_a", "cka"]].to_string(index=False))


def cmd_similarity_seeds(args) -> None:
    from .io import write_csv
    from .similarity_study import across_seeds

    _threads(args.threads)
    write_csv(across_seeds(args.data, args.checkpoints, args.runs, _similarity_settings(args)), args.output)


def cmd_similarity_tables(args) -> None:
    from .io import write_csv

    write_csv(read_tables(args.layers), args.layers_table)
    write_csv(read_tables(args.seeds), args.seeds_table)
    trajectory = read_tables(args.trajectory)
    accuracy = pd.concat([log.assign(**dict(zip(("dataset", "init_scale", "weight_decay", "seed"), key)))
                          for key, log in _metric_logs(args.runs, args.metrics).items()], ignore_index=True)
    keys = ["dataset", "init_scale", "weight_decay", "seed", "step"]
    write_csv(trajectory.merge(accuracy[keys + ["test_acc"]], on=keys, how="left"), args.trajectory_table)


def cmd_similarity_figures(args) -> None:
    from . import figures
    from .io import save_figure

    pick = lambda table: table[table["dataset"] == args.dataset]
    layers = pick(pd.read_csv(args.layers))
    seeds = pick(pd.read_csv(args.seeds))
    save_figure(figures.cka_heatmaps(layers), args.heatmaps, args.heatmaps_pdf)
    save_figure(figures.cka_by_layer(layers, seeds), args.by_layer, args.by_layer_pdf)
    save_figure(figures.cka_trajectory(pick(pd.read_csv(args.trajectory))), args.trajectory_figure, args.trajectory_figure_pdf)


def _figure_outputs(p: argparse.ArgumentParser, *names: str) -> None:
    """--NAME (PNG) and --NAME-pdf output paths for each figure a command draws."""
    for name in names:
        p.add_argument(f"--{name}", type=Path, required=True, help="output: PNG")
        p.add_argument(f"--{name}-pdf", type=Path, required=True, help="output: PDF")


def _probe_flags() -> argparse.ArgumentParser:
    """Flags shared by the probe commands (robustness.* in config.yaml)."""
    from .probes import NOISES, NORMS

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--image-first", type=int, default=1000)
    p.add_argument("--image-count", type=int, default=500)
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--noise", choices=NOISES, default="uniform")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--clip", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--max-radius", type=float, default=30.0)
    p.add_argument("--grid-deltas", type=float, nargs="*", default=[0.01, 0.05])
    p.add_argument("--bracket-step", type=float, default=0.25)
    p.add_argument("--tol", type=float, default=1e-3)
    p.add_argument("--adversarial-norms", choices=NORMS, nargs="*", default=["l2", "linf"])
    p.add_argument("--pgd-steps", type=int, default=20)
    p.add_argument("--pgd-step-size", type=float, default=0.125)
    p.add_argument("--pgd-targeted", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--max-eps-l2", type=float, default=10.0)
    p.add_argument("--max-eps-linf", type=float, default=1.0)
    p.add_argument("--tol-l2", type=float, default=1e-3)
    p.add_argument("--tol-linf", type=float, default=1e-4)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    return p


def parser() -> argparse.ArgumentParser:
    from .data import DATASETS, SUBSETS, TORCHVISION
    from .train import DTYPES

    top = argparse.ArgumentParser(prog="robustgen", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare-data", help="load a dataset through its loader and store its split")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--train-size", type=int)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--subset", choices=SUBSETS, default="first",
                   help="the first --train-size training images, or a class-balanced draw with --split-seed")
    p.add_argument("--download", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                   help="check the MD5 sums of torchvision's CIFAR files")
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
    p.add_argument("--state-every", type=int, default=2000,
                   help="save the full training state every this many steps, to resume a killed job")
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
    p.add_argument("--dataset", required=True, help="the dataset whose runs the figures show")
    _figure_outputs(p, "curves", "grid")
    p.set_defaults(func=cmd_grokking_figures)

    probe_flags = _probe_flags()
    p = sub.add_parser("probe-checkpoints", parents=[probe_flags],
                       help="random-noise and adversarial radii of a run's checkpoints, per image")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoints", type=Path, required=True, help="checkpoints.pt of the run")
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=cmd_probe_checkpoints)

    p = sub.add_parser("probe-trajectory", parents=[probe_flags],
                       help="bisection random-noise radius at a run's snapshots, per image")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--snapshots", type=Path, required=True)
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--trajectory-snapshots", type=int, default=24, help="log-spaced subset; 0 = all")
    p.add_argument("--trajectory-images", type=int, default=250)
    p.add_argument("--output", type=Path, required=True)
    p.set_defaults(func=cmd_probe_trajectory)

    p = sub.add_parser("robustness-tables", help="robustness_summary.csv and robustness_trajectory.csv")
    p.add_argument("--checkpoint-probes", type=Path, nargs="+", required=True)
    p.add_argument("--trajectory-probes", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run.json of each run")
    p.add_argument("--metrics", type=Path, nargs="+", required=True, help="metrics.csv, same order")
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--bootstrap-seed", type=int, default=0)
    p.add_argument("--summary", type=Path, required=True)
    p.add_argument("--trajectory", type=Path, required=True)
    p.set_defaults(func=cmd_robustness_tables)

    p = sub.add_parser("robustness-figures", help="radius histograms, trajectory, random vs adversarial")
    p.add_argument("--checkpoint-probes", type=Path, nargs="+", required=True)
    p.add_argument("--trajectory", type=Path, required=True, help="robustness_trajectory.csv")
    p.add_argument("--dataset", required=True, help="the dataset whose runs the figures show")
    _figure_outputs(p, "histograms", "trajectory-figure", "random-vs-adversarial")
    p.set_defaults(func=cmd_robustness_figures)

    def sensitivity_flags(p):
        p.add_argument("--test-points", type=int, default=1000)
        p.add_argument("--train-points", type=int, default=1000)
        p.add_argument("--ellipses", type=int, default=100, help="per trajectory kind")
        p.add_argument("--ellipse-points", type=int, default=256)
        p.add_argument("--jacobian-every", type=int, default=8)
        p.add_argument("--anchor-seed", type=int, default=0)
        p.add_argument("--device", default="auto")
        p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser("sensitivity-checkpoints", help="Jacobian norms and transitions of a run's checkpoints")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoints", type=Path, required=True)
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    sensitivity_flags(p)
    p.set_defaults(func=cmd_sensitivity_checkpoints)

    p = sub.add_parser("sensitivity-trajectory", help="Jacobian norms and transitions at a run's snapshots")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--snapshots", type=Path, required=True)
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--trajectory-snapshots", type=int, default=24, help="log-spaced subset; 0 = all")
    p.add_argument("--output", type=Path, required=True)
    sensitivity_flags(p)
    p.set_defaults(func=cmd_sensitivity_trajectory)

    p = sub.add_parser("sensitivity-tables", help="sensitivity_summary.csv and sensitivity_trajectory.csv")
    p.add_argument("--checkpoint-items", type=Path, nargs="+", required=True)
    p.add_argument("--trajectory-items", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--metrics", type=Path, nargs="+", required=True)
    p.add_argument("--summary", type=Path, required=True)
    p.add_argument("--trajectory", type=Path, required=True)
    p.set_defaults(func=cmd_sensitivity_tables)

    p = sub.add_parser("sensitivity-figures", help="Novak's comparison and the sensitivity trajectory")
    p.add_argument("--summary", type=Path, required=True)
    p.add_argument("--trajectory", type=Path, required=True)
    p.add_argument("--dataset", required=True, help="the dataset whose runs the figures show")
    _figure_outputs(p, "comparison", "trajectory-figure")
    p.set_defaults(func=cmd_sensitivity_figures)

    p = sub.add_parser("sensitivity-slices", help="linear regions on the plane through 3 training points")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run.json, same order")
    p.add_argument("--resolution", type=int, default=400)
    p.add_argument("--margin", type=float, default=0.25, help="plane extent beyond the anchors' triangle")
    p.add_argument("--anchor-seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--png", type=Path, required=True)
    p.add_argument("--pdf", type=Path, required=True)
    p.set_defaults(func=cmd_sensitivity_slices)

    from .capacity import OPTIMIZERS

    p = sub.add_parser("train-capacity", help="one network of the capacity sweep, to 100 %% train accuracy")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True)
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_train_capacity)

    p = sub.add_parser("capacity-sensitivity", help="Jacobian norms and transitions of one sweep network")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    sensitivity_flags(p)
    p.set_defaults(func=cmd_capacity_sensitivity)

    p = sub.add_parser("capacity-tables", help="capacity_sweep.csv and capacity_correlations.csv")
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--items", type=Path, nargs="+", required=True, help="sensitivity.csv, same order")
    p.add_argument("--resamples", type=int, default=2000)
    p.add_argument("--bootstrap-seed", type=int, default=0)
    p.add_argument("--sweep", type=Path, required=True)
    p.add_argument("--correlations", type=Path, required=True)
    p.set_defaults(func=cmd_capacity_tables)

    p = sub.add_parser("capacity-figures", help="generalisation vs capacity and vs sensitivity")
    p.add_argument("--sweep", type=Path, required=True)
    p.add_argument("--correlations", type=Path, required=True)
    p.add_argument("--dataset", required=True)
    _figure_outputs(p, "generalisation", "sensitivity")
    p.set_defaults(func=cmd_capacity_figures)

    from .similarity import ESTIMATORS

    def similarity_flags(p):
        p.add_argument("--image-first", type=int, default=0)
        p.add_argument("--image-count", type=int, default=1000)
        p.add_argument("--estimator", choices=ESTIMATORS, default="linear")
        p.add_argument("--rbf-threshold", type=float, default=1.0, help="σ as a multiple of the median distance")
        p.add_argument("--batch-size", type=int, default=0, help="minibatch CKA over batches this size; 0 = off")
        p.add_argument("--trajectory-snapshots", type=int, default=24)
        p.add_argument("--device", default="auto")
        p.add_argument("--threads", type=int, default=1)

    p = sub.add_parser("similarity-run", help="layer × layer CKA of a run's checkpoints and snapshots")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoints", type=Path, required=True)
    p.add_argument("--snapshots", type=Path, required=True)
    p.add_argument("--run-json", type=Path, required=True)
    p.add_argument("--layers", type=Path, required=True, help="output: layer × layer CKA")
    p.add_argument("--trajectory", type=Path, required=True, help="output: CKA of snapshots with the final net")
    similarity_flags(p)
    p.set_defaults(func=cmd_similarity_run)

    p = sub.add_parser("similarity-seeds", help="per-layer CKA of the same checkpoint across seeds")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="run.json, same order")
    p.add_argument("--output", type=Path, required=True)
    similarity_flags(p)
    p.set_defaults(func=cmd_similarity_seeds)

    p = sub.add_parser("similarity-tables", help="cka_layers.csv, cka_seeds.csv and cka_trajectory.csv")
    p.add_argument("--layers", type=Path, nargs="+", required=True)
    p.add_argument("--seeds", type=Path, nargs="+", required=True)
    p.add_argument("--trajectory", type=Path, nargs="+", required=True)
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--metrics", type=Path, nargs="+", required=True)
    p.add_argument("--layers-table", type=Path, required=True)
    p.add_argument("--seeds-table", type=Path, required=True)
    p.add_argument("--trajectory-table", type=Path, required=True)
    p.set_defaults(func=cmd_similarity_tables)

    p = sub.add_parser("similarity-figures", help="CKA heatmaps, per-layer comparisons and trajectory")
    p.add_argument("--layers", type=Path, required=True)
    p.add_argument("--seeds", type=Path, required=True)
    p.add_argument("--trajectory", type=Path, required=True)
    p.add_argument("--dataset", required=True)
    _figure_outputs(p, "heatmaps", "by-layer", "trajectory-figure")
    p.set_defaults(func=cmd_similarity_figures)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .data import DatasetUnavailable
    from .io import CorruptFile
    from .train import Preempted

    try:
        args.func(args)
    except (DatasetUnavailable, CorruptFile) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Preempted as err:
        print(f"preempted: {err}", file=sys.stderr)
        return 143  # the conventional status of a process ended by SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
