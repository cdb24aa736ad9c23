# Stage: adversarial training and catastrophic overfitting. One network per method × ε × seed (and per β of the
# feature sweep), trained with the study's trainer on perturbed batches; the study's probes of its best and final
# networks; the runs, onset and probe tables; figures.


rule train_adversarial:
    input:
        data=ADVERSARIAL_DATA,
    output:
        log=adversarial_path("log.csv"),
        run_json=adversarial_path("run.json"),
        networks=adversarial_path("networks.pt"),
    log:
        adversarial_log("train.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=30,
    params:
        adversarial=knobs(views.AdversarialTraining, "adversarial"),
        device=config["device"],
    script:
        STEP


rule probe_adversarial:
    input:
        data=ADVERSARIAL_DATA,
        networks=adversarial_path("networks.pt"),
        run_json=adversarial_path("run.json"),
        log=adversarial_path("log.csv"),
    output:
        output=adversarial_path("probes.csv"),
    log:
        adversarial_log("probes.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=20,
    params:
        adversarial=knobs(views.AdversarialProbes, "adversarial"),
        robustness=knobs(views.RadiusProbes, "robustness"),
        sensitivity=knobs(views.EllipseSampling, "sensitivity"),
        device=config["device"],
    script:
        STEP


rule check_autoattack:
    input:
        data=ADVERSARIAL_DATA,
        networks=adversarial_path("networks.pt"),
        run_json=adversarial_path("run.json"),
    output:
        output=adversarial_path("autoattack.csv"),
    log:
        adversarial_log("autoattack.log"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU,
        mem_mb=3000,
        runtime=60,
    params:
        adversarial=knobs(views.AutoAttackCheck, "adversarial"),
        device=config["device"],
    script:
        STEP


rule autoattack_table:
    input:
        checks=checked_adversarial_files("autoattack.csv"),
    output:
        table=results_table("adversarial_autoattack", "Adversarial training"),
    log:
        "logs/tables/adversarial_autoattack.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        STEP


rule adversarial_tables:
    input:
        runs=adversarial_files("run.json"),
        logs=adversarial_files("log.csv"),
        probes=probed_adversarial_files("probes.csv"),
    output:
        runs_table=results_table("adversarial_runs", "Adversarial training"),
        onset=results_table("adversarial_onset", "Adversarial training"),
        probes_table=results_table("adversarial_probes", "Adversarial training"),
    log:
        "logs/tables/adversarial.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        adversarial=knobs(views.OverfittingVerdict, "adversarial"),
    script:
        STEP


rule adversarial_figures:
    input:
        runs=adversarial_files("run.json"),
        logs=adversarial_files("log.csv"),
        runs_table="results/tables/adversarial_runs.csv",
        probes_table="results/tables/adversarial_probes.csv",
    output:
        co=figure("adversarial_co", "Adversarial training"),
        co_pdf=figure_pdf("adversarial_co"),
        curves=figure("adversarial_curves", "Adversarial training"),
        curves_pdf=figure_pdf("adversarial_curves"),
        feature=figure("adversarial_feature", "Adversarial training"),
        feature_pdf=figure_pdf("adversarial_feature"),
        probes=figure("adversarial_probes", "Adversarial training"),
        probes_pdf=figure_pdf("adversarial_probes"),
    log:
        "logs/figures/{dataset}/adversarial.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        adversarial=knobs(views.FeatureOf, "adversarial"),
    script:
        STEP
