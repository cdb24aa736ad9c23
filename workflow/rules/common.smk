# Helpers shared by every stage: config validation, path templates, wildcard constraints, targets.
import sys
from pathlib import Path

# The rules call `python -m robustgen`: make the package importable here and in every job's shell,
# whether or not it is pip-installed (a conda env from envs/ holds only its dependencies).
PACKAGE_ROOT = Path(workflow.basedir, "workflow").resolve()
sys.path.insert(0, str(PACKAGE_ROOT))
# (the prefix is formatted like a shell command, hence the doubled braces)
shell.prefix(f"export PYTHONPATH='{PACKAGE_ROOT}'${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

from robustgen.config import tag, validate

validate(config)

GROKKING_RUN = "results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}"
# How often a training job saves its full state for resuming: not a param, as it changes no result.
TRAINING_STATE_EVERY = config["grokking"]["state_every"]


wildcard_constraints:
    study="grokking|capacity",
    dataset="[a-z0-9_]+",
    alpha=r"[0-9][0-9.e+-]*",
    wd=r"[0-9][0-9.e+-]*",
    seed=r"\d+",
    width=r"\d+",
    depth=r"\d+",
    optimizer="adam|sgd",
    lr=r"[0-9][0-9.e+-]*",
    bs=r"\d+",


def grokking_runs():
    """Every (dataset, α, wd, seed) of the grokking grid, as wildcard dicts."""
    g = config["grokking"]
    return [
        dict(dataset=dataset, alpha=tag(alpha), wd=tag(wd), seed=str(seed))
        for dataset in g["datasets"]
        for alpha in g["init_scales"]
        for wd in g["weight_decays"]
        for seed in g["seeds"]
    ]


def run_files(stage, name, dataset=None, seeds=None):
    """`name` in the directory of every run under results/{stage}/ (of one dataset, some seeds)."""
    return [
        f"results/{stage}/{r['dataset']}/alpha{r['alpha']}_wd{r['wd']}_seed{r['seed']}/{name}"
        for r in grokking_runs()
        if dataset in (None, r["dataset"])
        and (seeds is None or int(r["seed"]) in seeds)
    ]


def dataset_run_files(stage, name, first_seed_only=False):
    """Input function: `name` in the run directories of the job's {dataset} (or of its first seed)."""
    seeds = [min(config["grokking"]["seeds"])] if first_seed_only else None

    def files(wildcards):
        return run_files(stage, name, wildcards.dataset, seeds)

    return files


def probe_args(grid_and_adversarial):
    """The robustness.* knobs as probe-command flags (the trajectory uses only the bisection ones)."""
    r = config["robustness"]
    args = [
        f"--image-first {r['images']['first']} --image-count {r['images']['count']}",
        f"--noise-seed {r['seed']} --noise {r['noise']} --draws {r['draws']}",
        "--clip" if r["clip"] else "--no-clip",
        f"--max-radius {r['max_radius']}",
        f"--bracket-step {r['bisection']['bracket_step']} --tol {r['bisection']['tol']}",
        f"--device {config['device']}",
    ]
    if grid_and_adversarial:
        a = r["adversarial"]
        args += [
            "--grid-deltas " + " ".join(str(d) for d in r["grid_deltas"]),
            "--adversarial-norms " + " ".join(a["norms"]),
            f"--pgd-steps {a['steps']} --pgd-step-size {a['step_size']}",
            "--pgd-targeted" if a["targeted"] else "--no-pgd-targeted",
            f"--max-eps-l2 {a['max_eps']['l2']} --max-eps-linf {a['max_eps']['linf']}",
            f"--tol-l2 {a['tol']['l2']} --tol-linf {a['tol']['linf']}",
        ]
    return " ".join(args)


def group_files(stage, name):
    """`name` of every (dataset, α, wd) group under results/{stage}/ (one file for all its seeds)."""
    groups = sorted({(r["dataset"], r["alpha"], r["wd"]) for r in grokking_runs()})
    return [f"results/{stage}/{d}/alpha{a}_wd{w}_{name}" for d, a, w in groups]


def seed_files(name):
    """Input function: `name` in the grokking run directory of every seed of the job's (dataset, α, wd)."""

    def files(wildcards):
        return [
            f"results/grokking/{wildcards.dataset}/alpha{wildcards.alpha}_wd{wildcards.wd}_seed{s}/{name}"
            for s in config["grokking"]["seeds"]
        ]

    return files


def similarity_args():
    c = config["similarity"]
    return (
        f"--image-first {c['images']['first']} --image-count {c['images']['count']}"
        f" --estimator {c['estimator']} --rbf-threshold {c['rbf_threshold']} --batch-size {c['batch_size']}"
        f" --trajectory-snapshots {c['snapshots']} --device {config['device']}"
    )


def capacity_networks():
    """Every network of the capacity sweep, as wildcard dicts."""
    c = config["capacity"]
    return [
        dict(
            dataset=c["dataset"],
            width=w,
            depth=d,
            optimizer=o,
            lr=tag(lr),
            bs=bs,
            seed=s,
        )
        for w in c["widths"]
        for d in c["depths"]
        for o in c["optimizers"]
        for lr in c["lrs"]
        for bs in c["batch_sizes"]
        for s in c["seeds"]
    ]


def capacity_network_files(name):
    """`name` in every capacity-sweep network's directory."""
    return [
        "results/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/".format(
            **n
        )
        + name
        for n in capacity_networks()
    ]


def capacity_sensitivity_args():
    c = config["capacity"]["sensitivity"]
    return (
        f"--test-points {c['test_points']} --train-points {c['train_points']} --ellipses {c['ellipses']}"
        f" --ellipse-points {c['ellipse_points']} --jacobian-every {c['jacobian_every']}"
        f" --anchor-seed {c['seed']} --device {config['device']}"
    )


def sensitivity_args(trajectory):
    """The sensitivity.* knobs as command flags; the trajectory uses its own, lighter sizes."""
    c = config["sensitivity"]
    sizes = c["trajectory"] if trajectory else c
    return (
        f"--test-points {sizes['test_points']} --train-points {sizes['train_points']}"
        f" --ellipses {sizes['ellipses']} --ellipse-points {c['ellipse_points']}"
        f" --jacobian-every {c['jacobian_every']} --anchor-seed {c['seed']} --device {config['device']}"
    )


def study_train_size(wildcards):
    return config[wildcards.study]["train_size"]


def study_subset(wildcards):
    """Omnigrok trains on the first images of a training set; the capacity sweep on a class-balanced draw."""
    return {"grokking": "first", "capacity": "balanced"}[wildcards.study]


def download_flag(wildcards):
    return "--download" if config["data"]["download"] else "--no-download"


def verify_flag(wildcards):
    return "--verify" if config["data"]["verify_checksums"] else "--no-verify"


# What each stage puts in results/tables/ and, per dataset, in results/figures/{dataset}/.
TABLES = {
    "grokking": ["grokking_runs"],
    "robustness": ["robustness_summary", "robustness_trajectory"],
    "sensitivity": ["sensitivity_summary", "sensitivity_trajectory"],
    "similarity": ["cka_layers", "cka_seeds", "cka_trajectory"],
    "capacity": ["capacity_sweep", "capacity_correlations"],
}
FIGURES = {
    "grokking": ["grokking_curves", "grokking_steps_to_generalise"],
    "robustness": [
        "robustness_histograms",
        "robustness_trajectory",
        "robustness_random_vs_adversarial",
    ],
    "sensitivity": [
        "sensitivity_comparison",
        "sensitivity_trajectory",
        "sensitivity_slices",
    ],
    "similarity": ["cka_heatmaps", "cka_by_layer", "cka_trajectory"],
    "capacity": ["capacity_generalisation", "capacity_sensitivity"],
}


def study_outputs():
    """What `snakemake` builds by default: every table, and every figure for every dataset."""
    figures = [
        f"results/figures/{dataset}/{name}.png"
        for stage, names in FIGURES.items()
        for dataset in (
            [config["capacity"]["dataset"]]
            if stage == "capacity"
            else config["grokking"]["datasets"]
        )
        for name in names
    ]
    tables = [
        f"results/tables/{name}.csv" for names in TABLES.values() for name in names
    ]
    return tables + figures
