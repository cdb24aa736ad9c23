# Stage: sensitivity (Novak et al. 2018). Jacobian norm and linear-region transitions of every checkpoint
# and along every run's snapshots; Novak's comparison, the sensitivity trajectory and the 2-D region slices.


rule sensitivity_checkpoints:
    input:
        data=GROKKING_DATA,
        checkpoints=run_path("grokking", "checkpoints.pt"),
        run=run_path("grokking", "run.json"),
    output:
        run_path("sensitivity", "checkpoints.csv"),
    log:
        log_path("sensitivity", "checkpoints.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        knobs=knobs("sensitivity-checkpoints"),
    shell:
        "python -m robustgen sensitivity-checkpoints --knobs {params.knobs:q} --data {input.data}"
        " --checkpoints {input.checkpoints} --run-json {input.run} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule sensitivity_trajectory:
    input:
        data=GROKKING_DATA,
        snapshots=run_path("grokking", "snapshots"),
        run=run_path("grokking", "run.json"),
    output:
        run_path("sensitivity", "trajectory.csv"),
    log:
        log_path("sensitivity", "trajectory.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        knobs=knobs("sensitivity-trajectory"),
    shell:
        "python -m robustgen sensitivity-trajectory --knobs {params.knobs:q} --data {input.data}"
        " --snapshots {input.snapshots} --run-json {input.run} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule sensitivity_tables:
    input:
        checkpoints=run_files("sensitivity", "checkpoints.csv"),
        trajectory=run_files("sensitivity", "trajectory.csv"),
        runs=run_files("grokking", "run.json"),
        metrics=run_files("grokking", "metrics.csv"),
        runs_table="results/tables/grokking_runs.csv",
    output:
        summary=results_table("sensitivity_summary", "Sensitivity"),
        trajectory=results_table("sensitivity_trajectory", "Sensitivity"),
    log:
        "logs/tables/sensitivity.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("sensitivity-tables"),
    shell:
        "python -m robustgen sensitivity-tables --knobs {params.knobs:q}"
        " --checkpoint-items {input.checkpoints} --runs-table {input.runs_table}"
        " --trajectory-items {input.trajectory} --runs {input.runs} --metrics {input.metrics}"
        " --summary {output.summary} --trajectory {output.trajectory} > {log} 2>&1"


rule sensitivity_figures:
    input:
        summary="results/tables/sensitivity_summary.csv",
        trajectory="results/tables/sensitivity_trajectory.csv",
        runs_table="results/tables/grokking_runs.csv",
    output:
        comparison=report(
            "results/figures/{dataset}/sensitivity_comparison.png",
            caption="../report/sensitivity_comparison.rst",
            category="Sensitivity",
            subcategory="Figures",
        ),
        comparison_pdf="results/figures/{dataset}/sensitivity_comparison.pdf",
        trajectory=report(
            "results/figures/{dataset}/sensitivity_trajectory.png",
            caption="../report/sensitivity_trajectory.rst",
            category="Sensitivity",
            subcategory="Figures",
        ),
        trajectory_pdf="results/figures/{dataset}/sensitivity_trajectory.pdf",
    log:
        "logs/figures/{dataset}/sensitivity.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen sensitivity-figures --summary {input.summary} --trajectory {input.trajectory}"
        " --dataset {wildcards.dataset} --runs-table {input.runs_table}"
        " --comparison {output.comparison} --comparison-pdf {output.comparison_pdf}"
        " --trajectory-figure {output.trajectory} --trajectory-figure-pdf {output.trajectory_pdf} > {log} 2>&1"


rule sensitivity_slices:
    input:
        data=GROKKING_DATA,
        checkpoints=dataset_run_files(
            "grokking", "checkpoints.pt", first_seed_only=True
        ),
        runs=dataset_run_files("grokking", "run.json", first_seed_only=True),
    output:
        png=report(
            "results/figures/{dataset}/sensitivity_slices.png",
            caption="../report/sensitivity_slices.rst",
            category="Sensitivity",
            subcategory="Figures",
        ),
        pdf="results/figures/{dataset}/sensitivity_slices.pdf",
    log:
        "logs/figures/{dataset}/sensitivity_slices.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("sensitivity-slices"),
    shell:
        "python -m robustgen sensitivity-slices --knobs {params.knobs:q} --data {input.data}"
        " --checkpoints {input.checkpoints} --runs {input.runs} --threads {threads} --png {output.png} --pdf {output.pdf} > {log} 2>&1"
