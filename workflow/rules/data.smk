# Stage: data. Each study's dataset goes through its real loader once and is stored as a uint8 split.


# Downloads need the internet, which cluster compute nodes often lack: run on the submitting host.
localrules:
    prepare_data,


rule prepare_data:
    output:
        "results/data/{study}/{dataset}.pt",
    log:
        "logs/data/{study}/{dataset}.log",
    conda:
        "../../envs/robustgen.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        train_size=study_train_size,
        subset=study_subset,
        split_seed=config["data"]["split_seed"],
        data_dir=config["data"]["dir"],
        download=download_flag,
        verify=verify_flag,
    shell:
        "python -m robustgen prepare-data --dataset {wildcards.dataset}"
        " --train-size {params.train_size} --subset {params.subset} --split-seed {params.split_seed}"
        " --data-dir {params.data_dir:q} {params.download} {params.verify} --output {output} > {log} 2>&1"
