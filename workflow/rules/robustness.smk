# Stage: robustness. Random-noise and adversarial radii of every checkpoint, and the random-noise radius
# along every run's snapshots (the robustness trajectory through grokking); tables and figures.


rule probe_checkpoints:
    input:
        data=GROKKING_DATA,
        checkpoints=run_path("grokking", "checkpoints.pt"),
        run=run_path("grokking", "run.json"),
    output:
        run_path("robustness", "checkpoints.csv"),
    log:
        log_path("robustness", "checkpoints.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        knobs=knobs("probe-checkpoints"),
    shell:
        "python -m robustgen probe-checkpoints --knobs {params.knobs:q} --data {input.data}"
        " --checkpoints {input.checkpoints} --run-json {input.run} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule probe_trajectory:
    input:
        data=GROKKING_DATA,
        snapshots=run_path("grokking", "snapshots"),
        run=run_path("grokking", "run.json"),
    output:
        run_path("robustness", "trajectory.csv"),
    log:
        log_path("robustness", "trajectory.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        knobs=knobs("probe-trajectory"),
    shell:
        "python -m robustgen probe-trajectory --knobs {params.knobs:q} --data {input.data}"
        " --snapshots {input.snapshots} --run-json {input.run} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule robustness_tables:
    input:
        checkpoints=run_files("robustness", "checkpoints.csv"),
        trajectory=run_files("robustness", "trajectory.csv"),
        runs=run_files("grokking", "run.json"),
        metrics=run_files("grokking", "metrics.csv"),
        runs_table="results/tables/grokking_runs.csv",
    output:
        summary=results_table("robustness_summary", "Robustness"),
        trajectory=results_table("robustness_trajectory", "Robustness"),
    log:
        "logs/tables/robustness.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("robustness-tables"),
    shell:
        "python -m robustgen robustness-tables --knobs {params.knobs:q}"
        " --checkpoint-probes {input.checkpoints} --trajectory-probes {input.trajectory}"
        " --runs {input.runs} --metrics {input.metrics} --runs-table {input.runs_table}"
        " --summary {output.summary} --trajectory {output.trajectory} > {log} 2>&1"


rule robustness_figures:
    input:
        checkpoints=dataset_run_files("robustness", "checkpoints.csv"),
        trajectory="results/tables/robustness_trajectory.csv",
        runs_table="results/tables/grokking_runs.csv",
    output:
        histograms=report(
            "results/figures/{dataset}/robustness_histograms.png",
            caption="../report/robustness_histograms.rst",
            category="Robustness",
            subcategory="Figures",
        ),
        histograms_pdf="results/figures/{dataset}/robustness_histograms.pdf",
        trajectory=report(
            "results/figures/{dataset}/robustness_trajectory.png",
            caption="../report/robustness_trajectory.rst",
            category="Robustness",
            subcategory="Figures",
        ),
        trajectory_pdf="results/figures/{dataset}/robustness_trajectory.pdf",
        random_vs_adversarial=report(
            "results/figures/{dataset}/robustness_random_vs_adversarial.png",
            caption="../report/robustness_random_vs_adversarial.rst",
            category="Robustness",
            subcategory="Figures",
        ),
        random_vs_adversarial_pdf="results/figures/{dataset}/robustness_random_vs_adversarial.pdf",
        accuracy=report(
            "results/figures/{dataset}/robustness_accuracy.png",
            caption="../report/robustness_accuracy.rst",
            category="Robustness",
            subcategory="Figures",
        ),
        accuracy_pdf="results/figures/{dataset}/robustness_accuracy.pdf",
    log:
        "logs/figures/{dataset}/robustness.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen robustness-figures --checkpoint-probes {input.checkpoints}"
        " --trajectory {input.trajectory} --dataset {wildcards.dataset} --runs-table {input.runs_table}"
        " --histograms {output.histograms} --histograms-pdf {output.histograms_pdf}"
        " --trajectory-figure {output.trajectory} --trajectory-figure-pdf {output.trajectory_pdf}"
        " --random-vs-adversarial {output.random_vs_adversarial}"
        " --random-vs-adversarial-pdf {output.random_vs_adversarial_pdf}"
        " --accuracy {output.accuracy} --accuracy-pdf {output.accuracy_pdf} > {log} 2>&1"
