"""Delayed robustness figures: every measure of a run on one log-step axis, and the onset lags over seeds."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..settings import DelayedFigure
from .style import legend_below, seed_colour

GROUP = ["init_scale", "weight_decay", "jacobian_penalty"]
POINT_COLOURS = {"train": "tab:blue", "test": "tab:orange", "random": "tab:grey"}
EVENTS = {"memorised_step": ("memorised", "tab:red", ":"), "generalised_step": ("generalised", "black", "--"),
          "robust_onset_step": ("robustness onset", "tab:green", "-."),
          "lc_descent_step": ("LC final descent", "tab:purple", ":")}


def group_title(alpha, wd, penalty) -> str:
    return f"α = {alpha:g}, wd = {wd:g}" + (f", GrokAlign λ = {penalty:g}" if penalty else "")


def trajectories(trajectory: pd.DataFrame, onsets: pd.DataFrame, s: DelayedFigure) -> plt.Figure:
    """One row per (α, wd, λ) group, one column per measure, all on one log-step axis (step + 1): accuracy,
    local complexity at train, test and random points, the random-noise radius, the adversarial radius,
    robust accuracy and the Jacobian norm. One line per seed (line style); the vertical lines are the seeds'
    mean memorised, generalised, robustness-onset and LC-final-descent (hidden layers) steps. Local complexity
    is shown twice: summed over the hidden layers, and with the output layer (as the reference code counts)."""
    radius = s.onset.complexity_radius
    columns = [
        ("accuracy", [("test_acc", "test", "-"), ("train_acc", "train", "--")]),
        (f"local complexity (r = {radius:g})", [(f"lc_{p}_r{radius:g}", p, "-") for p in POINT_COLOURS]),
        (f"LC with output layer (r = {radius:g})",
         [(f"lc_with_output_{p}_r{radius:g}", p, "-") for p in POINT_COLOURS]),
        ("random-noise radius (median, L2)", [("noise_radius", None, "-")]),
        ("adversarial radius (median)", [("adversarial_radius", None, "-")]),
        ("robust accuracy", [(f"robust_acc_eps{e:g}", f"ε = {e:g}", "-") for e in s.adversarial.epsilons]),
        ("Jacobian norm (test points)", [("jacobian_norm", None, "-")]),
    ]
    groups = list(trajectory.groupby(GROUP, sort=True))
    if not groups:
        fig, ax = plt.subplots()
        ax.text(0.5, 0.5, "no run has data for this figure", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(len(groups), len(columns), figsize=(3.1 * len(columns), 2.4 * len(groups)),
                             squeeze=False, sharex=True)
    styles = ["-", "--", ":", "-."]
    epsilon_colours = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(s.adversarial.epsilons)))
    for i, (group, frame) in enumerate(groups):
        events = onsets[np.logical_and.reduce([onsets[k] == v for k, v in zip(GROUP, group)])]
        for j, (label, series) in enumerate(columns):
            ax = axes[i][j]
            for n, (seed, run) in enumerate(frame.groupby("seed")):
                run = run.drop_duplicates("step").sort_values("step")
                for k, (column, name, style) in enumerate(series):
                    if column not in run:
                        continue
                    colour = (POINT_COLOURS.get(name) if j in (1, 2) else epsilon_colours[k] if j == 5
                              else "black" if j == 0 and name == "test" else "tab:red" if j == 0
                              else seed_colour(0))
                    values = run[["step", column]].dropna()
                    ax.plot(values["step"] + 1, values[column], color=colour, lw=1.1,
                            ls=styles[n % len(styles)] if j != 0 else style, alpha=0.85)
            for event, (name, colour, style) in EVENTS.items():
                if event in events and events[event].notna().any():
                    ax.axvline(events[event].mean() + 1, color=colour, ls=style, lw=1)
            ax.set_xscale("log")
            if j in (3, 6):  # the adversarial radius is linear: it is 0 while most images are misclassified
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(label, fontsize=9)
            if j == 0:
                ax.set_ylabel(group_title(*group), fontsize=8)
            if i == len(groups) - 1:
                ax.set_xlabel("step + 1")
    handles = [plt.Line2D([], [], color="black", label="test accuracy"),
               plt.Line2D([], [], color="tab:red", ls="--", label="train accuracy")]
    handles += [plt.Line2D([], [], color=c, label=f"LC at {p} points") for p, c in POINT_COLOURS.items()]
    handles += [plt.Line2D([], [], color=c, label=f"robust acc., ε = {e:g}")
                for e, c in zip(s.adversarial.epsilons, epsilon_colours)]
    handles += [plt.Line2D([], [], color="black", ls=styles[n % len(styles)], label=f"seed {seed}")
                for n, seed in enumerate(sorted(trajectory["seed"].unique()))]
    handles += [plt.Line2D([], [], color=c, ls=st, label=f"{name} (mean over seeds)")
                for name, c, st in EVENTS.values()]
    fig.tight_layout()
    legend_below(fig, handles)
    return fig


def lags(lags: pd.DataFrame) -> plt.Figure:
    """Left: the lags between onset steps per (α, wd, λ) group, mean over seeds with its 95 % bootstrap
    interval over seeds (bars) and each seed (dots). Right: GrokAlign's effect, the paired difference
    (penalised − unpenalised run of the same seed) in steps and lags, with the same interval."""
    means = lags[lags["statistic"] == "mean over seeds"]
    paired = lags[lags["statistic"] != "mean over seeds"]
    quantities = ["grokking_lag", "robust_lag", "lc_descent_lag", "lc_with_output_descent_lag",
                  "robust_after_lc_descent", "robust_after_lc_with_output_descent"]
    effects = ["memorised_step", "generalised_step", "robust_onset_step", "lc_descent_step", "grokking_lag"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), squeeze=False)
    panels = [(axes[0][0], means, quantities, "lag (steps) — mean over seeds, 95 % bootstrap interval over seeds"),
              (axes[0][1], paired, effects, "λ > 0 minus λ = 0, paired by seed (steps)")]
    for ax, table, names, title in panels:
        groups = list(table.groupby(GROUP, sort=True))
        height = 0.8 / max(len(groups), 1)
        shown = []  # every plotted x, for limits that hold the extreme seeds
        for g, (group, frame) in enumerate(groups):
            frame = frame.set_index("quantity")
            colour = plt.get_cmap("tab10")(g)
            for q, name in enumerate(names):
                if name not in frame.index or not np.isfinite(frame.at[name, "value"]):
                    continue
                row = frame.loc[name]
                y = q + (g - (len(groups) - 1) / 2) * height
                ax.errorbar(row["value"], y, xerr=[[row["value"] - row["ci_low"]], [row["ci_high"] - row["value"]]],
                            fmt="o", color=colour, capsize=3, label=group_title(*group) if q == 0 else None)
                seeds = [float(v) for v in str(row["seeds"]).split()] if isinstance(row["seeds"], str) else []
                ax.scatter(seeds, [y] * len(seeds), s=9, color=colour, alpha=0.5, zorder=3)
                shown += [row["ci_low"], row["ci_high"], *seeds]
        ax.set_yticks(range(len(names)), [n.replace("_", " ") for n in names], fontsize=8)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xscale("symlog", linthresh=100)
        finite = [v for v in shown if np.isfinite(v)]
        if finite:  # symlog: pad by a factor beyond ±100
            ax.set_xlim(min(min(finite) * 2, -200), max(max(finite) * 2, 200))
        ax.grid(alpha=0.3)
        ax.set_title(title, fontsize=9)
        if groups:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
        else:
            ax.text(0.5, 0.5, "no penalised runs (grokking.jacobian_penalties is empty)", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
    fig.tight_layout()
    return fig
