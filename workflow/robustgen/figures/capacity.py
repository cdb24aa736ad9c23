"""Figures of the capacity sweep: generalisation against parameter count and against sensitivity."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .style import depth_colours


def capacity_generalisation(table: pd.DataFrame) -> plt.Figure:
    """Novak's Figure 1 (left): test accuracy and generalisation gap (train − test accuracy) against the
    parameter count, coloured by depth; hollow markers: not at 100 % training accuracy by max_epochs."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = depth_colours(table["depth"].unique())
    for depth, group in table.groupby("depth"):
        for fitted, marker_face in ((True, None), (False, "none")):
            g = group[group["reached_full_train_acc"].astype(bool) == fitted]
            if g.empty:
                continue
            label = f"depth {depth}" + ("" if fitted else " (not fitted)")
            for ax, column in zip(axes, ("test_acc", "gap_acc")):
                ax.scatter(g["parameters"], g[column], color=colours[depth], s=22, label=label,
                           facecolors=marker_face if marker_face else colours[depth], edgecolors=colours[depth])
    for ax, ylabel in zip(axes, ("test accuracy", "generalisation gap (train − test accuracy)")):
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    dataset = table["dataset"].iloc[0] if len(table) else ""
    fig.suptitle(f"{dataset}: {len(table)} networks, "
                 f"{int(table['reached_full_train_acc'].astype(bool).sum())} at 100 % training accuracy", fontsize=10)
    fig.tight_layout()
    return fig


def capacity_sensitivity(table: pd.DataFrame, found: pd.DataFrame) -> plt.Figure:
    """Generalisation gap against the Jacobian norm at test points (log axis) and against the transition
    density along ellipses through test points of different classes, networks at 100 % training accuracy,
    with Pearson and Spearman correlations over all networks and within architectures, and their 95 %
    intervals (configurations resampled with their seeds)."""
    fitted_nets = table[table["reached_full_train_acc"].astype(bool)]
    colours = depth_colours(table["depth"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9))
    for ax, (x, log) in zip(axes, (("jacobian_test", True), ("transition_density_different_class", False))):
        for depth, g in fitted_nets.groupby("depth"):
            ax.scatter(g[x], g["gap_acc"], color=colours[depth], s=22, label=f"depth {depth}")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel({"jacobian_test": "Jacobian norm at test points",
                       "transition_density_different_class": "transitions per unit length\n(ellipses through test points of different classes)"}[x])
        ax.set_ylabel("generalisation gap (train − test accuracy)")
        ax.grid(alpha=0.3)
        rows = found[(found["x"] == x) & (found["y"] == "gap_acc")].set_index("scope")
        if "all" in rows.index:
            r, w = rows.loc["all"], rows.loc["within_architecture"]
            ax.text(0.02, 0.97, f"n = {int(r['n'])}\n"
                    f"Pearson{' (log x)' if log else ''} {r['pearson']:.2f} [{r['pearson_ci_low']:.2f}, {r['pearson_ci_high']:.2f}]\n"
                    f"Spearman {r['spearman']:.2f} [{r['spearman_ci_low']:.2f}, {r['spearman_ci_high']:.2f}]\n"
                    f"within an architecture: Spearman {w['spearman']:.2f} "
                    f"[{w['spearman_ci_low']:.2f}, {w['spearman_ci_high']:.2f}]",
                    transform=ax.transAxes, va="top", fontsize=8,
                    bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig
