# Stage: delayed robustness (docs/protocols.md §9). Local complexity, the adversarial radius and robust accuracy
# at every milestone snapshot and checkpoint of every grokking run (long runs and GrokAlign's penalised runs
# included); every measure on one step axis; onset steps and their lags over seeds; figures.


rule measure_delayed:
    input:
        data=GROKKING_DATA,
        snapshots=run_path("grokking", "snapshots"),
        checkpoints=run_path("grokking", "checkpoints.pt"),
        run=run_path("grokking", "run.json"),
    output:
        run_path("delayed", "measures.csv"),
    log:
        log_path("delayed", "measures.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        knobs=knobs("measure-delayed"),
    shell:
        "python -m robustgen measure-delayed --knobs {params.knobs:q} --data {input.data}"
        " --snapshots {input.snapshots} --checkpoints {input.checkpoints} --run-json {input.run}"
        " --threads {threads} --output {output} > {log} 2>&1"


rule delayed_tables:
    input:
        measures=delayed_files("delayed", "measures.csv"),
        runs=delayed_files("grokking", "run.json"),
        metrics=delayed_files("grokking", "metrics.csv"),
        checkpoints=delayed_files("grokking", "checkpoints.json"),
        noise=delayed_files("robustness", "trajectory.csv"),
        sensitivity=delayed_files("sensitivity", "trajectory.csv"),
    output:
        trajectory=results_table("delayed_trajectory", "Delayed robustness"),
        onsets=results_table("delayed_onsets", "Delayed robustness"),
        lags=results_table("delayed_lags", "Delayed robustness"),
    log:
        "logs/tables/delayed.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("delayed-tables"),
    shell:
        "python -m robustgen delayed-tables --knobs {params.knobs:q} --measures {input.measures}"
        " --runs {input.runs} --metrics {input.metrics} --checkpoints {input.checkpoints}"
        " --noise {input.noise} --sensitivity {input.sensitivity} --trajectory {output.trajectory}"
        " --onsets {output.onsets} --lags {output.lags} > {log} 2>&1"


rule delayed_figures:
    input:
        trajectory="results/tables/delayed_trajectory.csv",
        onsets="results/tables/delayed_onsets.csv",
        lags="results/tables/delayed_lags.csv",
    output:
        trajectories=report(
            "results/figures/{dataset}/delayed_trajectories.png",
            caption="../report/delayed_trajectories.rst",
            category="Delayed robustness",
            subcategory="Figures",
        ),
        trajectories_pdf="results/figures/{dataset}/delayed_trajectories.pdf",
        lags=report(
            "results/figures/{dataset}/delayed_lags.png",
            caption="../report/delayed_lags.rst",
            category="Delayed robustness",
            subcategory="Figures",
        ),
        lags_pdf="results/figures/{dataset}/delayed_lags.pdf",
    log:
        "logs/figures/{dataset}/delayed.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("delayed-figures"),
    shell:
        "python -m robustgen delayed-figures --knobs {params.knobs:q} --trajectory {input.trajectory}"
        " --onsets {input.onsets} --lags {input.lags} --dataset {wildcards.dataset}"
        " --trajectories {output.trajectories} --trajectories-pdf {output.trajectories_pdf}"
        " --lags-figure {output.lags} --lags-figure-pdf {output.lags_pdf} > {log} 2>&1"
