import math

import numpy as np
import pandas as pd
import pytest
import torch

from robustgen.data import Split
from robustgen.runs import OpenRun, log_spaced_subset
from robustgen.settings import Bootstrap
from robustgen.stages.robustness import summary, trajectory_table

RUN = dict(dataset="d", init_scale=8.0, weight_decay=0.01)


def test_log_spaced_subset():
    steps = list(range(0, 1001))
    chosen = log_spaced_subset(steps, 10)
    assert chosen[0] == 0 and chosen[-1] == 1000 and len(chosen) <= 10
    assert chosen == sorted(set(chosen))
    assert sum(s < 32 for s in chosen) >= 4                 # dense early on a log axis
    assert log_spaced_subset(steps[:5], 10) == steps[:5]
    assert log_spaced_subset(steps, 0) == steps               # 0 = every snapshot


def _frame(seed, checkpoint, measure, mode, norm, radii, delta=math.nan, step=1):
    return pd.DataFrame(dict(**RUN, seed=seed, checkpoint=checkpoint, step=step, measure=measure, mode=mode,
                             norm=norm, delta=delta, image=np.arange(len(radii)), label=0, radius=radii))


def test_summary_statistics_and_ratios():
    mem = [0.5, 1.0, 1.5, math.nan]                   # one excluded image
    gen = [2.0, 4.0, 6.0, math.inf]                   # one censored image
    adv = [0.1, 0.4, 0.3, 0.2]
    frames = []
    for seed in (0, 1):
        frames += [_frame(seed, "memorised", "random", "bisection", "l2", mem, step=10),
                   _frame(seed, "generalised", "random", "bisection", "l2", gen, step=500),
                   _frame(seed, "generalised", "random", "grid", "l2", [1.0, 2.0, 3.0, 4.0], delta=0.01),
                   _frame(seed, "generalised", "adversarial", "pgd", "l2", adv)]
    runs = pd.DataFrame([dict(RUN, seed=seed, status="generalised") for seed in (0, 1)])
    table = summary(pd.concat(frames), Bootstrap(resamples=300, seed=0), runs)
    runs = table[table.scope == "run"]
    row = runs[(runs.seed == 0) & (runs["mode"] == "bisection") & (runs.checkpoint == "memorised")].iloc[0]
    assert (row.n_probed, row.n_excluded, row.n_censored, row["median"], row.step) == (3, 1, 0, 1.0, 10)
    row = runs[(runs.seed == 0) & (runs["mode"] == "bisection") & (runs.checkpoint == "generalised")].iloc[0]
    assert (row.n_probed, row.n_censored, row["median"]) == (4, 1, 5.0)   # median of 2, 4, 6, inf
    assert row.ratio_to_memorised == 5.0 and row.ratio_ci_low <= 5.0 <= row.ratio_ci_high
    grid = runs[(runs["mode"] == "grid")].iloc[0]
    assert grid.delta == 0.01 and math.isnan(grid.ratio_to_memorised)     # no memorised grid probe here
    pgd = runs[(runs.measure == "adversarial") & (runs.seed == 0)].iloc[0]
    # per image adversarial / random: 0.1/2, 0.4/4, 0.3/6, 0.2/inf → median of 0.05, 0.1, 0.05, 0
    assert pgd.median_adversarial_to_random == pytest.approx(0.05)
    group = table[(table.scope == "group") & (table["mode"] == "bisection") & (table.checkpoint == "generalised")]
    assert group.iloc[0].seed == "all" and group.iloc[0].n_probed == 8 and group.iloc[0].ratio_to_memorised == 5.0
    assert group.iloc[0].n_seeds == 2 and group.iloc[0].n_grokked == 2
    # paired: images 0-2 are classified by both networks (image 3 is excluded from the memorised one):
    # generalised 2, 4, 6 over memorised 0.5, 1, 1.5 → ratio of medians 4 in each seed
    assert (row.paired_n, row.paired_ratio, row.seed_ratio_min) == (3, 4.0, 4.0)
    assert group.iloc[0].paired_n == 6 and group.iloc[0].paired_ratio == 4.0


def test_adversarial_to_random_pairs_each_image_with_its_own_network():
    """Two runs sharing a seed (α 1 and 8) with true per-image ratios 0.5 and 0.01: each keeps its own."""
    frames = []
    for alpha, adversarial in ((1.0, 0.5), (8.0, 0.01)):
        run = dict(RUN, init_scale=alpha)
        random = pd.DataFrame(dict(run, seed=0, checkpoint="final", step=1, measure="random", mode="bisection",
                                   norm="l2", delta=math.nan, image=np.arange(4), label=0, radius=1.0))
        frames += [random, random.assign(measure="adversarial", mode="pgd", radius=adversarial)]
    runs = pd.DataFrame([dict(RUN, init_scale=a, seed=0, status="generalised") for a in (1.0, 8.0)])
    table = summary(pd.concat(frames), Bootstrap(resamples=100, seed=0), runs)
    pgd = table[(table.scope == "run") & (table.measure == "adversarial")].set_index("init_scale")
    assert pgd.loc[1.0, "median_adversarial_to_random"] == 0.5
    assert pgd.loc[8.0, "median_adversarial_to_random"] == 0.01


def test_no_memorised_comparison_for_a_run_that_generalised_first():
    frames = [_frame(0, "memorised", "random", "bisection", "l2", [1.0, 2.0], step=89),
              _frame(0, "generalised", "random", "bisection", "l2", [3.0, 4.0], step=28)]
    runs = pd.DataFrame([dict(RUN, seed=0, status="no_delay")])
    table = summary(pd.concat(frames), Bootstrap(resamples=100, seed=0), runs)
    row = table[(table.scope == "run") & (table.checkpoint == "generalised")].iloc[0]
    assert row.status == "no_delay" and row.n_grokked == 0
    assert math.isnan(row.ratio_to_memorised) and math.isnan(row.paired_ratio)


def test_trajectory_table_joins_accuracy():
    per_image = pd.concat([_frame(0, "snapshot", "random", "bisection", "l2", [1.0, 2.0, 3.0], step=s)
                           for s in (0, 100)])
    metrics = {("d", 8.0, 0.01, 0): pd.DataFrame(dict(step=[0, 50, 100], train_acc=[0.1, 0.5, 1.0],
                                                      test_acc=[0.1, 0.2, 0.3]))}
    table = trajectory_table(per_image, metrics)
    assert table.step.tolist() == [0, 100] and table.test_acc.tolist() == [0.1, 0.3]
    assert table["median"].tolist() == [2.0, 2.0]


def test_probe_images_out_of_range_names_the_config_key():
    split = Split(torch.zeros(5, 4, dtype=torch.uint8), torch.zeros(5, dtype=torch.long),
                  torch.zeros(20, 4, dtype=torch.uint8), torch.arange(20), dict(dataset="toy"))
    run = OpenRun(RUN, torch.device("cpu"), torch.float32, split)
    x, y, index = run.test_images(15, 5, "robustness.images")
    assert index.tolist() == list(range(15, 20)) and y.tolist() == list(range(15, 20)) and x.dtype == torch.float32
    with pytest.raises(ValueError, match="robustness.images"):
        run.test_images(15, 10, "robustness.images")
