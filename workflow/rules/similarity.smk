# Stage: representation similarity. Layer × layer CKA within and between each run's checkpoints, between
# seeds, and from every milestone snapshot to the final network; tables and figures.


rule similarity_run:
    input:
        data=GROKKING_DATA,
        checkpoints=run_path("grokking", "checkpoints.pt"),
        snapshots=run_path("grokking", "snapshots"),
        run_json=run_path("grokking", "run.json"),
    output:
        layers=run_path("similarity", "layers.csv"),
        trajectory=run_path("similarity", "trajectory.csv"),
    log:
        log_path("similarity", "run.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=15,
    params:
        similarity=knobs(views.Similarity, "similarity"),
        device=config["device"],
    script:
        STEP


rule similarity_seeds:
    input:
        data=GROKKING_DATA,
        checkpoints=seed_files("checkpoints.pt"),
        runs=seed_files("run.json"),
    output:
        output="results/similarity/{dataset}/alpha{alpha}_wd{wd}_seeds.csv",
    log:
        "logs/similarity/{dataset}/alpha{alpha}_wd{wd}_seeds.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=15,
    params:
        similarity=knobs(views.Similarity, "similarity"),
        device=config["device"],
    script:
        STEP


rule similarity_tables:
    input:
        layers=run_files("similarity", "layers.csv"),
        trajectory=run_files("similarity", "trajectory.csv"),
        seeds=group_files("similarity", "seeds.csv"),
        runs=run_files("grokking", "run.json"),
        metrics=run_files("grokking", "metrics.csv"),
    output:
        layers_table=results_table("cka_layers", "Representation similarity"),
        seeds_table=results_table("cka_seeds", "Representation similarity"),
        trajectory_table=results_table("cka_trajectory", "Representation similarity"),
    log:
        "logs/tables/similarity.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP


rule similarity_figures:
    input:
        layers="results/tables/cka_layers.csv",
        seeds="results/tables/cka_seeds.csv",
        trajectory="results/tables/cka_trajectory.csv",
        runs_table="results/tables/grokking_runs.csv",
    output:
        heatmaps=figure("cka_heatmaps", "Representation similarity"),
        heatmaps_pdf=figure_pdf("cka_heatmaps"),
        by_layer=figure("cka_by_layer", "Representation similarity"),
        by_layer_pdf=figure_pdf("cka_by_layer"),
        trajectory_figure=figure("cka_trajectory", "Representation similarity"),
        trajectory_figure_pdf=figure_pdf("cka_trajectory"),
    log:
        "logs/figures/{dataset}/similarity.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP
