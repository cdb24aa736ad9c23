"""The study's steps: one function per Snakemake rule, of the same name, taking the rule's files, params and
wildcards by name and writing its outputs.

An argument is a file (`Path`, or `list[Path]` for many), an identifying value (a wildcard such as a run's α,
or a plain param), or settings read from the config: an argument typed with a settings class reads the section
of its own name, `Annotated[kind, Knob(section)]` another one. The glue is generic (`robustgen.cli`): a rule's
`script:` hands its job to `cli.run_job`, and `robustgen STEP --config config.yaml ...` runs the same function by
hand, with flags made from the signature below. Nothing here holds a knob's value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable

from . import settings as views
from .settings import Device, Knob

STEPS: dict[str, Callable] = {}  # rule name -> step
COMPUTE: set[str] = set()  # steps that run networks: their threads are the rule's
HAND_ONLY: set[str] = set()  # steps no rule runs (a download, a page from a finished study)


def step(*, compute: bool = False, rule: bool = True):
    """Register a step under its function's name (its rule's name)."""

    def register(fn: Callable) -> Callable:
        STEPS[fn.__name__] = fn
        if compute:
            COMPUTE.add(fn.__name__)
        if not rule:
            HAND_ONLY.add(fn.__name__)
        return fn

    return register


# --- data ----------------------------------------------------------------------------------------------------


@step()
def prepare_data(*, output: Path, study: str, dataset: str, data: views.DataSource,
                 subset: Annotated[views.TrainingSet, Knob("{study}")]) -> None:
    """A study's dataset through its real loader, stored as a uint8 split."""
    from . import data as datasets

    try:
        loaded = datasets.load_split(dataset, data_dir=Path(data.dir), train_size=subset.train_size,
                                     split_seed=data.split_seed, download=data.download,
                                     subset=subset.train_subset, verify=data.verify_checksums)
    except datasets.DatasetUnavailable as err:
        raise datasets.DatasetUnavailable(f"{err}\n{datasets.offline_switch(study)}") from err
    datasets.save_split(loaded, output)
    print(f"{dataset}: {loaded.meta['train_size']} train / {loaded.meta['test_size']} test -> {output}")


@step(rule=False)
def download(*, data_dir: Path, dataset: str) -> None:
    """Download a torchvision dataset into --data-dir (needs internet)."""
    from . import data as datasets

    loaded = datasets.load_torchvision(dataset, data_dir, None, download=True)
    print(f"{dataset}: {loaded.meta['train_size']} train / {loaded.meta['test_size']} test in {data_dir}")


# --- grokking ------------------------------------------------------------------------------------------------


@step(compute=True)
def train_grokking(*, data: Path, metrics: Path, run_json: Path, snapshots: Path, alpha: float, wd: float,
                   seed: int, jacobian_penalty: float, long_run: bool, grokking: views.GrokkingTraining,
                   state: Annotated[views.TrainingState, Knob("grokking", tracked=False)], device: Device) -> None:
    """One Omnigrok grokking run (α = init scale, wd = AdamW weight decay)."""
    from .stages.grokking import run

    summary = run(data, grokking, init_scale=alpha, weight_decay=wd, seed=seed, jacobian_penalty=jacobian_penalty,
                  long_run=long_run, device=device, metrics_path=metrics, run_path=run_json,
                  snapshot_dir=snapshots, state_every=state.state_every)
    print(f"{summary['steps']} steps in {summary['wall_seconds']:.1f} s on {summary['device']} "
          f"({summary['threads']} threads), stopped: {summary['stop_reason']}")


@step()
def extract_checkpoints(*, metrics: Path, run_json: Path, snapshots: Path, output_json: Path, output_weights: Path,
                        checkpoints: views.CheckpointThresholds) -> None:
    """Memorised / generalised / final checkpoints of a run."""
    from .io import atomic_torch_save, write_json
    from .stages.checkpoints import extract_run

    found, weights = extract_run(metrics, run_json, snapshots, checkpoints)
    for name, cp in found["checkpoints"].items():
        print(f"{name}: " + (f"step {cp['step']} (train {cp['train_acc']:.3f}, test {cp['test_acc']:.4f})"
                             if cp["reached"] else "not reached"))
    atomic_torch_save(weights, output_weights)
    write_json(found, output_json)


@step()
def grokking_table(*, runs: list[Path], checkpoints: list[Path], output: Path) -> None:
    """grokking_runs.csv from the runs' summaries."""
    from .io import write_csv
    from .stages.grokking import grokking_table as table_of

    table = table_of(runs, checkpoints)
    write_csv(table, output)
    print(table.to_string(index=False))


@step()
def grokking_figures(*, table: Path, runs: list[Path], metrics: list[Path], checkpoints: list[Path], dataset: str,
                     curves: Path, curves_pdf: Path, grid: Path, grid_pdf: Path) -> None:
    """Accuracy curves and the steps-to-generalise grid."""
    import pandas as pd

    from .figures import grokking as figures
    from .io import save_figure
    from .stages.grokking import stored_runs

    runs_table = pd.read_csv(table)
    save_figure(figures.grokking_curves(stored_runs(runs, metrics, checkpoints)), curves, curves_pdf)
    save_figure(figures.steps_to_generalise(runs_table[runs_table["dataset"] == dataset]), grid, grid_pdf)


# --- robustness ----------------------------------------------------------------------------------------------


@step(compute=True)
def probe_checkpoints(*, data: Path, checkpoints: Path, run_json: Path, output: Path,
                      robustness: views.CheckpointProbes, device: Device) -> None:
    """Random-noise and adversarial radii of a run's checkpoints."""
    from .io import write_csv
    from .stages.robustness import probe_checkpoints as probe

    table = probe(data, checkpoints, run_json, robustness, device)
    write_csv(table, output)
    print(table.groupby(["checkpoint", "measure", "mode", "norm", "delta"], dropna=False)["radius"].median())


@step(compute=True)
def probe_trajectory(*, data: Path, snapshots: Path, run_json: Path, output: Path,
                     robustness: views.TrajectoryProbes, device: Device) -> None:
    """Bisection random-noise radius at a run's milestone snapshots."""
    from .io import write_csv
    from .stages.robustness import probe_trajectory as probe

    table = probe(data, snapshots, run_json, robustness, device)
    write_csv(table, output)
    print(f"{table['step'].nunique()} snapshots probed")


@step()
def robustness_tables(*, checkpoint_probes: list[Path], trajectory_probes: list[Path], runs: list[Path],
                      metrics: list[Path], runs_table: Path, summary: Path, trajectory: Path,
                      robustness: views.Summaries) -> None:
    """robustness_summary.csv and robustness_trajectory.csv."""
    from .stages import robustness as stage

    _summary_and_trajectory(stage, checkpoint_probes, trajectory_probes, runs, metrics, runs_table, summary,
                            trajectory, robustness.bootstrap)


def _summary_and_trajectory(stage, items, trajectory_items, runs, metrics, runs_table, summary, trajectory,
                            bootstrap) -> None:
    """A per-checkpoint stage's two tables (robustness, sensitivity): its summary over seeds and its trajectory
    beside the runs' accuracies."""
    import pandas as pd

    from .io import write_csv
    from .runs import metric_logs
    from .tables import read_tables

    write_csv(stage.summary(read_tables(items), bootstrap, pd.read_csv(runs_table)), summary)
    write_csv(stage.trajectory_table(read_tables(trajectory_items), metric_logs(runs, metrics)), trajectory)


@step()
def robustness_figures(*, checkpoint_probes: list[Path], trajectory: Path, runs_table: Path, dataset: str,
                       histograms: Path, histograms_pdf: Path, trajectory_figure: Path, trajectory_figure_pdf: Path,
                       random_vs_adversarial: Path, random_vs_adversarial_pdf: Path, accuracy: Path,
                       accuracy_pdf: Path) -> None:
    """Radius histograms, trajectory, random vs adversarial, robust accuracy."""
    import pandas as pd

    from .figures import robustness as figures
    from .figures.style import delay_notes
    from .io import save_figure
    from .tables import read_tables

    per_image = read_tables(checkpoint_probes)
    along = pd.read_csv(trajectory)
    notes = delay_notes(pd.read_csv(runs_table))
    save_figure(figures.robustness_histograms(per_image, notes), histograms, histograms_pdf)
    save_figure(figures.robustness_trajectory(along[along["dataset"] == dataset]), trajectory_figure,
                trajectory_figure_pdf)
    save_figure(figures.random_vs_adversarial(per_image), random_vs_adversarial, random_vs_adversarial_pdf)
    save_figure(figures.robust_accuracy(per_image, notes), accuracy, accuracy_pdf)


# --- sensitivity ---------------------------------------------------------------------------------------------


@step(compute=True)
def sensitivity_checkpoints(*, data: Path, checkpoints: Path, run_json: Path, output: Path,
                            sensitivity: views.Sensitivity, device: Device) -> None:
    """Jacobian norms and transitions of a run's checkpoints."""
    from .io import write_csv
    from .stages.sensitivity import measure_checkpoints

    items = measure_checkpoints(data, checkpoints, run_json, sensitivity, device)
    write_csv(items, output)
    print(items.groupby(["checkpoint", "where"], sort=False)[["jacobian_norm", "transition_density"]].mean())


@step(compute=True)
def sensitivity_trajectory(*, data: Path, snapshots: Path, run_json: Path, output: Path,
                           sensitivity: views.SensitivityTrajectory, device: Device) -> None:
    """Jacobian norms and transitions at milestone snapshots."""
    from .io import write_csv
    from .stages.sensitivity import measure_trajectory

    items = measure_trajectory(data, snapshots, run_json, sensitivity, device)
    write_csv(items, output)
    print(f"{items['step'].nunique()} snapshots measured")


@step()
def sensitivity_tables(*, checkpoint_items: list[Path], trajectory_items: list[Path], runs: list[Path],
                       metrics: list[Path], runs_table: Path, summary: Path, trajectory: Path,
                       sensitivity: views.Summaries) -> None:
    """sensitivity_summary.csv and sensitivity_trajectory.csv."""
    from .stages import sensitivity as stage

    _summary_and_trajectory(stage, checkpoint_items, trajectory_items, runs, metrics, runs_table, summary,
                            trajectory, sensitivity.bootstrap)


@step()
def sensitivity_figures(*, summary: Path, trajectory: Path, runs_table: Path, dataset: str, comparison: Path,
                        comparison_pdf: Path, trajectory_figure: Path, trajectory_figure_pdf: Path) -> None:
    """Novak's comparison and the sensitivity trajectory."""
    import pandas as pd

    from .figures import sensitivity as figures
    from .figures.style import delay_notes
    from .io import save_figure

    table, along = pd.read_csv(summary), pd.read_csv(trajectory)
    notes = delay_notes(pd.read_csv(runs_table))
    save_figure(figures.sensitivity_comparison(table[table["dataset"] == dataset], notes), comparison,
                comparison_pdf)
    save_figure(figures.sensitivity_trajectory(along[along["dataset"] == dataset]), trajectory_figure,
                trajectory_figure_pdf)


@step(compute=True)
def sensitivity_slices(*, data: Path, checkpoints: list[Path], runs: list[Path], png: Path, pdf: Path,
                       sensitivity: views.RegionSlices) -> None:
    """Linear regions on the plane through 3 training points."""
    from .figures import sensitivity as figures
    from .io import save_figure
    from .stages.sensitivity import region_slices

    save_figure(figures.region_slices(region_slices(data, checkpoints, runs, sensitivity)), png, pdf)


# --- capacity ------------------------------------------------------------------------------------------------


@step(compute=True)
def train_capacity(*, data: Path, metrics: Path, run_json: Path, model: Path, width: int, depth: int, optimizer: str,
                   lr: float, bs: int, seed: int, capacity: views.CapacityTraining, device: Device) -> None:
    """One network of the capacity sweep (bs: batch size), trained to 100 % train accuracy."""
    from .stages.capacity import run

    summary = run(data, capacity, width=width, depth=depth, optimizer=optimizer, lr=lr, batch_size=bs, seed=seed,
                  device=device, metrics_path=metrics, run_path=run_json, model_path=model)
    print(f"{summary['parameters']} parameters, {summary['epochs']} epochs in {summary['wall_seconds']:.1f} s: "
          f"train acc {summary['train_acc']:.4f}, test acc {summary['test_acc']:.4f} ({summary['stop_reason']})")


@step(compute=True)
def capacity_sensitivity(*, data: Path, model: Path, run_json: Path, output: Path,
                         capacity: views.CapacitySensitivity, device: Device) -> None:
    """Jacobian norms and transitions of one sweep network."""
    from .io import write_csv
    from .stages.capacity import measure

    items = measure(data, model, run_json, capacity.sensitivity, device)
    write_csv(items, output)
    print(items.groupby("where")[["jacobian_norm", "transition_density"]].mean())


@step()
def capacity_tables(*, runs: list[Path], sensitivity: list[Path], sweep: Path, correlations: Path,
                    capacity: views.Summaries) -> None:
    """capacity_sweep.csv and capacity_correlations.csv (sensitivity: each network's items)."""
    from .io import write_csv
    from .stages.capacity import correlations as correlations_of, sweep_table

    table = sweep_table(runs, sensitivity)
    write_csv(table, sweep)
    found = correlations_of(table, capacity.bootstrap)
    write_csv(found, correlations)
    print(found.to_string(index=False))


@step()
def capacity_figures(*, sweep: Path, correlations: Path, dataset: str, generalisation: Path,
                     generalisation_pdf: Path, sensitivity: Path, sensitivity_pdf: Path) -> None:
    """Generalisation against capacity and against sensitivity."""
    import pandas as pd

    from .figures import capacity as figures
    from .io import save_figure

    table, found = pd.read_csv(sweep), pd.read_csv(correlations)
    table = table[table["dataset"] == dataset]
    save_figure(figures.capacity_generalisation(table), generalisation, generalisation_pdf)
    save_figure(figures.capacity_sensitivity(table, found), sensitivity, sensitivity_pdf)


# --- representation similarity -------------------------------------------------------------------------------


@step(compute=True)
def similarity_run(*, data: Path, checkpoints: Path, snapshots: Path, run_json: Path, layers: Path,
                   trajectory: Path, similarity: views.Similarity, device: Device) -> None:
    """Layer x layer CKA of a run's checkpoints and snapshots."""
    from .io import write_csv
    from .stages.similarity import run_similarity

    table, along = run_similarity(data, checkpoints, snapshots, run_json, similarity, device)
    write_csv(table, layers)
    write_csv(along, trajectory)
    diagonal = table[(table.checkpoint_a == "memorised") & (table.checkpoint_b == "generalised")
                     & (table.layer_a == table.layer_b)]
    print(diagonal[["layer_a", "cka"]].to_string(index=False))


@step(compute=True)
def similarity_seeds(*, data: Path, checkpoints: list[Path], runs: list[Path], output: Path,
                     similarity: views.Similarity, device: Device) -> None:
    """Per-layer CKA of the same checkpoint across seeds."""
    from .io import write_csv
    from .stages.similarity import across_seeds

    write_csv(across_seeds(data, checkpoints, runs, similarity, device), output)


@step()
def similarity_tables(*, layers: list[Path], seeds: list[Path], trajectory: list[Path], runs: list[Path],
                      metrics: list[Path], layers_table: Path, seeds_table: Path, trajectory_table: Path) -> None:
    """cka_layers.csv, cka_seeds.csv and cka_trajectory.csv."""
    from .io import write_csv
    from .runs import metric_logs
    from .stages.similarity import trajectory_with_accuracy
    from .tables import read_tables

    write_csv(read_tables(layers), layers_table)
    write_csv(read_tables(seeds), seeds_table)
    write_csv(trajectory_with_accuracy(read_tables(trajectory), metric_logs(runs, metrics)), trajectory_table)


@step()
def similarity_figures(*, layers: Path, seeds: Path, trajectory: Path, runs_table: Path, dataset: str,
                       heatmaps: Path, heatmaps_pdf: Path, by_layer: Path, by_layer_pdf: Path,
                       trajectory_figure: Path, trajectory_figure_pdf: Path) -> None:
    """CKA heatmaps, per-layer comparisons and trajectory."""
    import pandas as pd

    from .figures import similarity as figures
    from .figures.style import delay_notes
    from .io import save_figure

    tables = (pd.read_csv(p) for p in (layers, seeds, trajectory, runs_table))
    per_layer, per_seed, along, runs = (t[t["dataset"] == dataset] for t in tables)
    notes = delay_notes(runs)
    save_figure(figures.cka_heatmaps(per_layer, notes), heatmaps, heatmaps_pdf)
    save_figure(figures.cka_by_layer(per_layer, per_seed, notes), by_layer, by_layer_pdf)
    save_figure(figures.cka_trajectory(along), trajectory_figure, trajectory_figure_pdf)


# --- adversarial training ------------------------------------------------------------------------------------


@step(compute=True)
def train_adversarial(*, data: Path, log: Path, run_json: Path, networks: Path, model: str, method: str, eps: float,
                      beta: float, seed: int, adversarial: views.AdversarialTraining, device: Device) -> None:
    """One adversarially trained network, its log and its final evaluation."""
    from .stages.adversarial import run

    summary = run(data, adversarial, model=model, method=method, eps=eps, beta=beta, seed=seed, device=device,
                  log_path=log, run_path=run_json, networks_path=networks)
    final, best = summary["evaluation"]["final"], summary["evaluation"]["best"]
    print(f"{summary['steps']} steps in {summary['wall_seconds']:.1f} s: final network clean {final['clean_acc']:.3f}, "
          f"PGD {final['pgd_acc']:.3f}; best network (step {best['step']}) clean {best['clean_acc']:.3f}, "
          f"PGD {best['pgd_acc']:.3f}")


@step(compute=True)
def probe_adversarial(*, data: Path, networks: Path, run_json: Path, log: Path, output: Path,
                      adversarial: views.AdversarialProbes, robustness: views.RadiusProbes,
                      sensitivity: views.EllipseSampling, device: Device) -> None:
    """The study's radii and sensitivities of a run's networks."""
    from .io import write_csv
    from .stages.adversarial import probe

    items = probe(data, networks, run_json, log, adversarial, robustness, sensitivity, device)
    write_csv(items, output)
    print(items.groupby(["network", "measure"], sort=False)["value"].median().to_string())


@step(compute=True)
def check_autoattack(*, data: Path, networks: Path, run_json: Path, output: Path, adversarial: views.AutoAttackCheck,
                     device: Device) -> None:
    """AutoAttack beside the study's evaluation PGD on a run's networks."""
    from .io import write_csv
    from .stages.adversarial import autoattack_check

    checked = autoattack_check(data, networks, run_json, adversarial, device)
    write_csv(checked, output)
    print(checked.to_string(index=False))


@step()
def autoattack_table(*, checks: list[Path], table: Path) -> None:
    """adversarial_autoattack.csv: AutoAttack beside the evaluation PGD, per checked network."""
    from .io import write_csv
    from .stages.adversarial import autoattack_table as collect

    write_csv(collect(checks), table)


@step()
def adversarial_tables(*, runs: list[Path], logs: list[Path], probes: list[Path], runs_table: Path, onset: Path,
                       probes_table: Path, adversarial: views.OverfittingVerdict) -> None:
    """adversarial_runs.csv, adversarial_onset.csv, adversarial_probes.csv."""
    from .io import write_csv
    from .stages.adversarial import onset_table, probe_table, runs_table as runs_table_of
    from .tables import read_tables

    table = runs_table_of(runs, logs, adversarial.overfitting)
    write_csv(table, runs_table)
    onsets = onset_table(table)
    write_csv(onsets, onset)
    write_csv(probe_table(read_tables(probes)), probes_table)
    print(onsets[onsets["scope"] == "method"].to_string(index=False))


@step()
def adversarial_figures(*, runs: list[Path], logs: list[Path], runs_table: Path, probes_table: Path, dataset: str,
                        co: Path, co_pdf: Path, curves: Path, curves_pdf: Path, feature: Path, feature_pdf: Path,
                        probes: Path, probes_pdf: Path, adversarial: views.FeatureOf) -> None:
    """The CO plot, a CO event, the feature sweep, the probes."""
    import pandas as pd

    from .figures import adversarial as figures
    from .io import save_figure
    from .stages.adversarial import event_logs

    table = pd.read_csv(runs_table)
    table = table[table["dataset"] == dataset]
    event, event_curves, reference, feature_logs = event_logs(table, runs, logs, adversarial.feature)
    save_figure(figures.co_plot(table), co, co_pdf)
    save_figure(figures.co_curves(event_curves, event, reference), curves, curves_pdf)
    save_figure(figures.feature_plot(table, feature_logs, adversarial.feature.method, adversarial.feature.epsilon),
                feature, feature_pdf)
    save_figure(figures.probe_plot(pd.read_csv(probes_table), table), probes, probes_pdf)


# --- robust vs standard representations ----------------------------------------------------------------------


@step(compute=True)
def compare_representations(*, data: Path, runs: list[Path], networks: list[Path], output: Path,
                            representations: views.RepresentationComparison, similarity: views.CkaEstimator,
                            device: Device) -> None:
    """Layer × layer CKA of standard, PGD and FGSM networks, on benign and PGD inputs."""
    from .io import write_csv
    from .stages.representations import compare

    cka = compare(data, runs, networks, representations, similarity, device)
    write_csv(cka, output)
    print(f"{len(cka)} CKA values of {cka.groupby(['inputs', 'network_a', 'seed_a', 'network_b', 'seed_b']).ngroups} "
          "network pairs")


@step(compute=True)
def place_grokking(*, data: Path, checkpoints: list[Path], snapshots: list[Path], runs: list[Path], family_data: Path,
                   family_runs: list[Path], family_networks: list[Path], placed: Path, trajectory: Path,
                   representations: views.GrokkingPlacement, similarity: views.CkaAlongRuns, device: Device) -> None:
    """Grokking checkpoints and snapshots beside standard and robust networks of their own architecture."""
    from .io import write_csv
    from .stages.representations import grokking_table, place_grokking as place

    found, along = place(data, checkpoints, snapshots, runs, family_data, family_runs, family_networks,
                         representations, similarity, device)
    table = grokking_table(found, representations.bootstrap)
    write_csv(table, placed)
    write_csv(along, trajectory)
    print(table.to_string(index=False))


@step()
def representation_tables(*, cka: Path, runs: list[Path], logs: list[Path], structure: Path, summary: Path,
                          layers: Path, representations: views.RepresentationIntervals,
                          adversarial: views.OverfittingVerdict) -> None:
    """representation_structure.csv, representation_summary.csv, representation_layers.csv."""
    import pandas as pd

    from .io import write_csv
    from .stages.representations import layers_table, run_summaries, structure_table, summary_table

    values = pd.read_csv(cka)
    structures = structure_table(values, run_summaries(runs, logs, adversarial.overfitting))
    table = summary_table(structures, values, representations.bootstrap)
    write_csv(structures, structure)
    write_csv(table, summary)
    write_csv(layers_table(values, representations.bootstrap), layers)
    print(table[table["measure"] == "block_index"].to_string(index=False))


@step()
def representation_figures(*, cka: Path, structure: Path, layers: Path, heatmaps: Path, heatmaps_pdf: Path,
                           structure_figure: Path, structure_figure_pdf: Path, layers_figure: Path,
                           layers_figure_pdf: Path) -> None:
    """CKA heatmaps, structure scalars, per-layer comparisons."""
    import pandas as pd

    from .figures import representations as figures
    from .io import save_figure

    values, structures, per_layer = (pd.read_csv(p) for p in (cka, structure, layers))
    save_figure(figures.heatmaps(values), heatmaps, heatmaps_pdf)
    save_figure(figures.structure_plot(structures), structure_figure, structure_figure_pdf)
    save_figure(figures.layers_plot(per_layer), layers_figure, layers_figure_pdf)


@step(compute=True)
def train_block_network(*, data: Path, run_json: Path, networks: Path, method: str, seed: int,
                        blocks: Annotated[views.BlockTraining, Knob("representations.blocks")], device: Device) -> None:
    """One block network (representations.blocks): standard or PGD-trained, and its final accuracies."""
    from .stages.representations import train_block_network as train

    summary = train(data, blocks, method=method, seed=seed, device=device, run_path=run_json, networks_path=networks)
    print(f"{method} seed {seed}: {summary['evaluation']['final']} after {summary['wall_seconds']:.0f} s")


@step(compute=True)
def block_structure(*, data: Path, runs: list[Path], networks: list[Path], structure: Path, matrices: Path,
                    blocks: Annotated[views.BlockComparison, Knob("representations.blocks")],
                    similarity: views.CkaBatches, device: Device) -> None:
    """One seed's untrained, standard and PGD network: layer × layer debiased CKA and its structure scalars."""
    from .io import write_csv
    from .stages.representations import block_structure as measure

    scalars, cells = measure(data, runs, networks, blocks, similarity, device)
    write_csv(cells, matrices)
    write_csv(scalars, structure)
    print(scalars.to_string(index=False))


@step()
def block_tables(*, structures: list[Path], table: Path) -> None:
    """representation_blocks.csv: every seed's block scalars, each beside its untrained control."""
    from .io import write_csv
    from .stages.representations import blocks_table

    blocks = blocks_table(structures)
    write_csv(blocks, table)
    print(blocks.to_string(index=False))


@step()
def block_figure(*, table: Path, matrices: list[Path], dataset: str, figure: Path, figure_pdf: Path) -> None:
    """The block scalar per seed (untrained, standard, PGD) and one seed's CKA heatmaps."""
    import pandas as pd

    from .figures import representations as figures
    from .io import save_figure

    blocks = pd.read_csv(table)
    save_figure(figures.blocks_plot(blocks[blocks["dataset"] == dataset], [pd.read_csv(p) for p in matrices]),
                figure, figure_pdf)


@step()
def grokking_placement_figure(*, placed: Path, trajectory: Path, dataset: str, grokking: Path,
                              grokking_pdf: Path) -> None:
    """Grokking checkpoints beside standard and robust networks, and along the runs."""
    import pandas as pd

    from .figures import representations as figures
    from .io import save_figure

    found, along = pd.read_csv(placed), pd.read_csv(trajectory)
    save_figure(figures.grokking_plot(found[found["dataset"] == dataset], along[along["dataset"] == dataset]),
                grokking, grokking_pdf)


# --- delayed robustness --------------------------------------------------------------------------------------


@step(compute=True)
def measure_delayed(*, data: Path, snapshots: Path, checkpoints: Path, run_json: Path, output: Path,
                    delayed: views.DelayedMeasures, robustness: views.AdversarialSearch, device: Device) -> None:
    """Local complexity, adversarial radius and robust accuracy along a run."""
    from .io import write_csv
    from .stages.delayed import measure_run

    table = measure_run(data, snapshots, checkpoints, run_json, delayed, robustness, device)
    write_csv(table, output)
    print(f"{table.groupby(['checkpoint', 'step']).ngroups} networks measured")


@step()
def delayed_tables(*, measures: list[Path], runs: list[Path], metrics: list[Path], checkpoints: list[Path],
                   noise: list[Path], sensitivity: list[Path], trajectory: Path, onsets: Path, lags: Path,
                   delayed: views.DelayedSummaries) -> None:
    """delayed_trajectory.csv, delayed_onsets.csv, delayed_lags.csv."""
    import pandas as pd

    from .io import read_json, write_csv
    from .stages.delayed import lag_table, onset_table, run_key, trajectory_table
    from .tables import read_tables

    keys = [run_key(r) for r in runs]
    along = trajectory_table(read_tables(measures), keys, [pd.read_csv(m) for m in metrics],
                             [pd.read_csv(t) for t in noise], [pd.read_csv(t) for t in sensitivity])
    found = onset_table(along, [read_json(c) for c in checkpoints], keys, delayed.onset, delayed.adversarial.epsilons)
    write_csv(along, trajectory)
    write_csv(found, onsets)
    write_csv(lag_table(found, delayed.bootstrap), lags)
    print(found.to_string(index=False))


@step()
def delayed_figures(*, trajectory: Path, onsets: Path, lags: Path, dataset: str, trajectories: Path,
                    trajectories_pdf: Path, lags_figure: Path, lags_figure_pdf: Path,
                    delayed: views.DelayedFigure) -> None:
    """Every measure of the runs on one step axis, and the lags."""
    import pandas as pd

    from .figures import delayed as figures
    from .io import save_figure

    along, found, lagged = (pd.read_csv(p) for p in (trajectory, onsets, lags))
    mine = lambda t: t[t["dataset"] == dataset]  # noqa: E731
    save_figure(figures.trajectories(mine(along), mine(found), delayed), trajectories, trajectories_pdf)
    save_figure(figures.lags(mine(lagged)), lags_figure, lags_figure_pdf)


# --- claims --------------------------------------------------------------------------------------------------


@step()
def claims(*, tables: list[Path], runs: list[Path], output: Path, stamp_json: Path, page: Path, figure: Path,
           figure_pdf: Path, stamp: str, claims: views.ClaimRule, grokking: views.LongRunGroups) -> None:
    """claims.csv: every headline claim evaluated from the tables, with its verdict (stamp: where the numbers
    come from, as JSON)."""
    import datetime
    import json

    import pandas as pd
    import torch

    from .figures.claims import claims_figure
    from .io import read_json, save_figure, write_csv, write_json, write_text
    from .pages import claims_html
    from .stages.claims import evaluate

    found = {Path(p).stem: pd.read_csv(p) for p in tables}
    found["long_run_groups"] = pd.DataFrame(grokking.long_runs, columns=["init_scale", "weight_decay"])
    table = evaluate(found, claims)
    threads = sorted({read_json(p).get("threads") for p in runs} - {None})
    stamped = dict(json.loads(stamp), threads=" / ".join(map(str, threads)) or "?", torch=torch.__version__,
                   date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    write_csv(table, output)
    write_json(stamped, stamp_json)
    write_text(claims_html(table, stamped), page)
    save_figure(claims_figure(table), figure, figure_pdf)
    print(table[["id", "estimate", "ci_low", "ci_high", "n", "verdict"]].to_string(index=False))


@step(rule=False)
def results_page(*, results: Path, output: Path) -> None:
    """docs/results.md: the claims and grokking steps of a finished study, with its figures."""
    import shutil

    import pandas as pd

    from .io import read_json, write_text
    from .pages import results_markdown

    tables = results / "tables"
    claims_csv, stamp_json = tables / "claims.csv", results / "claims" / "stamp.json"
    for needed in (claims_csv, stamp_json):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: run the study first (snakemake --cores 2), "
                                    "then this command from the same directory")
    grokking = tables / "grokking_runs.csv"
    figures = {}  # the study's own figures, copied beside the page so that it shows what it states
    for name, source in (("claims", results / "figures" / "claims.png"),
                         *((p.stem, p) for p in sorted((results / "figures").glob("*/grokking_curves.png")))):
        if source.exists():
            target = output.parent / "figures" / (f"{source.parent.name}_{name}.png" if name != "claims"
                                                  else "claims.png")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            figures[target.relative_to(output.parent).as_posix()] = name
    write_text(results_markdown(pd.read_csv(claims_csv), read_json(stamp_json),
                                pd.read_csv(grokking) if grokking.exists() else None, figures), output)
    print(f"results page -> {output}")
