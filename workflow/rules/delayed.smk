# Stage: delayed robustness (docs/protocols.md §9). Local complexity, the adversarial radius and robust accuracy
# at every milestone snapshot and checkpoint of every grokking run (long runs and GrokAlign's penalised runs
# included); every measure on one step axis; onset steps and their lags over seeds; figures.


rule measure_delayed:
    input:
        data=GROKKING_DATA,
        snapshots=run_path("grokking", "snapshots"),
        checkpoints=run_path("grokking", "checkpoints.pt"),
        run_json=run_path("grokking", "run.json"),
    output:
        output=run_path("delayed", "measures.csv"),
    log:
        log_path("delayed", "measures.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=2000,
        runtime=20,
    params:
        delayed=knobs(views.DelayedMeasures, "delayed"),
        robustness=knobs(views.AdversarialSearch, "robustness"),
        device=config["device"],
    script:
        STEP


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
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        delayed=knobs(views.DelayedSummaries, "delayed"),
    script:
        STEP


rule delayed_figures:
    input:
        trajectory="results/tables/delayed_trajectory.csv",
        onsets="results/tables/delayed_onsets.csv",
        lags="results/tables/delayed_lags.csv",
    output:
        trajectories=figure("delayed_trajectories", "Delayed robustness"),
        trajectories_pdf=figure_pdf("delayed_trajectories"),
        lags_figure=figure("delayed_lags", "Delayed robustness"),
        lags_figure_pdf=figure_pdf("delayed_lags"),
    log:
        "logs/figures/{dataset}/delayed.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        delayed=knobs(views.DelayedFigure, "delayed"),
    script:
        STEP
