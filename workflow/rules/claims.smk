# Stage: the study's conclusions (docs/protocols.md §11). Every headline claim evaluated from the finished tables
# with a verdict; the claims page that opens the report; a figure of every claim's effect and interval.


rule claims:
    input:
        tables=study_tables(),
        runs=run_files("grokking", "run.json"),
    output:
        output=results_table("claims", "Claims"),
        stamp_json="results/claims/stamp.json",
        page=report(
            "results/claims/claims.html",
            caption="../report/claims_page.rst",
            category="Claims",
            subcategory="Tables",
        ),
        figure=report(
            "results/figures/claims.png",
            caption="../report/claims_figure.rst",
            category="Claims",
            subcategory="Figures",
        ),
        figure_pdf="results/figures/claims.pdf",
    log:
        "logs/tables/claims.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        claims=knobs(views.ClaimRule, "claims"),
        grokking=knobs(views.LongRunGroups, "grokking"),
        # where the numbers come from (commit, config digest, cores): a new commit alone reruns nothing
        stamp=untracked(STUDY_STAMP),
    script:
        STEP
