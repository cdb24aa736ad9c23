"""Figures of the robustness stage: radius histograms, the radius trajectory, adversarial vs random radii."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import (CHECKPOINT_COLOURS, by_panel, label_panels, legend_below, panel_title, panels, seed_colour,
                    seed_handles)


def robustness_histograms(per_image: pd.DataFrame, notes: dict | None = None) -> plt.Figure:
    """Walker's histogram: the random-noise radius (grid mode, finest Δ) of the memorised and the
    generalised checkpoint, seeds pooled, one panel per (α, wd); medians as vertical lines. `notes`
    (style.delay_notes) marks panels whose runs generalised before memorising."""
    grid = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "grid")]
    if grid.empty:  # no grid deltas configured: fall back to the bisection mode
        grid = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "bisection")]
        label = "random-noise radius (bisection)"
    else:
        delta = grid["delta"].min()
        grid = grid[grid["delta"] == delta]
        label = f"random-noise radius (grid, Δ = {delta:g})"
    grid = grid[grid["checkpoint"].isin(["memorised", "generalised"]) & grid["radius"].notna()]
    keys, groups = by_panel(grid)
    fig, axes, alphas, wds = panels(keys, sharey=False)
    finite = grid["radius"][np.isfinite(grid["radius"].astype(float))]
    top = float(finite.quantile(0.995)) if len(finite) else 1.0
    bins = np.linspace(0, top, 41)
    for (alpha, wd), frame in groups:
        ax = axes[alphas.index(alpha)][wds.index(wd)]
        for name in ("memorised", "generalised"):
            radii = frame.loc[frame["checkpoint"] == name, "radius"].to_numpy(dtype=float)
            if not len(radii):
                continue
            shown = np.clip(radii, 0, top)  # censored (inf) and the far tail pile up in the last bin
            ax.hist(shown, bins=bins, alpha=0.55, color=CHECKPOINT_COLOURS[name],
                    label=f"{name} (n={len(radii)}, median {np.median(radii):.2f})")
            ax.axvline(np.median(radii), color=CHECKPOINT_COLOURS[name], lw=1.5, ls="--")
        ax.legend(fontsize=7)
    label_panels(axes, alphas, wds, "images", label, notes)
    fig.tight_layout()
    return fig


def robustness_trajectory(trajectory: pd.DataFrame) -> plt.Figure:
    """The robustness trajectory through grokking: median random-noise radius (bisection) with its
    quartile band against step, beside test accuracy (dashed, right axis); seeds in colour."""
    keys, groups = by_panel(trajectory)
    fig, axes, alphas, wds = panels(keys)
    twins = {}
    for (alpha, wd), frame in groups:
        i, j = alphas.index(alpha), wds.index(wd)
        ax = axes[i][j]
        twins[(i, j)] = twin = ax.twinx()
        for seed, run in frame.groupby("seed"):
            run = run[run["step"] > 0].sort_values("step")
            colour = seed_colour(seed)
            ax.plot(run["step"], run["median"], color=colour, lw=1.5)
            ax.fill_between(run["step"], run["q1"], run["q3"], color=colour, alpha=0.15, lw=0)
            twin.plot(run["step"], run["test_acc"], color=colour, ls="--", lw=1)
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("test accuracy", fontsize=8)
        twin.tick_params(labelsize=7)
        ax.set_xscale("log")
    label_panels(axes, alphas, wds, "random-noise radius")
    handles = [plt.Line2D([], [], color="grey", lw=1.5, label="median radius (bisection), quartile band"),
               plt.Line2D([], [], color="grey", ls="--", label="test accuracy (right axis)")]
    legend_below(fig, handles + seed_handles(trajectory["seed"].unique()))
    fig.tight_layout()
    return fig


def random_vs_adversarial(per_image: pd.DataFrame) -> plt.Figure:
    """Per image: adversarial radius (the tightest over the attacks, else PGD's) against random-noise
    (bisection) radius in the same norm, for the memorised and generalised checkpoints, one panel per
    (α, wd), log-log with the median ratio."""
    random = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "bisection")]
    norm = random["norm"].iloc[0] if len(random) else "l2"
    adversarial = per_image[(per_image["measure"] == "adversarial") & (per_image["norm"] == norm)]
    mode = "tightest" if (adversarial["mode"] == "tightest").any() else "pgd"
    adversarial = adversarial[adversarial["mode"] == mode]
    keys_ = ["seed", "checkpoint", "image", "init_scale", "weight_decay"]
    paired = random[keys_ + ["radius"]].merge(adversarial[keys_ + ["radius"]], on=keys_,
                                              suffixes=("_random", "_adversarial"))
    paired = paired[np.isfinite(paired["radius_random"]) & np.isfinite(paired["radius_adversarial"])]
    paired = paired[paired["checkpoint"].isin(["memorised", "generalised"])]
    keys, groups = by_panel(paired)
    fig, axes, alphas, wds = panels(keys)
    for (alpha, wd), frame in groups:
        ax = axes[alphas.index(alpha)][wds.index(wd)]
        for name in ("memorised", "generalised"):
            f = frame[frame["checkpoint"] == name]
            if len(f):
                ratio = float(np.median(f["radius_adversarial"] / f["radius_random"]))
                ax.scatter(f["radius_random"], f["radius_adversarial"], s=4, alpha=0.4,
                           color=CHECKPOINT_COLOURS[name], label=f"{name}: median adv/random {ratio:.3f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7, markerscale=3)
    label_panels(axes, alphas, wds, f"adversarial radius ({'tightest' if mode == 'tightest' else 'PGD'}, {norm})",
                 f"random-noise radius ({norm})")
    fig.tight_layout()
    return fig


def robust_accuracy(per_image: pd.DataFrame, notes: dict | None = None) -> plt.Figure:
    """Robust accuracy against ε, as the adversarial-robustness literature reports it: the fraction of all
    probe images whose (tightest) adversarial radius exceeds ε (an image misclassified unperturbed counts as
    not robust at any ε), for the memorised and generalised checkpoints; one row per norm, one column per
    (α, wd); the mean over seeds, with every seed's curve thin."""
    adversarial = per_image[per_image["measure"] == "adversarial"]
    mode = "tightest" if (adversarial["mode"] == "tightest").any() else "pgd"
    adversarial = adversarial[(adversarial["mode"] == mode) & adversarial["checkpoint"].isin(["memorised",
                                                                                           "generalised"])]
    norms = sorted(adversarial["norm"].unique())
    columns = sorted(set(zip(adversarial["init_scale"], adversarial["weight_decay"])))
    if not norms or not columns:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no memorised or generalised network was probed", ha="center", va="center")
        return fig
    fig, axes = plt.subplots(len(norms), len(columns), figsize=(4.2 * len(columns), 3.2 * len(norms)),
                             squeeze=False)
    for i, norm in enumerate(norms):
        rows = adversarial[adversarial["norm"] == norm]
        finite = rows["radius"][np.isfinite(rows["radius"].astype(float))]
        eps = np.linspace(0, float(finite.quantile(0.99)) if len(finite) else 1.0, 200)
        for j, (alpha, wd) in enumerate(columns):
            ax = axes[i][j]
            panel = rows[(rows["init_scale"] == alpha) & (rows["weight_decay"] == wd)]
            for name in ("memorised", "generalised"):
                curves = []
                for seed, f in panel[panel["checkpoint"] == name].groupby("seed"):
                    radii = f["radius"].fillna(0.0).to_numpy(dtype=float)  # misclassified: not robust at all
                    curves.append((radii[None, :] > eps[:, None]).mean(axis=1))
                    ax.plot(eps, curves[-1], color=CHECKPOINT_COLOURS[name], lw=0.6, alpha=0.4)
                if curves:
                    ax.plot(eps, np.mean(curves, axis=0), color=CHECKPOINT_COLOURS[name], lw=1.8,
                            label=f"{name} ({len(curves)} seeds)")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.set_title(panel_title(alpha, wd, notes), fontsize=9)
            ax.set_xlabel(f"ε ({norm})")
            if j == 0:
                ax.set_ylabel("robust accuracy")
            if len(ax.lines):
                ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
