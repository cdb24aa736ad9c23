"""Stages: each reads a run's stored outputs (through `robustgen.runs`), calls the measures with its
settings (`robustgen.settings`), and returns the tables the CLI writes. One module per stage of the
Snakemake workflow (workflow/rules/<stage>.smk)."""
