# Stage: the study's conclusions (docs/protocols.md §11). Every headline claim evaluated from the finished tables
# with a verdict; the claims page that opens the report; a figure of every claim's effect and interval.
# The stamp (commit, config digest, cores) reaches the shell outside params on purpose (`snakemake --lint` notes
# it): a new commit alone reruns nothing.


rule claims:
    input:
        tables=study_tables(),
        runs=run_files("grokking", "run.json"),
    output:
        table=results_table("claims", "Claims"),
        stamp="results/claims/stamp.json",
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
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        knobs=knobs("claims"),
    shell:
        "python -m robustgen claims --knobs {params.knobs:q} --stamp {STUDY_STAMP:q} --tables {input.tables} --runs {input.runs}"
        " --output {output.table} --stamp-json {output.stamp} --page {output.page}"
        " --figure {output.figure} --figure-pdf {output.figure_pdf} > {log} 2>&1"
