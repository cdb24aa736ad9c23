# Stage: grokking. Omnigrok's MNIST runs over datasets × α × wd × seeds (some trained long, some again with
# GrokAlign's Jacobian penalty: grokking.long_runs, .jacobian_penalties), their checkpoints, table and figures.


rule train_grokking:
    input:
        data=GROKKING_DATA,
    output:
        metrics=run_path("grokking", "metrics.csv"),
        run=run_path("grokking", "run.json"),
        snapshots=directory(run_path("grokking", "snapshots")),
    log:
        log_path("grokking", "train.log"),
    # the longest jobs of the study, and most of it waits on them: scheduled before anything else
    priority: 10
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        knobs=knobs("train-grokking"),
        jacobian_penalty=jacobian_penalty,
        long_run=long_run,
    shell:
        "python -m robustgen train-grokking --knobs {params.knobs:q} --knobs {TRAINING_STATE:q}"
        " --init-scale {wildcards.alpha} --weight-decay {wildcards.wd} --seed {wildcards.seed}"
        " --jacobian-penalty {params.jacobian_penalty} --long-run {params.long_run}"
        " --data {input.data} --metrics {output.metrics} --run-json {output.run}"
        " --snapshots {output.snapshots} --threads {threads} > {log} 2>&1"


rule extract_checkpoints:
    input:
        metrics=run_path("grokking", "metrics.csv"),
        run=run_path("grokking", "run.json"),
        snapshots=run_path("grokking", "snapshots"),
    output:
        json=run_path("grokking", "checkpoints.json"),
        weights=run_path("grokking", "checkpoints.pt"),
    log:
        log_path("grokking", "extract.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        knobs=knobs("extract-checkpoints"),
    shell:
        "python -m robustgen extract-checkpoints --knobs {params.knobs:q}"
        " --metrics {input.metrics} --run-json {input.run} --snapshots {input.snapshots}"
        " --output-json {output.json} --output-weights {output.weights} > {log} 2>&1"


rule grokking_table:
    input:
        runs=run_files("grokking", "run.json"),
        checkpoints=run_files("grokking", "checkpoints.json"),
    output:
        results_table("grokking_runs", "Grokking"),
    log:
        "logs/tables/grokking_runs.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m robustgen grokking-table --runs {input.runs}"
        " --checkpoints {input.checkpoints} --output {output} > {log} 2>&1"


rule grokking_figures:
    input:
        table="results/tables/grokking_runs.csv",
        runs=dataset_run_files("grokking", "run.json"),
        metrics=dataset_run_files("grokking", "metrics.csv"),
        checkpoints=dataset_run_files("grokking", "checkpoints.json"),
    output:
        curves=report(
            "results/figures/{dataset}/grokking_curves.png",
            caption="../report/grokking_curves.rst",
            category="Grokking",
            subcategory="Figures",
        ),
        curves_pdf="results/figures/{dataset}/grokking_curves.pdf",
        grid=report(
            "results/figures/{dataset}/grokking_steps_to_generalise.png",
            caption="../report/grokking_steps_to_generalise.rst",
            category="Grokking",
            subcategory="Figures",
        ),
        grid_pdf="results/figures/{dataset}/grokking_steps_to_generalise.pdf",
    log:
        "logs/figures/{dataset}/grokking.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen grokking-figures --runs {input.runs} --metrics {input.metrics}"
        " --checkpoints {input.checkpoints} --table {input.table} --dataset {wildcards.dataset}"
        " --curves {output.curves} --curves-pdf {output.curves_pdf}"
        " --grid {output.grid} --grid-pdf {output.grid_pdf} > {log} 2>&1"
