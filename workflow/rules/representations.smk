# Stage: robust vs standard representations. Standard, PGD and FGSM networks of one deeper architecture (trained by
# the adversarial stage's rule) and each seed's untrained control compared layer by layer with CKA on benign and
# PGD inputs, against the seed baseline; the grokking checkpoints beside standard and robust networks of their own
# architecture.


rule compare_representations:
    input:
        data=ADVERSARIAL_DATA,
        runs=representation_files("run.json"),
        networks=representation_files("networks.pt"),
    output:
        output=f"results/representations/{{dataset}}/{REPRESENTATIONS.model}/cka.csv",
    log:
        f"logs/representations/{{dataset}}/{REPRESENTATIONS.model}/cka.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=6000,
        runtime=20,
    params:
        representations=knobs(views.RepresentationComparison, "representations"),
        similarity=knobs(views.CkaEstimator, "similarity"),
        device=config["device"],
    script:
        STEP


rule place_grokking:
    input:
        data=f"results/data/grokking/{ADVERSARIAL.dataset}.pt",
        checkpoints=run_files("grokking", "checkpoints.pt", dataset=ADVERSARIAL.dataset),
        snapshots=run_files("grokking", "snapshots", dataset=ADVERSARIAL.dataset),
        runs=run_files("grokking", "run.json", dataset=ADVERSARIAL.dataset),
        family_data=f"results/data/adversarial/{ADVERSARIAL.dataset}.pt",
        family_runs=representation_files("run.json", family=True),
        family_networks=representation_files("networks.pt", family=True),
    output:
        placed=results_table(
            "representation_grokking", "Robust vs standard representations"
        ),
        trajectory=results_table(
            "representation_grokking_trajectory", "Robust vs standard representations"
        ),
    log:
        "logs/tables/representation_grokking.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=20,
    params:
        representations=knobs(views.GrokkingPlacement, "representations"),
        similarity=knobs(views.CkaAlongRuns, "similarity"),
        device=config["device"],
    script:
        STEP


rule representation_tables:
    input:
        cka=f"results/representations/{ADVERSARIAL.dataset}/{REPRESENTATIONS.model}/cka.csv",
        runs=representation_files("run.json"),
        logs=representation_files("log.csv"),
    output:
        structure=results_table(
            "representation_structure", "Robust vs standard representations"
        ),
        summary=results_table(
            "representation_summary", "Robust vs standard representations"
        ),
        layers=results_table(
            "representation_layers", "Robust vs standard representations"
        ),
    log:
        "logs/tables/representations.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        representations=knobs(views.RepresentationIntervals, "representations"),
        adversarial=knobs(views.OverfittingVerdict, "adversarial"),
    script:
        STEP


rule representation_figures:
    input:
        cka=f"results/representations/{{dataset}}/{REPRESENTATIONS.model}/cka.csv",
        structure="results/tables/representation_structure.csv",
        layers="results/tables/representation_layers.csv",
    output:
        heatmaps=figure("representation_heatmaps", "Robust vs standard representations"),
        heatmaps_pdf=figure_pdf("representation_heatmaps"),
        structure_figure=figure(
            "representation_structure", "Robust vs standard representations"
        ),
        structure_figure_pdf=figure_pdf("representation_structure"),
        layers_figure=figure("representation_layers", "Robust vs standard representations"),
        layers_figure_pdf=figure_pdf("representation_layers"),
    log:
        "logs/figures/{dataset}/representations.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP


rule grokking_placement_figure:
    input:
        placed="results/tables/representation_grokking.csv",
        trajectory="results/tables/representation_grokking_trajectory.csv",
    output:
        grokking=figure("representation_grokking", "Robust vs standard representations"),
        grokking_pdf=figure_pdf("representation_grokking"),
    log:
        "logs/figures/{dataset}/representation_grokking.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP


# Block structure at depth (representations.blocks): a CIFAR-style ResNet trained standard and with PGD-k per seed
# on its own few training images, each seed's untrained network the control.


rule train_block_network:
    input:
        data=BLOCK_DATA,
    output:
        run_json=block_path("run.json"),
        networks=block_path("networks.pt"),
    log:
        block_log("train.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=30,
    params:
        blocks=knobs(views.BlockTraining, "representations.blocks"),
        device=config["device"],
    script:
        STEP


rule block_structure:
    input:
        data=BLOCK_DATA,
        runs=block_files("run.json", seed="{seed}"),
        networks=block_files("networks.pt", seed="{seed}"),
    output:
        structure=BLOCK_STRUCTURE.format(name="structure"),
        matrices=BLOCK_STRUCTURE.format(name="cka"),
    log:
        "logs/representations/blocks/{dataset}/{model}/seed{seed}_structure.log",
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=20,
    params:
        blocks=knobs(views.BlockComparison, "representations.blocks"),
        similarity=knobs(views.CkaBatches, "similarity"),
        device=config["device"],
    script:
        STEP


rule block_tables:
    input:
        structures=block_structure_files(),
    output:
        table=results_table("representation_blocks", "Robust vs standard representations"),
    log:
        "logs/tables/representation_blocks.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        STEP


rule block_figure:
    input:
        table="results/tables/representation_blocks.csv",
        matrices=block_structure_files("cka"),
    output:
        figure=figure("representation_blocks", "Robust vs standard representations"),
        figure_pdf=figure_pdf("representation_blocks"),
    log:
        "logs/figures/{dataset}/representation_blocks.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP
