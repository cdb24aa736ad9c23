# Stage: capacity (Novak et al. Figure 1). Networks of every width × depth (× optimizer × lr × batch size)
# × seed trained to 100 % training accuracy, their sensitivity, the sweep table, correlations and figures.
# The many short jobs share the group "capacity", so a cluster submits them in bundles.


rule train_capacity:
    input:
        data=CAPACITY_DATA,
    output:
        metrics=network_path("metrics.csv"),
        run_json=network_path("run.json"),
        model=network_path("model.pt"),
    log:
        network_log("train.log"),
    group:
        "capacity"
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=30,
    params:
        capacity=knobs(views.CapacityTraining, "capacity"),
        device=config["device"],
    script:
        STEP


rule capacity_sensitivity:
    input:
        data=CAPACITY_DATA,
        model=network_path("model.pt"),
        run_json=network_path("run.json"),
    output:
        output=network_path("sensitivity.csv"),
    log:
        network_log("sensitivity.log"),
    group:
        "capacity"
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=20,
    params:
        capacity=knobs(views.CapacitySensitivity, "capacity"),
        device=config["device"],
    script:
        STEP


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
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        capacity=knobs(views.Summaries, "capacity"),
    script:
        STEP


rule capacity_figures:
    input:
        sweep="results/tables/capacity_sweep.csv",
        correlations="results/tables/capacity_correlations.csv",
    output:
        generalisation=figure("capacity_generalisation", "Capacity"),
        generalisation_pdf=figure_pdf("capacity_generalisation"),
        sensitivity=figure("capacity_sensitivity", "Capacity"),
        sensitivity_pdf=figure_pdf("capacity_sensitivity"),
    log:
        "logs/figures/{dataset}/capacity.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP
