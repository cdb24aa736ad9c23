"""robustgen: robustness vs generalisation in neural networks, as a Snakemake study (see README.md)."""

__version__ = "0.1.0"
