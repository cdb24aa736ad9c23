# Stage: adversarial training and catastrophic overfitting. One network per method × ε × seed (and per β of the
# feature sweep), trained with the study's trainer on perturbed batches; the study's probes of its best and final
# networks; the runs, onset and probe tables; figures.


rule train_adversarial:
    input:
        data=ADVERSARIAL_DATA,
    output:
        log=adversarial_path("log.csv"),
        run=adversarial_path("run.json"),
        networks=adversarial_path("networks.pt"),
    log:
        adversarial_log("train.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        knobs=knobs("train-adversarial"),
    shell:
        "python -m robustgen train-adversarial --knobs {params.knobs:q}"
        " --model {wildcards.model} --method {wildcards.method} --eps {wildcards.eps} --beta {wildcards.beta} --seed {wildcards.seed}"
        " --data {input.data} --log {output.log} --run-json {output.run} --networks {output.networks}"
        " --threads {threads} > {log} 2>&1"


rule probe_adversarial:
    input:
        data=ADVERSARIAL_DATA,
        networks=adversarial_path("networks.pt"),
        run=adversarial_path("run.json"),
        log=adversarial_path("log.csv"),
    output:
        adversarial_path("probes.csv"),
    log:
        adversarial_log("probes.log"),
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        knobs=knobs("probe-adversarial"),
    shell:
        "python -m robustgen probe-adversarial --knobs {params.knobs:q} --data {input.data}"
        " --networks {input.networks} --run-json {input.run} --log {input.log} --threads {threads}"
        " --output {output} > {log} 2>&1"


rule adversarial_tables:
    input:
        runs=adversarial_files("run.json"),
        logs=adversarial_files("log.csv"),
        probes=probed_adversarial_files("probes.csv"),
    output:
        runs=results_table("adversarial_runs", "Adversarial training"),
        onset=results_table("adversarial_onset", "Adversarial training"),
        probes=results_table("adversarial_probes", "Adversarial training"),
    log:
        "logs/tables/adversarial.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("adversarial-tables"),
    shell:
        "python -m robustgen adversarial-tables --knobs {params.knobs:q} --runs {input.runs} --logs {input.logs}"
        " --probes {input.probes}"
        " --runs-table {output.runs} --onset {output.onset} --probes-table {output.probes} > {log} 2>&1"


rule adversarial_figures:
    input:
        runs=adversarial_files("run.json"),
        logs=adversarial_files("log.csv"),
        runs_table="results/tables/adversarial_runs.csv",
        probes="results/tables/adversarial_probes.csv",
    output:
        co=report(
            "results/figures/{dataset}/adversarial_co.png",
            caption="../report/adversarial_co.rst",
            category="Adversarial training",
            subcategory="Figures",
        ),
        co_pdf="results/figures/{dataset}/adversarial_co.pdf",
        curves=report(
            "results/figures/{dataset}/adversarial_curves.png",
            caption="../report/adversarial_curves.rst",
            category="Adversarial training",
            subcategory="Figures",
        ),
        curves_pdf="results/figures/{dataset}/adversarial_curves.pdf",
        feature=report(
            "results/figures/{dataset}/adversarial_feature.png",
            caption="../report/adversarial_feature.rst",
            category="Adversarial training",
            subcategory="Figures",
        ),
        feature_pdf="results/figures/{dataset}/adversarial_feature.pdf",
        probes=report(
            "results/figures/{dataset}/adversarial_probes.png",
            caption="../report/adversarial_probes.rst",
            category="Adversarial training",
            subcategory="Figures",
        ),
        probes_pdf="results/figures/{dataset}/adversarial_probes.pdf",
    log:
        "logs/figures/{dataset}/adversarial.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        knobs=knobs("adversarial-figures"),
    shell:
        "python -m robustgen adversarial-figures --knobs {params.knobs:q} --dataset {wildcards.dataset}"
        " --runs {input.runs} --logs {input.logs} --runs-table {input.runs_table} --probes-table {input.probes}"
        " --co {output.co} --co-pdf {output.co_pdf} --curves {output.curves} --curves-pdf {output.curves_pdf}"
        " --feature {output.feature} --feature-pdf {output.feature_pdf}"
        " --probes {output.probes} --probes-pdf {output.probes_pdf} > {log} 2>&1"
