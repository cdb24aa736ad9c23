# Stage: sensitivity (Novak et al. 2018). Jacobian norm and linear-region transitions of every checkpoint
# and along every run's snapshots; Novak's comparison, the sensitivity trajectory and the 2-D region slices.


rule sensitivity_checkpoints:
    input:
        data=GROKKING_DATA,
        checkpoints=run_path("grokking", "checkpoints.pt"),
        run_json=run_path("grokking", "run.json"),
    output:
        output=run_path("sensitivity", "checkpoints.csv"),
    log:
        log_path("sensitivity", "checkpoints.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=20,
    params:
        sensitivity=knobs(views.Sensitivity, "sensitivity"),
        device=config["device"],
    script:
        STEP


rule sensitivity_trajectory:
    input:
        data=GROKKING_DATA,
        snapshots=run_path("grokking", "snapshots"),
        run_json=run_path("grokking", "run.json"),
    output:
        output=run_path("sensitivity", "trajectory.csv"),
    log:
        log_path("sensitivity", "trajectory.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=30,
    params:
        sensitivity=knobs(views.SensitivityTrajectory, "sensitivity"),
        device=config["device"],
    script:
        STEP


rule sensitivity_tables:
    input:
        checkpoint_items=run_files("sensitivity", "checkpoints.csv"),
        trajectory_items=run_files("sensitivity", "trajectory.csv"),
        runs=run_files("grokking", "run.json"),
        metrics=run_files("grokking", "metrics.csv"),
        runs_table="results/tables/grokking_runs.csv",
    output:
        summary=results_table("sensitivity_summary", "Sensitivity"),
        trajectory=results_table("sensitivity_trajectory", "Sensitivity"),
    log:
        "logs/tables/sensitivity.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        sensitivity=knobs(views.Summaries, "sensitivity"),
    script:
        STEP


rule sensitivity_figures:
    input:
        summary="results/tables/sensitivity_summary.csv",
        trajectory="results/tables/sensitivity_trajectory.csv",
        runs_table="results/tables/grokking_runs.csv",
    output:
        comparison=figure("sensitivity_comparison", "Sensitivity"),
        comparison_pdf=figure_pdf("sensitivity_comparison"),
        trajectory_figure=figure("sensitivity_trajectory", "Sensitivity"),
        trajectory_figure_pdf=figure_pdf("sensitivity_trajectory"),
    log:
        "logs/figures/{dataset}/sensitivity.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP


rule sensitivity_slices:
    input:
        data=GROKKING_DATA,
        checkpoints=dataset_run_files(
            "grokking", "checkpoints.pt", first_seed_only=True
        ),
        runs=dataset_run_files("grokking", "run.json", first_seed_only=True),
    output:
        png=figure("sensitivity_slices", "Sensitivity"),
        pdf=figure_pdf("sensitivity_slices"),
    log:
        "logs/figures/{dataset}/sensitivity_slices.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        sensitivity=knobs(views.RegionSlices, "sensitivity"),
    script:
        STEP
