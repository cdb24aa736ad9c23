"""Delayed robustness: the onset steps, the local-complexity shape and the lags over seeds, on curves with known
answers; and one network measured end to end against the measures it is made of."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from robustgen.measures.complexity import frame_directions, local_complexity
from robustgen.measures.probes import adversarial_radius
from robustgen.models import mlp
from robustgen.settings import (Adversarial, AdversarialSearch, AttacksPerNorm, Bootstrap, ComplexityFrames,
                                DelayedMeasures, ImageRange, OnsetRule, PerNorm, RadiusAlongRun)
from robustgen.stages.delayed import (complexity_shape, lag_table, measure_network, onset_table, robust_onset,
                                      trajectory_table)


def test_fall_rise_fall_is_read_off_a_curve_with_known_steps():
    steps = [0, 10, 100, 1000, 2000, 5000, 10000, 50000]
    curve = pd.Series([10.0, 6.0, 5.0, 8.0, 12.0, 9.0, 5.0, 4.0], index=steps)
    shape = complexity_shape(curve, after=100)
    assert shape["fall_rise_fall"]
    assert (shape["lc_initial"], shape["lc_min"], shape["lc_peak"], shape["lc_final"]) == (10, 5, 12, 4)
    assert shape["lc_peak_step"] == 2000
    assert shape["lc_descent_step"] == 10000  # first step after the peak below (12 + 4) / 2 = 8
    falling = complexity_shape(pd.Series([10.0, 8.0, 6.0, 4.0], index=[0, 10, 100, 1000]), after=10)
    assert not falling["fall_rise_fall"] and falling["lc_peak_step"] == 10
    flat_after = complexity_shape(pd.Series([10.0, 5.0, 5.1, 5.0], index=[0, 10, 100, 1000]), after=10)
    assert not flat_after["fall_rise_fall"]  # a rise within 5 % of the peak is no rise


def test_robustness_onset_is_the_first_step_after_memorisation_at_the_factor():
    radius = pd.Series([0.5, 0.1, 0.15, 0.19, 0.2, 0.1, 0.4], index=[0, 10, 20, 30, 40, 50, 60])
    assert robust_onset(radius, memorised_step=10, memorised_radius=0.1, factor=2) == 40
    assert robust_onset(radius, memorised_step=10, memorised_radius=0.1, factor=5) != robust_onset(
        radius, memorised_step=10, memorised_radius=0.1, factor=2)
    assert math.isnan(robust_onset(radius, memorised_step=10, memorised_radius=0.1, factor=5))
    assert robust_onset(radius, memorised_step=0, memorised_radius=0.1, factor=4) == 60  # step 0 is not after


def _run(penalty, seed, memorised, generalised, radii, lc):
    steps = [0, 100, 1000, 3000, 10000, 30000]
    frame = pd.DataFrame(dict(dataset="d", init_scale=8.0, weight_decay=0.01, jacobian_penalty=penalty, seed=seed,
                              checkpoint="snapshot", step=steps, adversarial_radius=radii, lc_train_r0_05=lc,
                              robust_acc_eps0_1=0.0))
    frame = frame.rename(columns={"lc_train_r0_05": "lc_train_r0.05", "robust_acc_eps0_1": "robust_acc_eps0.1"})
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
    rule = OnsetRule(robust_factor=2, complexity_radius=0.05, complexity_points="train")
    runs = [
        _run(0.0, 0, 100, 10000, [1, 1, 1.5, 1.9, 2.5, 4], [9, 5, 7, 8, 4, 3]),
        _run(0.0, 1, 100, 10000, [1, 1, 1.2, 2.1, 2.5, 4], [9, 5, 9, 6, 4, 3]),
        _run(0.001, 0, 100, 3000, [1, 1, 3, 3, 3, 3], [9, 5, 8, 4, 3, 3]),
        _run(0.001, 1, 100, 1000, [1, 1, 3, 3, 3, 3], [9, 5, 8, 4, 3, 3]),
    ]
    trajectory = pd.concat([r[0] for r in runs], ignore_index=True)
    onsets = onset_table(trajectory, [r[1] for r in runs], [r[2] for r in runs], rule, [0.1])
    assert onsets["robust_onset_step"].tolist() == [10000, 3000, 1000, 1000]
    assert onsets["grokking_lag"].tolist() == [9900, 9900, 2900, 900]
    assert onsets["robust_lag"].tolist() == [0, -7000, -2000, 0]
    assert onsets["lc_peak_step"].tolist() == [3000, 1000, 1000, 1000]
    assert onsets["fall_rise_fall"].all()
    lags = lag_table(onsets, Bootstrap(resamples=500, seed=0)).set_index(["jacobian_penalty", "statistic", "quantity"])
    mean = lags.loc[(0.0, "mean over seeds", "robust_lag")]
    assert mean["value"] == -3500 and mean["n_seeds"] == 2 and (mean["seed_min"], mean["seed_max"]) == (-7000, 0)
    assert mean["ci_low"] <= -3500 <= mean["ci_high"] and -7000 <= mean["ci_low"] and mean["ci_high"] <= 0
    paired = lags.loc[(0.001, "paired difference from λ = 0", "generalised_step")]
    assert paired["value"] == ((3000 - 10000) + (1000 - 10000)) / 2 and paired["seeds"] == "-7000 -9000"
    assert (0.0, "paired difference from λ = 0", "generalised_step") not in lags.index  # λ = 0 has no twin


def _linear_search():
    return AdversarialSearch(images=ImageRange(first=0, count=30), clip=False, adversarial=Adversarial(
        norms=["l2", "linf"], steps=20, step_size=0.125, targeted=False, max_eps=PerNorm(l2=10, linf=1),
        tol=PerNorm(l2=1e-3, linf=1e-4), attacks=AttacksPerNorm(l2=["deepfool"], linf=["deepfool"])))


def test_one_network_measured_against_its_parts():
    """Local complexity per layer sums to 'all' and equals the measure itself; robust accuracy is the share of
    images whose tightest radius exceeds ε (misclassified ones count as not robust); the tightest radius is no
    larger than PGD's."""
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
    counts = local_complexity(model, points["test"], directions, [0.1, 1.0]).double()
    assert lc[("test", 1.0, "1")] == counts[:, 1, 0].mean().item()
    assert lc[("test", 1.0, "all")] == pytest.approx(lc[("test", 1.0, "1")] + lc[("test", 1.0, "2")])
    radius = rows[rows["measure"] == "adversarial_radius"].iloc[0]
    pgd = adversarial_radius(model, x, y, norm="linf", steps=20, step_size=0.125, max_eps=1, tol=1e-4)
    assert radius["n"] == 25 and radius["value"] <= np.nanmedian(pgd.numpy()) + 1e-12
    robust = rows[rows["measure"] == "robust_accuracy"].set_index("radius")["value"]
    assert robust.is_monotonic_decreasing and robust.max() <= 25 / 30
    assert robust[0.01] > 0  # the case holds robust images


def test_the_trajectory_puts_every_measure_on_the_run_steps():
    run, _, key = _run(0.0, 0, 100, 10000, [1, 1, 1.5, 1.9, 2.5, 4], [9, 5, 7, 8, 4, 3])
    measures = []
    for _, row in run.iterrows():
        base = {k: row[k] for k in (*key, "checkpoint", "step")}
        measures.append(dict(base, measure="adversarial_radius", points="probe", radius=math.nan, layer="",
                             value=row["adversarial_radius"]))
        measures.append(dict(base, measure="local_complexity", points="train", radius=0.05, layer="all",
                             value=row["lc_train_r0.05"]))
        measures.append(dict(base, measure="local_complexity", points="train", radius=0.05, layer="1", value=-1.0))
    steps = sorted(run["step"].unique())
    log = pd.DataFrame(dict(step=steps, train_acc=np.linspace(0, 1, len(steps)), test_acc=0.5))
    noise = pd.DataFrame(dict(step=np.repeat(steps, 2), radius=np.tile([1.0, 3.0], len(steps))))
    sensitivity = pd.DataFrame(dict(step=steps, where="test_points", jacobian_norm=2.0))
    table = trajectory_table(pd.DataFrame(measures), [key], [log], [noise], [sensitivity])
    snapshots = table[table["checkpoint"] == "snapshot"].set_index("step")
    assert snapshots["lc_train_r0.05"].tolist() == [9, 5, 7, 8, 4, 3]  # the layer sum, not layer 1
    assert (snapshots["noise_radius"] == 2.0).all() and (snapshots["jacobian_norm"] == 2.0).all()
    assert snapshots.loc[10000, "train_acc"] == log.set_index("step").at[10000, "train_acc"]
    assert set(table["checkpoint"]) == {"snapshot", "memorised", "generalised", "final"}
