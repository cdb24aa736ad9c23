"""Shared style of every stage's figures: the Agg backend, the colours and the panel helpers."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

SEED_COLOURS = plt.get_cmap("tab10").colors
CHECKPOINT_COLOURS = {"memorised": "tab:red", "generalised": "tab:blue", "final": "tab:green"}


def panels(keys, sharey=True):
    """One panel per (α, wd): rows are init scales, columns weight decays."""
    rows = sorted({k[0] for k in keys})
    cols = sorted({k[1] for k in keys})
    if not rows:  # e.g. every run diverged: a figure that says so rather than a failed job
        fig, axes = plt.subplots(1, 1, squeeze=False)
        axes[0][0].text(0.5, 0.5, "no run has data for this figure", ha="center", va="center")
        return fig, axes, rows, cols
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(4.2 * len(cols), 3.2 * len(rows)),
                             squeeze=False, sharex=True, sharey=sharey)
    present = {(k[0], k[1]) for k in keys}
    for i, alpha in enumerate(rows):
        for j, wd in enumerate(cols):
            if (alpha, wd) not in present:  # a group left out of the grid (grokking.excluded_groups)
                axes[i][j].axis("off")
                axes[i][j].text(0.5, 0.5, f"α = {alpha:g}, wd = {wd:g}: not run", ha="center", va="center",
                                transform=axes[i][j].transAxes, color="grey")
    return fig, axes, rows, cols


def delay_notes(runs: pd.DataFrame) -> dict[tuple, str]:
    """{(α, wd): a note on what its runs did, for panel titles}, from grokking_runs.csv: empty where every
    seed grokked (memorised, then generalised at a later evaluation); otherwise how many seeds had no
    grokking delay (generalised before or without memorising), so that a 'memorised' network is not read as
    one that memorised before generalising."""
    notes = {}
    for (alpha, wd), frame in runs.groupby(["init_scale", "weight_decay"]):
        no_delay = int((frame["status"] == "no_delay").sum())
        if no_delay:
            notes[(alpha, wd)] = f"no grokking delay in {no_delay}/{len(frame)} seeds (generalised first)"
    return notes


def panel_title(alpha, wd, notes: dict | None = None, extra: str = "") -> str:
    note = (notes or {}).get((alpha, wd), "")
    return f"α = {alpha:g}, wd = {wd:g}{extra}" + (f"\n{note}" if note else "")


def label_panels(axes, alphas, wds, ylabel: str, xlabel: str = "step", notes: dict | None = None) -> None:
    for i, alpha in enumerate(alphas):
        for j, wd in enumerate(wds):
            ax = axes[i][j]
            if not ax.axison:  # a group that was not run
                continue
            ax.set_title(panel_title(alpha, wd, notes), fontsize=10 if not (notes or {}).get((alpha, wd)) else 8)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel(ylabel)
            if i == len(alphas) - 1:
                ax.set_xlabel(xlabel)


def seed_colour(seed: int):
    return SEED_COLOURS[int(seed) % len(SEED_COLOURS)]


def legend_below(fig, handles) -> None:
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.03 * math.ceil(len(handles) / 5)))


def seed_handles(seeds):
    return [plt.Line2D([], [], color=seed_colour(s), label=f"seed {s}") for s in sorted(seeds)]


def by_panel(frame: pd.DataFrame):
    keys = list(frame.groupby(["init_scale", "weight_decay"]).groups)
    return keys, frame.groupby(["init_scale", "weight_decay"])


def luminance(rgba) -> float:
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def depth_colours(depths):
    cmap = plt.get_cmap("viridis")
    depths = sorted(depths)
    return {d: cmap(i / max(len(depths) - 1, 1) * 0.85) for i, d in enumerate(depths)}


def layers_in_order(names) -> list[str]:
    order = lambda name: (0, 0) if name == "input" else (int("".join(filter(str.isdigit, name))),
                                                         0 if name.startswith("linear") else 1)
    return sorted(set(names), key=order)


def cka_image(ax, matrix, names):
    """A layer × layer CKA heatmap on `ax` (rows: first network, bottom to top)."""
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="magma", origin="lower")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    return image
