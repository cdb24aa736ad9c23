"""End to end: the smoke study through Snakemake, its outputs, and what dry runs say reruns."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from robustgen.data import as_float, read_split
from robustgen.evaluation import evaluate
from robustgen.io import read_json
from robustgen.models import build

pytestmark = pytest.mark.e2e
SMOKE = str(Path(__file__).with_name("smoke.yaml"))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from conftest import Workflow

    wf = Workflow(tmp_path_factory.mktemp("smoke"))
    wf.run("--cores", "2", "--configfile", SMOKE)
    return wf


def test_table_has_one_consistent_row_per_run(smoke):
    results = smoke.workdir / "results"
    table = pd.read_csv(results / "tables" / "grokking_runs.csv")
    assert list(zip(table.init_scale, table.weight_decay, table.seed)) == [(1.0, 0.1, 0), (8.0, 0.1, 0)]
    assert set(table.dataset) == {"mnist_embedded"}
    for row in table.itertuples():
        run_dir = results / "grokking" / "mnist_embedded" / f"alpha{row.init_scale:g}_wd{row.weight_decay:g}_seed{row.seed}"
        metrics = pd.read_csv(run_dir / "metrics.csv")
        assert row.steps == metrics.step.iloc[-1]
        assert row.final_test_acc == metrics.test_acc.iloc[-1]
        generalised = metrics[metrics.test_acc > 0.85].step
        if generalised.empty:
            assert pd.isna(row.generalised_step)
        else:
            assert row.generalised_step == generalised.iloc[0]
        memorised = metrics[metrics.train_acc >= 0.99].step
        assert pd.isna(row.memorised_step) if memorised.empty else row.memorised_step == memorised.iloc[0]
    # the smoke grid holds two outcomes: α=1 generalises within 300 steps without first memorising (no
    # grokking delay), α=8 does not even memorise
    assert table.status.tolist() == ["no_delay", "neither"]
    assert table.grokking_delay.isna().all()
    generalised = table.iloc[0]
    assert generalised.generalised_previous_step < generalised.generalised_step
    assert table.stop_reason.tolist() == ["generalised", "max_steps"]


def test_checkpoint_weights_reproduce_the_recorded_accuracy(smoke):
    results = smoke.workdir / "results"
    split = read_split(results / "data" / "grokking" / "mnist_embedded.pt")
    blob = torch.load(results / "grokking" / "mnist_embedded" / "alpha1_wd0.1_seed0" / "checkpoints.pt",
                      weights_only=True)
    table = pd.read_csv(results / "tables" / "grokking_runs.csv").iloc[0]
    assert set(blob["checkpoints"]) == {"generalised", "final"}  # memorised was not reached
    model = build(blob["model_spec"])
    model.load_state_dict(blob["checkpoints"]["generalised"]["state_dict"])
    _, test_acc = evaluate(model, as_float(split.test_x), split.test_y, "mse").tolist()
    assert blob["checkpoints"]["generalised"]["step"] == table.generalised_step
    assert test_acc == pytest.approx(table.generalised_test_acc, abs=1e-9)


FIGURES = ("grokking_curves", "grokking_steps_to_generalise", "robustness_histograms", "robustness_trajectory",
           "robustness_random_vs_adversarial", "robustness_accuracy", "sensitivity_comparison", "sensitivity_trajectory",
           "sensitivity_slices", "cka_heatmaps", "cka_by_layer", "cka_trajectory", "capacity_generalisation",
           "capacity_sensitivity", "adversarial_co", "adversarial_curves", "adversarial_feature", "adversarial_probes",
           "representation_heatmaps", "representation_structure", "representation_layers", "representation_grokking",
           "representation_blocks")


def test_figures_are_real_png_and_pdf(smoke):
    figures = smoke.workdir / "results" / "figures" / "mnist_embedded"
    for name in FIGURES:
        png, pdf = figures / f"{name}.png", figures / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert pdf.read_bytes()[:5] == b"%PDF-"


def test_up_to_date_study_plans_nothing(smoke):
    assert smoke.planned_jobs("--configfile", SMOKE) == {}


def test_adding_a_seed_schedules_only_the_new_runs(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "grokking={seeds: [0, 1]}")
    # the region slices show the first seed only: they stay; the new seed's GrokAlign run is the third run
    assert jobs == {"train_grokking": 3, "extract_checkpoints": 3, "grokking_table": 1, "grokking_figures": 1,
                    "place_grokking": 1, "grokking_placement_figure": 1,
                    "probe_checkpoints": 2, "probe_trajectory": 3, "robustness_tables": 1,
                    "robustness_figures": 1, "sensitivity_checkpoints": 2, "sensitivity_trajectory": 3,
                    "sensitivity_tables": 1, "sensitivity_figures": 1, "similarity_run": 2, "similarity_seeds": 2,
                    "similarity_tables": 1, "similarity_figures": 1, "measure_delayed": 3, "delayed_tables": 1,
                    "delayed_figures": 1, "claims": 1, "all": 1}


def test_changing_a_threshold_reruns_extraction_never_training(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "checkpoints={generalised_test_acc: 0.8}")
    # the trajectories read the snapshots, not the checkpoints: they stay; the delayed stage measures both
    assert jobs == {"extract_checkpoints": 3, "grokking_table": 1, "grokking_figures": 1,
                    "place_grokking": 1, "grokking_placement_figure": 1,
                    "probe_checkpoints": 2, "robustness_tables": 1, "robustness_figures": 1,
                    "sensitivity_checkpoints": 2, "sensitivity_tables": 1, "sensitivity_figures": 1,
                    "sensitivity_slices": 1, "similarity_run": 2, "similarity_seeds": 2, "similarity_tables": 1,
                    "similarity_figures": 1, "measure_delayed": 3, "delayed_tables": 1, "delayed_figures": 1,
                    "claims": 1, "all": 1}


def test_changing_a_probe_knob_reruns_only_probes(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "robustness={grid_deltas: [0.2]}")
    assert jobs == {"probe_checkpoints": 2, "robustness_tables": 1, "robustness_figures": 1, "claims": 1, "all": 1}
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "robustness={draws: 3}")
    # the adversarially trained networks are probed with the same random-noise search; the delayed stage
    # shows the trajectory's radius, of the GrokAlign run too
    assert jobs == {"probe_checkpoints": 2, "probe_trajectory": 3, "robustness_tables": 1,
                    "robustness_figures": 1, "probe_adversarial": 5, "adversarial_tables": 1,
                    "adversarial_figures": 1, "delayed_tables": 1, "delayed_figures": 1, "claims": 1, "all": 1}
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "robustness={adversarial: {steps: 4}}")
    assert jobs["measure_delayed"] == 3 and "probe_trajectory" not in jobs  # the bisection does not read it


def test_the_state_interval_reruns_nothing(smoke):
    # how often training saves its state changes no result: it is not a param of any rule
    assert smoke.planned_jobs("--configfile", SMOKE, "--config", "grokking={state_every: 7}") == {}


def test_a_step_run_by_hand_from_the_config_equals_the_studys_run(smoke, tmp_path):
    """`robustgen <step> --config ...` reads the same knobs as the rule: the same table comes out."""
    import subprocess
    import sys

    from conftest import ROOT

    results = smoke.workdir / "results"
    run = results / "grokking" / "mnist_embedded" / "alpha1_wd0.1_seed0"
    command = [sys.executable, "-m", "robustgen", "probe-checkpoints", "--config", str(ROOT / "config.yaml"),
               "--config", SMOKE, "--data", str(results / "data" / "grokking" / "mnist_embedded.pt"),
               "--checkpoints", str(run / "checkpoints.pt"), "--run-json", str(run / "run.json"),
               "--output", str(tmp_path / "probes.csv")]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    study = results / "robustness" / "mnist_embedded" / "alpha1_wd0.1_seed0" / "checkpoints.csv"
    assert (tmp_path / "probes.csv").read_bytes() == study.read_bytes()
    subprocess.run(command[:-1] + [str(tmp_path / "fewer.csv"), "--set", "robustness.adversarial.steps=1"],
                   check=True, capture_output=True, cwd=ROOT)
    assert (tmp_path / "fewer.csv").read_bytes() != study.read_bytes()


def test_changing_a_training_knob_reruns_training(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "grokking={lr: 0.002}")
    assert jobs["train_grokking"] == 3 and "prepare_data" not in jobs and "train_capacity" not in jobs
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "data={split_seed: 1}")
    # every study's split depends on the split seed
    assert jobs["prepare_data"] == 4 and jobs["train_grokking"] == 3 and jobs["train_capacity"] == 4
    assert jobs["train_block_network"] == 4  # the block networks have a split of their own
    # the adversarial stage's 5 runs and the representation stage's 8 more (its seed-0 FGSM and PGD runs are
    # the adversarial stage's own: one run, two readers)
    assert jobs["train_adversarial"] == 13


def test_report_holds_every_figure(smoke):
    smoke.run("--configfile", SMOKE, "--report", "report.html")
    html = (smoke.workdir / "report.html").read_text(errors="ignore")
    for name in FIGURES:
        assert f"{name}.png" in html


def test_missing_dataset_offline_fails_with_instructions(workflow_factory, tmp_path):
    wf = workflow_factory("offline")
    proc = wf.run("results/data/grokking/mnist.pt", "--cores", "1", "--configfile", SMOKE, "--config",
                  "grokking={datasets: [mnist]}", f"data={{dir: {tmp_path / 'empty'}, download: false}}", check=False)
    assert proc.returncode != 0
    log = (wf.workdir / "logs" / "data" / "grokking" / "mnist.log").read_text()
    assert "Dataset 'mnist' was not found" in log and "robustgen download --dataset mnist" in log
    assert "mnist_embedded" in log
    assert 'config key grokking.datasets' in log and '--config "grokking={datasets: [mnist_embedded]}"' in log
    assert not (wf.workdir / "results" / "data" / "grokking" / "mnist.pt").exists()


def test_robustness_tables_agree_with_the_per_image_probes(smoke):
    results = smoke.workdir / "results"
    per_image = pd.read_csv(results / "robustness" / "mnist_embedded" / "alpha1_wd0.1_seed0" / "checkpoints.csv")
    summary = pd.read_csv(results / "tables" / "robustness_summary.csv")
    # α=1 reached only the generalised and final checkpoints; α=8 only the final one
    assert set(per_image.checkpoint) == {"generalised", "final"}
    assert set(per_image["mode"]) == {"grid", "bisection", "pgd", "deepfool", "fmn", "tightest"}
    assert set(per_image.norm) == {"l2", "linf"}
    # the tightest adversarial radius is the smallest of the attacks', and names the attack that found it
    adversarial = per_image[per_image.measure == "adversarial"].pivot_table(
        index=["checkpoint", "norm", "image"], columns="mode", values="radius", dropna=False)
    found = adversarial.dropna()
    assert (found["tightest"] == found[["pgd", "deepfool", "fmn"]].min(axis=1)).all() and len(found)
    tightest = per_image[(per_image["mode"] == "tightest") & per_image.radius.notna()]
    assert set(tightest.found_by) <= {"pgd", "deepfool", "fmn", "none"}
    assert per_image.image.min() == 1000 and per_image.image.nunique() == 100
    for (checkpoint, mode, norm), frame in per_image.groupby(["checkpoint", "mode", "norm"]):
        row = summary[(summary.scope == "run") & (summary.init_scale == 1.0) & (summary.checkpoint == checkpoint)
                      & (summary["mode"] == mode) & (summary.norm == norm)]
        assert len(row) == 1
        assert row.iloc[0]["median"] == pytest.approx(frame.radius.dropna().median())
        assert row.iloc[0].n_excluded == frame.radius.isna().sum()
    # an image misclassified without noise is excluded in every mode alike
    excluded = per_image[per_image.radius.isna()].groupby(["checkpoint", "mode", "norm"]).image.apply(frozenset)
    assert excluded.groupby(level=0).nunique().max() == 1
    trajectory = pd.read_csv(results / "tables" / "robustness_trajectory.csv")
    assert trajectory.groupby(["init_scale", "seed"]).step.nunique().max() <= 6


def test_changing_a_sensitivity_knob_reruns_only_sensitivity(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "sensitivity={ellipses: 6}")
    assert jobs == {"sensitivity_checkpoints": 2, "sensitivity_tables": 1, "sensitivity_figures": 1, "claims": 1, "all": 1}
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "sensitivity={seed: 3}")
    # the ellipses through the adversarially trained networks' test points are drawn with the same seed
    assert jobs == {"sensitivity_checkpoints": 2, "sensitivity_trajectory": 3, "sensitivity_tables": 1,
                    "sensitivity_figures": 1, "sensitivity_slices": 1, "probe_adversarial": 5,
                    "adversarial_tables": 1, "adversarial_figures": 1, "delayed_tables": 1,
                    "delayed_figures": 1, "claims": 1, "all": 1}


def test_sensitivity_tables_agree_with_the_per_item_measurements(smoke):
    results = smoke.workdir / "results"
    items = pd.read_csv(results / "sensitivity" / "mnist_embedded" / "alpha1_wd0.1_seed0" / "checkpoints.csv")
    summary = pd.read_csv(results / "tables" / "sensitivity_summary.csv")
    assert set(items.checkpoint) == {"generalised", "final"}
    counts = items.groupby(["checkpoint", "where"]).size().unstack()
    assert counts.loc["final"].to_dict() == {"different_class": 5, "random": 5, "same_class": 5,
                                             "test_points": 100, "train_points": 100}
    final = items[(items.checkpoint == "final") & (items["where"] == "different_class")]
    row = summary[(summary.scope == "run") & (summary.init_scale == 1.0) & (summary.checkpoint == "final")
                  & (summary["where"] == "different_class") & (summary.metric == "transition_density")].iloc[0]
    assert row.n == 5 and row["mean"] == pytest.approx(final.transition_density.mean())
    assert row.se == pytest.approx(final.transition_density.std() / 5 ** 0.5)
    trajectory = pd.read_csv(results / "tables" / "sensitivity_trajectory.csv")
    assert trajectory.test_acc.notna().all() and trajectory.groupby(["init_scale"]).step.nunique().max() <= 4


def test_widening_the_capacity_grid_schedules_only_the_new_networks(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "capacity={widths: [32, 128, 256]}")
    assert jobs == {"train_capacity": 2, "capacity_sensitivity": 2, "capacity_tables": 1, "capacity_figures": 1,
                    "claims": 1, "all": 1}


def test_capacity_sweep_table_matches_the_networks(smoke):
    results = smoke.workdir / "results"
    table = pd.read_csv(results / "tables" / "capacity_sweep.csv")
    assert sorted(zip(table.width, table.depth)) == [(32, 2), (32, 3), (128, 2), (128, 3)]
    row = table[(table.width == 32) & (table.depth == 2)].iloc[0]
    assert row.parameters == 784 * 32 + 32 + 32 * 10 + 10
    assert row.gap_acc == pytest.approx(row.train_acc - row.test_acc)
    run_dir = results / "capacity" / "mnist_embedded" / "w32_d2_adam_lr0.001_bs100_seed0"
    log = pd.read_csv(run_dir / "metrics.csv")
    assert row.epochs == log.epoch.iloc[-1] and row.train_acc == log.train_acc.iloc[-1]
    assert bool(row.reached_full_train_acc) == (row.train_acc == 1.0)
    correlations = pd.read_csv(results / "tables" / "capacity_correlations.csv")
    assert set(correlations.x) == {"parameters", "jacobian_test", "transition_density_different_class",
                                   "transitions_per_unit_different_class"}
    assert set(correlations.scope) == {"all", "within_architecture"}
    assert row.transitions_per_unit_different_class == pytest.approx(row.transitions_different_class / 32)
    assert (correlations.n == int(table.reached_full_train_acc.sum())).all()


def test_cifar10_sweep_end_to_end_through_the_torchvision_loader(workflow_factory, tmp_path):
    from cifar_format import random_cifar10

    random_cifar10(tmp_path / "cifar", n_train=500, n_test=100)
    wf = workflow_factory("cifar")
    wf.run("results/tables/capacity_sweep.csv", "results/figures/cifar10/capacity_sensitivity.png",
           "--cores", "2", "--configfile", SMOKE,
           "--config", "capacity={dataset: cifar10, widths: [32, 64], depths: [2], max_epochs: 20}",
           f"data={{dir: {tmp_path / 'cifar'}, download: false, verify_checksums: false}}")
    table = pd.read_csv(wf.workdir / "results" / "tables" / "capacity_sweep.csv")
    assert set(table.dataset) == {"cifar10"} and len(table) == 2
    assert table.parameters.tolist() == [3072 * w + w + w * 10 + 10 for w in (32, 64)]
    log = (wf.workdir / "logs" / "data" / "capacity" / "cifar10.log").read_text()
    assert "cifar10: 200 train / 100 test" in log


def test_cka_tables_hold_the_heatmaps_and_the_trajectory(smoke):
    tables = smoke.workdir / "results" / "tables"
    layers = pd.read_csv(tables / "cka_layers.csv")
    run = layers[(layers.init_scale == 1.0) & (layers.checkpoint_a == "generalised") & (layers.checkpoint_b == "generalised")]
    matrix = run.pivot(index="layer_a", columns="layer_b", values="cka")
    assert list(matrix.index) == sorted(["input", "linear1", "relu1", "linear2", "relu2", "linear3"])
    assert matrix.to_numpy().diagonal() == pytest.approx(1.0)
    assert matrix.to_numpy() == pytest.approx(matrix.T.to_numpy(), abs=1e-12)
    trajectory = pd.read_csv(tables / "cka_trajectory.csv")
    last = trajectory[trajectory.step == trajectory.groupby(["init_scale"]).step.transform("max")]
    assert last.cka_to_final.to_numpy() == pytest.approx(1.0)   # the last snapshot is the final network
    assert pd.read_csv(tables / "cka_seeds.csv").empty           # the smoke study has a single seed


def test_a_diverging_run_is_marked_and_the_study_completes(smoke, tmp_path):
    """α = 1e30 overflows float32 at once (the loss is inf): that run is stopped and marked diverged, and
    every table and figure of the study is still made from the healthy run. (A copy of the smoke study with
    α = 1e30 in place of α = 8: only the new run, what reads it and what aggregates runs are made.)"""
    from conftest import Workflow

    shutil.copytree(smoke.workdir, tmp_path / "diverging", symlinks=True)
    wf = Workflow(tmp_path / "diverging")
    planned = wf.planned_jobs("--configfile", SMOKE, "--config", "grokking={init_scales: [1, 1.0e30]}")
    assert planned["train_grokking"] == 1 and "train_capacity" not in planned  # α = 1e30 alone
    wf.run("--cores", "2", "--configfile", SMOKE, "--config", "grokking={init_scales: [1, 1.0e30]}")
    runs = pd.read_csv(wf.workdir / "results" / "tables" / "grokking_runs.csv").set_index("init_scale")
    assert runs.loc[1e30, "status"] == "diverged" and runs.loc[1e30, "steps"] == 0
    assert runs.loc[1.0, "status"] != "diverged"
    summary = pd.read_csv(wf.workdir / "results" / "tables" / "robustness_summary.csv")
    assert set(summary["init_scale"]) == {1.0}
    assert not list((wf.workdir / "results").rglob("in_progress"))


# --- the adversarial stage -----------------------------------------------------------------------------------

ADVERSARIAL_RUNS = [("fgsm", 0.1, 0.0), ("fgsm", 0.3, 0.0), ("pgd", 0.1, 0.0), ("pgd", 0.3, 0.0), ("fgsm", 0.3, 0.2)]


def test_adversarial_tables_hold_every_run_and_its_evaluation(smoke):
    tables = smoke.workdir / "results" / "tables"
    runs = pd.read_csv(tables / "adversarial_runs.csv")
    assert sorted(zip(runs.method, runs.eps, runs.beta)) == sorted(ADVERSARIAL_RUNS)
    assert runs["pgd50_final"].between(0, 1).all() and runs["co_verdict"].eq("collapse").eq(runs["co"]).all()
    run_dir = smoke.workdir / "results" / "adversarial" / "mnist_embedded" / "cnn" / "fgsm_eps0.3_beta0.2_seed0"
    log = pd.read_csv(run_dir / "log.csv")
    row = runs[(runs.method == "fgsm") & (runs.beta == 0.2)].iloc[0]
    assert row["best_pgd_acc"] == log.loc[log["step"] >= row["warmup_steps"], "pgd_acc"].max()
    assert row["final_pgd_acc"] == log["pgd_acc"].iloc[-1]
    # the log measures the whole training set; the test set is measured once, at the end
    assert log["train_acc"].between(0, 1).all() and log["test_acc"].isna().all()
    assert row["test_acc_final"] == read_json(run_dir / "run.json")["evaluation"]["final"]["test_acc"]
    onset = pd.read_csv(tables / "adversarial_onset.csv")
    assert set(onset.loc[onset.scope == "method", "method"]) == {"fgsm", "pgd"}  # the methods with two ε
    probes = pd.read_csv(tables / "adversarial_probes.csv")
    assert {"jacobian_norm", "random_bisection_l2", "adversarial_tightest_linf"} <= set(probes["measure"])
    assert set(probes["network"]) <= {"final", "best"} and len(probes.groupby(["method", "eps", "beta"])) == 5


def test_changing_the_co_rule_retrains_nothing(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "adversarial={overfitting: {drop: 0.1}}")
    # the representation tables carry each run's CO verdict
    assert jobs == {"probe_adversarial": 5, "adversarial_tables": 1, "adversarial_figures": 1,
                    "representation_tables": 1, "representation_figures": 1, "claims": 1, "all": 1}


def test_autoattack_checks_the_probed_networks_and_retrains_nothing(smoke):
    # off by default (it needs the optional extra); on, it checks the networks of each probed run on the clean
    # data (not the feature sweep's β = 0.2 run, whose inputs leave [0, 1]) and adds one table
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "adversarial={autoattack: {images: 20}}")
    assert jobs == {"check_autoattack": 4, "autoattack_table": 1, "claims": 1, "all": 1}


def test_adding_a_beta_schedules_only_its_runs(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config",
                              "adversarial={feature: {method: fgsm, epsilon: 0.3, betas: [0.2, 0.1]}}")
    assert jobs == {"train_adversarial": 1, "probe_adversarial": 1, "adversarial_tables": 1,
                    "adversarial_figures": 1, "claims": 1, "all": 1}


def test_an_adversarial_run_by_hand_reproduces_the_studys_log(smoke, tmp_path):
    """Same config, same seed: the same training log and evaluation, byte for byte."""
    import subprocess
    import sys

    from conftest import ROOT

    results = smoke.workdir / "results"
    run_dir = results / "adversarial" / "mnist_embedded" / "cnn" / "fgsm_eps0.3_beta0.2_seed0"
    command = [sys.executable, "-m", "robustgen", "train-adversarial", "--config", str(ROOT / "config.yaml"),
               "--config", SMOKE, "--model", "cnn", "--method", "fgsm", "--eps", "0.3", "--beta", "0.2", "--seed", "0",
               "--data", str(results / "data" / "adversarial" / "mnist_embedded.pt"), "--log", str(tmp_path / "log.csv"),
               "--run-json", str(tmp_path / "run.json"), "--networks", str(tmp_path / "networks.pt")]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    assert (tmp_path / "log.csv").read_bytes() == (run_dir / "log.csv").read_bytes()
    assert read_json(tmp_path / "run.json")["evaluation"] == read_json(run_dir / "run.json")["evaluation"]


# --- robust vs standard representations ---------------------------------------------------------------------

def test_representation_tables_hold_every_network_and_a_cka_recomputed_by_hand(smoke):
    import torch

    from robustgen.data import as_float, read_split
    from robustgen.io import load_file
    from robustgen.measures.similarity import hidden_and_output, linear_cka
    from robustgen.models import from_state

    results = smoke.workdir / "results"
    structures = pd.read_csv(results / "tables" / "representation_structure.csv")
    benign = structures[structures.inputs == "benign"]
    # every final network, and a best one exactly where it is another network than the final one
    from robustgen.io import read_json

    expected = {(n, s) for n in ("standard", "pgd", "fgsm", "untrained") for s in (0, 1)}
    for method, seed in [(m, s) for m in ("pgd", "fgsm") for s in (0, 1)]:
        steps = read_json(results / "adversarial" / "mnist_embedded" / "cnn" / f"{method}_eps0.3_beta0_seed{seed}"
                          / "run.json")["evaluation"]
        if steps["best"]["step"] not in (None, steps["final"]["step"]):
            expected.add((f"{method}_best", seed))
    assert set(zip(benign.network, benign.seed)) == expected and len(benign) == len(expected)
    assert (benign.step[benign.network.str.endswith("_best")] < benign.steps[benign.network.str.endswith("_best")]).all()
    assert set(structures.loc[structures.inputs == "pgd", "network"]) == {"standard", "pgd", "fgsm", "untrained"}
    summary = pd.read_csv(results / "tables" / "representation_summary.csv")
    value = summary[(summary.statistic == "value") & (summary.measure == "block_index")]
    both_seeds = value.network.isin(["standard", "pgd", "fgsm", "untrained"])
    assert (value.baseline_n_seeds[both_seeds] == 2).all()  # two seeds: one value per seed
    cka = pd.read_csv(results / "representations" / "mnist_embedded" / "cnn" / "cka.csv")
    own = cka[(cka.inputs == "benign") & (cka.network_a == "standard") & (cka.network_b == "standard")
              & (cka.seed_a == 0) & (cka.seed_b == 0)]
    assert own.loc[own.layer_a == own.layer_b, "cka"].to_numpy() == pytest.approx(1.0)
    # the table's CKA of the standard network's first hidden layer and its output, recomputed from the
    # stored network on the compared images (after the 50 log and 50 evaluation images, 100 of them)
    run_dir = results / "adversarial" / "mnist_embedded" / "cnn" / "standard_eps0.3_beta0_seed0"
    blob = load_file(run_dir / "networks.pt")
    model = from_state(blob["model_spec"], blob["networks"]["final"]["state_dict"])
    split = read_split(results / "data" / "adversarial" / "mnist_embedded.pt")
    acts = hidden_and_output(model, as_float(split.test_x[100:200]))
    value = own[(own.layer_a == "relu1") & (own.layer_b == "output")].cka.item()
    assert value == pytest.approx(linear_cka(acts["relu1"], acts["output"]).item(), abs=1e-9)
    assert torch.isfinite(torch.tensor(structures[["near", "far", "block_index", "long_range"]].to_numpy())).all()
    placed = pd.read_csv(results / "tables" / "representation_grokking.csv")
    assert set(placed.family) == {"standard", "pgd", "pgd - standard"} and set(placed.layer) == {"relu1", "relu2", "output"}
    trajectory = pd.read_csv(results / "tables" / "representation_grokking_trajectory.csv")
    assert trajectory.groupby("init_scale").step.nunique().max() <= 4


def test_representation_knobs_rerun_only_what_reads_them(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "representations={pgd_inputs: {steps: 4}}")
    assert jobs == {"compare_representations": 1, "representation_tables": 1, "representation_figures": 1, "claims": 1, "all": 1}
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "representations={bootstrap: {resamples: 300}}")
    assert jobs == {"place_grokking": 1, "grokking_placement_figure": 1, "representation_tables": 1,
                    "representation_figures": 1, "claims": 1, "all": 1}
    # a new seed: its 3 networks and 2 of the grokking family, nothing of the adversarial stage
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "representations={seeds: [0, 1, 2]}")
    assert jobs == {"train_adversarial": 5, "compare_representations": 1, "place_grokking": 1,
                    "grokking_placement_figure": 1, "representation_tables": 1, "representation_figures": 1,
                    "claims": 1, "all": 1}


def test_block_knobs_rerun_only_what_reads_them(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "representations={blocks: {threshold: 0.7}}")
    assert jobs == {"block_structure": 2, "block_tables": 1, "block_figure": 1, "claims": 1, "all": 1}
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "representations={blocks: {seeds: [0, 1, 2]}}")
    assert jobs == {"train_block_network": 2, "block_structure": 1, "block_tables": 1, "block_figure": 1,
                    "claims": 1, "all": 1}
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "representations={blocks: {lr: 0.02}}")
    assert jobs == {"train_block_network": 4, "block_structure": 2, "block_tables": 1, "block_figure": 1,
                    "claims": 1, "all": 1}
    # the block scalars read only how CKA is batched (similarity.batch_size, passes), not the heatmaps' estimator
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "similarity={estimator: debiased}")
    assert jobs["compare_representations"] == 1 and "block_structure" not in jobs and "train_block_network" not in jobs
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "similarity={passes: 2}")
    assert jobs["block_structure"] == 2 and "train_block_network" not in jobs and "train_adversarial" not in jobs


def test_block_table_is_the_largest_block_recomputed_by_hand(smoke):
    from robustgen.data import as_float, read_split
    from robustgen.io import load_file
    from robustgen.measures.similarity import Representation, hidden_and_output, largest_block
    from robustgen.models import from_state

    results = smoke.workdir / "results"
    blocks = pd.read_csv(results / "tables" / "representation_blocks.csv")
    assert len(blocks) == 2 * 3 and set(blocks.network) == {"untrained", "standard", "pgd"}
    assert (blocks.loc[blocks.network == "untrained", "largest_block_minus_untrained"] == 0).all()
    run_dir = results / "representations" / "blocks" / "mnist_embedded" / "resnet8_w4_s2" / "pgd_seed1"
    blob, run = load_file(run_dir / "networks.pt", "cpu"), read_json(run_dir / "run.json")
    net = from_state(blob["model_spec"], blob["networks"]["final"]["state_dict"]).eval()
    split = read_split(results / "data" / "representations.blocks" / "mnist_embedded.pt")
    assert len(split.train_x) == 60 and split.train_y.bincount().tolist() == [6] * 10  # class-balanced
    first = run["evaluation_images"][1] + 1
    own = Representation(list(hidden_and_output(net, as_float(split.test_x[first:first + 40])).values()),
                         estimator="debiased")
    row = blocks[(blocks.seed == 1) & (blocks.network == "pgd")].iloc[0]
    assert row.largest_block == largest_block(own.cka(own), 0.8)
    assert row.pgd_acc == run["evaluation"]["final"]["pgd_acc"]


def test_delayed_stage_follows_long_and_penalised_runs_and_a_measure_recomputed_by_hand(smoke):
    from robustgen.io import load_file
    from robustgen.measures.complexity import frame_directions, local_complexity
    from robustgen.models import from_state

    results = smoke.workdir / "results"
    runs = results / "grokking" / "mnist_embedded"
    long = read_json(runs / "alpha8_wd0.1_seed0" / "run.json")  # grokking.long_runs of the smoke config
    assert long["settings"]["long_run"] and long["stop_reason"] == "max_steps" and long["steps"] == 300
    penalised = read_json(runs / "alpha8_wd0.1_jac0.001_seed0" / "run.json")
    assert penalised["settings"]["jacobian_penalty"] == 0.001 and not penalised["settings"]["long_run"]
    assert read_json(runs / "alpha1_wd0.1_seed0" / "run.json")["settings"]["jacobian_penalty"] == 0
    onsets = pd.read_csv(results / "tables" / "delayed_onsets.csv")
    assert list(zip(onsets.init_scale, onsets.jacobian_penalty)) == [(1.0, 0.0), (8.0, 0.0), (8.0, 0.001)]
    lags = pd.read_csv(results / "tables" / "delayed_lags.csv")
    assert set(lags.statistic) == {"mean over seeds", "paired difference from λ = 0"}
    assert set(lags.loc[lags.statistic != "mean over seeds", "jacobian_penalty"]) == {0.001}
    # a local-complexity value of the table, recomputed from the stored snapshot with the stage's frame
    measures = pd.read_csv(results / "delayed" / "mnist_embedded" / "alpha8_wd0.1_jac0.001_seed0" / "measures.csv")
    row = measures[(measures.measure == "local_complexity") & (measures.points == "train")
                   & (measures.radius == 0.5) & (measures.layer == "all") & (measures.checkpoint == "snapshot")].iloc[-1]
    blob = load_file(runs / "alpha8_wd0.1_jac0.001_seed0" / "snapshots" / f"step_{int(row.step):07d}.pt")
    model = from_state(blob["model_spec"], blob["state_dict"])
    split = read_split(results / "data" / "grokking" / "mnist_embedded.pt")
    generator = torch.Generator().manual_seed(0)
    torch.rand(20, 784, generator=generator, dtype=torch.float64)  # the random points come first
    directions = frame_directions(784, 4, generator)
    counts = local_complexity(model, as_float(split.train_x[:20]), directions, [0.05, 0.5])
    assert row.value == pytest.approx(counts[:, 1, :].sum(dim=1).double().mean().item())
    trajectory = pd.read_csv(results / "tables" / "delayed_trajectory.csv")
    mine = trajectory[(trajectory.init_scale == 8) & (trajectory.jacobian_penalty == 0.001)].set_index("step")
    log = pd.read_csv(runs / "alpha8_wd0.1_jac0.001_seed0" / "metrics.csv").set_index("step")
    assert (mine.test_acc == log.test_acc.reindex(mine.index)).all()
    assert mine[["noise_radius", "jacobian_norm"]].notna().any().all()


def test_delayed_knobs_rerun_only_what_reads_them(smoke):
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "delayed={onset: {robust_fraction: 0.75}}")
    assert jobs == {"delayed_tables": 1, "delayed_figures": 1, "claims": 1, "all": 1}
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "delayed={complexity: {points: 25}}")
    assert jobs == {"measure_delayed": 3, "delayed_tables": 1, "delayed_figures": 1, "claims": 1, "all": 1}
    # a second λ: its run and what follows it, nothing of the runs already there
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "grokking={jacobian_penalties: [0.001, 0.01]}")
    assert jobs == {"train_grokking": 1, "extract_checkpoints": 1, "probe_trajectory": 1, "sensitivity_trajectory": 1,
                    "measure_delayed": 1, "delayed_tables": 1, "delayed_figures": 1, "claims": 1, "all": 1}
    # no long runs: the α = 8 run is retrained with the early stop, its penalised twin is no longer asked for
    jobs = smoke.planned_jobs("--configfile", SMOKE, "--config", "grokking={long_runs: []}")
    assert jobs["train_grokking"] == 1 and jobs["measure_delayed"] == 1


def test_claims_are_evaluated_from_the_studys_tables_and_the_results_page_is_written_from_them(smoke, tmp_path):
    """Every registered claim has a row with a verdict; the claims are recomputed from the study's own tables
    with the same result; the report and the results page come from them, stamped."""
    import subprocess
    import sys

    from conftest import ROOT

    from robustgen.settings import ClaimRule
    from robustgen.stages.claims import CLAIMS, VERDICTS, evaluate

    results = smoke.workdir / "results"
    claims = pd.read_csv(results / "tables" / "claims.csv")
    assert list(claims["id"]) == [c.id for c in CLAIMS] and claims["verdict"].isin(VERDICTS).all()
    # the grokking claims read the smoke study's own runs: α = 1 generalises without memorising first
    assert claims.set_index("id").loc["omnigrok_alpha1_no_delay", "n"] == 1
    tables = {p.stem: pd.read_csv(p) for p in (results / "tables").glob("*.csv") if p.stem != "claims"}
    tables["long_run_groups"] = pd.DataFrame([dict(init_scale=8, weight_decay=0.1)])  # tests/smoke.yaml's
    again = evaluate(tables, ClaimRule(min_seeds=3, level=0.95))
    pd.testing.assert_frame_equal(again[["id", "verdict", "n"]], claims[["id", "verdict", "n"]])
    png = results / "figures" / "claims.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (results / "claims" / "claims.html").read_text()
    stamp = pd.read_json(results / "claims" / "stamp.json", typ="series")
    assert {"commit", "config_digest", "cores", "threads", "date"} <= set(stamp.index) and stamp["commit"] in page
    out = tmp_path / "results.md"
    subprocess.run([sys.executable, "-m", "robustgen", "results-page", "--results", str(results), "--output", str(out)],
                   check=True, capture_output=True, cwd=ROOT)
    text = out.read_text()
    assert all(c.id in text for c in CLAIMS) and f"config digest {stamp['config_digest']}" in text
    assert (tmp_path / "figures" / "claims.png").read_bytes() == png.read_bytes() and "(figures/claims.png)" in text
    missing = subprocess.run([sys.executable, "-m", "robustgen", "results-page", "--results", str(tmp_path / "none"),
                              "--output", str(tmp_path / "x.md")], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 2 and "run the study first" in missing.stderr and not (tmp_path / "x.md").exists()
