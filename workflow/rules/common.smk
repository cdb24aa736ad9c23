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


wildcard_constraints:
    dataset="[a-z0-9_]+",
    alpha=r"[0-9][0-9.e+-]*",
    wd=r"[0-9][0-9.e+-]*",
    seed=r"\d+",


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
        if dataset in (None, r["dataset"]) and (seeds is None or int(r["seed"]) in seeds)
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


def sensitivity_args(trajectory):
    """The sensitivity.* knobs as command flags; the trajectory uses its own, lighter sizes."""
    c = config["sensitivity"]
    sizes = c["trajectory"] if trajectory else c
    return (
        f"--test-points {sizes['test_points']} --train-points {sizes['train_points']}"
        f" --ellipses {sizes['ellipses']} --ellipse-points {c['ellipse_points']}"
        f" --jacobian-every {c['jacobian_every']} --anchor-seed {c['seed']} --device {config['device']}"
    )


def download_flag(wildcards):
    return "--download" if config["data"]["download"] else "--no-download"


FIGURES = {
    "grokking": ["grokking_curves", "grokking_steps_to_generalise"],
    "robustness": ["robustness_histograms", "robustness_trajectory", "robustness_random_vs_adversarial"],
    "sensitivity": ["sensitivity_comparison", "sensitivity_trajectory", "sensitivity_slices"],
}


def study_outputs():
    """What `snakemake` builds by default: every table, and every figure for every dataset."""
    tables = [
        "grokking_runs",
        "robustness_summary",
        "robustness_trajectory",
        "sensitivity_summary",
        "sensitivity_trajectory",
    ]
    figures = [name for stage in FIGURES.values() for name in stage]
    return [f"results/tables/{t}.csv" for t in tables] + [
        f"results/figures/{dataset}/{f}.png"
        for dataset in config["grokking"]["datasets"]
        for f in figures
    ]
