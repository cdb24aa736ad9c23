# robustgen: robustness vs generalisation in neural networks.
# A table of contents: configuration, validation, one rule file per stage, and the study's targets.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# What a wildcard may match (the paths are templated in common.smk)
wildcard_constraints:
    study=r"grokking|capacity|adversarial|representations\.blocks",
    model=MODEL_NAMES,
    method="standard|fgsm|rs_fgsm|n_fgsm|grad_align|pgd",
    eps=r"[0-9][0-9.e+-]*",
    beta=r"[0-9][0-9.e+-]*",
    dataset="[a-z0-9_]+",
    alpha=r"[0-9][0-9.e+-]*",
    wd=r"[0-9][0-9.e+-]*",
    penalty=r"(_jac[0-9][0-9.e+-]*)?",
    seed=r"\d+",
    width=r"\d+",
    depth=r"\d+",
    optimizer="adam|sgd",
    lr=r"[0-9][0-9.e+-]*",
    bs=r"\d+",


include: "workflow/rules/data.smk"
include: "workflow/rules/grokking.smk"
include: "workflow/rules/robustness.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/similarity.smk"
include: "workflow/rules/capacity.smk"
include: "workflow/rules/adversarial.smk"
include: "workflow/rules/representations.smk"
include: "workflow/rules/delayed.smk"
include: "workflow/rules/claims.smk"


rule all:
    default_target: True
    input:
        study_outputs(),


include: "workflow/rules/targets.smk"
