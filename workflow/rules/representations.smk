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
        f"results/representations/{{dataset}}/{REPRESENTATIONS.model}/cka.csv",
    log:
        f"logs/representations/{{dataset}}/{REPRESENTATIONS.model}/cka.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=20,
    params:
        knobs=knobs("compare-representations"),
    shell:
        "python -m robustgen compare-representations --knobs {params.knobs:q} --data {input.data}"
        " --runs {input.runs} --networks {input.networks} --threads {threads} --output {output} > {log} 2>&1"


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
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        knobs=knobs("place-grokking"),
    shell:
        "python -m robustgen place-grokking --knobs {params.knobs:q} --data {input.data}"
        " --checkpoints {input.checkpoints} --snapshots {input.snapshots} --runs {input.runs}"
        " --family-data {input.family_data} --family-runs {input.family_runs}"
        " --family-networks {input.family_networks} --threads {threads}"
        " --placed {output.placed} --trajectory {output.trajectory} > {log} 2>&1"


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
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("representation-tables"),
    shell:
        "python -m robustgen representation-tables --knobs {params.knobs:q} --cka {input.cka}"
        " --runs {input.runs} --logs {input.logs} --structure {output.structure}"
        " --summary {output.summary} --layers {output.layers} > {log} 2>&1"


rule representation_figures:
    input:
        cka=f"results/representations/{{dataset}}/{REPRESENTATIONS.model}/cka.csv",
        structure="results/tables/representation_structure.csv",
        layers="results/tables/representation_layers.csv",
    output:
        heatmaps=report(
            "results/figures/{dataset}/representation_heatmaps.png",
            caption="../report/representation_heatmaps.rst",
            category="Robust vs standard representations",
            subcategory="Figures",
        ),
        heatmaps_pdf="results/figures/{dataset}/representation_heatmaps.pdf",
        structure=report(
            "results/figures/{dataset}/representation_structure.png",
            caption="../report/representation_structure.rst",
            category="Robust vs standard representations",
            subcategory="Figures",
        ),
        structure_pdf="results/figures/{dataset}/representation_structure.pdf",
        layers=report(
            "results/figures/{dataset}/representation_layers.png",
            caption="../report/representation_layers.rst",
            category="Robust vs standard representations",
            subcategory="Figures",
        ),
        layers_pdf="results/figures/{dataset}/representation_layers.pdf",
    log:
        "logs/figures/{dataset}/representations.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen representation-figures --cka {input.cka} --structure {input.structure}"
        " --layers {input.layers} --heatmaps {output.heatmaps} --heatmaps-pdf {output.heatmaps_pdf}"
        " --structure-figure {output.structure} --structure-figure-pdf {output.structure_pdf}"
        " --layers-figure {output.layers} --layers-figure-pdf {output.layers_pdf} > {log} 2>&1"


rule grokking_placement_figure:
    input:
        placed="results/tables/representation_grokking.csv",
        trajectory="results/tables/representation_grokking_trajectory.csv",
    output:
        grokking=report(
            "results/figures/{dataset}/representation_grokking.png",
            caption="../report/representation_grokking.rst",
            category="Robust vs standard representations",
            subcategory="Figures",
        ),
        grokking_pdf="results/figures/{dataset}/representation_grokking.pdf",
    log:
        "logs/figures/{dataset}/representation_grokking.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m robustgen grokking-placement-figure --placed {input.placed} --trajectory {input.trajectory}"
        " --dataset {wildcards.dataset} --grokking {output.grokking} --grokking-pdf {output.grokking_pdf}"
        " > {log} 2>&1"
