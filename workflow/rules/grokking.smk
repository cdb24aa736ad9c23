# Stage: grokking. Omnigrok's MNIST runs over datasets × α × wd × seeds (some trained long, some again with
# GrokAlign's Jacobian penalty: grokking.long_runs, .jacobian_penalties), their checkpoints, table and figures.


rule train_grokking:
    input:
        data=GROKKING_DATA,
    output:
        metrics=run_path("grokking", "metrics.csv"),
        run_json=run_path("grokking", "run.json"),
        snapshots=directory(run_path("grokking", "snapshots")),
    log:
        log_path("grokking", "train.log"),
    # the longest jobs of the study, and most of it waits on them: scheduled before anything else
    priority: 10
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=2000,
        runtime=60,
    params:
        grokking=knobs(views.GrokkingTraining, "grokking"),
        device=config["device"],
        jacobian_penalty=jacobian_penalty,
        long_run=long_run,
        # how often the training state is saved for a resume changes no result: it reruns nothing
        state=untracked(knobs(views.TrainingState, "grokking")),
    script:
        STEP


rule extract_checkpoints:
    input:
        metrics=run_path("grokking", "metrics.csv"),
        run_json=run_path("grokking", "run.json"),
        snapshots=run_path("grokking", "snapshots"),
    output:
        output_json=run_path("grokking", "checkpoints.json"),
        output_weights=run_path("grokking", "checkpoints.pt"),
    log:
        log_path("grokking", "extract.log"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        checkpoints=knobs(views.CheckpointThresholds, "checkpoints"),
    script:
        STEP


rule grokking_table:
    input:
        runs=run_files("grokking", "run.json"),
        checkpoints=run_files("grokking", "checkpoints.json"),
    output:
        output=results_table("grokking_runs", "Grokking"),
    log:
        "logs/tables/grokking_runs.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        STEP


rule grokking_figures:
    input:
        table="results/tables/grokking_runs.csv",
        runs=dataset_run_files("grokking", "run.json"),
        metrics=dataset_run_files("grokking", "metrics.csv"),
        checkpoints=dataset_run_files("grokking", "checkpoints.json"),
    output:
        curves=figure("grokking_curves", "Grokking"),
        curves_pdf=figure_pdf("grokking_curves"),
        grid=figure("grokking_steps_to_generalise", "Grokking"),
        grid_pdf=figure_pdf("grokking_steps_to_generalise"),
    log:
        "logs/figures/{dataset}/grokking.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP
