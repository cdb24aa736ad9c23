"""Figures of the study (matplotlib, Agg backend): each function takes tables and returns a Figure."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SEED_COLOURS = plt.get_cmap("tab10").colors


def _panels(keys, sharey=True):
    """One panel per (α, wd): rows are init scales, columns weight decays."""
    rows = sorted({k[0] for k in keys})
    cols = sorted({k[1] for k in keys})
    if not rows:  # e.g. every run diverged: a figure that says so rather than a failed job
        fig, axes = plt.subplots(1, 1, squeeze=False)
        axes[0][0].text(0.5, 0.5, "no run has data for this figure", ha="center", va="center")
        return fig, axes, rows, cols
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(4.2 * len(cols), 3.2 * len(rows)),
                             squeeze=False, sharex=True, sharey=sharey)
    return fig, axes, rows, cols


def _label_panels(axes, alphas, wds, ylabel: str, xlabel: str = "step") -> None:
    for i, alpha in enumerate(alphas):
        for j, wd in enumerate(wds):
            ax = axes[i][j]
            ax.set_title(f"α = {alpha:g}, wd = {wd:g}", fontsize=10)
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel(ylabel)
            if i == len(alphas) - 1:
                ax.set_xlabel(xlabel)


def _seed_colour(seed: int):
    return SEED_COLOURS[int(seed) % len(SEED_COLOURS)]


def _legend_below(fig, handles) -> None:
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02 - 0.03 * math.ceil(len(handles) / 5)))


def _seed_handles(seeds):
    return [plt.Line2D([], [], color=_seed_colour(s), label=f"seed {s}") for s in sorted(seeds)]


def grokking_curves(runs: list[dict]) -> plt.Figure:
    """Train/test accuracy on a log step axis with weight norm and checkpoint markers.

    `runs`: dicts with init_scale, weight_decay, seed, metrics (DataFrame) and checkpoints (the
    'checkpoints' mapping of checkpoints.json). One panel per (α, wd); seeds overlaid in colour.
    """
    keys = [(r["init_scale"], r["weight_decay"]) for r in runs]
    fig, axes, alphas, wds = _panels(keys)
    norm_axes = {}
    for r in sorted(runs, key=lambda r: r["seed"]):
        i, j = alphas.index(r["init_scale"]), wds.index(r["weight_decay"])
        ax = axes[i][j]
        colour = _seed_colour(r["seed"])
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
    _label_panels(axes, alphas, wds, "accuracy")
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
    _legend_below(fig, handles + _seed_handles({r["seed"] for r in runs}))
    fig.tight_layout()
    return fig


def _luminance(rgba) -> float:
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


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
            dark = np.isfinite(median[i, j]) and _luminance(image.cmap(image.norm(logged[i, j]))) < 0.5
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


CHECKPOINT_COLOURS = {"memorised": "tab:red", "generalised": "tab:blue", "final": "tab:green"}


def _by_panel(frame: pd.DataFrame):
    keys = list(frame.groupby(["init_scale", "weight_decay"]).groups)
    return keys, frame.groupby(["init_scale", "weight_decay"])


def robustness_histograms(per_image: pd.DataFrame) -> plt.Figure:
    """Walker's histogram: the random-noise radius (grid mode, finest Δ) of the memorised and the
    generalised checkpoint, seeds pooled, one panel per (α, wd); medians as vertical lines."""
    grid = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "grid")]
    if grid.empty:  # no grid deltas configured: fall back to the bisection mode
        grid = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "bisection")]
        label = "random-noise radius (bisection)"
    else:
        delta = grid["delta"].min()
        grid = grid[grid["delta"] == delta]
        label = f"random-noise radius (grid, Δ = {delta:g})"
    grid = grid[grid["checkpoint"].isin(["memorised", "generalised"]) & grid["radius"].notna()]
    keys, groups = _by_panel(grid)
    fig, axes, alphas, wds = _panels(keys, sharey=False)
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
    _label_panels(axes, alphas, wds, "images", label)
    fig.tight_layout()
    return fig


def robustness_trajectory(trajectory: pd.DataFrame) -> plt.Figure:
    """The robustness trajectory through grokking: median random-noise radius (bisection) with its
    quartile band against step, beside test accuracy (dashed, right axis); seeds in colour."""
    keys, groups = _by_panel(trajectory)
    fig, axes, alphas, wds = _panels(keys)
    twins = {}
    for (alpha, wd), frame in groups:
        i, j = alphas.index(alpha), wds.index(wd)
        ax = axes[i][j]
        twins[(i, j)] = twin = ax.twinx()
        for seed, run in frame.groupby("seed"):
            run = run[run["step"] > 0].sort_values("step")
            colour = _seed_colour(seed)
            ax.plot(run["step"], run["median"], color=colour, lw=1.5)
            ax.fill_between(run["step"], run["q1"], run["q3"], color=colour, alpha=0.15, lw=0)
            twin.plot(run["step"], run["test_acc"], color=colour, ls="--", lw=1)
        twin.set_ylim(0, 1.02)
        twin.set_ylabel("test accuracy", fontsize=8)
        twin.tick_params(labelsize=7)
        ax.set_xscale("log")
    _label_panels(axes, alphas, wds, "random-noise radius")
    handles = [plt.Line2D([], [], color="grey", lw=1.5, label="median radius (bisection), quartile band"),
               plt.Line2D([], [], color="grey", ls="--", label="test accuracy (right axis)")]
    _legend_below(fig, handles + _seed_handles(trajectory["seed"].unique()))
    fig.tight_layout()
    return fig


def random_vs_adversarial(per_image: pd.DataFrame) -> plt.Figure:
    """Per image: adversarial (PGD) radius against random-noise (bisection) radius in the same norm, for
    the memorised and generalised checkpoints, one panel per (α, wd), log-log with the median ratio."""
    random = per_image[(per_image["measure"] == "random") & (per_image["mode"] == "bisection")]
    norm = random["norm"].iloc[0] if len(random) else "l2"
    adversarial = per_image[(per_image["measure"] == "adversarial") & (per_image["norm"] == norm)]
    keys_ = ["seed", "checkpoint", "image", "init_scale", "weight_decay"]
    paired = random[keys_ + ["radius"]].merge(adversarial[keys_ + ["radius"]], on=keys_,
                                              suffixes=("_random", "_adversarial"))
    paired = paired[np.isfinite(paired["radius_random"]) & np.isfinite(paired["radius_adversarial"])]
    paired = paired[paired["checkpoint"].isin(["memorised", "generalised"])]
    keys, groups = _by_panel(paired)
    fig, axes, alphas, wds = _panels(keys)
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
    _label_panels(axes, alphas, wds, f"adversarial radius (PGD, {norm})", f"random-noise radius ({norm})")
    fig.tight_layout()
    return fig


WHERE_LABELS = {"test_points": "test\npoints", "train_points": "train\npoints", "random": "random\nellipse",
                "different_class": "different-\nclass ellipse", "same_class": "same-\nclass ellipse"}
METRIC_LABELS = {"jacobian_norm": "Jacobian norm ‖∂softmax/∂x‖_F", "transition_density": "transitions per unit length",
                 "transitions": "transitions per ellipse"}


def sensitivity_comparison(summary: pd.DataFrame) -> plt.Figure:
    """Novak's comparison: mean Jacobian norm and transition density (± standard error) at test and
    training points and along each kind of ellipse, for each checkpoint; a column per (α, wd), seeds pooled."""
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
                ax.bar(np.arange(len(places)) + (c - (len(checkpoints) - 1) / 2) * width, r["mean"], width,
                       yerr=r["se"], color=CHECKPOINT_COLOURS[name], alpha=0.8, capsize=2, label=name)
            ax.set_xticks(range(len(places)), [WHERE_LABELS[p] for p in places], fontsize=7)
            if metric == "jacobian_norm":
                ax.set_yscale("log")
            ax.grid(alpha=0.3, axis="y")
            if j == 0:
                ax.set_ylabel(METRIC_LABELS[metric], fontsize=8)
            if i == 0:
                ax.set_title(f"α = {alpha:g}, wd = {wd:g}", fontsize=10)
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
                colour = _seed_colour(seed)
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
    _legend_below(fig, handles + _seed_handles(trajectory["seed"].unique()))
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


def _depth_colours(depths):
    cmap = plt.get_cmap("viridis")
    depths = sorted(depths)
    return {d: cmap(i / max(len(depths) - 1, 1) * 0.85) for i, d in enumerate(depths)}


def capacity_generalisation(table: pd.DataFrame) -> plt.Figure:
    """Novak's Figure 1 (left): test accuracy and generalisation gap (train − test accuracy) against the
    parameter count, coloured by depth; hollow markers: not at 100 % training accuracy by max_epochs."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    colours = _depth_colours(table["depth"].unique())
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
    with Pearson and Spearman correlations and their bootstrap 95 % intervals."""
    fitted_nets = table[table["reached_full_train_acc"].astype(bool)]
    colours = _depth_colours(table["depth"].unique())
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
        row = found[(found["x"] == x) & (found["y"] == "gap_acc")]
        if len(row):
            r = row.iloc[0]
            ax.text(0.02, 0.97, f"n = {int(r['n'])}\n"
                    f"Pearson{' (log x)' if log else ''} {r['pearson']:.2f} [{r['pearson_ci_low']:.2f}, {r['pearson_ci_high']:.2f}]\n"
                    f"Spearman {r['spearman']:.2f} [{r['spearman_ci_low']:.2f}, {r['spearman_ci_high']:.2f}]",
                    transform=ax.transAxes, va="top", fontsize=8,
                    bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _layers_in_order(names) -> list[str]:
    order = lambda name: (0, 0) if name == "input" else (int("".join(filter(str.isdigit, name))),
                                                         0 if name.startswith("linear") else 1)
    return sorted(set(names), key=order)


def cka_heatmaps(layers: pd.DataFrame) -> plt.Figure:
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
            ax.set_title(f"α = {alpha:g}, wd = {wd:g}, seed {seed}\n{title}", fontsize=8)
            if rows.empty:
                ax.text(0.5, 0.5, "not reached", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            names = _layers_in_order(rows["layer_a"])
            matrix = rows.pivot(index="layer_a", columns="layer_b", values="cka").reindex(index=names, columns=names)
            image = ax.imshow(matrix.to_numpy(), vmin=0, vmax=1, cmap="magma", origin="lower")
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
            ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="CKA")
    return fig


def cka_by_layer(layers: pd.DataFrame, seeds: pd.DataFrame) -> plt.Figure:
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
        names = _layers_in_order(layers["layer_a"])
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
        ax.set_title(f"α = {alpha:g}, wd = {wd:g}", fontsize=10)
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
    names = _layers_in_order(trajectory["layer"])
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
