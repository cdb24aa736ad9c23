"""Figures of the sensitivity stage: Novak's comparison, the sensitivity trajectory, the region slices."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import CHECKPOINT_COLOURS, legend_below, panel_title, seed_colour, seed_handles

WHERE_LABELS = {"test_points": "test\npoints", "train_points": "train\npoints", "random": "random\nellipse",
                "different_class": "different-\nclass ellipse", "same_class": "same-\nclass ellipse"}
METRIC_LABELS = {"jacobian_norm": "Jacobian norm ‖∂softmax/∂x‖_F", "transition_density": "transitions per unit length",
                 "transitions": "transitions per ellipse"}


def sensitivity_comparison(summary: pd.DataFrame, notes: dict | None = None) -> plt.Figure:
    """Novak's comparison: the mean over seeds of the Jacobian norm and the transition density at test and
    training points and along each kind of ellipse, for each checkpoint, with 95 % hierarchical-bootstrap
    intervals (seeds, then items); a column per (α, wd)."""
    group = summary[summary["scope"] == "group"]
    panels = sorted(set(zip(group["init_scale"], group["weight_decay"])))
    metrics = ["jacobian_norm", "transition_density"]
    fig, axes = plt.subplots(len(metrics), len(panels), figsize=(4.6 * len(panels), 3.4 * len(metrics)),
                             squeeze=False)
    checkpoints = [c for c in ("memorised", "generalised", "final") if c in set(group["checkpoint"])]
    width = 0.8 / max(len(checkpoints), 1)
    for j, (alpha, wd) in enumerate(panels):
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            rows = group[(group["init_scale"] == alpha) & (group["weight_decay"] == wd) & (group["metric"] == metric)]
            places = [w for w in WHERE_LABELS if w in set(rows["where"])]
            for c, name in enumerate(checkpoints):
                r = rows[rows["checkpoint"] == name].set_index("where").reindex(places)
                error = [(r["mean"] - r["ci_low"]).clip(lower=0), (r["ci_high"] - r["mean"]).clip(lower=0)]
                ax.bar(np.arange(len(places)) + (c - (len(checkpoints) - 1) / 2) * width, r["mean"], width,
                       yerr=error, color=CHECKPOINT_COLOURS[name], alpha=0.8, capsize=2, label=name)
            ax.set_xticks(range(len(places)), [WHERE_LABELS[p] for p in places], fontsize=7)
            if metric == "jacobian_norm":
                ax.set_yscale("log")
            ax.grid(alpha=0.3, axis="y")
            if j == 0:
                ax.set_ylabel(METRIC_LABELS[metric], fontsize=8)
            if i == 0:
                ax.set_title(panel_title(alpha, wd, notes), fontsize=9)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def sensitivity_trajectory(trajectory: pd.DataFrame) -> plt.Figure:
    """Jacobian norm at test points and transition density along different-class ellipses against step
    (mean ± standard error, seeds in colour), beside test accuracy (dashed, right axis)."""
    rows_spec = [("jacobian_norm", "test_points"), ("transition_density", "different_class")]
    panels = sorted(set(zip(trajectory["init_scale"], trajectory["weight_decay"])))
    fig, axes = plt.subplots(len(rows_spec), len(panels), figsize=(4.4 * len(panels), 3.2 * len(rows_spec)),
                             squeeze=False, sharex=True)
    for j, (alpha, wd) in enumerate(panels):
        for i, (metric, where) in enumerate(rows_spec):
            ax = axes[i][j]
            twin = ax.twinx()
            rows = trajectory[(trajectory["init_scale"] == alpha) & (trajectory["weight_decay"] == wd)
                              & (trajectory["metric"] == metric) & (trajectory["where"] == where)
                              & (trajectory["step"] > 0)]
            for seed, run in rows.groupby("seed"):
                run = run.sort_values("step")
                colour = seed_colour(seed)
                ax.plot(run["step"], run["mean"], color=colour, lw=1.5)
                ax.fill_between(run["step"], run["mean"] - run["se"], run["mean"] + run["se"], color=colour,
                                alpha=0.2, lw=0)
                twin.plot(run["step"], run["test_acc"], color=colour, ls="--", lw=1)
            twin.set_ylim(0, 1.02)
            twin.tick_params(labelsize=7)
            ax.set_xscale("log")
            if metric == "jacobian_norm":
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel(f"{METRIC_LABELS[metric]}\n({WHERE_LABELS[where].replace(chr(10), ' ')})", fontsize=8)
            if j == len(panels) - 1:
                twin.set_ylabel("test accuracy", fontsize=8)
            if i == 0:
                ax.set_title(f"α = {alpha:g}, wd = {wd:g}", fontsize=10)
            if i == len(rows_spec) - 1:
                ax.set_xlabel("step")
    handles = [plt.Line2D([], [], color="grey", lw=1.5, label="mean ± s.e."),
               plt.Line2D([], [], color="grey", ls="--", label="test accuracy (right axis)")]
    legend_below(fig, handles + seed_handles(trajectory["seed"].unique()))
    fig.tight_layout()
    return fig


def region_slices(slices: list[dict]) -> plt.Figure:
    """Transition boundaries of the last hidden layer on the plane through three training points of
    different classes (Novak et al.'s Figure 3), memorised vs generalised; anchors as squares."""
    runs = sorted({(s["init_scale"], s["weight_decay"], s["seed"]) for s in slices})
    if not runs:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no run reached the memorised or the generalised checkpoint",
                ha="center", va="center", transform=ax.transAxes)
        return fig
    fig, axes = plt.subplots(len(runs), 2, figsize=(7.6, 3.9 * len(runs)), squeeze=False)
    for i, run in enumerate(runs):
        for j, name in enumerate(("memorised", "generalised")):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            found = [s for s in slices if (s["init_scale"], s["weight_decay"], s["seed"]) == run
                     and s["checkpoint"] == name]
            if not found:
                ax.set_title(f"α = {run[0]:g}, wd = {run[1]:g}, seed {run[2]}: {name}", fontsize=8)
                ax.text(0.5, 0.5, "not reached", ha="center", va="center", transform=ax.transAxes)
                continue
            s = found[0]
            lo, hi = -s["margin"], 1 + s["margin"]
            ax.imshow(s["boundary"], origin="lower", extent=(lo, hi, lo, hi), cmap="Greys", vmin=0, vmax=1.6,
                      interpolation="nearest")
            for x, y in s["corners"]:
                ax.plot(x, y, marker="s", ms=8, mfc="none", mec="tab:red", mew=2)
            ax.set_title(f"α = {run[0]:g}, wd = {run[1]:g}, seed {run[2]}: {name} (step {s['step']})\n"
                         f"{s['regions']} last-layer activation patterns on the slice", fontsize=8)
    fig.tight_layout()
    return fig
