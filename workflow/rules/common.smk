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


def grokking_run_files(name):
    """`name` (e.g. 'metrics.csv') in every grokking run directory."""
    return [f"{GROKKING_RUN}/{name}".format(**run) for run in grokking_runs()]


def robustness_run_files(name):
    """`name` (e.g. 'checkpoints.csv') in every run's robustness directory."""
    return [
        f"results/robustness/{run['dataset']}/alpha{run['alpha']}_wd{run['wd']}_seed{run['seed']}/{name}"
        for run in grokking_runs()
    ]


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


def download_flag(wildcards):
    return "--download" if config["data"]["download"] else "--no-download"


def study_outputs():
    """What `snakemake` builds by default: every table and figure of the study."""
    return [
        "results/tables/grokking_runs.csv",
        "results/figures/grokking_curves.png",
        "results/figures/grokking_steps_to_generalise.png",
        "results/tables/robustness_summary.csv",
        "results/tables/robustness_trajectory.csv",
        "results/figures/robustness_histograms.png",
        "results/figures/robustness_trajectory.png",
        "results/figures/robustness_random_vs_adversarial.png",
    ]
