"""The claims figure: each claim's effect with its interval over runs, against its boundary, coloured by verdict."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .style import plt

VERDICT_COLOURS = {"supported": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:orange",
                   "not measured": "lightgrey"}


def claims_figure(claims: pd.DataFrame) -> plt.Figure:
    """One small panel per claim (effects have different units, so each keeps its own axis): the estimate
    with its 95 % Student-t interval over seeds (or the correlation's interval over configurations), each
    seed's effect as a dot, the boundary as a dashed line; the panel's colour is the verdict."""
    n = max(len(claims), 1)
    cols = 4
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (_, c) in zip(axes.flat, claims.iterrows()):
        colour = VERDICT_COLOURS.get(c["verdict"], "black")
        ax.axvline(c["boundary"], color="black", linestyle="--", linewidth=0.8)
        runs = [float(part.rsplit(":", 1)[1]) for part in str(c["per_seed"]).split("; ") if ":" in part]
        if runs:
            ax.scatter(runs, np.linspace(-0.25, 0.25, len(runs)), s=10, color="grey", zorder=2)
        if np.isfinite(c["estimate"]):
            low, high = c["ci_low"], c["ci_high"]
            ax.errorbar([c["estimate"]], [0], xerr=[[c["estimate"] - low], [high - c["estimate"]]], fmt="o",
                        color=colour, capsize=4, zorder=3)
            span = [v for v in (low, high, c["boundary"], *runs) if np.isfinite(v)]
            pad = 0.1 * (max(span) - min(span) or 1.0)
            ax.set_xlim(min(span) - pad, max(span) + pad)
        else:
            ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center", color="grey")
        ax.set_yticks([])
        ax.set_ylim(-0.6, 0.6)
        for side in ax.spines.values():
            side.set_edgecolor(colour)
            side.set_linewidth(2)
        ax.set_title(f"{c['id']}: {c['verdict']} (n = {int(c['n'])})", fontsize=8, color=colour)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(f"claimed {c['claimed']}", fontsize=7)
    fig.suptitle("The study's claims: mean over seeds ± 95 % Student-t interval (dots: seeds; dashed: the claim's "
                 "boundary)", fontsize=10)
    fig.tight_layout()
    return fig
