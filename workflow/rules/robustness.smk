# Stage: robustness. Random-noise and adversarial radii of every checkpoint, and the random-noise radius
# along every run's snapshots (the robustness trajectory through grokking); tables and figures.


rule probe_checkpoints:
    input:
        data="results/data/grokking/{dataset}.pt",
        checkpoints="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/checkpoints.pt",
        run="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/run.json",
    output:
        "results/robustness/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/checkpoints.csv",
    log:
        "logs/robustness/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/checkpoints.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        probes=probe_args(grid_and_adversarial=True),
    shell:
        "python -m robustgen probe-checkpoints --data {input.data} --checkpoints {input.checkpoints}"
        " --run-json {input.run} {params.probes} --threads {threads} --output {output} > {log} 2>&1"


rule probe_trajectory:
    input:
        data="results/data/grokking/{dataset}.pt",
        snapshots="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/snapshots",
        run="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/run.json",
    output:
        "results/robustness/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/trajectory.csv",
    log:
        "logs/robustness/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/trajectory.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        probes=probe_args(grid_and_adversarial=False),
        snapshots=config["robustness"]["trajectory"]["snapshots"],
        images=config["robustness"]["trajectory"]["images"],
    shell:
        "python -m robustgen probe-trajectory --data {input.data} --snapshots {input.snapshots}"
        " --run-json {input.run} {params.probes} --trajectory-snapshots {params.snapshots}"
        " --trajectory-images {params.images} --threads {threads} --output {output} > {log} 2>&1"


rule robustness_tables:
    input:
        checkpoints=run_files("robustness", "checkpoints.csv"),
        trajectory=run_files("robustness", "trajectory.csv"),
        runs=run_files("grokking", "run.json"),
        metrics=run_files("grokking", "metrics.csv"),
    output:
        summary="results/tables/robustness_summary.csv",
        trajectory="results/tables/robustness_trajectory.csv",
    log:
        "logs/tables/robustness.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        resamples=config["robustness"]["bootstrap"]["resamples"],
        seed=config["robustness"]["bootstrap"]["seed"],
    shell:
        "python -m robustgen robustness-tables --checkpoint-probes {input.checkpoints}"
        " --trajectory-probes {input.trajectory} --runs {input.runs} --metrics {input.metrics}"
        " --resamples {params.resamples} --bootstrap-seed {params.seed}"
        " --summary {output.summary} --trajectory {output.trajectory} > {log} 2>&1"


rule robustness_figures:
    input:
        checkpoints=dataset_run_files("robustness", "checkpoints.csv"),
        trajectory="results/tables/robustness_trajectory.csv",
    output:
        histograms=report(
            "results/figures/{dataset}/robustness_histograms.png",
            caption="../report/robustness_histograms.rst",
            category="Robustness",
        ),
        histograms_pdf="results/figures/{dataset}/robustness_histograms.pdf",
        trajectory=report(
            "results/figures/{dataset}/robustness_trajectory.png",
            caption="../report/robustness_trajectory.rst",
            category="Robustness",
        ),
        trajectory_pdf="results/figures/{dataset}/robustness_trajectory.pdf",
        random_vs_adversarial=report(
            "results/figures/{dataset}/robustness_random_vs_adversarial.png",
            caption="../report/robustness_random_vs_adversarial.rst",
            category="Robustness",
        ),
        random_vs_adversarial_pdf="results/figures/{dataset}/robustness_random_vs_adversarial.pdf",
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
        " --trajectory {input.trajectory} --dataset {wildcards.dataset}"
        " --histograms {output.histograms} --histograms-pdf {output.histograms_pdf}"
        " --trajectory-figure {output.trajectory} --trajectory-figure-pdf {output.trajectory_pdf}"
        " --random-vs-adversarial {output.random_vs_adversarial}"
        " --random-vs-adversarial-pdf {output.random_vs_adversarial_pdf} > {log} 2>&1"
