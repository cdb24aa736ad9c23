"""Figures of the robust-vs-standard representation stage: heatmaps, structure scalars, per-layer comparisons,
and the grokking networks beside standard and robust networks of their architecture."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import CHECKPOINT_COLOURS, cka_image, panel_title, seed_colour, seed_handles

LABELS = {"standard": "standard", "pgd": "PGD (final)", "pgd_best": "PGD (early-stopped, if not final)",
          "fgsm": "FGSM (final)", "fgsm_best": "FGSM (best, if not final)", "untrained": "untrained (control)"}
INPUTS = {"benign": "benign test images", "pgd": "PGD inputs"}
AGAINST = {"benign": "none", "pgd": "a"}  # PGD inputs: those made against the row network, fed to both


def _matrix(cka: pd.DataFrame, inputs: str, a: str, b: str) -> tuple[list[str], np.ndarray | None, int]:
    """(layer names, mean layer × layer CKA of network a (rows) with network b — of the same seed for a network
    with itself, of another seed between two kinds — over seed pairs, seeds of a)."""
    rows = cka[(cka["inputs"] == inputs) & (cka["against"] == AGAINST[inputs]) & (cka["network_a"] == a)
               & (cka["network_b"] == b) & ((cka["seed_a"] == cka["seed_b"]) == (a == b))]
    if rows.empty:
        return [], None, 0
    names = list(dict.fromkeys(rows["layer_a"]))
    mean = rows.groupby(["layer_a", "layer_b"])["cka"].mean().unstack().reindex(index=names, columns=names)
    return names, mean.to_numpy(), rows["seed_a"].nunique()


def heatmaps(cka: pd.DataFrame) -> plt.Figure:
    """Cianfarani et al.'s three heatmaps (standard, robust, standard vs robust: two seeds, no shared
    initialisation), the FGSM network and the untrained control, on benign and on PGD inputs (against the row
    network); each the mean over seeds of the per-seed matrix, with the study's estimator."""
    pairs = [("standard", "standard"), ("pgd", "pgd"), ("fgsm", "fgsm"), ("standard", "pgd"),
             ("untrained", "untrained")]
    kinds = [k for k in INPUTS if k in set(cka["inputs"])]
    fig, axes = plt.subplots(len(kinds), len(pairs), figsize=(3.3 * len(pairs), 3.3 * len(kinds)), squeeze=False)
    image = None
    for i, inputs in enumerate(kinds):
        for j, (a, b) in enumerate(pairs):
            ax = axes[i][j]
            names, matrix, seeds = _matrix(cka, inputs, a, b)
            title = LABELS[a] if a == b else f"{LABELS[a]} (rows) vs {LABELS[b]}, two seeds"
            ax.set_title(f"{title}\n{INPUTS[inputs]}, mean of {seeds} seeds", fontsize=7)
            if matrix is None:
                ax.axis("off")
                continue
            image = cka_image(ax, matrix, names)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="CKA")
    return fig


MEASURES = {"block_index": "block index (near − far)", "long_range": "long-range CKA\n(first vs last hidden layer)",
            "far": "far CKA (layers ≥ L/2 apart)"}


def structure_plot(structures: pd.DataFrame) -> plt.Figure:
    """Per network kind, each seed's structure scalars (points) and their mean (bar)."""
    kinds = [k for k in INPUTS if k in set(structures["inputs"])]
    fig, axes = plt.subplots(len(kinds), len(MEASURES), figsize=(4.0 * len(MEASURES), 3.0 * len(kinds)),
                             squeeze=False)
    for i, inputs in enumerate(kinds):
        part = structures[structures["inputs"] == inputs]
        networks = [n for n in LABELS if n in set(part["network"])]
        for j, (measure, label) in enumerate(MEASURES.items()):
            ax = axes[i][j]
            for k, network in enumerate(networks):
                rows = part[part["network"] == network]
                offsets = np.linspace(-0.15, 0.15, len(rows)) if len(rows) > 1 else [0.0]
                for offset, (_, row) in zip(offsets, rows.sort_values("seed").iterrows()):
                    marker = "x" if str(row.get("after_co")) == "True" else "o"
                    ax.scatter(k + offset, row[measure], color=seed_colour(row["seed"]), marker=marker, s=22, zorder=3)
                ax.hlines(rows[measure].mean(), k - 0.3, k + 0.3, color="black", lw=1.5)
            ax.set_xticks(range(len(networks)), [LABELS[n] for n in networks], rotation=30, ha="right", fontsize=7)
            ax.set_ylabel(label, fontsize=8)
            ax.set_title(INPUTS[inputs], fontsize=8)
            ax.grid(alpha=0.3)
    handles = seed_handles(structures["seed"].unique()) + [
        plt.Line2D([], [], color="grey", marker="x", ls="", label="network after CO onset"),
        plt.Line2D([], [], color="black", lw=1.5, label="mean over seeds")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


COMPARISONS = {
    "pgd_best vs pgd": ("tab:blue", "-", "PGD: early-stopped vs final"),
    "fgsm_best vs fgsm": ("tab:red", "-", "FGSM: best vs final"),
    "standard vs pgd (two seeds)": ("black", "-", "standard vs PGD, two seeds"),
    "standard vs fgsm (two seeds)": ("tab:orange", "-", "standard vs FGSM, two seeds"),
    "standard vs standard (two seeds)": ("black", ":", "standard, two seeds"),
    "pgd vs pgd (two seeds)": ("tab:blue", ":", "PGD, two seeds"),
    "fgsm vs fgsm (two seeds)": ("tab:red", ":", "FGSM, two seeds"),
}


def layers_plot(layers: pd.DataFrame) -> plt.Figure:
    """Per layer, debiased CKA of a network with another network's same layer (seed-level estimate, band: its
    bootstrap interval over seeds); dotted: the same kind of network, two seeds (the baseline)."""
    kinds = [k for k in INPUTS if k in set(layers["inputs"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds), 3.8), squeeze=False, sharey=True)
    for j, inputs in enumerate(kinds):
        ax = axes[0][j]
        part = layers[(layers["inputs"] == inputs) & (layers["against"] == AGAINST[inputs])]
        for comparison, (colour, style, label) in COMPARISONS.items():
            rows = part[part["comparison"] == comparison]
            if rows.empty:
                continue
            x = np.arange(len(rows))
            ax.plot(x, rows["estimate"], color=colour, ls=style, marker="o", ms=3,
                    label=f"{label} (n = {rows['n_seeds'].max()} seeds)")
            ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=colour, alpha=0.12, lw=0)
            ax.set_xticks(x, rows["layer"], rotation=90, fontsize=7)
        ax.set_title(INPUTS[inputs], fontsize=9)
        ax.set_ylim(-0.05, 1.02)
        ax.grid(alpha=0.3)
        if j == 0:
            ax.set_ylabel("debiased CKA (same layer)")
        ax.legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig


def _trajectory_colour(seed, seeds):
    """Shades of purple per seed, apart from the checkpoint colours of the top row."""
    return plt.get_cmap("Purples")(0.45 + 0.5 * seeds.index(seed) / max(len(seeds) - 1, 1))


def grokking_plot(placed: pd.DataFrame, trajectory: pd.DataFrame) -> plt.Figure:
    """Top: per layer, CKA of each grokking checkpoint with the standard (solid) and the PGD-trained (dashed)
    network of its architecture (mean over grokking seeds, band: bootstrap interval). Bottom: the block index
    and the long-range CKA of the grokking network along training (mean over seeds, band: range)."""
    groups = sorted(set(zip(placed["init_scale"], placed["weight_decay"])))
    seeds = sorted(trajectory["seed"].unique())
    fig, axes = plt.subplots(2, max(len(groups), 1), figsize=(4.0 * max(len(groups), 1), 6.4), squeeze=False)
    for j, (alpha, wd) in enumerate(groups):
        ax = axes[0][j]
        mine = placed[(placed["init_scale"] == alpha) & (placed["weight_decay"] == wd)]
        for (checkpoint, family), rows in mine.groupby(["checkpoint", "family"], sort=False):
            if family not in ("standard", "pgd"):
                continue
            x = np.arange(len(rows))
            ax.plot(x, rows["mean"], color=CHECKPOINT_COLOURS[checkpoint], ls="-" if family == "standard" else "--",
                    marker="o", ms=3)
            ax.fill_between(x, rows["ci_low"], rows["ci_high"], color=CHECKPOINT_COLOURS[checkpoint], alpha=0.1, lw=0)
            ax.set_xticks(x, rows["layer"], fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.set_title(panel_title(alpha, wd), fontsize=9)
        ax.grid(alpha=0.3)
        if j == 0:
            ax.set_ylabel("CKA with the family network\n(solid: standard, dashed: PGD)", fontsize=8)
        ax = axes[1][j]
        rows = trajectory[(trajectory["init_scale"] == alpha) & (trajectory["weight_decay"] == wd)
                          & (trajectory["step"] > 0)]
        for seed, run in rows.groupby("seed"):
            ax.plot(run["step"], run["block_index"], color=_trajectory_colour(seed, seeds), lw=1.2)
            ax.plot(run["step"], run["long_range"], color=_trajectory_colour(seed, seeds), lw=1.2, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if j == 0:
            ax.set_ylabel("grokking network's own structure (solid: block\nindex; dashed: first vs last hidden layer)", fontsize=8)
    handles = [plt.Line2D([], [], color=c, label=n) for n, c in CHECKPOINT_COLOURS.items()]
    handles += [plt.Line2D([], [], color=_trajectory_colour(s, seeds), label=f"seed {s} (bottom)") for s in seeds]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


BLOCK_LABELS = {"untrained": "untrained (control)", "standard": "standard", "pgd": "PGD"}


def blocks_plot(blocks: pd.DataFrame, matrices: list[pd.DataFrame]) -> plt.Figure:
    """Left: each seed's largest block (consecutive layers whose every pair has debiased CKA above the
    threshold) for its untrained, standard and PGD network, a seed's three joined by a line, the mean over seeds
    as a bar. Right: the layer × layer debiased CKA of the three networks of one seed, the one whose standard
    network's control-subtracted block is the median (a typical seed, not the best)."""
    networks = [n for n in BLOCK_LABELS if n in set(blocks["network"])]
    fig, axes = plt.subplots(1, 1 + len(networks), figsize=(4.2 + 3.4 * len(networks), 3.8),
                             gridspec_kw=dict(width_ratios=[1.3] + [1] * len(networks)))
    ax = axes[0]
    for seed, rows in blocks.groupby("seed"):
        rows = rows.set_index("network").reindex(networks)
        ax.plot(range(len(networks)), rows["largest_block"], color=seed_colour(seed), marker="o", ms=4, lw=0.8,
                alpha=0.8)
    for k, network in enumerate(networks):
        ax.hlines(blocks.loc[blocks["network"] == network, "largest_block"].mean(), k - 0.3, k + 0.3, color="black",
                  lw=2)
    ax.set_xticks(range(len(networks)), [BLOCK_LABELS[n] for n in networks], fontsize=8)
    ax.set_ylabel("largest block (consecutive layers)", fontsize=8)
    ax.set_title(f"{blocks['model'].iloc[0]}, {blocks['seed'].nunique()} seeds; lines: one seed, bars: mean",
                 fontsize=8)
    ax.grid(alpha=0.3)
    standard = blocks[blocks["network"] == "standard"].sort_values("largest_block_minus_untrained")
    typical = int(standard["seed"].iloc[(len(standard) - 1) // 2])
    cells = next((m for m in matrices if not m.empty and int(m["seed"].iloc[0]) == typical), None)
    image = None
    for ax, network in zip(axes[1:], networks):
        part = None if cells is None else cells[cells["network"] == network]
        if part is None or part.empty:
            ax.axis("off")
            continue
        names = list(dict.fromkeys(part["layer_a"]))
        matrix = part.pivot(index="layer_a", columns="layer_b", values="cka_debiased").reindex(index=names,
                                                                                               columns=names)
        image = cka_image(ax, matrix.to_numpy(), names)
        every = max(1, len(names) // 8)
        ax.set_xticks(range(0, len(names), every), names[::every], rotation=90, fontsize=6)
        ax.set_yticks(range(0, len(names), every), names[::every], fontsize=6)
        size = int(blocks[(blocks["seed"] == typical) & (blocks["network"] == network)]["largest_block"].iloc[0])
        ax.set_title(f"{BLOCK_LABELS[network]}, seed {typical} (median)\nlargest block {size} layers", fontsize=8)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes[1:], shrink=0.8, label="debiased CKA")
    return fig
