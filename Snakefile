# robustgen: robustness vs generalisation in neural networks.
# A table of contents: configuration, validation, one rule file per stage, and the study's targets.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
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
