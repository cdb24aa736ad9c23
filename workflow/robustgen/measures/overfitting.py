"""Catastrophic overfitting (CO) read off an adversarial-training run's held-out log (docs/protocols.md §8): the
study's rule, Wong et al.'s rule beside it, and the schedule both need. Pure functions of a log table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..settings import OverfittingRule

TOL = 1e-9  # accuracies are multiples of 1/n: a value on a threshold is compared as the count it is
WONG_DROP = 0.2  # Wong et al.'s early stop: a fall of more than this from the previous epoch's check
VERDICT_KEYS = ("best_pgd_acc", "best_step", "pgd_before", "step_before", "alignment_before", "pgd_after",
                "step_after", "alignment_after")


def schedule(run: dict) -> dict:
    """What the CO rules need of a run besides its log (from its run.json): the steps of its ε warm-up and of
    one epoch."""
    s = run["settings"]
    per_epoch = math.ceil(run["data"]["train_size"] / s["batch_size"])  # as `run` trains
    return dict(warmup_steps=s["warmup_epochs"] * per_epoch, steps_per_epoch=per_epoch)


def wong_rule(log: pd.DataFrame, steps_per_epoch: int) -> dict:
    """Wong et al.'s own CO rule, reported beside ours: at every epoch's end, PGD accuracy on a training
    minibatch (the log's `batch_pgd_acc`: the epoch's last batch); CO at the first check more than 0.2 below
    the previous one (the first check against 0, as their code starts). Every epoch is checked, the warm-up's
    too: their rule has no warm-up."""
    checks = log[(log["step"] > 0) & (log["step"] % steps_per_epoch == 0)]
    acc = checks["batch_pgd_acc"].to_numpy(dtype=float)
    fell = np.flatnonzero(np.diff(acc, prepend=0.0) < -(WONG_DROP + TOL))
    return dict(co_wong=bool(len(fell)), co_wong_step=int(checks["step"].iloc[fell[0]]) if len(fell) else None)


def detect_overfitting(log: pd.DataFrame, rule: OverfittingRule, *, warmup_steps: int,
                       steps_per_epoch: int) -> dict:
    """Whether and when a run overfitted catastrophically, from its held-out log (docs/protocols.md §8).

    Only logged steps at or after the end of the ε warm-up (`warmup_steps`) are judged: a peak reached while
    the training ε still ramps is no robustness to lose. On them, the verdict (`co_verdict`):

    - 'collapse' (CO; `co` is True only for it): the first judged step at which PGD accuracy lies more than
      `drop` below its best so far, FGSM accuracy at least `gap` above PGD accuracy, and clean accuracy at
      most `clean_drop` below its best so far (CO keeps clean accuracy high; a run losing everything is not CO);
    - 'no_gain' (not CO: the run never gained robustness to lose): no collapse, and the run ends with PGD
      accuracy at most `floor` and FGSM accuracy at least `gap` above it;
    - 'none'.

    Also Wong et al.'s rule (`wong_rule`); the best judged PGD accuracy and its step; the final accuracies;
    and the PGD accuracy and gradient alignment at the best judged step before the collapse and at the
    collapse (without one: at the best judged step and at the end).
    """
    if log.empty:
        raise ValueError("the run's log has no row: it was not written to the end; delete the run's directory and "
                         "rerun snakemake")
    last = log.iloc[-1]
    found = dict(co=False, co_verdict="none", co_step=None, final_pgd_acc=float(last["pgd_acc"]),
                 final_fgsm_acc=float(last["fgsm_acc"]), final_clean_acc=float(last["clean_acc"]),
                 **wong_rule(log, steps_per_epoch))
    judged = log[log["step"] >= max(warmup_steps, 1)]  # as the best network is chosen: never the untrained one
    if judged.empty:  # the run stopped before its warm-up ended: nothing to judge
        return found | dict.fromkeys(VERDICT_KEYS, math.nan)
    pgd_acc, fgsm_acc, clean_acc, steps, alignment = (
        judged[c].to_numpy() for c in ("pgd_acc", "fgsm_acc", "clean_acc", "step", "alignment"))
    held = fgsm_acc - pgd_acc >= rule.gap - TOL
    fell = np.maximum.accumulate(pgd_acc) - pgd_acc > rule.drop + TOL
    clean_high = np.maximum.accumulate(clean_acc) - clean_acc <= rule.clean_drop + TOL
    collapsed = np.flatnonzero(fell & held & clean_high)
    if len(collapsed):
        at = int(collapsed[0])
        found |= dict(co=True, co_verdict="collapse", co_step=int(steps[at]))
    elif pgd_acc[-1] <= rule.floor + TOL and held[-1]:
        found["co_verdict"] = "no_gain"
    end = int(collapsed[0]) if len(collapsed) else len(judged) - 1
    before = int(np.argmax(pgd_acc[:end + 1]))  # the best step before the collapse (the first, on ties)
    best = int(np.argmax(pgd_acc))
    return found | dict(
        best_pgd_acc=float(pgd_acc[best]), best_step=int(steps[best]),
        pgd_before=float(pgd_acc[before]), step_before=int(steps[before]), alignment_before=float(alignment[before]),
        pgd_after=float(pgd_acc[end]), step_after=int(steps[end]), alignment_after=float(alignment[end]),
    )
