# One target per stage (`snakemake stage_adversarial`): its tables and figures, and what they need, only; the
# paper configs under configs/ name theirs.
for stage in TABLES:

    rule:
        name:
            f"stage_{stage}"
        localrule: True
        input:
            stage_outputs(stage),
