# Stage: data. Each study's dataset goes through its real loader once and is stored as a uint8 split.


# Downloads need the internet, which cluster compute nodes often lack: run on the submitting host.
localrules:
    prepare_data,


rule prepare_data:
    output:
        "results/data/{study}/{dataset}.pt",
    log:
        "logs/data/{study}/{dataset}.log",
    # seconds each, and the grokking runs (the study's long pole, priority 10) wait on theirs: first of all
    priority: 20
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        knobs=knobs("prepare-data"),
    shell:
        "python -m robustgen prepare-data --knobs {params.knobs:q}"
        " --study {wildcards.study} --dataset {wildcards.dataset} --output {output} > {log} 2>&1"
