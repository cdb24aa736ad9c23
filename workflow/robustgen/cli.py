"""The study's steps as a table: `robustgen <step> --knobs JSON <files>`, what every Snakemake rule calls.

A step names the config sections it reads (`reads`: section -> settings class, see `robustgen.settings`),
the files it takes and writes, and the plain values that identify what it works on (a run's α, a network's
width: wildcards of the rule). Snakemake passes exactly the slice of config.yaml a step reads (`knobs`), so
its params trigger reruns exactly what a change touches. By hand, the same step reads the study's own
config files instead, so a hand run and the study's run of a step cannot differ:

    robustgen probe-checkpoints --config config.yaml --set robustness.adversarial.steps=5 \\
        --data results/data/grokking/mnist_embedded.pt --checkpoints RUN/checkpoints.pt \\
        --run-json RUN/run.json --output probes.csv

Nothing here holds a knob's value; the functions below only read files, call a stage and write files.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import settings as views
from .config import ConfigError, load, merge
from .settings import SettingsError, build, is_view, leaf_keys, slice_of

# --- the steps -------------------------------------------------------------------------------------------


def prepare_data(a) -> None:
    from . import data

    source, subset = a.knobs["data"], a.knobs[a.study]
    try:
        split = data.load_split(a.dataset, data_dir=Path(source.dir), train_size=subset.train_size,
                                split_seed=source.split_seed, download=source.download, subset=subset.train_subset,
                                verify=source.verify_checksums)
    except data.DatasetUnavailable as err:
        raise data.DatasetUnavailable(f"{err}\n{data.offline_switch(a.study)}") from err
    data.save_split(split, a.output)
    print(f"{a.dataset}: {split.meta['train_size']} train / {split.meta['test_size']} test -> {a.output}")


def download(a) -> None:
    from . import data

    split = data.load_torchvision(a.dataset, a.data_dir, None, download=True)
    print(f"{a.dataset}: {split.meta['train_size']} train / {split.meta['test_size']} test in {a.data_dir}")


def train_grokking(a) -> None:
    from .stages.grokking import run

    summary = run(a.data, a.knobs["grokking"], init_scale=a.init_scale, weight_decay=a.weight_decay, seed=a.seed,
                  jacobian_penalty=a.jacobian_penalty, long_run=bool(a.long_run), device=a.knobs["device"], metrics_path=a.metrics, run_path=a.run_json, snapshot_dir=a.snapshots,
                  state_every=a.untracked["grokking"].state_every)
    print(f"{summary['steps']} steps in {summary['wall_seconds']:.1f} s on {summary['device']} "
          f"({summary['threads']} threads), stopped: {summary['stop_reason']}")


def extract_checkpoints(a) -> None:
    from .io import atomic_torch_save, write_json
    from .stages.checkpoints import extract_run

    found, weights = extract_run(a.metrics, a.run_json, a.snapshots, a.knobs["checkpoints"])
    for name, cp in found["checkpoints"].items():
        print(f"{name}: " + (f"step {cp['step']} (train {cp['train_acc']:.3f}, test {cp['test_acc']:.4f})"
                             if cp["reached"] else "not reached"))
    atomic_torch_save(weights, a.output_weights)
    write_json(found, a.output_json)


def grokking_table(a) -> None:
    from .io import write_csv
    from .stages.grokking import grokking_table

    table = grokking_table(a.runs, a.checkpoints)
    write_csv(table, a.output)
    print(table.to_string(index=False))


def grokking_figures(a) -> None:
    import pandas as pd

    from .figures import grokking as figures
    from .io import save_figure
    from .stages.grokking import stored_runs

    table = pd.read_csv(a.table)
    save_figure(figures.grokking_curves(stored_runs(a.runs, a.metrics, a.checkpoints)), a.curves, a.curves_pdf)
    save_figure(figures.steps_to_generalise(table[table["dataset"] == a.dataset]), a.grid, a.grid_pdf)


def probe_checkpoints(a) -> None:
    from .io import write_csv
    from .stages.robustness import probe_checkpoints

    table = probe_checkpoints(a.data, a.checkpoints, a.run_json, a.knobs["robustness"], a.knobs["device"])
    write_csv(table, a.output)
    print(table.groupby(["checkpoint", "measure", "mode", "norm", "delta"], dropna=False)["radius"].median())


def probe_trajectory(a) -> None:
    from .io import write_csv
    from .stages.robustness import probe_trajectory

    table = probe_trajectory(a.data, a.snapshots, a.run_json, a.knobs["robustness"], a.knobs["device"])
    write_csv(table, a.output)
    print(f"{table['step'].nunique()} snapshots probed")


def robustness_tables(a) -> None:
    import pandas as pd

    from .io import write_csv
    from .runs import metric_logs
    from .stages.robustness import summary, trajectory_table
    from .tables import read_tables

    runs = pd.read_csv(a.runs_table)
    write_csv(summary(read_tables(a.checkpoint_probes), a.knobs["robustness"].bootstrap, runs), a.summary)
    write_csv(trajectory_table(read_tables(a.trajectory_probes), metric_logs(a.runs, a.metrics)), a.trajectory)


def robustness_figures(a) -> None:
    import pandas as pd

    from .figures import robustness as figures
    from .figures.style import delay_notes
    from .io import save_figure
    from .tables import read_tables

    per_image = read_tables(a.checkpoint_probes)
    trajectory = pd.read_csv(a.trajectory)
    notes = delay_notes(pd.read_csv(a.runs_table))
    save_figure(figures.robustness_histograms(per_image, notes), a.histograms, a.histograms_pdf)
    save_figure(figures.robustness_trajectory(trajectory[trajectory["dataset"] == a.dataset]),
                a.trajectory_figure, a.trajectory_figure_pdf)
    save_figure(figures.random_vs_adversarial(per_image), a.random_vs_adversarial, a.random_vs_adversarial_pdf)
    save_figure(figures.robust_accuracy(per_image, notes), a.accuracy, a.accuracy_pdf)


def sensitivity_checkpoints(a) -> None:
    from .io import write_csv
    from .stages.sensitivity import measure_checkpoints

    items = measure_checkpoints(a.data, a.checkpoints, a.run_json, a.knobs["sensitivity"], a.knobs["device"])
    write_csv(items, a.output)
    print(items.groupby(["checkpoint", "where"], sort=False)[["jacobian_norm", "transition_density"]].mean())


def sensitivity_trajectory(a) -> None:
    from .io import write_csv
    from .stages.sensitivity import measure_trajectory

    items = measure_trajectory(a.data, a.snapshots, a.run_json, a.knobs["sensitivity"], a.knobs["device"])
    write_csv(items, a.output)
    print(f"{items['step'].nunique()} snapshots measured")


def sensitivity_tables(a) -> None:
    import pandas as pd

    from .io import write_csv
    from .runs import metric_logs
    from .stages.sensitivity import summary, trajectory_table
    from .tables import read_tables

    runs = pd.read_csv(a.runs_table)
    write_csv(summary(read_tables(a.checkpoint_items), a.knobs["sensitivity"].bootstrap, runs), a.summary)
    write_csv(trajectory_table(read_tables(a.trajectory_items), metric_logs(a.runs, a.metrics)), a.trajectory)


def sensitivity_figures(a) -> None:
    import pandas as pd

    from .figures import sensitivity as figures
    from .figures.style import delay_notes
    from .io import save_figure

    summary, trajectory = pd.read_csv(a.summary), pd.read_csv(a.trajectory)
    notes = delay_notes(pd.read_csv(a.runs_table))
    save_figure(figures.sensitivity_comparison(summary[summary["dataset"] == a.dataset], notes), a.comparison,
                a.comparison_pdf)
    save_figure(figures.sensitivity_trajectory(trajectory[trajectory["dataset"] == a.dataset]),
                a.trajectory_figure, a.trajectory_figure_pdf)


def sensitivity_slices(a) -> None:
    from .figures import sensitivity as figures
    from .io import save_figure
    from .stages.sensitivity import region_slices

    save_figure(figures.region_slices(region_slices(a.data, a.checkpoints, a.runs, a.knobs["sensitivity"])),
                a.png, a.pdf)


def train_capacity(a) -> None:
    from .stages.capacity import run

    summary = run(a.data, a.knobs["capacity"], width=a.width, depth=a.depth, optimizer=a.optimizer, lr=a.lr,
                  batch_size=a.batch_size, seed=a.seed, device=a.knobs["device"], metrics_path=a.metrics,
                  run_path=a.run_json, model_path=a.model)
    print(f"{summary['parameters']} parameters, {summary['epochs']} epochs in {summary['wall_seconds']:.1f} s: "
          f"train acc {summary['train_acc']:.4f}, test acc {summary['test_acc']:.4f} ({summary['stop_reason']})")


def capacity_sensitivity(a) -> None:
    from .io import write_csv
    from .stages.capacity import measure

    items = measure(a.data, a.model, a.run_json, a.knobs["capacity"].sensitivity, a.knobs["device"])
    write_csv(items, a.output)
    print(items.groupby("where")[["jacobian_norm", "transition_density"]].mean())


def capacity_tables(a) -> None:
    from .io import write_csv
    from .stages.capacity import correlations, sweep_table

    table = sweep_table(a.runs, a.items)
    write_csv(table, a.sweep)
    found = correlations(table, a.knobs["capacity"].bootstrap)
    write_csv(found, a.correlations)
    print(found.to_string(index=False))


def capacity_figures(a) -> None:
    import pandas as pd

    from .figures import capacity as figures
    from .io import save_figure

    table, found = pd.read_csv(a.sweep), pd.read_csv(a.correlations)
    table = table[table["dataset"] == a.dataset]
    save_figure(figures.capacity_generalisation(table), a.generalisation, a.generalisation_pdf)
    save_figure(figures.capacity_sensitivity(table, found), a.sensitivity, a.sensitivity_pdf)


def similarity_run(a) -> None:
    from .io import write_csv
    from .stages.similarity import run_similarity

    layers, trajectory = run_similarity(a.data, a.checkpoints, a.snapshots, a.run_json, a.knobs["similarity"],
                                        a.knobs["device"])
    write_csv(layers, a.layers)
    write_csv(trajectory, a.trajectory)
    diagonal = layers[(layers.checkpoint_a == "memorised") & (layers.checkpoint_b == "generalised")
                      & (layers.layer_a == layers.layer_b)]
    print(diagonal[["layer_a", "cka"]].to_string(index=False))


def similarity_seeds(a) -> None:
    from .io import write_csv
    from .stages.similarity import across_seeds

    write_csv(across_seeds(a.data, a.checkpoints, a.runs, a.knobs["similarity"], a.knobs["device"]), a.output)


def similarity_tables(a) -> None:
    from .io import write_csv
    from .runs import metric_logs
    from .stages.similarity import trajectory_with_accuracy
    from .tables import read_tables

    write_csv(read_tables(a.layers), a.layers_table)
    write_csv(read_tables(a.seeds), a.seeds_table)
    write_csv(trajectory_with_accuracy(read_tables(a.trajectory), metric_logs(a.runs, a.metrics)),
              a.trajectory_table)


def similarity_figures(a) -> None:
    import pandas as pd

    from .figures import similarity as figures
    from .figures.style import delay_notes
    from .io import save_figure

    layers, seeds, trajectory, runs = (pd.read_csv(p) for p in (a.layers, a.seeds, a.trajectory, a.runs_table))
    layers, seeds, trajectory, runs = (t[t["dataset"] == a.dataset] for t in (layers, seeds, trajectory, runs))
    notes = delay_notes(runs)
    save_figure(figures.cka_heatmaps(layers, notes), a.heatmaps, a.heatmaps_pdf)
    save_figure(figures.cka_by_layer(layers, seeds, notes), a.by_layer, a.by_layer_pdf)
    save_figure(figures.cka_trajectory(trajectory), a.trajectory_figure, a.trajectory_figure_pdf)


def train_adversarial(a) -> None:
    from .stages.adversarial import run

    summary = run(a.data, a.knobs["adversarial"], model=a.model, method=a.method, eps=a.eps, beta=a.beta, seed=a.seed,
                  device=a.knobs["device"], log_path=a.log, run_path=a.run_json, networks_path=a.networks)
    final, best = summary["evaluation"]["final"], summary["evaluation"]["best"]
    print(f"{summary['steps']} steps in {summary['wall_seconds']:.1f} s: final network clean {final['clean_acc']:.3f}, "
          f"PGD {final['pgd_acc']:.3f}; best network (step {best['step']}) clean {best['clean_acc']:.3f}, "
          f"PGD {best['pgd_acc']:.3f}")


def probe_adversarial(a) -> None:
    from .io import write_csv
    from .stages.adversarial import probe

    items = probe(a.data, a.networks, a.run_json, a.log, a.knobs["adversarial"], a.knobs["robustness"],
                  a.knobs["sensitivity"], a.knobs["device"])
    write_csv(items, a.output)
    print(items.groupby(["network", "measure"], sort=False)["value"].median().to_string())


def adversarial_tables(a) -> None:
    from .io import write_csv
    from .stages.adversarial import onset_table, probe_table, runs_table
    from .tables import read_tables

    runs = runs_table(a.runs, a.logs, a.knobs["adversarial"].overfitting)
    write_csv(runs, a.runs_table)
    onset = onset_table(runs)
    write_csv(onset, a.onset)
    write_csv(probe_table(read_tables(a.probes)), a.probes_table)
    print(onset[onset["scope"] == "method"].to_string(index=False))


def adversarial_figures(a) -> None:
    import numpy as np
    import pandas as pd

    from .figures import adversarial as figures
    from .io import read_json, save_figure
    from .stages.adversarial import co_event

    runs = pd.read_csv(a.runs_table)
    runs = runs[runs["dataset"] == a.dataset]
    feature = a.knobs["adversarial"].feature
    logs = {}
    for run_json, log in zip(a.runs, a.logs, strict=True):
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
    save_figure(figures.co_plot(runs), a.co, a.co_pdf)
    save_figure(figures.co_curves(curves, event, reference), a.curves, a.curves_pdf)
    save_figure(figures.feature_plot(runs, feature_logs, feature.method, feature.epsilon), a.feature, a.feature_pdf)
    save_figure(figures.probe_plot(pd.read_csv(a.probes_table), runs), a.probes, a.probes_pdf)


# --- the table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step: its function, what it reads from the config, its files and its identifying values.

    `files`: `--NAME PATH` each ("NAME*": one or more paths); `figures`: `--NAME PNG --NAME-pdf PDF` each;
    `values`: `--NAME VALUE` of the given type (wildcards of the rule); `reads`: config section -> settings
    class (or a plain type for a top-level value such as `device`), a section may name a value
    ("{study}"); `untracked`: read like `reads` but changing no result, so not a rule param.
    `compute`: the step runs networks and takes `--threads`.
    """

    run: Callable
    help: str
    files: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    values: dict[str, type] = field(default_factory=dict)
    reads: dict[str, object] = field(default_factory=dict)
    untracked: dict[str, object] = field(default_factory=dict)
    compute: bool = False


RUN_FILES = ("data", "checkpoints", "run_json", "output")


def compare_representations(a) -> None:
    from .io import write_csv
    from .stages.representations import compare

    cka = compare(a.data, a.runs, a.networks, a.knobs["representations"], a.knobs["similarity"], a.knobs["device"])
    write_csv(cka, a.output)
    print(f"{len(cka)} CKA values of {cka.groupby(['inputs', 'network_a', 'seed_a', 'network_b', 'seed_b']).ngroups} "
          "network pairs")


def place_grokking(a) -> None:
    from .io import write_csv
    from .stages.representations import grokking_table, place_grokking

    placed, trajectory = place_grokking(a.data, a.checkpoints, a.snapshots, a.runs, a.family_data, a.family_runs,
                                        a.family_networks, a.knobs["representations"], a.knobs["similarity"],
                                        a.knobs["device"])
    table = grokking_table(placed, a.knobs["representations"].bootstrap)
    write_csv(table, a.placed)
    write_csv(trajectory, a.trajectory)
    print(table.to_string(index=False))


def representation_tables(a) -> None:
    import pandas as pd

    from .io import write_csv
    from .stages.representations import layers_table, run_summaries, structure_table, summary_table

    cka = pd.read_csv(a.cka)
    structures = structure_table(cka, run_summaries(a.runs, a.logs, a.knobs["adversarial"].overfitting))
    bootstrap = a.knobs["representations"].bootstrap
    summary = summary_table(structures, cka, bootstrap)
    write_csv(structures, a.structure)
    write_csv(summary, a.summary)
    write_csv(layers_table(cka, bootstrap), a.layers)
    print(summary[summary["measure"] == "block_index"].to_string(index=False))


def representation_figures(a) -> None:
    import pandas as pd

    from .figures import representations as figures
    from .io import save_figure

    cka, structures, layers = (pd.read_csv(p) for p in (a.cka, a.structure, a.layers))
    save_figure(figures.heatmaps(cka), a.heatmaps, a.heatmaps_pdf)
    save_figure(figures.structure_plot(structures), a.structure_figure, a.structure_figure_pdf)
    save_figure(figures.layers_plot(layers), a.layers_figure, a.layers_figure_pdf)


def grokking_placement_figure(a) -> None:
    import pandas as pd

    from .figures import representations as figures
    from .io import save_figure

    placed, trajectory = pd.read_csv(a.placed), pd.read_csv(a.trajectory)
    save_figure(figures.grokking_plot(placed[placed["dataset"] == a.dataset],
                                      trajectory[trajectory["dataset"] == a.dataset]), a.grokking, a.grokking_pdf)


def measure_delayed(a) -> None:
    from .io import write_csv
    from .stages.delayed import measure_run

    table = measure_run(a.data, a.snapshots, a.checkpoints, a.run_json, a.knobs["delayed"], a.knobs["robustness"],
                        a.knobs["device"])
    write_csv(table, a.output)
    print(f"{table.groupby(['checkpoint', 'step']).ngroups} networks measured")


def delayed_tables(a) -> None:
    import pandas as pd

    from .io import read_json, write_csv
    from .stages.delayed import lag_table, onset_table, run_key, trajectory_table
    from .tables import read_tables

    d = a.knobs["delayed"]
    keys = [run_key(r) for r in a.runs]
    trajectory = trajectory_table(read_tables(a.measures), keys, [pd.read_csv(m) for m in a.metrics],
                                  [pd.read_csv(t) for t in a.noise], [pd.read_csv(t) for t in a.sensitivity])
    onsets = onset_table(trajectory, [read_json(c) for c in a.checkpoints], keys, d.onset,
                         d.adversarial.epsilons)
    write_csv(trajectory, a.trajectory)
    write_csv(onsets, a.onsets)
    write_csv(lag_table(onsets, d.bootstrap), a.lags)
    print(onsets.to_string(index=False))


def delayed_figures(a) -> None:
    import pandas as pd

    from .figures import delayed as figures
    from .io import save_figure

    trajectory, onsets, lags = pd.read_csv(a.trajectory), pd.read_csv(a.onsets), pd.read_csv(a.lags)
    mine = lambda t: t[t["dataset"] == a.dataset]  # noqa: E731
    save_figure(figures.trajectories(mine(trajectory), mine(onsets), a.knobs["delayed"]), a.trajectories,
                a.trajectories_pdf)
    save_figure(figures.lags(mine(lags)), a.lags_figure, a.lags_figure_pdf)


def claims(a) -> None:
    import json

    import pandas as pd

    from .figures.claims import claims_figure
    from .io import save_figure, write_csv, write_json, write_text
    from .pages import claims_html
    from .stages.claims import evaluate

    import datetime

    import torch

    from .io import read_json

    tables = {Path(p).stem: pd.read_csv(p) for p in a.tables}
    tables["long_run_groups"] = pd.DataFrame(a.knobs["grokking"].long_runs, columns=["init_scale", "weight_decay"])
    table = evaluate(tables, a.knobs["claims"])
    threads = sorted({read_json(p).get("threads") for p in a.runs} - {None})
    stamp = dict(json.loads(a.stamp), threads=" / ".join(map(str, threads)) or "?", torch=torch.__version__,
                 date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    write_csv(table, a.output)
    write_json(stamp, a.stamp_json)
    write_text(claims_html(table, stamp), a.page)
    save_figure(claims_figure(table), a.figure, a.figure_pdf)
    print(table[["id", "estimate", "ci_low", "ci_high", "n", "verdict"]].to_string(index=False))


def results_page(a) -> None:
    import pandas as pd

    from .io import read_json, write_text
    from .pages import results_markdown

    tables = a.results / "tables"
    claims_csv, stamp_json = tables / "claims.csv", a.results / "claims" / "stamp.json"
    for needed in (claims_csv, stamp_json):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: run the study first (snakemake --cores 2), "
                                    "then this command from the same directory")
    import shutil

    grokking = tables / "grokking_runs.csv"
    figures = {}  # the study's own figures, copied beside the page so that it shows what it states
    for name, source in (("claims", a.results / "figures" / "claims.png"),
                         *((p.stem, p) for p in sorted((a.results / "figures").glob("*/grokking_curves.png")))):
        if source.exists():
            target = a.output.parent / "figures" / (f"{source.parent.name}_{name}.png" if name != "claims"
                                                    else "claims.png")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            figures[target.relative_to(a.output.parent).as_posix()] = name
    write_text(results_markdown(pd.read_csv(claims_csv), read_json(stamp_json),
                                pd.read_csv(grokking) if grokking.exists() else None, figures), a.output)
    print(f"results page -> {a.output}")


STEPS = {
    "prepare-data": Step(prepare_data, "a study's dataset through its real loader, stored as a uint8 split",
                         files=("output",), values=dict(study=str, dataset=str),
                         reads={"data": views.DataSource, "{study}": views.TrainingSet}),
    "download": Step(download, "download a torchvision dataset into --data-dir (needs internet)",
                     files=("data_dir",), values=dict(dataset=str)),
    "train-grokking": Step(train_grokking, "one Omnigrok grokking run",
                           files=("data", "metrics", "run_json", "snapshots"),
                           values=dict(init_scale=float, weight_decay=float, seed=int, jacobian_penalty=float,
                                       long_run=int),
                           reads={"grokking": views.GrokkingTraining, "device": str},
                           untracked={"grokking": views.TrainingState}, compute=True),
    "extract-checkpoints": Step(extract_checkpoints, "memorised / generalised / final checkpoints of a run",
                                files=("metrics", "run_json", "snapshots", "output_json", "output_weights"),
                                reads={"checkpoints": views.CheckpointThresholds}),
    "grokking-table": Step(grokking_table, "grokking_runs.csv from the runs' summaries",
                           files=("runs*", "checkpoints*", "output")),
    "grokking-figures": Step(grokking_figures, "accuracy curves and the steps-to-generalise grid",
                             files=("runs*", "metrics*", "checkpoints*", "table"), figures=("curves", "grid"),
                             values=dict(dataset=str)),
    "probe-checkpoints": Step(probe_checkpoints, "random-noise and adversarial radii of a run's checkpoints",
                              files=RUN_FILES, reads={"robustness": views.CheckpointProbes, "device": str},
                              compute=True),
    "probe-trajectory": Step(probe_trajectory, "bisection random-noise radius at a run's milestone snapshots",
                             files=("data", "snapshots", "run_json", "output"),
                             reads={"robustness": views.TrajectoryProbes, "device": str}, compute=True),
    "robustness-tables": Step(robustness_tables, "robustness_summary.csv and robustness_trajectory.csv",
                              files=("checkpoint_probes*", "trajectory_probes*", "runs*", "metrics*", "runs_table",
                                     "summary", "trajectory"),
                              reads={"robustness": views.Summaries}),
    "robustness-figures": Step(robustness_figures, "radius histograms, trajectory, random vs adversarial",
                               files=("checkpoint_probes*", "trajectory", "runs_table"), values=dict(dataset=str),
                               figures=("histograms", "trajectory_figure", "random_vs_adversarial", "accuracy")),
    "sensitivity-checkpoints": Step(sensitivity_checkpoints, "Jacobian norms and transitions of a run's checkpoints",
                                    files=RUN_FILES, reads={"sensitivity": views.Sensitivity, "device": str},
                                    compute=True),
    "sensitivity-trajectory": Step(sensitivity_trajectory, "Jacobian norms and transitions at milestone snapshots",
                                   files=("data", "snapshots", "run_json", "output"),
                                   reads={"sensitivity": views.SensitivityTrajectory, "device": str},
                                   compute=True),
    "sensitivity-tables": Step(sensitivity_tables, "sensitivity_summary.csv and sensitivity_trajectory.csv",
                               files=("checkpoint_items*", "trajectory_items*", "runs*", "metrics*", "runs_table",
                                      "summary", "trajectory"),
                               reads={"sensitivity": views.Summaries}),
    "sensitivity-figures": Step(sensitivity_figures, "Novak's comparison and the sensitivity trajectory",
                                files=("summary", "trajectory", "runs_table"), values=dict(dataset=str),
                                figures=("comparison", "trajectory_figure")),
    "sensitivity-slices": Step(sensitivity_slices, "linear regions on the plane through 3 training points",
                               files=("data", "checkpoints*", "runs*", "png", "pdf"),
                               reads={"sensitivity": views.RegionSlices}, compute=True),
    "train-capacity": Step(train_capacity, "one network of the capacity sweep, to 100 %% train accuracy",
                           files=("data", "metrics", "run_json", "model"),
                           values=dict(width=int, depth=int, optimizer=str, lr=float, batch_size=int, seed=int),
                           reads={"capacity": views.CapacityTraining, "device": str}, compute=True),
    "capacity-sensitivity": Step(capacity_sensitivity, "Jacobian norms and transitions of one sweep network",
                                 files=("data", "model", "run_json", "output"),
                                 reads={"capacity": views.CapacitySensitivity, "device": str}, compute=True),
    "capacity-tables": Step(capacity_tables, "capacity_sweep.csv and capacity_correlations.csv",
                            files=("runs*", "items*", "sweep", "correlations"), reads={"capacity": views.Summaries}),
    "capacity-figures": Step(capacity_figures, "generalisation against capacity and against sensitivity",
                             files=("sweep", "correlations"), values=dict(dataset=str),
                             figures=("generalisation", "sensitivity")),
    "similarity-run": Step(similarity_run, "layer x layer CKA of a run's checkpoints and snapshots",
                           files=("data", "checkpoints", "snapshots", "run_json", "layers", "trajectory"),
                           reads={"similarity": views.Similarity, "device": str}, compute=True),
    "similarity-seeds": Step(similarity_seeds, "per-layer CKA of the same checkpoint across seeds",
                             files=("data", "checkpoints*", "runs*", "output"),
                             reads={"similarity": views.Similarity, "device": str}, compute=True),
    "similarity-tables": Step(similarity_tables, "cka_layers.csv, cka_seeds.csv and cka_trajectory.csv",
                              files=("layers*", "seeds*", "trajectory*", "runs*", "metrics*", "layers_table",
                                     "seeds_table", "trajectory_table")),
    "similarity-figures": Step(similarity_figures, "CKA heatmaps, per-layer comparisons and trajectory",
                               files=("layers", "seeds", "trajectory", "runs_table"), values=dict(dataset=str),
                               figures=("heatmaps", "by_layer", "trajectory_figure")),
    "train-adversarial": Step(train_adversarial, "one adversarially trained network, its log and CO verdict",
                              files=("data", "log", "run_json", "networks"),
                              values=dict(model=str, method=str, eps=float, beta=float, seed=int),
                              reads={"adversarial": views.AdversarialTraining, "device": str}, compute=True),
    "probe-adversarial": Step(probe_adversarial, "the study's radii and sensitivities of a run's networks",
                              files=("data", "networks", "run_json", "log", "output"),
                              reads={"adversarial": views.AdversarialProbes, "robustness": views.RadiusProbes,
                                     "sensitivity": views.EllipseSampling, "device": str}, compute=True),
    "adversarial-tables": Step(adversarial_tables, "adversarial_runs.csv, adversarial_onset.csv, adversarial_probes.csv",
                               files=("runs*", "logs*", "probes*", "runs_table", "onset", "probes_table"),
                               reads={"adversarial": views.OverfittingVerdict}),
    "adversarial-figures": Step(adversarial_figures, "the CO plot, a CO event, the feature sweep, the probes",
                                files=("runs*", "logs*", "runs_table", "probes_table"), values=dict(dataset=str),
                                reads={"adversarial": views.FeatureOf},
                                figures=("co", "curves", "feature", "probes")),
    "compare-representations": Step(compare_representations,
                                    "layer × layer CKA of standard, PGD and FGSM networks, benign and PGD inputs",
                                    files=("data", "runs*", "networks*", "output"),
                                    reads={"representations": views.RepresentationComparison,
                                           "similarity": views.CkaEstimator, "device": str}, compute=True),
    "place-grokking": Step(place_grokking, "grokking checkpoints and snapshots beside standard and robust networks",
                           files=("data", "checkpoints*", "snapshots*", "runs*", "family_data", "family_runs*",
                                  "family_networks*", "placed", "trajectory"),
                           reads={"representations": views.GrokkingPlacement, "similarity": views.CkaAlongRuns,
                                  "device": str}, compute=True),
    "representation-tables": Step(representation_tables,
                                  "representation_structure.csv, representation_summary.csv, representation_layers.csv",
                                  files=("cka", "runs*", "logs*", "structure", "summary", "layers"),
                                  reads={"representations": views.RepresentationIntervals,
                                         "adversarial": views.OverfittingVerdict}),
    "representation-figures": Step(representation_figures, "CKA heatmaps, structure scalars, per-layer comparisons",
                                   files=("cka", "structure", "layers"),
                                   figures=("heatmaps", "structure_figure", "layers_figure")),
    "grokking-placement-figure": Step(grokking_placement_figure,
                                      "grokking checkpoints beside standard and robust networks, and along the runs",
                                      files=("placed", "trajectory"), values=dict(dataset=str),
                                      figures=("grokking",)),
    "measure-delayed": Step(measure_delayed, "local complexity, adversarial radius and robust accuracy along a run",
                            files=("data", "snapshots", "checkpoints", "run_json", "output"),
                            reads={"delayed": views.DelayedMeasures, "robustness": views.AdversarialSearch,
                                   "device": str}, compute=True),
    "delayed-tables": Step(delayed_tables, "delayed_trajectory.csv, delayed_onsets.csv, delayed_lags.csv",
                           files=("measures*", "runs*", "metrics*", "checkpoints*", "noise*", "sensitivity*",
                                  "trajectory", "onsets", "lags"),
                           reads={"delayed": views.DelayedSummaries}),
    "delayed-figures": Step(delayed_figures, "every measure of the runs on one step axis, and the lags",
                            files=("trajectory", "onsets", "lags"), values=dict(dataset=str),
                            reads={"delayed": views.DelayedFigure},
                            figures=("trajectories", "lags_figure")),
    "claims": Step(claims, "claims.csv: every headline claim evaluated from the tables, with its verdict",
                   files=("tables*", "runs*", "output", "stamp_json", "page"), values=dict(stamp=str),
                   reads={"claims": views.ClaimRule, "grokking": views.LongRunGroups}, figures=("figure",)),
    "results-page": Step(results_page, "docs/results.md: the claims and grokking steps of a finished study",
                         files=("results", "output")),
}


# --- knobs: what Snakemake passes, and what a hand run reads ---------------------------------------------


def _sections(reads: dict, values: dict) -> dict[str, tuple[str, object]]:
    """{argument name: (config section, settings class)}; a section may name a value ("{study}")."""
    return {name: (name.format(**values), kind) for name, kind in reads.items()}


def knobs(step: str, config: dict, untracked: bool = False, **values) -> str:
    """The slice of `config` that `step` reads (or its untracked part), as the JSON a rule passes it."""
    reads = STEPS[step].untracked if untracked else STEPS[step].reads
    tree = {}
    for section, kind in _sections(reads, values).values():
        tree = merge(tree, {section: slice_of(kind, config[section])})
    return json.dumps(tree, sort_keys=True)


def _settings(reads: dict, tree: dict, values: dict, step: str) -> dict:
    out = {}
    for name, (section, kind) in _sections(reads, values).items():
        if section not in tree:
            raise SettingsError(f"{step} reads config section '{section}', which the knobs given lack")
        out[name if "{" not in name else section] = build(kind, tree[section], section)
    return out


# --- the parser ------------------------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="robustgen", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, step in STEPS.items():
        keys = [key for section, kind in [*step.reads.items(), *step.untracked.items()]
                for key in (leaf_keys(kind, section) if is_view(kind) else [section])]
        p = sub.add_parser(name, help=step.help, description=step.help + (
            "; reads config keys " + ", ".join(keys) if keys else ""))
        for value, kind in step.values.items():
            p.add_argument(_flag(value), type=kind, required=True, dest=value)
        for file in step.files:
            many = file.endswith("*")
            p.add_argument(_flag(file.rstrip("*")), type=Path, required=True, nargs="+" if many else None,
                           dest=file.rstrip("*"))
        for figure in step.figures:
            p.add_argument(_flag(figure), type=Path, required=True, dest=figure, help="output: PNG")
            p.add_argument(_flag(figure) + "-pdf", type=Path, required=True, dest=figure + "_pdf",
                           help="output: PDF")
        if step.reads or step.untracked:
            p.add_argument("--knobs", action="append", default=[], metavar="JSON",
                           help="the config slice this step reads (what Snakemake passes); may repeat")
            p.add_argument("--config", action="append", type=Path, default=[], metavar="YAML",
                           help="by hand: the study's config files, merged in order (config.yaml first)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="by hand: override one config key, e.g. robustness.adversarial.steps=5")
        if step.compute:
            p.add_argument("--threads", type=int, default=1, help="PyTorch threads (the rule's threads)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    step = STEPS[args.step]
    from .data import DatasetUnavailable
    from .io import CorruptFile

    try:
        if step.reads or step.untracked:
            if not (args.knobs or args.config):
                raise SettingsError(f"{args.step} needs its knobs: --config config.yaml (by hand) or --knobs JSON")
            tree = load(args.config, args.set) if args.config else {}
            for text in args.knobs:
                tree = merge(tree, json.loads(text))
            values = {name: getattr(args, name) for name in step.values}
            args.knobs = _settings(step.reads, tree, values, args.step)
            args.untracked = _settings(step.untracked, tree, values, args.step)
        preempted = ()
        if step.compute:
            import torch

            from .train import Preempted

            torch.set_num_threads(max(1, args.threads))
            preempted = (Preempted,)
        try:
            step.run(args)
        except preempted as err:
            print(f"preempted: {err}", file=sys.stderr)
            return 143  # the conventional status of a process ended by SIGTERM
    except (ConfigError, SettingsError, DatasetUnavailable, CorruptFile, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
