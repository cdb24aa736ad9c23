"""Delayed robustness: the onset steps, the local-complexity shape and the lags over seeds, on curves with known
answers; and one network measured end to end against the measures it is made of."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from robustgen.measures.complexity import frame_directions, local_complexity
from robustgen.measures.attacks import adversarial_radius
from robustgen.models import mlp
from robustgen.settings import (Adversarial, AdversarialSearch, AttacksPerNorm, Bootstrap, ComplexityFrames,
                                DelayedMeasures, ImageRange, OnsetRule, PerNorm, RadiusAlongRun)
from robustgen.runs import log_spaced_subset
from robustgen.stages.delayed import (complexity_shape, lag_table, measure_network, onset_table, robust_onset,
                                      trajectory_table)
from robustgen.train import evaluation_steps


STEPS = [0, 1, 3, 10, 30, 100, 300, 1000, 2000, 4000, 6000, 9000, 12000, 16000, 22000, 30000, 45000, 70000,
         100000]


def test_a_transient_dip_is_not_taken_for_the_final_descent():
    """The curve of the review: a fall, a rise to a peak, a transient dip at 9 000, a re-rise through 30 000 and
    the real descent after. The midpoint rule read the dip (first step after the peak below (12 + 4) / 2);
    the descent is the one the curve never rises again from."""
    lc = [10, 10, 9, 7, 5, 5, 6, 9, 12, 12, 8, 6, 7, 9, 10, 11, 9, 6, 4]
    shape = complexity_shape(pd.Series(lc, index=STEPS, dtype=float), after=300)
    assert shape["descent_step"] == 30000 and shape["peak_step"] == 2000
    assert (shape["initial"], shape["min"], shape["peak"], shape["final"]) == (10, 5, 12, 4)
    assert shape["fall_rise_fall"]  # 10 → 5 → 11 → 4
    # a re-rise within 5 % of the range (8) does not end a descent; one beyond does
    bump = lc[:16] + [9, 9.3, 4]
    assert complexity_shape(pd.Series(bump, index=STEPS, dtype=float), after=300)["descent_step"] == 30000
    bump = lc[:16] + [9, 9.5, 4]
    assert complexity_shape(pd.Series(bump, index=STEPS, dtype=float), after=300)["descent_step"] == 70000


def test_a_monotone_curve_has_no_fall_rise_fall_and_a_flat_one_no_descent():
    falling = complexity_shape(pd.Series([10.0, 9, 8, 6, 4, 3], index=[0, 10, 100, 1000, 3000, 10000]), after=10)
    assert falling["descent_step"] == 10 and not falling["fall_rise_fall"] and falling["peak_step"] == 10
    flat = complexity_shape(pd.Series([10.0, 5.0, 5.2, 5.0], index=[0, 10, 100, 1000]), after=10)
    assert math.isnan(flat["descent_step"]) and not flat["fall_rise_fall"]  # a fall within 10 % is no descent


def test_the_untrained_network_is_part_of_the_curve():
    """Step 0 is always a milestone (the training loop evaluates it and the log-spaced subset keeps the first
    step); without it there is no initial value and no fall-rise-fall."""
    assert log_spaced_subset(evaluation_steps(100000, 20, 1000), 20)[0] == 0
    lc = pd.Series([10, 5, 9, 4.0], index=[0, 10, 100, 1000])
    assert complexity_shape(lc, after=10)["fall_rise_fall"]
    unseen = complexity_shape(lc.drop(0), after=10)
    assert math.isnan(unseen["initial"]) and math.isnan(unseen["fall_rise_fall"])  # unknown, not False


def test_robustness_onset_is_a_fraction_of_the_way_from_untrained_to_final():
    radius = pd.Series([0.125, 0.0625, 0.25, 0.375, 0.3, 0.625], index=[0, 10, 20, 30, 40, 50])
    onsets = [robust_onset(radius, untrained=0.125, final=0.625, fraction=f) for f in (0.25, 0.5, 0.75)]
    # thresholds 0.25, 0.375, 0.5; the radius crosses 0.375 at step 30 but falls back below it at 40: the onset is
    # where it stays above, 50
    assert onsets == [20, 50, 50]
    assert math.isnan(robust_onset(radius, untrained=0.625, final=0.625, fraction=0.5))  # no growth, no onset
    assert math.isnan(robust_onset(radius, untrained=math.nan, final=0.625, fraction=0.5))  # step 0 unmeasured


def _run(penalty, seed, memorised, generalised, radii, lc, lc_out=None):
    steps = [0, 100, 1000, 3000, 10000, 30000]
    frame = pd.DataFrame({**dict(dataset="d", init_scale=8.0, weight_decay=0.01, jacobian_penalty=penalty,
                                 seed=seed, checkpoint="snapshot", step=steps, adversarial_radius=radii),
                          "lc_train_r0.05": lc, "lc_with_output_train_r0.05": lc_out or [v + 10 for v in lc],
                          "robust_acc_eps0.1": 0.0})
    named = []
    for name, step in (("memorised", memorised), ("generalised", generalised), ("final", steps[-1])):
        row = frame[frame["step"] == step].iloc[0].copy()
        row["checkpoint"] = name
        named.append(row)
    frame = pd.concat([frame, pd.DataFrame(named)], ignore_index=True)
    found = dict(status="generalised", checkpoints={
        "memorised": dict(reached=True, step=memorised), "generalised": dict(reached=True, step=generalised),
        "final": dict(reached=True, step=steps[-1])})
    key = dict(dataset="d", init_scale=8.0, weight_decay=0.01, jacobian_penalty=penalty, seed=seed)
    return frame, found, key


def test_onsets_and_lags_over_seeds_and_the_paired_penalty_effect():
    rule = OnsetRule(robust_fraction=0.5, complexity_radius=0.05, complexity_points="train")
    runs = [
        _run(0.0, 0, 100, 10000, [1, 1, 1.5, 1.9, 2.5, 4], [9, 5, 7, 8, 4, 3], [19, 15, 15.2, 15.1, 14, 13]),
        _run(0.0, 1, 100, 10000, [1, 1, 1.2, 2.6, 2.5, 4], [9, 5, 9, 6, 4, 3]),
        _run(0.001, 0, 100, 3000, [1, 1, 3, 3, 3, 3], [9, 5, 8, 4, 3, 3]),
        _run(0.001, 1, 100, 1000, [1, 1, 3, 3, 3, 3], [9, 5, 8, 4, 3, 3]),
    ]
    trajectory = pd.concat([r[0] for r in runs], ignore_index=True)
    onsets = onset_table(trajectory, [r[1] for r in runs], [r[2] for r in runs], rule, [0.1])
    assert onsets["robust_onset_step"].tolist() == [10000, 3000, 1000, 1000]  # radius ≥ (1 + 4) / 2, (1 + 3) / 2
    assert onsets["robust_onset_step_f0.75"].tolist() == [30000, 30000, 1000, 1000]
    assert onsets["robust_onset_step_f0.5"].equals(onsets["robust_onset_step"])
    assert (onsets["untrained_radius"] == 1).all() and onsets["final_radius"].tolist() == [4, 4, 3, 3]
    assert onsets["grokking_lag"].tolist() == [9900, 9900, 2900, 900]
    assert onsets["robust_lag"].tolist() == [0, -7000, -2000, 0]
    assert onsets["lc_descent_step"].tolist() == [3000, 1000, 1000, 1000]
    assert onsets["lc_fall_rise_fall"].all()
    # with the output layer seed 0's re-rise is a plateau: no fall-rise-fall, the descent from memorisation
    assert onsets.loc[0, "lc_with_output_descent_step"] == 100 and not onsets.loc[0, "lc_with_output_fall_rise_fall"]
    assert onsets["robust_after_lc_descent"].tolist() == [7000, 2000, 0, 0]
    lags = lag_table(onsets, Bootstrap(resamples=500, seed=0)).set_index(["jacobian_penalty", "statistic", "quantity"])
    mean = lags.loc[(0.0, "mean over seeds", "robust_lag")]
    assert mean["value"] == -3500 and mean["n_seeds"] == 2 and (mean["seed_min"], mean["seed_max"]) == (-7000, 0)
    assert mean["ci_low"] <= -3500 <= mean["ci_high"] and -7000 <= mean["ci_low"] and mean["ci_high"] <= 0
    paired = lags.loc[(0.001, "paired difference from λ = 0", "generalised_step")]
    assert paired["value"] == ((3000 - 10000) + (1000 - 10000)) / 2 and paired["seeds"] == "-7000 -9000"
    assert (0.0, "paired difference from λ = 0", "generalised_step") not in lags.index  # λ = 0 has no twin
    assert (0.0, "mean over seeds", "lc_with_output_descent_step") in lags.index


def _linear_search():
    return AdversarialSearch(images=ImageRange(first=0, count=30), clip=False, adversarial=Adversarial(
        norms=["l2", "linf"], steps=20, step_size=0.125, targeted=False, max_eps=PerNorm(l2=10, linf=1),
        tol=PerNorm(l2=1e-3, linf=1e-4), attacks=AttacksPerNorm(l2=["deepfool"], linf=["deepfool"])))


def test_one_network_measured_against_its_parts():
    """Local complexity per layer sums to 'all' (hidden) and with the output layer to 'all_with_output', and
    equals the measure itself; the adversarial radius is the median over every image, misclassified ones at 0
    (so more than half misclassified gives 0) and no larger than PGD's; robust accuracy is the share of images
    whose tightest radius exceeds ε (misclassified ones count as not robust)."""
    torch.manual_seed(0)
    model = mlp(8, 12, 3, 3).double().eval()
    g = torch.Generator().manual_seed(1)
    points = dict(train=torch.rand(15, 8, generator=g, dtype=torch.float64),
                  test=torch.rand(15, 8, generator=g, dtype=torch.float64),
                  random=torch.rand(15, 8, generator=g, dtype=torch.float64))
    directions = frame_directions(8, 3, g, dtype=torch.float64)
    x = torch.rand(30, 8, generator=g, dtype=torch.float64)
    y = model(x).argmax(1)
    y[:5] = (y[:5] + 1) % 3  # five misclassified images
    d = DelayedMeasures(snapshots=4, complexity=ComplexityFrames(points=15, directions=3, radii=[0.1, 1.0], seed=0),
                        adversarial=RadiusAlongRun(norm="linf", images=30, epsilons=[0.01, 0.05, 0.2]))
    rows = pd.DataFrame(measure_network(model, points, directions, [0.1, 1.0], x, y, _linear_search(), d))
    lc = rows[rows["measure"] == "local_complexity"].set_index(["points", "radius", "layer"])["value"]
    counts = local_complexity(model, points["test"], directions, [0.1, 1.0], output=True).double()
    assert lc[("test", 1.0, "1")] == counts[:, 1, 0].mean().item()
    assert lc[("test", 1.0, "output")] == counts[:, 1, -1].mean().item()
    assert lc[("test", 1.0, "all")] == pytest.approx(lc[("test", 1.0, "1")] + lc[("test", 1.0, "2")])
    assert lc[("test", 1.0, "all_with_output")] == pytest.approx(lc[("test", 1.0, "all")] + lc[("test", 1.0, "output")])
    radius = rows[rows["measure"] == "adversarial_radius"].iloc[0]
    pgd = adversarial_radius(model, x, y, norm="linf", steps=20, step_size=0.125, max_eps=1, tol=1e-4).numpy()
    assert radius["n"] == 30 and 0 < radius["value"] <= np.median(np.minimum(np.nan_to_num(pgd, nan=0), 1)) + 1e-12
    robust = rows[rows["measure"] == "robust_accuracy"].set_index("radius")["value"]
    assert robust.is_monotonic_decreasing and robust.max() <= 25 / 30
    assert robust[0.01] > 0  # the case holds robust images
    y[:16] = (model(x[:16]).argmax(1) + 1) % 3  # 16 of 30 misclassified: the median image is a misclassified one
    rows = pd.DataFrame(measure_network(model, points, directions, [0.1], x, y, _linear_search(), d))
    radius = rows[rows["measure"] == "adversarial_radius"].iloc[0]
    assert radius["value"] == 0 and radius["q1"] == 0 and radius["q3"] > 0 and radius["n"] == 30


def test_the_trajectory_puts_every_measure_on_the_run_steps():
    run, _, key = _run(0.0, 0, 100, 10000, [1, 1, 1.5, 1.9, 2.5, 4], [9, 5, 7, 8, 4, 3])
    measures = []
    for _, row in run.iterrows():
        base = {k: row[k] for k in (*key, "checkpoint", "step")}
        measures.append(dict(base, measure="adversarial_radius", points="probe", radius=math.nan, layer="",
                             value=row["adversarial_radius"]))
        measures.append(dict(base, measure="local_complexity", points="train", radius=0.05, layer="all",
                             value=row["lc_train_r0.05"]))
        measures.append(dict(base, measure="local_complexity", points="train", radius=0.05, layer="all_with_output",
                             value=row["lc_with_output_train_r0.05"]))
        for layer in ("1", "output"):
            measures.append(dict(base, measure="local_complexity", points="train", radius=0.05, layer=layer,
                                 value=-1.0))
    steps = sorted(run["step"].unique())
    log = pd.DataFrame(dict(step=steps, train_acc=np.linspace(0, 1, len(steps)), test_acc=0.5))
    noise = pd.DataFrame(dict(step=np.repeat(steps, 2), radius=np.tile([1.0, 3.0], len(steps))))
    sensitivity = pd.DataFrame(dict(step=steps, where="test_points", jacobian_norm=2.0))
    table = trajectory_table(pd.DataFrame(measures), [key], [log], [noise], [sensitivity])
    snapshots = table[table["checkpoint"] == "snapshot"].set_index("step")
    assert snapshots["lc_train_r0.05"].tolist() == [9, 5, 7, 8, 4, 3]  # the layer sum, not layer 1
    assert snapshots["lc_with_output_train_r0.05"].tolist() == [19, 15, 17, 18, 14, 13]  # not the output layer
    assert (snapshots["noise_radius"] == 2.0).all() and (snapshots["jacobian_norm"] == 2.0).all()
    assert snapshots.loc[10000, "train_acc"] == log.set_index("step").at[10000, "train_acc"]
    assert set(table["checkpoint"]) == {"snapshot", "memorised", "generalised", "final"}
