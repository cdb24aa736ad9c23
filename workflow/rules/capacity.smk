# Stage: capacity (Novak et al. Figure 1). Networks of every width × depth (× optimizer × lr × batch size)
# × seed trained to 100 % training accuracy, their sensitivity, the sweep table, correlations and figures.
# The many short jobs share the group "capacity", so a cluster submits them in bundles.


rule train_capacity:
    input:
        data="results/data/capacity/{dataset}.pt",
    output:
        metrics="results/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/metrics.csv",
        run="results/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/run.json",
        model="results/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/model.pt",
    log:
        "logs/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/train.log",
    group:
        "capacity"
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        max_epochs=config["capacity"]["max_epochs"],
        dtype=config["capacity"]["dtype"],
        device=config["device"],
    shell:
        "python -m robustgen train-capacity --data {input.data} --metrics {output.metrics}"
        " --run-json {output.run} --model {output.model} --width {wildcards.width} --depth {wildcards.depth}"
        " --optimizer {wildcards.optimizer} --lr {wildcards.lr} --batch-size {wildcards.bs}"
        " --seed {wildcards.seed} --max-epochs {params.max_epochs} --dtype {params.dtype}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule capacity_sensitivity:
    input:
        data="results/data/capacity/{dataset}.pt",
        model="results/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/model.pt",
        run="results/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/run.json",
    output:
        "results/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/sensitivity.csv",
    log:
        "logs/capacity/{dataset}/w{width}_d{depth}_{optimizer}_lr{lr}_bs{bs}_seed{seed}/sensitivity.log",
    group:
        "capacity"
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        sizes=capacity_sensitivity_args(),
    shell:
        "python -m robustgen capacity-sensitivity --data {input.data} --model {input.model}"
        " --run-json {input.run} {params.sizes} --threads {threads} --output {output} > {log} 2>&1"


rule capacity_tables:
    input:
        runs=capacity_network_files("run.json"),
        sensitivity=capacity_network_files("sensitivity.csv"),
    output:
        sweep="results/tables/capacity_sweep.csv",
        correlations="results/tables/capacity_correlations.csv",
    log:
        "logs/tables/capacity.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        resamples=config["capacity"]["bootstrap"]["resamples"],
        seed=config["capacity"]["bootstrap"]["seed"],
    shell:
        "python -m robustgen capacity-tables --runs {input.runs} --items {input.sensitivity}"
        " --resamples {params.resamples} --bootstrap-seed {params.seed}"
        " --sweep {output.sweep} --correlations {output.correlations} > {log} 2>&1"


rule capacity_figures:
    input:
        sweep="results/tables/capacity_sweep.csv",
        correlations="results/tables/capacity_correlations.csv",
    output:
        generalisation=report(
            "results/figures/{dataset}/capacity_generalisation.png",
            caption="../report/capacity_generalisation.rst",
            category="Capacity",
        ),
        generalisation_pdf="results/figures/{dataset}/capacity_generalisation.pdf",
        sensitivity=report(
            "results/figures/{dataset}/capacity_sensitivity.png",
            caption="../report/capacity_sensitivity.rst",
            category="Capacity",
        ),
        sensitivity_pdf="results/figures/{dataset}/capacity_sensitivity.pdf",
    log:
        "logs/figures/{dataset}/capacity.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen capacity-figures --sweep {input.sweep} --correlations {input.correlations}"
        " --dataset {wildcards.dataset}"
        " --generalisation {output.generalisation} --generalisation-pdf {output.generalisation_pdf}"
        " --sensitivity {output.sensitivity} --sensitivity-pdf {output.sensitivity_pdf} > {log} 2>&1"
