"""The adversarial stage: the injected feature, the CO rule, the evaluation attack against known answers and
against foolbox, gradient alignment, the CNN, and one run of each kind on real data."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from robustgen.data import read_split, save_split
from robustgen.io import load_file, read_json
from robustgen.measures.attacks import gradient_alignment, input_gradients, pgd, robust_correct
from robustgen.measures.sensitivity import activation_codes, jacobian_norms
from robustgen.models import build, cnn_spec, relu_layers
from robustgen.settings import (AdversarialTraining, OverfittingRule, PgdTraining, RobustEvaluation,
                                TrainingLog)
from robustgen.measures.overfitting import detect_overfitting, schedule, wong_rule
from robustgen.stages.adversarial import (LOG_COLUMNS, RUNS_COLUMNS, class_patterns, epsilon_schedule, inputs,
                                          log_steps, onset_table, run, run_row)

RULE = OverfittingRule(drop=0.2, gap=0.3, floor=0.2, clean_drop=0.2)
from robustgen.sections import AdversarialOptimizer, AdversarialSingleStep  # noqa: E402

ADAM = AdversarialOptimizer(name="adam", momentum=0.9, nesterov=False, weight_decay=0.0, schedule="constant", peak=0.5,
                            milestones=[])
SINGLE_STEP = AdversarialSingleStep(rs_fgsm_step=1.25, n_fgsm_noise=2.0, grad_align=0.2, grad_align_epsilon=0.0)



# --- the injected feature ------------------------------------------------------------------------------------

def _carrier_by_scipy(shape):
    """Ortiz-Jiménez et al.'s carrier built independently: the sign of scipy's orthonormal 2-D IDCT of a one-hot
    coefficient image, (row, column) frequency (0,1), (1,0), (1,1), (2,1), (1,2) for classes 0-4, their
    negatives for classes 5-9, the same on every channel."""
    from scipy.fft import idctn

    channels, height, width = shape
    signs = []
    for u, v in ((0, 1), (1, 0), (1, 1), (2, 1), (1, 2)):
        coefficients = np.zeros((height, width))
        coefficients[u, v] = 1.0
        signs.append(np.sign(idctn(coefficients, norm="ortho")))
    signs += [-s for s in signs]
    return torch.tensor(np.stack([np.broadcast_to(s, shape).reshape(-1) for s in signs]), dtype=torch.float32)


@pytest.mark.parametrize("shape", [[1, 28, 28], [3, 32, 32]])
def test_class_patterns_are_the_signed_idct_of_one_low_frequency_coefficient_per_class(shape):
    patterns = class_patterns(shape, 10)
    assert torch.equal(patterns, _carrier_by_scipy(shape))
    assert set(patterns.unique().tolist()) == {-1.0, 1.0}  # every entry ±1: L∞ norm 1 ...
    torch.testing.assert_close(patterns.norm(dim=1), torch.full((10,), math.sqrt(math.prod(shape))))  # ... L2 √d
    assert torch.equal(patterns[5:], -patterns[:5])
    assert len({tuple(p.tolist()) for p in patterns}) == 10
    first = patterns[0].reshape(shape)  # frequency (0, 1): constant down each column, one sign change across
    assert torch.equal(first, first[:1, :1].expand(shape)) and first[0, 0, 0] == 1 and first[0, 0, -1] == -1
    assert torch.equal(first[0, 0], torch.tensor([1.0] * (shape[2] // 2) + [-1.0] * (shape[2] // 2)))
    with pytest.raises(ValueError, match="10 classes"):
        class_patterns(shape, 100)


def test_inputs_add_beta_times_the_class_pattern_without_clamping(embedded_split):
    clean_train, clean_test = inputs(embedded_split, 0.0, device="cpu", dtype=torch.float32)
    train, test = inputs(embedded_split, 0.1, device="cpu", dtype=torch.float32)
    patterns = class_patterns([1, 28, 28], 10)
    torch.testing.assert_close(train, clean_train + 0.1 * patterns[embedded_split.train_y])
    torch.testing.assert_close(test, clean_test + 0.1 * patterns[embedded_split.test_y])
    # black background under a −1 entry and white strokes under a +1 entry leave [0, 1]: nothing is clamped
    assert train.min().item() == pytest.approx(-0.1) and train.max().item() == pytest.approx(1.1)
    torch.testing.assert_close(clean_train, embedded_split.train_x.float() / 255)


# --- the CO rule ---------------------------------------------------------------------------------------------

NO_WARMUP = dict(warmup_steps=0, steps_per_epoch=10)


def _log(pgd_acc, fgsm_acc, alignment=None, clean_acc=0.9, batch_pgd_acc=math.nan, every=10):
    n = len(pgd_acc)
    return pd.DataFrame(dict(step=np.arange(n) * every, pgd_acc=pgd_acc, fgsm_acc=fgsm_acc, clean_acc=clean_acc,
                             batch_pgd_acc=batch_pgd_acc,
                             alignment=alignment if alignment is not None else np.linspace(0.9, 0.5, n)))


def test_a_collapse_from_the_best_with_fgsm_and_clean_high_is_co_at_its_first_step():
    found = detect_overfitting(_log([0.0, 0.3, 0.5, 0.45, 0.2, 0.1], [0.0, 0.4, 0.6, 0.65, 0.7, 0.8]), RULE,
                               **NO_WARMUP)
    assert found["co"] and found["co_verdict"] == "collapse" and found["co_step"] == 40
    assert (found["step_before"], found["pgd_before"], found["pgd_after"]) == (20, 0.5, 0.2)
    assert found["alignment_before"] == pytest.approx(0.9 - 0.4 * 2 / 5)
    assert found["best_pgd_acc"] == 0.5 and found["final_pgd_acc"] == 0.1


@pytest.mark.parametrize("clean_at_fall, verdict, step", [
    (0.22, "none", None),        # clean accuracy fell 0.94 → 0.22 with PGD accuracy: the run lost everything
    (0.74, "collapse", 40),      # a fall of exactly clean_drop = 0.2 still counts as high
    (0.73, "none", None),        # 0.21 below the best: no longer high
])
def test_a_collapse_needs_clean_accuracy_to_stay_within_clean_drop_of_its_best(clean_at_fall, verdict, step):
    log = _log([0.1, 0.3, 0.5, 0.45, 0.05, 0.15], [0.2, 0.5, 0.7, 0.7, 0.4, 0.4],
               clean_acc=[0.5, 0.9, 0.94, 0.93, clean_at_fall, 0.2])
    found = detect_overfitting(log, RULE, **NO_WARMUP)
    assert (found["co_verdict"], found["co_step"], found["co"]) == (verdict, step, verdict == "collapse")


def test_a_peak_during_the_warm_up_does_not_count():
    # PGD accuracy peaks at 0.4 at step 10, while ε still ramps (warm-up: steps 0-19), then stays near 0.12
    log = _log([0.0, 0.4, 0.15, 0.12, 0.1, 0.12], [0.1, 0.5, 0.5, 0.5, 0.5, 0.5])
    counted = detect_overfitting(log, RULE, **NO_WARMUP)
    assert counted["co_verdict"] == "collapse" and counted["co_step"] == 20  # what counting the ramp would say
    found = detect_overfitting(log, RULE, warmup_steps=20, steps_per_epoch=10)
    assert not found["co"] and found["co_verdict"] == "no_gain" and found["co_step"] is None
    assert (found["best_pgd_acc"], found["best_step"], found["step_before"]) == (0.15, 20, 20)
    # the best clean accuracy is taken after the warm-up too: 0.99 during the ramp does not block this collapse
    log = _log([0.0, 0.1, 0.5, 0.55, 0.2, 0.1], [0.1, 0.3, 0.6, 0.65, 0.7, 0.8],
               clean_acc=[0.5, 0.99, 0.75, 0.76, 0.7, 0.7])
    found = detect_overfitting(log, RULE, warmup_steps=20, steps_per_epoch=10)
    assert found["co_verdict"] == "collapse" and found["co_step"] == 40 and found["step_before"] == 30
    nothing = detect_overfitting(log, RULE, warmup_steps=60, steps_per_epoch=10)  # stopped before the ramp ended
    assert not nothing["co"] and nothing["co_verdict"] == "none" and math.isnan(nothing["best_pgd_acc"])


def test_no_gain_is_a_verdict_of_its_own_and_not_co():
    found = detect_overfitting(_log([0.0, 0.05, 0.1, 0.05, 0.05, 0.02], [0.0, 0.2, 0.45, 0.3, 0.5, 0.6]), RULE,
                               **NO_WARMUP)
    assert not found["co"] and found["co_verdict"] == "no_gain" and found["co_step"] is None
    assert found["step_after"] == 50 and found["best_pgd_acc"] == 0.1


@pytest.mark.parametrize("pgd_acc, fgsm_acc", [
    ([0.0, 0.3, 0.5, 0.6, 0.62], [0.0, 0.4, 0.6, 0.7, 0.75]),        # robust training: no CO
    ([0.0, 0.3, 0.5, 0.2, 0.1], [0.0, 0.4, 0.6, 0.3, 0.2]),          # everything falls (a diverging run): no CO
    ([0.0, 0.3, 0.35, 0.3, 0.3], [0.0, 0.5, 0.7, 0.75, 0.8]),        # a gap, but PGD well above the floor
])
def test_no_co_without_a_collapse_or_a_final_gap_near_chance(pgd_acc, fgsm_acc):
    found = detect_overfitting(_log(pgd_acc, fgsm_acc), RULE, **NO_WARMUP)
    assert not found["co"] and found["co_verdict"] == "none" and found["co_step"] is None
    assert found["step_after"] == 10 * (len(pgd_acc) - 1)


def test_wongs_rule_compares_each_epochs_training_batch_check_with_the_previous_one():
    # logs every 3 steps and at every epoch's end (5 steps): epochs end at steps 5, 10, 15, 20
    steps = [0, 3, 5, 6, 9, 10, 12, 15, 18, 20]
    batch = [math.nan, 0.9, 0.3, 0.9, 0.9, 0.5, 0.0, 0.29, 0.9, 0.1]  # epoch ends: 0.3, 0.5, 0.29, 0.1
    log = pd.DataFrame(dict(step=steps, batch_pgd_acc=batch))
    assert wong_rule(log, 5) == dict(co_wong=True, co_wong_step=15)  # 0.5 → 0.29: 0.21 > 0.2; step 12 is no check
    log.loc[log["step"] == 15, "batch_pgd_acc"] = 0.3  # 0.5 → 0.3: a fall of exactly 0.2 is not more than 0.2
    assert wong_rule(log, 5) == dict(co_wong=False, co_wong_step=None)
    log.loc[log["step"] == 20, "batch_pgd_acc"] = 0.05  # 0.3 → 0.05
    assert wong_rule(log, 5) == dict(co_wong=True, co_wong_step=20)
    found = detect_overfitting(log.assign(pgd_acc=0.5, fgsm_acc=0.6, clean_acc=0.9, alignment=1.0), RULE,
                               warmup_steps=0, steps_per_epoch=5)
    assert (found["co_wong"], found["co_wong_step"], found["co"]) == (True, 20, False)  # reported beside ours


def test_a_runs_row_carries_its_identity_verdicts_schedule_and_evaluation(tmp_path):
    evaluation = dict(final=dict(step=60, clean_acc=0.8, pgd_acc=0.05, test_acc=0.81),
                      best=dict(step=30, clean_acc=0.85, pgd_acc=0.4, test_acc=0.84))
    log = _log([0.0, 0.1, 0.5, 0.55, 0.2, 0.1, 0.05], [0.1, 0.3, 0.6, 0.65, 0.7, 0.8, 0.8],
               batch_pgd_acc=[math.nan, 0.2, 0.4, 0.5, 0.45, 0.1, 0.1]).assign(epoch=lambda f: f["step"] / 20)
    rows = []
    for method in ("fgsm", "standard"):
        run_json, log_csv = tmp_path / f"{method}.json", tmp_path / f"{method}.csv"
        run_json.write_text(json.dumps(dict(
            settings=dict(model="cnn", method=method, eps=0.3, beta=0.0, seed=1, batch_size=100, warmup_epochs=1),
            data=dict(dataset="d", train_size=1950), evaluation=evaluation, steps=60, wall_seconds=1.5)))
        log.to_csv(log_csv, index=False)
        rows.append(run_row(run_json, log_csv, RULE))
    fgsm, standard = rows
    assert set(fgsm) == set(RUNS_COLUMNS)
    assert fgsm["warmup_steps"] == 20  # 1 epoch of ⌈1950 / 100⌉ steps
    assert (fgsm["co"], fgsm["co_verdict"], fgsm["co_step"], fgsm["co_epoch"]) == (True, "collapse", 40, 2.0)
    assert (fgsm["co_wong"], fgsm["co_wong_step"]) == (True, 60)  # epoch ends 20, 40, 60: 0.4, 0.45, 0.1
    assert (fgsm["best_pgd_acc"], fgsm["step_before"], fgsm["steps_to_collapse"]) == (0.55, 30, 10)
    assert (fgsm["model"], fgsm["seed"], fgsm["pgd50_final"], fgsm["pgd50_best"]) == ("cnn", 1, 0.05, 0.4)
    assert (standard["co"], standard["co_verdict"], standard["co_wong"]) == (False, "not_applicable", False)
    assert math.isnan(standard["co_epoch"])


def test_onset_is_the_smallest_epsilon_with_co_per_seed_and_no_co_counts_as_above_the_grid():
    runs = pd.DataFrame(dict(dataset="d", model="cnn", method="fgsm", beta=0.0,
                             eps=[0.1, 0.2, 0.3] * 3, seed=[0] * 3 + [1] * 3 + [2] * 3,
                             co=[False, True, True, False, False, True, False, False, False]))
    standard = runs.assign(method="standard", co=False)
    table = onset_table(pd.concat([runs, standard]))
    assert set(table["method"]) == {"fgsm"}  # standard training has nothing to overfit catastrophically
    per_seed = table[table["scope"] == "seed"].set_index("seed")["onset_eps"]
    assert per_seed[0] == 0.2 and per_seed[1] == 0.3 and per_seed[2] == math.inf
    method = table[table["scope"] == "method"].iloc[0]
    assert (method["n_seeds"], method["n_with_co"]) == (3, 2)
    assert (method["onset_median"], method["onset_min"], method["onset_max"]) == (0.3, 0.2, math.inf)
    two = onset_table(runs[runs["seed"] < 2])
    assert two.loc[two["scope"] == "method", "onset_median"].item() == pytest.approx(0.25)


def test_thresholds_compare_accuracies_as_the_counts_they_are():
    # 0.7 − 0.4 is 0.29999999999999993 in floating point: still a gap of 0.3, and a fall of 0.3 > 0.2
    found = detect_overfitting(_log([0.0, 0.7, 0.4], [0.0, 0.8, 0.7]), RULE, **NO_WARMUP)
    assert found["co"] and found["co_step"] == 20
    found = detect_overfitting(_log([0.0, 0.5, 0.3], [0.0, 0.8, 0.6]), RULE, **NO_WARMUP)
    assert not found["co"]  # a fall of exactly 0.2 is not more than 0.2


# --- the evaluation attack, alignment and gradients -------------------------------------------------------

def _binary_linear(seed=0, d=20):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, 2)).double()
    x = 0.3 + 0.4 * torch.rand(200, d, dtype=torch.float64)  # inside the box, so clipping never binds
    return model, x


def test_pgd_with_restarts_is_exact_on_a_binary_linear_model():
    """For two classes the worst L∞ perturbation is −ε·sign(w_y − w_other): a point is robust exactly when
    its margin exceeds ε‖w_y − w_other‖₁."""
    model, x = _binary_linear()
    eps = 0.02
    with torch.no_grad():
        y = model(x).argmax(dim=1)
        y[::4] = 1 - y[::4]  # some points misclassified from the start
        w = model[0].weight
        outputs = model(x)
    margins = outputs.gather(1, y[:, None]).squeeze(1) - outputs.gather(1, (1 - y)[:, None]).squeeze(1)
    expected = margins > eps * (w[y] - w[1 - y]).abs().sum(dim=1)
    assert 0 < int(expected.sum()) < len(x)
    got = robust_correct(model, x, y, eps=eps, ascent=pgd(20, 0.1), restarts=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(got, expected)


def test_the_projects_pgd_and_foolboxs_pgd_find_attacks_of_the_same_strength(embedded_split):
    """On a trained CNN, PGD-20 of the evaluation (cross-entropy ascent, uniform start) and foolbox's LinfPGD
    with the same steps leave nearly the same points robust."""
    import foolbox as fb

    from robustgen.train import Data, train

    x = embedded_split.train_x[:1000].float() / 255
    y = embedded_split.train_y[:1000]
    torch.manual_seed(0)
    model = build(cnn_spec([1, 28, 28], 10))
    train(model, Data(x, y), torch.optim.Adam(model.parameters(), lr=1e-3), loss="cross_entropy", batch_size=100,
          max_steps=100, eval_steps=[], generator=torch.Generator().manual_seed(0))
    model.eval()
    test_x, test_y = embedded_split.test_x[:300].float() / 255, embedded_split.test_y[:300]
    for eps in (0.05, 0.1):
        ours = robust_correct(model, test_x, test_y, eps=eps, ascent=pgd(20, 0.1), restarts=1,
                              generator=torch.Generator().manual_seed(1))
        fmodel = fb.PyTorchModel(model, bounds=(0, 1))
        attack = fb.attacks.LinfPGD(steps=20, abs_stepsize=0.1 * eps, random_start=True)
        _, _, success = attack(fmodel, test_x, test_y, epsilons=eps)
        clean = model(test_x).argmax(dim=1) == test_y
        theirs = clean & ~success
        assert 0.2 < ours.double().mean() < clean.double().mean()  # an attack that does something, not all
        assert abs(ours.double().mean() - theirs.double().mean()) <= 0.03
        assert (ours != theirs).double().mean() <= 0.05


def test_more_restarts_break_a_superset_and_a_success_is_never_undone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3)).double()
    x = torch.rand(300, 20, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    once = robust_correct(model, x, y, eps=0.05, ascent=pgd(5, 0.25), restarts=1,
                          generator=torch.Generator().manual_seed(3))
    many = robust_correct(model, x, y, eps=0.05, ascent=pgd(5, 0.25), restarts=6,
                          generator=torch.Generator().manual_seed(3))
    assert bool((many <= once).all()) and many.sum() < once.sum() < len(x)  # the first restart is shared
    # a point's first misclassified iterate is kept: the evaluation ascent ends misclassified wherever any
    # iterate was, which the plain ascent of training need not
    from robustgen.measures.attacks import linf_ascent

    def iterate(steps, **kwargs):  # the same random start, then `steps` steps: a prefix of one trajectory
        return linf_ascent(model, x, y, loss="cross_entropy", eps=0.05, ascent=pgd(steps, 1.0),  # overshoots
                           generator=torch.Generator().manual_seed(4), **kwargs)

    with torch.no_grad():
        wrong = [model(iterate(k)).argmax(dim=1) != y for k in range(6)]
        frozen = model(iterate(5, stop_when_misclassified=True)).argmax(dim=1) != y
    any_iterate = torch.stack(wrong).any(dim=0)
    assert torch.equal(frozen, any_iterate)
    assert bool((any_iterate & ~wrong[-1]).any())  # some success the plain ascent undid by its last step


def test_gradient_alignment_is_one_on_a_linear_model_and_norms_are_per_point_gradients():
    model, x = _binary_linear(seed=1)
    y = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(0))
    cosine, norms = gradient_alignment(model, x, y, eps=0.05, generator=torch.Generator().manual_seed(0))
    # ∇ₓ cross-entropy of a two-class linear model is (p_y − 1)(w_y − w_other): one direction for every x
    torch.testing.assert_close(cosine, torch.ones_like(cosine))
    for i in (0, 7):
        xi = x[i:i + 1].clone().requires_grad_(True)
        nn.functional.cross_entropy(model(xi), y[i:i + 1]).backward()
        torch.testing.assert_close(norms[i], xi.grad.norm())
    torch.testing.assert_close(input_gradients(model, x[:3], y[:3]).norm(dim=1), norms[:3])


def test_gradient_alignment_falls_below_one_for_a_relu_network_and_is_one_at_zero_radius():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3)).double()
    x, y = torch.rand(50, 20, dtype=torch.float64), torch.randint(0, 3, (50,))
    at_zero, _ = gradient_alignment(model, x, y, eps=0.0, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(at_zero, torch.ones_like(at_zero))
    wide, _ = gradient_alignment(model, x, y, eps=0.5, generator=torch.Generator().manual_seed(0))
    assert wide.mean() < 0.999


# --- the CNN --------------------------------------------------------------------------------------------------

def test_cnn_is_wongs_network_and_its_units_and_jacobian_are_measured():
    model = build(cnn_spec([1, 28, 28], 10)).double()
    shapes = [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in model if isinstance(m, nn.Conv2d)]
    assert shapes == [(1, 16, (4, 4), (2, 2)), (16, 32, (4, 4), (2, 2))]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)] == [(1568, 100), (100, 10)]
    assert relu_layers(model) == [1, 3, 6]
    x = torch.rand(3, 784, dtype=torch.float64)
    codes = activation_codes(model, x)
    assert codes.shape == (3, 16 * 14 * 14 + 32 * 7 * 7 + 100)
    with torch.no_grad():
        hidden = model[:3](x)  # the first convolution's pre-activation, per channel and position
    assert torch.equal(codes[:, :16 * 14 * 14], (hidden > 0).flatten(1))
    # the Jacobian norm against central finite differences of the class probabilities
    point, h = x[:1], 1e-6
    columns = [(torch.softmax(model(point + h * e), 1) - torch.softmax(model(point - h * e), 1)) / (2 * h)
               for e in torch.eye(784, dtype=torch.float64)]
    expected = torch.cat(columns).norm()
    torch.testing.assert_close(jacobian_norms(model, point)[0], expected.detach(), rtol=1e-5, atol=1e-8)


# --- runs on real data ----------------------------------------------------------------------------------------

TINY = AdversarialTraining(epochs=2, batch_size=100, lr=1e-3, warmup_epochs=1, dtype="float32",
                           optimizer=ADAM, augment="none", single_step=SINGLE_STEP,
                           pgd=PgdTraining(steps=2, step=0.5), log=TrainingLog(every=3, images=60, pgd_steps=3),
                           evaluation=RobustEvaluation(images=60, steps=5, step=0.25, restarts=2))


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    from robustgen.data import load_embedded_mnist

    path = tmp_path_factory.mktemp("adversarial") / "split.pt"
    save_split(load_embedded_mnist(train_size=500, split_seed=0), path)
    return path


def _run(split, tmp_path, method, eps, beta=0.0, seed=0, training=TINY, model="cnn"):
    out = tmp_path / f"{model}_{method}_{eps}_{beta}_{seed}"
    out.mkdir()
    summary = run(split, training, model=model, method=method, eps=eps, beta=beta, seed=seed, device="cpu",
                  log_path=out / "log.csv", run_path=out / "run.json", networks_path=out / "networks.pt")
    return summary, pd.read_csv(out / "log.csv"), load_file(out / "networks.pt")


def test_a_run_logs_the_schedule_and_keeps_its_best_and_final_networks(tiny_split, tmp_path):
    summary, log, networks = _run(tiny_split, tmp_path, "fgsm", 0.3)
    assert list(log.columns) == list(LOG_COLUMNS)
    assert list(log["step"]) == log_steps(10, 3, 5) == [0, 3, 5, 6, 9, 10]
    # ε of the last batch trained before each log: the warm-up ramps over epoch 1 (steps 0-4)
    assert list(log["eps_train"]) == pytest.approx([0.0, 0.12, 0.24, 0.3, 0.3, 0.3])
    assert log.loc[0, "batch_pgd_acc"] != log.loc[0, "batch_pgd_acc"]  # no batch seen before the first step
    best = networks["networks"]["best"]
    after_warmup = log[log["step"] >= 5]  # the best network is chosen among those trained at the full ε
    assert best["step"] == int(after_warmup.loc[after_warmup["pgd_acc"].idxmax(), "step"])
    assert networks["networks"]["final"]["step"] == summary["steps"] == 10
    co = detect_overfitting(log, RULE, **schedule(summary))
    assert schedule(summary) == dict(warmup_steps=5, steps_per_epoch=5)
    assert co["best_pgd_acc"] == after_warmup["pgd_acc"].max() and co["best_step"] == best["step"]
    assert co["final_pgd_acc"] == log["pgd_acc"].iloc[-1]
    evaluation = summary["evaluation"]
    assert evaluation["final"]["step"] == 10 and 0 <= evaluation["final"]["pgd_acc"] <= 1
    assert evaluation["best"]["step"] == best["step"]
    if best["step"] == 10:
        assert evaluation["best"] == evaluation["final"]
    # the stored best network is the one logged at its step: its clean held-out accuracy is the logged one
    split = read_split(tiny_split)
    model = build(networks["model_spec"]).eval()
    model.load_state_dict(best["state_dict"])
    held_out = split.test_x[:60].float() / 255
    with torch.no_grad():
        clean = float((model(held_out).argmax(dim=1) == split.test_y[:60]).double().mean())
    assert clean == log.loc[log["step"] == best["step"], "clean_acc"].item()
    data = read_json(tmp_path / "cnn_fgsm_0.3_0.0_0" / "run.json")
    assert data["evaluation_images"] == [60, 119] and data["settings"]["eps"] == 0.3


def test_standard_training_does_not_depend_on_epsilon_and_is_reproducible(tiny_split, tmp_path):
    """ε only sets the logged and evaluation attacks of a standard run: its training is the same."""
    _, log_a, nets_a = _run(tiny_split, tmp_path, "standard", 0.1)
    _, log_b, nets_b = _run(tiny_split, tmp_path, "standard", 0.3)
    for key, value in nets_a["networks"]["final"]["state_dict"].items():
        assert torch.equal(value, nets_b["networks"]["final"]["state_dict"][key])
    assert list(log_a["train_loss"]) == list(log_b["train_loss"])
    (tmp_path / "again").mkdir()
    _, log_c, _ = _run(tiny_split, tmp_path / "again", "standard", 0.1)
    pd.testing.assert_frame_equal(log_a, log_c)


def test_adversarial_training_changes_the_training_and_the_feature_changes_the_data(tiny_split, tmp_path):
    _, standard, _ = _run(tiny_split, tmp_path, "standard", 0.2)
    _, robust, _ = _run(tiny_split, tmp_path, "pgd", 0.2)
    _, featured, _ = _run(tiny_split, tmp_path, "standard", 0.2, beta=0.3)
    assert standard["train_loss"].iloc[-1] != robust["train_loss"].iloc[-1]
    assert standard["train_loss"].iloc[-1] != featured["train_loss"].iloc[-1]


def test_grad_align_runs_weight_the_regulariser_for_their_epsilon(tiny_split, tmp_path):
    """With the per-ε scheme a run at the reference ε is the constant-λ run bit for bit; at another ε it is not."""
    import dataclasses

    scaled = dataclasses.replace(TINY, epochs=1, single_step=dataclasses.replace(SINGLE_STEP, grad_align_epsilon=0.1))
    constant = dataclasses.replace(TINY, epochs=1)

    def final(training, eps, name):
        (tmp_path / name).mkdir()
        return _run(tiny_split, tmp_path / name, "grad_align", eps, training=training)[2]["networks"]["final"]["state_dict"]

    a, b = final(scaled, 0.1, "scaled"), final(constant, 0.1, "constant")
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    a, b = final(scaled, 0.2, "scaled_far"), final(constant, 0.2, "constant_far")
    assert not all(torch.equal(v, b[k]) for k, v in a.items())  # λ 2.0 at ε 0.2, not 0.2


def test_epsilon_schedule_ramps_linearly_then_holds():
    at = epsilon_schedule(0.3, 40)
    assert [at(s) for s in (0, 10, 40, 100)] == pytest.approx([0.0, 0.075, 0.3, 0.3])
    assert epsilon_schedule(0.3, 0)(0) == 0.3


def test_autoattack_check_puts_autoattack_beside_the_evaluation_pgd(tiny_split, tmp_path):
    pytest.importorskip("pyautoattack", reason="the optional extra autoattack (pip install -e '.[autoattack]')")
    from robustgen.sections import AdversarialAutoattack
    from robustgen.settings import AutoAttackCheck
    from robustgen.stages.adversarial import AUTOATTACK_COLUMNS, autoattack_check, autoattack_table

    _run(tiny_split, tmp_path, "pgd", 0.2)
    out = tmp_path / "cnn_pgd_0.2_0.0_0"
    s = AutoAttackCheck(autoattack=AdversarialAutoattack(images=30, batch_size=16), evaluation=TINY.evaluation)
    checked = autoattack_check(tiny_split, out / "networks.pt", out / "run.json", s, "cpu")
    assert list(checked.columns) == list(AUTOATTACK_COLUMNS) and set(checked["images"]) == {30}
    assert checked["network"].iloc[0] == "final" and len(checked) in (1, 2)
    # neither attack raises accuracy above clean; each breaks what it breaks: the shares add up
    assert (checked["autoattack_acc"] <= checked["clean_acc"]).all() and (checked["pgd_acc"] <= checked["clean_acc"]).all()
    np.testing.assert_allclose(checked["pgd_acc"] - checked["broken_by_autoattack_only"],
                               checked["autoattack_acc"] - checked["broken_by_pgd_only"], atol=1e-12)
    checked.to_csv(tmp_path / "a.csv", index=False)
    assert len(autoattack_table([tmp_path / "a.csv"])) == len(checked)
