# Helpers shared by every stage: config validation, the knobs each step reads, paths, wildcards, targets.
# Each rule hands its job to workflow/scripts/step.py (the script STEP), which calls the function of robustgen.steps
# named like the rule with the rule's files, params and wildcards by name (docs/changing.md). This file reads
# the settings layer only.
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir, "workflow").resolve()))

from robustgen import settings as views
from robustgen.config import tag, validate
from robustgen.settings import ARCHITECTURE, build, section_of, slice_of

MODEL_NAMES = re.sub(r"\?P<\w+>", "", ARCHITECTURE)  # the {model} wildcard: every architecture name

validate(config)

# The GPUs of every job that trains or probes networks (its resource gpu=GPU): one where the config's device is
# CUDA (cuda, cuda:N), none for cpu, mps and auto (which cannot be resolved here, before any job). With
# --resources gpu=1 (profiles/gpu) such jobs take turns on a workstation's GPU; the SLURM executor requests it.
GPU = int(str(config["device"]).startswith("cuda"))
GROKKING = build(views.GrokkingGrid, config["grokking"], "grokking")
CAPACITY = build(views.CapacityGrid, config["capacity"], "capacity")
ADVERSARIAL = build(views.AdversarialGrid, config["adversarial"], "adversarial")
REPRESENTATIONS = build(
    views.RepresentationGrid, config["representations"], "representations"
)
BLOCKS = build(
    views.BlockGrid, config["representations"]["blocks"], "representations.blocks"
)

STEP = "../scripts/step.py"  # every rule's script, relative to its rule file
ENV = "../../envs/robustgen.yaml"  # every rule's software


def knobs(view, section):
    """The part of config[section] that settings class `view` reads, as a rule's param named like the step's
    argument: a change there reruns the step, a change anywhere else does not. A section named by a wildcard
    ("{study}") gives a function of the job's wildcards."""
    if "{" not in section:
        return slice_of(view, section_of(config, section))

    def of_job(wildcards):
        return slice_of(view, section_of(config, section.format(**dict(wildcards.items()))))

    return of_job


def untracked(value):
    """A param no result depends on (how often training saves its state, where the numbers come from): a
    function of the job's input, which Snakemake leaves out of the params that trigger reruns."""

    def of_job(wildcards, input):
        return value

    return of_job


def figure(name, category):
    """results/figures/{dataset}/{name}.png, shown in the report under `category` with the caption
    workflow/report/{name}.rst."""
    return report(
        f"results/figures/{{dataset}}/{name}.png",
        caption=f"../report/{name}.rst",
        category=category,
        subcategory="Figures",
    )


def figure_pdf(name):
    """The PDF beside figure(name, ...)."""
    return f"results/figures/{{dataset}}/{name}.pdf"


# Where things are: a person browsing results/ reads the settings off the paths.
# {penalty}: "" for Omnigrok's runs, "_jac<λ>" for a GrokAlign run with Jacobian penalty λ
RUN = "{dataset}/alpha{alpha}_wd{wd}{penalty}_seed{seed}"
NETWORK = "{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}"
GROKKING_DATA = "results/data/grokking/{dataset}.pt"
CAPACITY_DATA = "results/data/capacity/{dataset}.pt"
ADVERSARIAL_RUN = "{dataset}/{model}/{method}_eps{eps}_beta{beta}_seed{seed}"
ADVERSARIAL_DATA = "results/data/adversarial/{dataset}.pt"
BLOCK_RUN = "{dataset}/{model}/{method}_seed{seed}"
BLOCK_DATA = "results/data/representations.blocks/{dataset}.pt"


def run_path(stage, name):
    """Template of `name` in a grokking run's directory under results/{stage}/."""
    return f"results/{stage}/{RUN}/{name}"


def network_path(name):
    """Template of `name` in a capacity-sweep network's directory."""
    return f"results/capacity/{NETWORK}/{name}"


def log_path(stage, name):
    """Template of a grokking-run job's log: logs/ mirrors results/."""
    return f"logs/{stage}/{RUN}/{name}"


def network_log(name):
    """Template of a capacity-sweep network job's log."""
    return f"logs/capacity/{NETWORK}/{name}"


def adversarial_path(name):
    """Template of `name` in an adversarial-training run's directory."""
    return f"results/adversarial/{ADVERSARIAL_RUN}/{name}"


def adversarial_log(name):
    return f"logs/adversarial/{ADVERSARIAL_RUN}/{name}"


def block_path(name):
    """Template of `name` in a block network's directory (representations.blocks)."""
    return f"results/representations/blocks/{BLOCK_RUN}/{name}"


def block_log(name):
    return f"logs/representations/blocks/{BLOCK_RUN}/{name}"


def block_files(name, seed=None):
    """`name` of the standard and the PGD network of every seed of representations.blocks (of `seed` alone
    where given: a function of the job's wildcards when seed is "{seed}")."""

    def files(seeds):
        return [
            block_path(name).format(dataset=BLOCKS.dataset, model=BLOCKS.model, method=m, seed=s)
            for s in seeds
            for m in ("standard", "pgd")
        ]

    if seed == "{seed}":
        return lambda wildcards: files([wildcards.seed])
    return files(BLOCKS.seeds)


BLOCK_STRUCTURE = "results/representations/blocks/{{dataset}}/{{model}}/seed{{seed}}_{name}.csv"


def block_structure_files(name="structure"):
    """Every seed's block-structure scalars (`structure`) or CKA matrices (`cka`)."""
    return [
        BLOCK_STRUCTURE.format(name=name).format(
            dataset=BLOCKS.dataset, model=BLOCKS.model, seed=s
        )
        for s in BLOCKS.seeds
    ]


def grokking_runs():
    """Every (dataset, α, wd, seed) of the grokking grid (its groups that run), as wildcard dicts."""
    return [
        dict(dataset=dataset, alpha=tag(alpha), wd=tag(wd), penalty="", seed=str(seed))
        for dataset in GROKKING.datasets
        for alpha, wd in grokking_groups()
        for seed in GROKKING.seeds
    ]


def grokking_groups():
    """The (α, wd) groups that run: the init_scales × weight_decays grid less grokking.excluded_groups."""
    excluded = {(g["init_scale"], g["weight_decay"]) for g in GROKKING.excluded_groups}
    return [
        (alpha, wd)
        for alpha in GROKKING.init_scales
        for wd in GROKKING.weight_decays
        if (alpha, wd) not in excluded
    ]


def penalised_runs():
    """GrokAlign's runs: every long-run group × Jacobian penalty λ × seed (docs/protocols.md §9)."""
    return [
        dict(
            dataset=dataset,
            alpha=tag(group["init_scale"]),
            wd=tag(group["weight_decay"]),
            penalty=f"_jac{tag(penalty)}",
            seed=str(seed),
        )
        for dataset in GROKKING.datasets
        for group in GROKKING.long_runs
        if (group["init_scale"], group["weight_decay"]) in grokking_groups()
        for penalty in GROKKING.jacobian_penalties
        for seed in GROKKING.seeds
    ]


def jacobian_penalty(wildcards):
    """λ of a run's {penalty} wildcard (0 for Omnigrok's runs)."""
    return float(wildcards.penalty[len("_jac") :]) if wildcards.penalty else 0.0


def long_run(wildcards):
    """1 if the run trains to max_steps without the early stop (grokking.long_runs; not a penalised run)."""
    group = (float(wildcards.alpha), float(wildcards.wd))
    long_groups = {(g["init_scale"], g["weight_decay"]) for g in GROKKING.long_runs}
    return int(not wildcards.penalty and group in long_groups)


def delayed_files(stage, name, dataset=None):
    """`name` in the directory of every run the delayed-robustness stage follows: the grid and GrokAlign's runs."""
    return [
        run_path(stage, name).format(**r)
        for r in grokking_runs() + penalised_runs()
        if dataset in (None, r["dataset"])
    ]


def run_files(stage, name, dataset=None, seeds=None):
    """`name` in the directory of every run under results/{stage}/ (of one dataset, some seeds)."""
    return [
        run_path(stage, name).format(**r)
        for r in grokking_runs()
        if dataset in (None, r["dataset"])
        and (seeds is None or int(r["seed"]) in seeds)
    ]


def dataset_run_files(stage, name, first_seed_only=False):
    """Input function: `name` in the run directories of the job's {dataset} (or of its first seed)."""
    seeds = [min(GROKKING.seeds)] if first_seed_only else None

    def files(wildcards):
        return run_files(stage, name, wildcards.dataset, seeds)

    return files


def group_files(stage, name):
    """`name` of every (dataset, α, wd) group under results/{stage}/ (one file for all its seeds)."""
    groups = sorted({(r["dataset"], r["alpha"], r["wd"]) for r in grokking_runs()})
    return [f"results/{stage}/{d}/alpha{a}_wd{w}_{name}" for d, a, w in groups]


def seed_files(name):
    """Input function: `name` in the grokking run directory of every seed of the job's (dataset, α, wd)."""

    def files(wildcards):
        return [
            run_path("grokking", name).format(
                **dict(wildcards.items(), penalty="", seed=s)
            )
            for s in GROKKING.seeds
        ]

    return files


def capacity_networks():
    """Every network of the capacity sweep, as wildcard dicts."""
    c = CAPACITY
    return [
        dict(
            dataset=c.dataset, width=w, depth=d, optimizer=o, lr=tag(lr), bs=bs, seed=s
        )
        for w in c.widths
        for d in c.depths
        for o in c.optimizers
        for lr in c.lrs
        for bs in c.batch_sizes
        for s in c.seeds
    ]


def capacity_network_files(name):
    """`name` in every capacity-sweep network's directory."""
    return [network_path(name).format(**n) for n in capacity_networks()]


def adversarial_runs():
    """Every run of the adversarial stage: method × ε × seed on the clean data (standard training, which ε
    does not change, once per seed, at the smallest ε), and the feature sweep's β × seed at its method and ε
    (a run in both is run once)."""
    a = ADVERSARIAL
    epsilons = {
        m: [min(a.epsilons)] if m == "standard" else a.epsilons for m in a.methods
    }
    grid = {(m, e, 0.0, s) for m in a.methods for e in epsilons[m] for s in a.seeds}
    grid |= {
        (a.feature.method, a.feature.epsilon, b, s)
        for b in a.feature.betas
        for s in a.seeds
    }
    return [
        dict(
            dataset=a.dataset,
            model=a.model,
            method=m,
            eps=tag(e),
            beta=tag(b),
            seed=str(s),
        )
        for m, e, b, s in sorted(grid)
    ]


def adversarial_files(name):
    """`name` in every adversarial-training run's directory."""
    return [adversarial_path(name).format(**r) for r in adversarial_runs()]


def probed_adversarial_runs():
    """The runs the study's probes measure: those trained at an ε of adversarial.probes.epsilons (every run
    where it is empty), every standard run and the feature sweep's."""
    probed = {tag(e) for e in ADVERSARIAL.probes.epsilons}
    return [
        r
        for r in adversarial_runs()
        if not probed
        or r["eps"] in probed
        or r["method"] == "standard"
        or r["beta"] != "0"
    ]


def probed_adversarial_files(name):
    """`name` in the directory of every run the study's probes measure (`probed_adversarial_runs`)."""
    return [adversarial_path(name).format(**r) for r in probed_adversarial_runs()]


def checked_adversarial_files(name):
    """`name` in the directory of every probed run on the clean data (β = 0), which AutoAttack checks: a
    feature-sweep input x + β·v_y lies outside [0, 1], where AutoAttack's clipping would leave the ε-ball."""
    return [
        adversarial_path(name).format(**r)
        for r in probed_adversarial_runs()
        if r["beta"] == "0"
    ]


def representation_runs(family=False):
    """The networks the representation stage compares, trained by the adversarial stage's rule on its data -
    standard, PGD and FGSM of representations.model at representations.epsilon × seed; with `family`, standard
    and PGD of the grokking architecture (representations.grokking)."""
    r = REPRESENTATIONS
    model, eps = (
        (r.grokking.model, r.grokking.epsilon) if family else (r.model, r.epsilon)
    )
    methods = ["standard", "pgd"] if family else ["standard", "pgd", "fgsm"]
    return [
        dict(
            dataset=ADVERSARIAL.dataset,
            model=model,
            method=m,
            eps=tag(eps),
            beta="0",
            seed=str(s),
        )
        for m in methods
        for s in r.seeds
    ]


def representation_files(name, family=False):
    return [adversarial_path(name).format(**r) for r in representation_runs(family)]


# The grokking checkpoints are placed beside their own family where both stages see the same images.
PLACE_GROKKING = ADVERSARIAL.dataset in GROKKING.datasets


# What each stage puts in results/tables/ and, per dataset, in results/figures/{dataset}/.
TABLES = {
    "grokking": ["grokking_runs"],
    "robustness": ["robustness_summary", "robustness_trajectory"],
    "sensitivity": ["sensitivity_summary", "sensitivity_trajectory"],
    "similarity": ["cka_layers", "cka_seeds", "cka_trajectory"],
    "capacity": ["capacity_sweep", "capacity_correlations"],
    "adversarial": ["adversarial_runs", "adversarial_onset", "adversarial_probes"]
    + (["adversarial_autoattack"] if ADVERSARIAL.autoattack.images else []),
    "representations": [
        "representation_structure",
        "representation_summary",
        "representation_layers",
        "representation_blocks",
    ]
    + (
        ["representation_grokking", "representation_grokking_trajectory"]
        if PLACE_GROKKING
        else []
    ),
    "delayed": ["delayed_trajectory", "delayed_onsets", "delayed_lags"],
}
FIGURES = {
    "grokking": ["grokking_curves", "grokking_steps_to_generalise"],
    "robustness": [
        "robustness_histograms",
        "robustness_trajectory",
        "robustness_random_vs_adversarial",
        "robustness_accuracy",
    ],
    "sensitivity": [
        "sensitivity_comparison",
        "sensitivity_trajectory",
        "sensitivity_slices",
    ],
    "similarity": ["cka_heatmaps", "cka_by_layer", "cka_trajectory"],
    "capacity": ["capacity_generalisation", "capacity_sensitivity"],
    "adversarial": [
        "adversarial_co",
        "adversarial_curves",
        "adversarial_feature",
        "adversarial_probes",
    ],
    "representations": [
        "representation_heatmaps",
        "representation_structure",
        "representation_layers",
    ]
    + (["representation_grokking"] if PLACE_GROKKING else []),
    "delayed": ["delayed_trajectories", "delayed_lags"],
}


def results_table(name, category):
    """results/tables/{name}.csv, also shown in the report beside its stage's figures."""
    return report(
        f"results/tables/{name}.csv",
        caption="../report/results_table.rst",
        category=category,
        subcategory="Tables",
    )


def study_tables():
    """Every stage's table under results/tables/ (what the claims are measured from)."""
    return [f"results/tables/{name}.csv" for names in TABLES.values() for name in names]


def study_stamp():
    """Where the study's numbers come from, for the pages generated from it: the commit, a digest of the whole
    config, the cores. Passed outside params: a new commit alone reruns nothing."""
    import hashlib
    import json
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "-C", workflow.basedir, "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    digest = hashlib.sha256(
        json.dumps(config, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    try:
        cores = workflow.cores
    except Exception:  # no --cores (a report, a lint): no job runs, the stamp is not written
        cores = None
    return json.dumps(dict(commit=commit, config_digest=digest, cores=cores))


STUDY_STAMP = study_stamp()


def stage_outputs(stage):
    """A stage's tables, and its figures for every dataset it runs on."""
    datasets = {
        "capacity": [CAPACITY.dataset],
        "adversarial": [ADVERSARIAL.dataset],
        "representations": [ADVERSARIAL.dataset],
    }.get(stage, GROKKING.datasets)
    blocks = (
        [f"results/figures/{BLOCKS.dataset}/representation_blocks.png"]
        if stage == "representations"
        else []
    )
    return (
        [f"results/tables/{name}.csv" for name in TABLES[stage]]
        + [
            f"results/figures/{dataset}/{name}.png"
            for dataset in datasets
            for name in FIGURES[stage]
        ]
        + blocks
    )


def study_outputs():
    """What `snakemake` builds by default: every stage's tables and figures, and the claims."""
    claims = ["results/tables/claims.csv", "results/claims/claims.html"]
    return [path for stage in TABLES for path in stage_outputs(stage)] + claims
