# Stage: data. Each study's dataset goes through its real loader once and is stored as a uint8 split.


# Downloads need the internet, which cluster compute nodes often lack: run on the submitting host.
localrules:
    prepare_data,


rule prepare_data:
    output:
        output="results/data/{study}/{dataset}.pt",
    log:
        "logs/data/{study}/{dataset}.log",
    # seconds each, and the grokking runs (the study's long pole, priority 10) wait on theirs: first of all
    priority: 20
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        data=knobs(views.DataSource, "data"),
        subset=knobs(views.TrainingSet, "{study}"),
    script:
        STEP
