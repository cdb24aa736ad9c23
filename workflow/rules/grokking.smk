# Stage: grokking. Omnigrok's MNIST runs over datasets × α × wd × seeds, their checkpoints, table and figures.


rule train_grokking:
    input:
        data="results/data/grokking/{dataset}.pt",
    output:
        metrics="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/metrics.csv",
        run="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/run.json",
        snapshots=directory(
            "results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/snapshots"
        ),
    log:
        "logs/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/train.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    params:
        width=config["grokking"]["width"],
        depth=config["grokking"]["depth"],
        lr=config["grokking"]["lr"],
        batch_size=config["grokking"]["batch_size"],
        max_steps=config["grokking"]["max_steps"],
        dtype=config["grokking"]["dtype"],
        device=config["device"],
        eval_per_decade=config["grokking"]["evaluation"]["per_decade"],
        eval_max_interval=config["grokking"]["evaluation"]["max_interval"],
        stop_test_acc=config["grokking"]["stop"]["test_acc"],
        stop_steps_after=config["grokking"]["stop"]["steps_after"],
    shell:
        "python -m robustgen train-grokking --data {input.data}"
        " --metrics {output.metrics} --run-json {output.run} --snapshots {output.snapshots}"
        # not a param on purpose (snakemake --lint notes it): the save interval changes no result, and
        # a param would rerun every training job when it changes
        " --state-every {TRAINING_STATE_EVERY}"
        " --init-scale {wildcards.alpha} --weight-decay {wildcards.wd} --seed {wildcards.seed}"
        " --width {params.width} --depth {params.depth} --lr {params.lr}"
        " --batch-size {params.batch_size} --max-steps {params.max_steps}"
        " --dtype {params.dtype} --device {params.device}"
        " --eval-per-decade {params.eval_per_decade} --eval-max-interval {params.eval_max_interval}"
        " --stop-test-acc {params.stop_test_acc} --stop-steps-after {params.stop_steps_after}"
        " --threads {threads} > {log} 2>&1"


rule extract_checkpoints:
    input:
        metrics="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/metrics.csv",
        run="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/run.json",
        snapshots="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/snapshots",
    output:
        json="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/checkpoints.json",
        weights="results/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/checkpoints.pt",
    log:
        "logs/grokking/{dataset}/alpha{alpha}_wd{wd}_seed{seed}/extract.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        memorised_train_acc=config["checkpoints"]["memorised_train_acc"],
        generalised_test_acc=config["checkpoints"]["generalised_test_acc"],
    shell:
        "python -m robustgen extract-checkpoints"
        " --metrics {input.metrics} --run-json {input.run} --snapshots {input.snapshots}"
        " --memorised-train-acc {params.memorised_train_acc}"
        " --generalised-test-acc {params.generalised_test_acc}"
        " --output-json {output.json} --output-weights {output.weights} > {log} 2>&1"


rule grokking_table:
    input:
        runs=run_files("grokking", "run.json"),
        checkpoints=run_files("grokking", "checkpoints.json"),
    output:
        "results/tables/grokking_runs.csv",
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
        ),
        curves_pdf="results/figures/{dataset}/grokking_curves.pdf",
        grid=report(
            "results/figures/{dataset}/grokking_steps_to_generalise.png",
            caption="../report/grokking_steps_to_generalise.rst",
            category="Grokking",
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
