"""Figures of the grokking stage: accuracy curves and the steps-to-generalise grid."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import label_panels, legend_below, luminance, panels, seed_colour, seed_handles


def grokking_curves(runs: list[dict]) -> plt.Figure:
    """Train/test accuracy on a log step axis with weight norm and checkpoint markers.

    `runs`: dicts with init_scale, weight_decay, seed, metrics (DataFrame) and checkpoints (the
    'checkpoints' mapping of checkpoints.json). One panel per (α, wd); seeds overlaid in colour.
    """
    keys = [(r["init_scale"], r["weight_decay"]) for r in runs]
    fig, axes, alphas, wds = panels(keys)
    norm_axes = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        i, j = alphas.index(r["init_scale"]), wds.index(r["weight_decay"])
        ax = axes[i][j]
        colour = seed_colour(r["seed"])
        m = r["metrics"][r["metrics"]["step"] > 0]
        ax.plot(m["step"], m["train_acc"], color=colour, ls="--", lw=1)
        ax.plot(m["step"], m["test_acc"], color=colour, ls="-", lw=1.5, label=f"seed {r['seed']}")
        if (i, j) not in norm_axes:
            norm_axes[(i, j)] = ax.twinx()
        norm_axes[(i, j)].plot(m["step"], m["weight_norm"], color=colour, ls=":", lw=1)
        for name, marker in (("memorised", "v"), ("generalised", "*")):
            cp = r["checkpoints"][name]
            if cp["reached"] and cp["step"] > 0:
                ax.plot([cp["step"]], [cp["test_acc"]], marker=marker, ms=9, color=colour, mec="black", ls="none")
    label_panels(axes, alphas, wds, "accuracy")
    for row in axes:
        for ax in row:
            ax.set_xscale("log")
            ax.set_ylim(0, 1.02)
    for twin in norm_axes.values():
        twin.set_ylabel("weight norm", fontsize=8)
        twin.tick_params(labelsize=7)
    handles = [
        plt.Line2D([], [], color="grey", ls="-", label="test accuracy"),
        plt.Line2D([], [], color="grey", ls="--", label="train accuracy"),
        plt.Line2D([], [], color="grey", ls=":", label="weight norm (right axis)"),
        plt.Line2D([], [], color="grey", marker="v", ls="none", mec="black", label="memorised checkpoint"),
        plt.Line2D([], [], color="grey", marker="*", ls="none", mec="black", ms=9, label="generalised checkpoint"),
    ]
    legend_below(fig, handles + seed_handles({r["seed"] for r in runs}))
    fig.tight_layout()
    return fig


def steps_to_generalise(table: pd.DataFrame) -> plt.Figure:
    """Heatmap over the (α, wd) grid of the median step of the generalised checkpoint across seeds.

    Each cell is annotated with the median and how many seeds reached the threshold; cells where none
    did are hatched and marked "not reached".
    """
    alphas = sorted(table["init_scale"].unique())
    wds = sorted(table["weight_decay"].unique())
    median = np.full((len(alphas), len(wds)), np.nan)
    notes = [["" for _ in wds] for _ in alphas]
    for (alpha, wd), group in table.groupby(["init_scale", "weight_decay"]):
        i, j = alphas.index(alpha), wds.index(wd)
        reached = group["generalised_step"].dropna().astype(float)
        if len(reached):
            median[i, j] = reached.median()
            notes[i][j] = f"{median[i, j]:,.0f}\n{len(reached)}/{len(group)} seeds"
        else:
            notes[i][j] = f"not reached\n0/{len(group)} seeds"
    fig, ax = plt.subplots(figsize=(1.8 * len(wds) + 2.2, 1.1 * len(alphas) + 1.6))
    finite = median[np.isfinite(median)]
    logged = np.log10(np.maximum(median, 1))
    image = ax.imshow(logged, cmap="viridis_r", aspect="auto",
                      vmin=np.log10(max(finite.min(), 1)) if finite.size else 0,
                      vmax=np.log10(max(finite.max(), 10)) if finite.size else 1)
    for i in range(len(alphas)):
        for j in range(len(wds)):
            if not np.isfinite(median[i, j]):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", color="grey"))
            dark = np.isfinite(median[i, j]) and luminance(image.cmap(image.norm(logged[i, j]))) < 0.5
            ax.text(j, i, notes[i][j], ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(wds)), [f"{w:g}" for w in wds])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("weight decay")
    ax.set_ylabel("init scale α")
    ax.set_title("steps to generalise (median over seeds)", fontsize=10)
    colourbar = fig.colorbar(image, ax=ax)
    colourbar.set_label("log10 step")
    fig.tight_layout()
    return fig
