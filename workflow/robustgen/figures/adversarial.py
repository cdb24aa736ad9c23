"""Figures of adversarial training and catastrophic overfitting: the CO plot, a CO event's training curves,
CO against the injected feature's strength β, and the study's measures of the trained networks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import seed_colour

METHOD_COLOURS = {"standard": "0.45", "fgsm": "tab:red", "rs_fgsm": "tab:orange", "n_fgsm": "tab:purple",
                  "pgd": "tab:blue"}
METHOD_NAMES = {"standard": "standard", "fgsm": "FGSM", "rs_fgsm": "RS-FGSM", "n_fgsm": "N-FGSM", "pgd": "PGD-k"}


def _jitter(values: pd.Series, index: int, total: int, width: float) -> np.ndarray:
    return values.to_numpy(dtype=float) + (index - (total - 1) / 2) * width


def _empty(ax, text="no run has data for this figure"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def co_plot(runs: pd.DataFrame) -> plt.Figure:
    """PGD-50 (restarts) and clean accuracy of the final networks against the training ε, per method: the
    mean over seeds as a line, every seed as a point (a cross where the run overfitted catastrophically)."""
    runs = runs[runs["beta"] == 0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    methods = [m for m in METHOD_COLOURS if m in set(runs["method"])]
    step = 0.004 * (runs["eps"].max() - runs["eps"].min() or 1) / 0.1 if len(runs) else 0
    for ax, column, ylabel in zip(axes, ("pgd50_final", "clean_final"),
                                  ("PGD-50 × restarts accuracy at the training ε", "clean accuracy")):
        for i, method in enumerate(methods):
            g = runs[runs["method"] == method]
            mean = g.groupby("eps")[column].mean()
            colour = METHOD_COLOURS[method]
            ax.plot(mean.index, mean.to_numpy(), color=colour, label=METHOD_NAMES[method], lw=1.6)
            for co, marker in ((False, "o"), (True, "x")):
                part = g[g["co"].astype(bool) == co]
                ax.scatter(_jitter(part["eps"], i, len(methods), step), part[column], color=colour, marker=marker,
                           s=22 if co else 14, alpha=0.8, lw=1.2)
        ax.set_xlabel("training (and evaluation) ε, L∞")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if runs.empty:
            _empty(ax)
    handles = axes[0].get_legend_handles_labels()[0] + [
        plt.Line2D([], [], ls="", marker="o", color="k", label="seed"),
        plt.Line2D([], [], ls="", marker="x", color="k", label="seed with CO (a collapse)")]
    axes[0].legend(handles=handles, fontsize=7)
    fig.suptitle("Catastrophic overfitting: robust accuracy of the final networks (line: mean over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def co_curves(logs: dict[str, pd.DataFrame], event: pd.Series | None, reference: pd.DataFrame | None) -> plt.Figure:
    """Training curves of one CO event (`logs`: its held-out log): clean, FGSM and PGD accuracy on the held-out
    images and PGD accuracy on the training batch (left), gradient alignment and input-gradient norm (right);
    the dashed PGD curve is PGD-k training at the same ε and seed, where it ran. Shaded: the ε warm-up, which
    the CO rule does not judge; dotted red: the CO step of Wong et al.'s rule, where it found one."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9))
    if event is None:
        for ax in axes:
            _empty(ax, "no run overfitted catastrophically")
        fig.tight_layout()
        return fig
    log = logs["event"]
    left, right = axes
    for column, colour, label in (("clean_acc", "k", "clean"), ("fgsm_acc", "tab:orange", "FGSM"),
                                  ("pgd_acc", "tab:red", "PGD (held-out)"),
                                  ("batch_pgd_acc", "tab:pink", "PGD (training batch)")):
        left.plot(log["epoch"], log[column], color=colour, label=label, lw=1.4)
    if reference is not None:
        left.plot(reference["epoch"], reference["pgd_acc"], color="tab:blue", ls="--", lw=1.2,
                  label="PGD (held-out), PGD-k training")
    right.plot(log["epoch"], log["alignment"], color="tab:green", label="gradient alignment")
    twin = right.twinx()
    twin.plot(log["epoch"], log["grad_norm"], color="tab:brown", ls=":", label="‖∇ₓℓ‖ (mean)")
    twin.set_yscale("log")
    twin.set_ylabel("mean ‖∇ₓℓ‖₂")
    steps_per_epoch = log["step"].iloc[-1] / log["epoch"].iloc[-1] if log["epoch"].iloc[-1] else 1
    for ax in axes:
        ax.axvspan(0, event["warmup_steps"] / steps_per_epoch, color="0.9", lw=0)
        ax.axvline(event["step_before"] / steps_per_epoch, color="0.5", ls="--", lw=0.8)
        ax.axvline(event["co_step"] / steps_per_epoch, color="tab:red", ls="--", lw=0.8)
        if str(event["co_wong"]) == "True":
            ax.axvline(event["co_wong_step"] / steps_per_epoch, color="tab:red", ls=":", lw=0.8)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    left.set_ylabel("accuracy")
    left.set_ylim(-0.02, 1.02)
    right.set_ylabel("cos(∇ₓℓ(x), ∇ₓℓ(x + η))")
    left.legend(fontsize=7)
    right.legend(handles=right.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0], fontsize=7)
    fig.suptitle(f"{METHOD_NAMES.get(event['method'], event['method'])} training, ε = {event['eps']:g}, "
                 f"β = {event['beta']:g}, seed {int(event['seed'])}: held-out PGD accuracy {event['pgd_before']:.2f} at "
                 f"step {int(event['step_before'])} → {event['pgd_after']:.2f} at step {int(event['co_step'])} "
                 f"(CO); grey: best before CO, red: CO; shaded: ε warm-up", fontsize=9)
    fig.tight_layout()
    return fig


def feature_plot(runs: pd.DataFrame, logs: dict[tuple, pd.DataFrame], method: str, eps: float) -> plt.Figure:
    """The data intervention: held-out PGD accuracy through training for each β (mean over seeds, band:
    seed range), and per seed the best held-out PGD accuracy and the final PGD-50 accuracy against β."""
    runs = runs[(runs["method"] == method) & np.isclose(runs["eps"], eps)]
    betas = sorted(runs["beta"].unique())
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, max(len(betas), 1)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9))
    left, right = axes
    for beta, colour in zip(betas, colours):
        curves = [logs[key].set_index("epoch")["pgd_acc"] for key in logs if np.isclose(key[0], beta)]
        if not curves:
            continue
        table = pd.concat(curves, axis=1)
        left.plot(table.index, table.mean(axis=1), color=colour, label=f"β = {beta:g}")
        left.fill_between(table.index, table.min(axis=1), table.max(axis=1), color=colour, alpha=0.15, lw=0)
    width = 0.006 * (max(betas) - min(betas) or 1) / 0.1 if betas else 0
    seeds = sorted(runs["seed"].unique())
    for i, seed in enumerate(seeds):
        g = runs[runs["seed"] == seed].sort_values("beta")
        x = _jitter(g["beta"], i, len(seeds), width)
        right.plot(x, g["best_pgd_acc"], color=seed_colour(seed), ls=":", marker="^", ms=4, lw=0.8)
        right.plot(x, g["pgd50_final"], color=seed_colour(seed), marker="o", ms=4, lw=1.2, label=f"seed {seed}")
        co = g["co"].astype(bool).to_numpy()
        right.scatter(x[co], g["pgd50_final"].to_numpy()[co], s=70, facecolors="none", edgecolors="tab:red", lw=1.2)
    right.scatter([], [], s=70, facecolors="none", edgecolors="tab:red", label="CO")
    right.plot([], [], color="k", ls=":", marker="^", ms=4, label="best held-out PGD (training log)")
    left.set_xlabel("epoch")
    left.set_ylabel("held-out PGD accuracy")
    right.set_xlabel("β (feature strength, L∞ units)")
    right.set_ylabel("PGD accuracy")
    for ax in axes:
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if runs.empty:
            _empty(ax)
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.suptitle(f"Injected feature β·v_y: {METHOD_NAMES.get(method, method)} training at ε = {eps:g} "
                 f"(circles: final network, PGD-50 × restarts)", fontsize=10)
    fig.tight_layout()
    return fig


PROBE_MEASURES = {
    "random_bisection_l2": "random-noise radius (L2, median)",
    "adversarial_tightest_linf": "adversarial radius (L∞, median)",
    "adversarial_tightest_l2": "adversarial radius (L2, median)",
    "jacobian_norm": "Jacobian norm (mean)",
    "transition_density_different_class": "transitions per unit length (mean)",
}


def probe_plot(probes: pd.DataFrame, runs: pd.DataFrame) -> plt.Figure:
    """Each measure of the final networks against the training ε, per method (marker: median over seeds of
    the per-network statistic; bars: seed range); hollow markers: the network at the best step before the
    collapse, in runs whose PGD accuracy collapsed (median over those seeds)."""
    probes = probes[probes["beta"] == 0]
    co_runs = runs[runs["co"].astype(bool) & (runs["beta"] == 0)][["method", "eps", "seed"]]
    measures = [m for m in PROBE_MEASURES if m in set(probes["measure"])]
    fig, axes = plt.subplots(1, max(len(measures), 1), figsize=(3.3 * max(len(measures), 1), 3.5), squeeze=False)
    axes = axes[0]
    methods = [m for m in METHOD_COLOURS if m in set(probes["method"])]
    for ax, measure in zip(axes, measures):
        part = probes[probes["measure"] == measure]
        statistic = "mean" if measure.startswith(("jacobian", "transition")) else "median"
        width = 0.004 * (part["eps"].max() - part["eps"].min() or 1) / 0.1
        for i, method in enumerate(methods):
            colour = METHOD_COLOURS[method]
            final = part[(part["method"] == method) & (part["network"] == "final")]
            per_eps = final.groupby("eps")[statistic]
            centre = per_eps.median()
            x = _jitter(pd.Series(centre.index), i, len(methods), width)
            ax.errorbar(x, centre.to_numpy(), yerr=[centre - per_eps.min(), per_eps.max() - centre], color=colour,
                        marker="o", ms=4, lw=1.2, capsize=2, label=METHOD_NAMES[method])
            best = part[(part["method"] == method) & (part["network"] == "best")].merge(co_runs)
            if len(best):
                b = best.groupby("eps")[statistic].median()
                ax.scatter(_jitter(pd.Series(b.index), i, len(methods), width), b.to_numpy(), facecolors="none",
                           edgecolors=colour, s=30, lw=1.0)
        ax.set_yscale("log")
        ax.set_title(PROBE_MEASURES[measure], fontsize=9)
        ax.set_xlabel("training ε (L∞)")
        ax.grid(alpha=0.3)
    if not measures:
        _empty(axes[0])
    else:
        axes[0].scatter([], [], facecolors="none", edgecolors="k", label="best network, runs with CO")
        axes[0].legend(fontsize=6)
    fig.suptitle("The study's measures of adversarially trained networks (final networks; bars: seed range)",
                 fontsize=10)
    fig.tight_layout()
    return fig
