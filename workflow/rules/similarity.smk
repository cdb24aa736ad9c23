# Stage: representation similarity. Layer × layer CKA within and between each run's checkpoints, between
# seeds, and from every milestone snapshot to the final network; tables and figures.


rule similarity_run:
    input:
        data=GROKKING_DATA,
        checkpoints=run_path("grokking", "checkpoints.pt"),
        snapshots=run_path("grokking", "snapshots"),
        run=run_path("grokking", "run.json"),
    output:
        layers=run_path("similarity", "layers.csv"),
        trajectory=run_path("similarity", "trajectory.csv"),
    log:
        log_path("similarity", "run.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        knobs=knobs("similarity-run"),
    shell:
        "python -m robustgen similarity-run --knobs {params.knobs:q} --data {input.data}"
        " --checkpoints {input.checkpoints} --snapshots {input.snapshots} --run-json {input.run}"
        " --threads {threads}"
        " --layers {output.layers} --trajectory {output.trajectory} > {log} 2>&1"


rule similarity_seeds:
    input:
        data=GROKKING_DATA,
        checkpoints=seed_files("checkpoints.pt"),
        runs=seed_files("run.json"),
    output:
        "results/similarity/{dataset}/alpha{alpha}_wd{wd}_seeds.csv",
    log:
        "logs/similarity/{dataset}/alpha{alpha}_wd{wd}_seeds.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        knobs=knobs("similarity-seeds"),
    shell:
        "python -m robustgen similarity-seeds --knobs {params.knobs:q} --data {input.data}"
        " --checkpoints {input.checkpoints} --runs {input.runs} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule similarity_tables:
    input:
        layers=run_files("similarity", "layers.csv"),
        trajectory=run_files("similarity", "trajectory.csv"),
        seeds=group_files("similarity", "seeds.csv"),
        runs=run_files("grokking", "run.json"),
        metrics=run_files("grokking", "metrics.csv"),
    output:
        layers=results_table("cka_layers", "Representation similarity"),
        seeds=results_table("cka_seeds", "Representation similarity"),
        trajectory=results_table("cka_trajectory", "Representation similarity"),
    log:
        "logs/tables/similarity.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen similarity-tables --layers {input.layers} --seeds {input.seeds}"
        " --trajectory {input.trajectory} --runs {input.runs} --metrics {input.metrics}"
        " --layers-table {output.layers} --seeds-table {output.seeds}"
        " --trajectory-table {output.trajectory} > {log} 2>&1"


rule similarity_figures:
    input:
        layers="results/tables/cka_layers.csv",
        seeds="results/tables/cka_seeds.csv",
        trajectory="results/tables/cka_trajectory.csv",
        runs_table="results/tables/grokking_runs.csv",
    output:
        heatmaps=report(
            "results/figures/{dataset}/cka_heatmaps.png",
            caption="../report/cka_heatmaps.rst",
            category="Representation similarity",
            subcategory="Figures",
        ),
        heatmaps_pdf="results/figures/{dataset}/cka_heatmaps.pdf",
        by_layer=report(
            "results/figures/{dataset}/cka_by_layer.png",
            caption="../report/cka_by_layer.rst",
            category="Representation similarity",
            subcategory="Figures",
        ),
        by_layer_pdf="results/figures/{dataset}/cka_by_layer.pdf",
        trajectory=report(
            "results/figures/{dataset}/cka_trajectory.png",
            caption="../report/cka_trajectory.rst",
            category="Representation similarity",
            subcategory="Figures",
        ),
        trajectory_pdf="results/figures/{dataset}/cka_trajectory.pdf",
    log:
        "logs/figures/{dataset}/similarity.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen similarity-figures --layers {input.layers} --seeds {input.seeds}"
        " --trajectory {input.trajectory} --dataset {wildcards.dataset} --runs-table {input.runs_table}"
        " --heatmaps {output.heatmaps} --heatmaps-pdf {output.heatmaps_pdf}"
        " --by-layer {output.by_layer} --by-layer-pdf {output.by_layer_pdf}"
        " --trajectory-figure {output.trajectory} --trajectory-figure-pdf {output.trajectory_pdf} > {log} 2>&1"
