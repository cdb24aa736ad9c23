# Stage: capacity (Novak et al. Figure 1). Networks of every width × depth (× optimizer × lr × batch size)
# × seed trained to 100 % training accuracy, their sensitivity, the sweep table, correlations and figures.
# The many short jobs share the group "capacity", so a cluster submits them in bundles.


rule train_capacity:
    input:
        data=CAPACITY_DATA,
    output:
        metrics=network_path("metrics.csv"),
        run=network_path("run.json"),
        model=network_path("model.pt"),
    log:
        network_log("train.log"),
    group:
        "capacity"
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        knobs=knobs("train-capacity"),
    shell:
        "python -m robustgen train-capacity --knobs {params.knobs:q}"
        " --width {wildcards.width} --depth {wildcards.depth} --optimizer {wildcards.optimizer}"
        " --lr {wildcards.lr} --batch-size {wildcards.bs} --seed {wildcards.seed}"
        " --data {input.data} --metrics {output.metrics} --run-json {output.run}"
        " --model {output.model} --threads {threads} > {log} 2>&1"


rule capacity_sensitivity:
    input:
        data=CAPACITY_DATA,
        model=network_path("model.pt"),
        run=network_path("run.json"),
    output:
        network_path("sensitivity.csv"),
    log:
        network_log("sensitivity.log"),
    group:
        "capacity"
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        knobs=knobs("capacity-sensitivity"),
    shell:
        "python -m robustgen capacity-sensitivity --knobs {params.knobs:q} --data {input.data}"
        " --model {input.model} --run-json {input.run} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule capacity_tables:
    input:
        runs=capacity_network_files("run.json"),
        sensitivity=capacity_network_files("sensitivity.csv"),
    output:
        sweep=results_table("capacity_sweep", "Capacity"),
        correlations=results_table("capacity_correlations", "Capacity"),
    log:
        "logs/tables/capacity.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("capacity-tables"),
    shell:
        "python -m robustgen capacity-tables --knobs {params.knobs:q} --runs {input.runs}"
        " --items {input.sensitivity}"
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
            subcategory="Figures",
        ),
        generalisation_pdf="results/figures/{dataset}/capacity_generalisation.pdf",
        sensitivity=report(
            "results/figures/{dataset}/capacity_sensitivity.png",
            caption="../report/capacity_sensitivity.rst",
            category="Capacity",
            subcategory="Figures",
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
