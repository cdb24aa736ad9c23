"""Figures of the representation-similarity stage: CKA heatmaps, CKA per layer, the CKA trajectory."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import CHECKPOINT_COLOURS, cka_image, layers_in_order, panel_title


def cka_heatmaps(layers: pd.DataFrame, notes: dict | None = None) -> plt.Figure:
    """Layer × layer CKA within the memorised, generalised and final networks and between the memorised
    and the generalised one, for the first seed of each (α, wd) (Cianfarani et al.'s block structure)."""
    seed = layers["seed"].min()
    layers = layers[layers["seed"] == seed]
    panels = sorted(set(zip(layers["init_scale"], layers["weight_decay"])))
    pairs = [("memorised", "memorised"), ("generalised", "generalised"), ("final", "final"),
             ("memorised", "generalised")]
    fig, axes = plt.subplots(len(panels), len(pairs), figsize=(3.4 * len(pairs), 3.2 * len(panels)), squeeze=False)
    image = None
    for i, (alpha, wd) in enumerate(panels):
        for j, (a, b) in enumerate(pairs):
            ax = axes[i][j]
            rows = layers[(layers["init_scale"] == alpha) & (layers["weight_decay"] == wd)
                          & (layers["checkpoint_a"] == a) & (layers["checkpoint_b"] == b)]
            title = f"{a}" if a == b else f"{a} (rows) vs {b}"
            ax.set_title(panel_title(alpha, wd, notes, f", seed {seed}") + f"\n{title}", fontsize=7)
            if rows.empty:
                ax.text(0.5, 0.5, "not reached", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            names = layers_in_order(rows["layer_a"])
            matrix = rows.pivot(index="layer_a", columns="layer_b", values="cka").reindex(index=names, columns=names)
            image = cka_image(ax, matrix.to_numpy(), names)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="CKA")
    return fig


def cka_by_layer(layers: pd.DataFrame, seeds: pd.DataFrame, notes: dict | None = None) -> plt.Figure:
    """Per layer: CKA between the memorised and the generalised network of the same run, and between two
    seeds' networks at the same checkpoint (means over runs / seed pairs, with their range)."""
    panels = sorted(set(zip(layers["init_scale"], layers["weight_decay"])))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False, sharey=True)
    styles = {"memorised vs generalised (same run)": "black", "memorised across seeds": CHECKPOINT_COLOURS["memorised"],
              "generalised across seeds": CHECKPOINT_COLOURS["generalised"], "final across seeds": CHECKPOINT_COLOURS["final"]}
    for j, (alpha, wd) in enumerate(panels):
        ax = axes[0][j]
        mine = layers[(layers["init_scale"] == alpha) & (layers["weight_decay"] == wd)
                      & (layers["checkpoint_a"] == "memorised") & (layers["checkpoint_b"] == "generalised")
                      & (layers["layer_a"] == layers["layer_b"])].rename(columns={"layer_a": "layer"})
        curves = {"memorised vs generalised (same run)": mine}
        theirs = seeds[(seeds["init_scale"] == alpha) & (seeds["weight_decay"] == wd)]
        for name in ("memorised", "generalised", "final"):
            curves[f"{name} across seeds"] = theirs[theirs["checkpoint"] == name]
        names = layers_in_order(layers["layer_a"])
        if all(frame.empty for frame in curves.values()):
            ax.text(0.5, 0.5, "no memorised–generalised pair\nand a single seed", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        for label, frame in curves.items():
            if frame.empty:
                continue
            stats = frame.groupby("layer")["cka"].agg(["mean", "min", "max"]).reindex(names)
            x = np.arange(len(names))
            ax.plot(x, stats["mean"], marker="o", ms=3, color=styles[label], label=label)
            ax.fill_between(x, stats["min"], stats["max"], color=styles[label], alpha=0.15, lw=0)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.set_title(panel_title(alpha, wd, notes), fontsize=9)
        ax.grid(alpha=0.3)
        if j == 0:
            ax.set_ylabel("CKA (same layer)")
    if axes[0][0].lines:
        axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def cka_trajectory(trajectory: pd.DataFrame) -> plt.Figure:
    """How the representation converges while the network groks: per layer, the CKA of each milestone
    snapshot with the final network against step (mean over seeds), beside test accuracy (dashed)."""
    panels = sorted(set(zip(trajectory["init_scale"], trajectory["weight_decay"])))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.4), squeeze=False, sharey=True)
    names = layers_in_order(trajectory["layer"])
    cmap = plt.get_cmap("viridis")
    for j, (alpha, wd) in enumerate(panels):
        ax = axes[0][j]
        rows = trajectory[(trajectory["init_scale"] == alpha) & (trajectory["weight_decay"] == wd)
                          & (trajectory["step"] > 0)]
        for k, layer in enumerate(names):
            mean = rows[rows["layer"] == layer].groupby("step")["cka_to_final"].mean()
            ax.plot(mean.index, mean.to_numpy(), color=cmap(k / max(len(names) - 1, 1)), lw=1.5, label=layer)
        twin = ax.twinx()
        accuracy = rows.groupby("step")["test_acc"].mean()
        twin.plot(accuracy.index, accuracy.to_numpy(), color="grey", ls="--", lw=1)
        twin.set_ylim(0, 1.02)
        twin.tick_params(labelsize=7)
        if j == len(panels) - 1:
            twin.set_ylabel("test accuracy (dashed)", fontsize=8)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("step")
        ax.set_title(f"α = {alpha:g}, wd = {wd:g}", fontsize=10)
        ax.grid(alpha=0.3)
        if j == 0:
            ax.set_ylabel("CKA with the final network")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
