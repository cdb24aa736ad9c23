# Stage: robustness. Random-noise and adversarial radii of every checkpoint, and the random-noise radius
# along every run's snapshots (the robustness trajectory through grokking); tables and figures.


rule probe_checkpoints:
    input:
        data=GROKKING_DATA,
        checkpoints=run_path("grokking", "checkpoints.pt"),
        run_json=run_path("grokking", "run.json"),
    output:
        output=run_path("robustness", "checkpoints.csv"),
    log:
        log_path("robustness", "checkpoints.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=2000,
        runtime=20,
    params:
        robustness=knobs(views.CheckpointProbes, "robustness"),
        device=config["device"],
    script:
        STEP


rule probe_trajectory:
    input:
        data=GROKKING_DATA,
        snapshots=run_path("grokking", "snapshots"),
        run_json=run_path("grokking", "run.json"),
    output:
        output=run_path("robustness", "trajectory.csv"),
    log:
        log_path("robustness", "trajectory.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=2000,
        runtime=20,
    params:
        robustness=knobs(views.TrajectoryProbes, "robustness"),
        device=config["device"],
    script:
        STEP


rule robustness_tables:
    input:
        checkpoint_probes=run_files("robustness", "checkpoints.csv"),
        trajectory_probes=run_files("robustness", "trajectory.csv"),
        runs=run_files("grokking", "run.json"),
        metrics=run_files("grokking", "metrics.csv"),
        runs_table="results/tables/grokking_runs.csv",
    output:
        summary=results_table("robustness_summary", "Robustness"),
        trajectory=results_table("robustness_trajectory", "Robustness"),
    log:
        "logs/tables/robustness.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        robustness=knobs(views.Summaries, "robustness"),
    script:
        STEP


rule robustness_figures:
    input:
        checkpoint_probes=dataset_run_files("robustness", "checkpoints.csv"),
        trajectory="results/tables/robustness_trajectory.csv",
        runs_table="results/tables/grokking_runs.csv",
    output:
        histograms=figure("robustness_histograms", "Robustness"),
        histograms_pdf=figure_pdf("robustness_histograms"),
        trajectory_figure=figure("robustness_trajectory", "Robustness"),
        trajectory_figure_pdf=figure_pdf("robustness_trajectory"),
        random_vs_adversarial=figure("robustness_random_vs_adversarial", "Robustness"),
        random_vs_adversarial_pdf=figure_pdf("robustness_random_vs_adversarial"),
        accuracy=figure("robustness_accuracy", "Robustness"),
        accuracy_pdf=figure_pdf("robustness_accuracy"),
    log:
        "logs/figures/{dataset}/robustness.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP
