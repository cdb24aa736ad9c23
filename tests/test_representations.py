"""Robust vs standard representations: the compared layers, the structure scalars on matrices with known
answers, the tables' paired statistics, and the architectures by name."""

import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from robustgen.data import load_embedded_mnist
from robustgen.measures.similarity import (cka_between, debiased_linear_cka, hidden_and_output, layer_activations,
                                          linear_cka, structure)
from robustgen.models import build, cnn
from robustgen.settings import Bootstrap
from robustgen.stages.adversarial import network_spec
from robustgen.stages.representations import STRUCTURE, grokking_table, layers_table, structure_table, summary_table

BOOT = Bootstrap(resamples=200, seed=0)
from robustgen.sections import AdversarialOptimizer, AdversarialSingleStep  # noqa: E402

ADAM = AdversarialOptimizer(name="adam", momentum=0.9, nesterov=False, weight_decay=0.0, schedule="constant", peak=0.5,
                            milestones=[])
SINGLE_STEP = AdversarialSingleStep(rs_fgsm_step=1.25, n_fgsm_noise=2.0, grad_align=0.2, grad_align_epsilon=0.0)



# --- compared layers ------------------------------------------------------------------------------------------

def test_hidden_and_output_are_the_relu_outputs_and_the_logits_of_a_deeper_cnn():
    torch.manual_seed(0)
    model = cnn([1, 28, 28], 10, extra=4).double()
    x = torch.rand(6, 784, dtype=torch.float64)
    acts = hidden_and_output(model, x)
    assert list(acts) == [f"relu{k}" for k in range(1, 8)] + ["output"]
    # the hooks capture what the layers compute: the first ReLU is relu(conv1(x)), the output the logits
    conv1 = model[1]
    expected = torch.relu(conv1(x.reshape(6, 1, 28, 28))).flatten(1)
    assert torch.equal(acts["relu1"], expected)
    assert torch.equal(acts["output"], model(x))
    assert acts["relu2"].shape == (6, 32 * 7 * 7) and acts["relu7"].shape == (6, 100)
    assert list(layer_activations(model, x))[:4] == ["input", "conv1", "relu1", "conv2"]


def test_architectures_by_name():
    split = load_embedded_mnist(train_size=100, split_seed=0)
    deep = build(network_spec("cnn_x4", split))
    assert sum(isinstance(m, nn.Conv2d) for m in deep) == 6 and sum(isinstance(m, nn.ReLU) for m in deep) == 7
    assert sum(isinstance(m, nn.Conv2d) for m in build(network_spec("cnn", split))) == 2
    mlp = build(network_spec("mlp_w200_d3", split))
    assert [m.out_features for m in mlp if isinstance(m, nn.Linear)] == [200, 200, 10]
    with pytest.raises(ValueError, match="unknown architecture 'resnet18'; allowed: cnn: .* preact_resnet18"):
        network_spec("resnet18", split)


# --- structure scalars ------------------------------------------------------------------------------------------

def _blocks(sizes, within, across):
    """A CKA matrix of consecutive blocks: `within` inside a block, `across` between blocks, 1 on the diagonal."""
    labels = np.repeat(np.arange(len(sizes)), sizes)
    m = np.where(labels[:, None] == labels[None, :], within, across).astype(float)
    np.fill_diagonal(m, 1.0)
    return torch.tensor(m)


def test_structure_of_two_blocks_has_the_block_contrast():
    # 8 layers, blocks of 4: adjacent pairs are 6 within (0.9) and 1 across (0.2); pairs ≥ 4 apart all across
    s = structure(_blocks([4, 4], within=0.9, across=0.2))
    assert s["near"] == pytest.approx((6 * 0.9 + 0.2) / 7)
    assert s["far"] == pytest.approx(0.2)
    assert s["block_index"] == pytest.approx((6 * 0.9 + 0.2) / 7 - 0.2)
    assert s["long_range"] == pytest.approx(0.2)  # first hidden layer (block 1) vs last hidden (block 2)


def test_largest_block_is_the_longest_run_of_mutually_alike_layers():
    assert structure(_blocks([4, 4], within=0.9, across=0.2))["largest_block"] == 4
    assert structure(_blocks([2, 5, 1], within=0.85, across=0.5))["largest_block"] == 5
    assert structure(_blocks([8], within=0.8, across=0.8))["largest_block"] == 1  # not above 0.8: no block
    # a chain whose neighbours are alike but whose ends are not is not one block: 1 − 0.1|i − j| > 0.8 for |i − j| ≤ 1
    distance = torch.arange(6)[:, None] - torch.arange(6)[None, :]
    assert structure(1 - 0.1 * distance.abs().double())["largest_block"] == 2


def test_uniform_similarity_has_no_block_index_and_full_long_range():
    s = structure(_blocks([8], within=0.8, across=0.8))
    assert s["block_index"] == pytest.approx(0.0) and s["long_range"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="at least 3"):
        structure(torch.eye(2))


def test_far_pairs_start_at_half_the_depth_rounded_up():
    # M_ij = 1 − 0.1|i − j| over L = 5 layers: far pairs are ≥ 3 apart, (0,3), (1,4) at 0.7 and (0,4) at 0.6
    distance = torch.arange(5)[:, None] - torch.arange(5)[None, :]
    s = structure(1 - 0.1 * distance.abs().double())
    assert s["near"] == pytest.approx(0.9) and s["far"] == pytest.approx((0.7 + 0.7 + 0.6) / 3)
    assert s["long_range"] == pytest.approx(0.7)  # layer 0 vs layer 3, the last before the output


def test_structure_scalars_of_independent_layers_have_a_floor_only_with_the_biased_estimator():
    # five independent Gaussian "layers" of decreasing width on 400 examples: no layer resembles another
    g = torch.Generator().manual_seed(0)
    layers = [torch.randn(400, width, generator=g, dtype=torch.float64) for width in (1500, 800, 400, 100, 10)]
    biased = structure(cka_between(layers, layers, estimator="linear"))
    debiased = structure(cka_between(layers, layers, estimator="debiased"))
    # the floor: unrelated wide layers score high, the wider neighbours higher, so even the block index is > 0
    assert biased["near"] > 0.3 and biased["long_range"] > 0.2 and biased["block_index"] > 0.1
    for measure in ("near", "far", "block_index", "long_range"):
        assert abs(debiased[measure]) < 0.02


# --- tables ------------------------------------------------------------------------------------------------------

def _structures():
    """Block index per seed: untrained 0.25, 0.20, 0.30; standard and PGD above them."""
    rows = []
    values = {"untrained": [0.25, 0.20, 0.30], "standard": [0.30, 0.32, 0.34], "pgd": [0.10, 0.16, 0.13]}
    for network, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            rows.append(dict(dataset="d", model="m", inputs="benign", network=network, seed=seed, near=0.9,
                             far=0.9 - v, block_index=v, long_range=0.5,
                             block_index_minus_untrained=v - values["untrained"][seed],
                             near_minus_untrained=0.0, far_minus_untrained=values["untrained"][seed] - v,
                             long_range_minus_untrained=0.0, largest_block=3, largest_block_minus_untrained=0,
                             co=False, after_co=False))
    return pd.DataFrame(rows)


_NO_CKA = pd.DataFrame(columns=["dataset", "model", "inputs", "against", "network_a", "seed_a", "network_b", "seed_b",
                                "layer_a", "layer_b", "cka", "cka_debiased"])


def test_summary_gives_control_subtracted_seed_level_estimates_with_their_baseline():
    table = summary_table(_structures(), _NO_CKA, BOOT).set_index(["network", "measure", "statistic"])
    value = table.loc[("pgd", "block_index", "value")]
    assert value["estimate"] == pytest.approx(np.mean([0.10, 0.16, 0.13])) and value["n_seeds"] == 3
    assert value["min"] == pytest.approx(0.10) and value["max"] == pytest.approx(0.16)
    # seed baseline of the raw value: per seed, mean |x_s − x_s′| over the others: 0.045, 0.045, 0.03
    assert value["baseline_estimate"] == pytest.approx(np.mean([0.045, 0.045, 0.03]))
    control = table.loc[("standard", "block_index", "minus_untrained")]
    assert control["estimate"] == pytest.approx(np.mean([0.05, 0.12, 0.04]))
    assert (control["min"], control["max"]) == pytest.approx((0.04, 0.12))
    # the control cancels in the paired difference: pgd − standard of the same seed
    paired = table.loc[("pgd", "block_index", "minus_standard")]
    assert paired["estimate"] == pytest.approx(np.mean([-0.20, -0.16, -0.21]))
    assert (paired["min"], paired["max"]) == pytest.approx((-0.21, -0.16))  # seed by seed, not across seeds
    assert paired["ci_low"] <= paired["estimate"] <= paired["ci_high"] < 0
    # its baseline: two standard networks' control-subtracted scalars (0.05, 0.12, 0.04) apart
    assert paired["baseline_estimate"] == pytest.approx(np.mean([(0.07 + 0.01) / 2, (0.07 + 0.08) / 2,
                                                                 (0.01 + 0.08) / 2]))
    assert paired["baseline_n_seeds"] == 3 and paired["baseline"].startswith("|standard - untrained")
    assert ("standard", "block_index", "minus_standard") not in table.index
    assert ("untrained", "block_index", "minus_untrained") not in table.index
    assert table.loc[("untrained", "block_index", "value"), "estimate"] == pytest.approx(0.25)


def test_overfitting_compares_deep_and_shallow_change_of_collapsed_runs_with_runs_without_co():
    rows = []
    # 4 layers: shallow = the first 2. FGSM seed 0 collapsed after its best network: deep layers change by
    # 0.6, shallow by 0.1; PGD seeds 0, 1 did not collapse: everything changes by 0.1 / 0.2 (deep) .
    changes = {("fgsm", 0): [0.1, 0.1, 0.6, 0.6], ("pgd", 0): [0.1, 0.1, 0.1, 0.1], ("pgd", 1): [0.0, 0.0, 0.2, 0.2]}
    for (method, seed), change in changes.items():
        rows += [dict(dataset="d", model="m", inputs="benign", against="none", network_a=f"{method}_best", seed_a=seed,
                      network_b=method, seed_b=seed, layer_a=f"l{k}", layer_b=f"l{k}", cka=0.0, cka_debiased=1 - c)
                 for k, c in enumerate(change)]
    structures = pd.DataFrame([dict(dataset="d", model="m", inputs="benign", network=f"{m}_best", seed=s,
                                    co=m == "fgsm", after_co=False) for m, s in changes])
    table = summary_table(structures.assign(**{m: 0.0 for m in STRUCTURE}, **{f"{m}_minus_untrained": 0.0 for m in STRUCTURE}),
                          pd.DataFrame(rows), BOOT).set_index(["network", "measure", "statistic"])
    fgsm = table.loc[("fgsm", "overfit_deep_minus_shallow", "co")]
    assert fgsm["estimate"] == pytest.approx(0.5) and fgsm["n_seeds"] == 1
    assert fgsm["baseline_estimate"] == pytest.approx(np.mean([0.0, 0.2])) and fgsm["baseline_n_seeds"] == 2
    assert table.loc[("fgsm", "overfit_deep_change", "co"), "estimate"] == pytest.approx(0.6)
    assert table.loc[("pgd", "overfit_shallow_change", "co"), "n_seeds"] == 0  # no PGD run collapsed


def test_layers_table_averages_two_seed_pairs_per_seed_and_puts_the_baseline_beside():
    rows = []
    for a, b, sa, sb, value in [("standard", "pgd", 0, 1, 0.8), ("standard", "pgd", 1, 0, 0.6),
                                ("standard", "standard", 0, 1, 0.95), ("standard", "standard", 1, 0, 0.95),
                                ("pgd_best", "pgd", 0, 0, 0.7), ("standard", "standard", 0, 0, 1.0)]:
        rows += [dict(dataset="d", model="m", inputs="benign", against="none", network_a=a, seed_a=sa, network_b=b,
                      seed_b=sb, layer_a=layer, layer_b=layer, cka=0.0, cka_debiased=value)
                 for layer in ("relu1", "output")]
    table = layers_table(pd.DataFrame(rows), BOOT).set_index(["comparison", "layer"])
    row = table.loc[("standard vs pgd (two seeds)", "relu1")]
    assert row["estimate"] == pytest.approx(0.7) and row["n_seeds"] == 2 and row["init"] == "independent"
    assert row["baseline"] == "standard vs standard (two seeds)" and row["baseline_estimate"] == pytest.approx(0.95)
    best = table.loc[("pgd_best vs pgd", "output")]
    assert best["init"] == "same run" and best["estimate"] == pytest.approx(0.7) and best["baseline"] == ""
    assert len(table) == 6  # a network with itself is no comparison


def test_grokking_table_gives_the_paired_difference_per_grokking_seed():
    rows = []
    for seed, (standard, robust) in enumerate([(0.5, 0.6), (0.4, 0.45)]):
        for family, value in (("standard", standard), ("pgd", robust)):
            for family_seed, jitter in enumerate((-0.01, 0.01)):
                rows.append(dict(dataset="d", init_scale=8.0, weight_decay=0.01, seed=seed, checkpoint="final",
                                 step=10, family=family, family_seed=family_seed, layer="relu1", cka=value + jitter))
    table = grokking_table(pd.DataFrame(rows), BOOT).set_index("family")
    assert table.loc["pgd - standard", "mean"] == pytest.approx(np.mean([0.1, 0.05]))
    assert (table.loc["pgd - standard", "min"], table.loc["pgd - standard", "max"]) == pytest.approx((0.05, 0.1))
    assert table.loc["standard", "mean"] == pytest.approx(0.45) and table.loc["pgd", "n"] == 2


# --- the comparison on stored networks -------------------------------------------------------------------------

def _store(directory, method, seed, steps, spec, eps=0.3):
    """A run directory as the adversarial stage leaves it: run.json and networks.pt (fresh networks)."""
    from robustgen.io import atomic_torch_save, write_json

    directory.mkdir(parents=True)
    networks = {}
    for which, step in steps.items():
        torch.manual_seed(zlib.crc32(f"{method} {seed} {which}".encode()))
        networks[which] = dict(step=step, state_dict=build(spec).state_dict())
    atomic_torch_save(dict(model_spec=spec, networks=networks), directory / "networks.pt")
    write_json(dict(settings=dict(model="cnn", method=method, eps=eps, beta=0.0, seed=seed, dtype="float32"),
                    data=dict(dataset="mnist_embedded"), evaluation_images=[10, 19],
                    evaluation={k: dict(step=v) for k, v in steps.items()}), directory / "run.json")
    return directory / "run.json", directory / "networks.pt"


def _stored_comparison(tmp_path):
    """(split, {(method, seed): (run.json, networks.pt)}) of two seeds' standard, PGD and FGSM runs."""
    from robustgen.data import save_split
    from robustgen.models import cnn_spec

    split = load_embedded_mnist(train_size=100, split_seed=0)
    save_split(split, tmp_path / "split.pt")
    spec = cnn_spec([1, 28, 28], 10)
    stored = {}
    for seed in (0, 1):
        stored[("standard", seed)] = _store(tmp_path / f"standard{seed}", "standard", seed, {"final": 10, "best": None}, spec)
        stored[("pgd", seed)] = _store(tmp_path / f"pgd{seed}", "pgd", seed, {"final": 10, "best": 5}, spec)
        # seed 1's best FGSM network is its final one: no second network
        stored[("fgsm", seed)] = _store(tmp_path / f"fgsm{seed}", "fgsm", seed, {"final": 10, "best": 10 if seed else 6}, spec)
    return split, stored


def _stored_network(path, which):
    from robustgen.io import load_file
    from robustgen.models import from_state

    blob = load_file(path)
    return from_state(blob["model_spec"], blob["networks"][which]["state_dict"])


def _cka_of(cka, inputs, against, a, sa, b, sb, la, lb, value="cka"):
    rows = cka[(cka.inputs == inputs) & (cka.against == against) & (cka.network_a == a) & (cka.seed_a == sa)
               & (cka.network_b == b) & (cka.seed_b == sb) & (cka.layer_a == la) & (cka.layer_b == lb)]
    return rows[value].item()


def test_compare_pairs_the_stored_networks_and_attacks_the_row_network(tmp_path):
    from robustgen.data import as_float
    from robustgen.measures.attacks import linf_ascent, pgd
    from robustgen.models import cnn_spec
    from robustgen.settings import CkaEstimator, InputAttack, RepresentationComparison
    from robustgen.stages.representations import NETWORKS, compare

    split, stored = _stored_comparison(tmp_path)
    spec = cnn_spec([1, 28, 28], 10)
    runs, nets = zip(*stored.values())
    s = RepresentationComparison(images=30, pgd_inputs=InputAttack(steps=2, step=0.5))
    whole = CkaEstimator(batch_size=0, passes=1, estimator="linear", rbf_threshold=1.0)
    cka = compare(tmp_path / "split.pt", list(runs), list(nets), s, whole, "cpu")
    pairs = set(zip(cka.inputs, cka.against, cka.network_a, cka.seed_a, cka.network_b, cka.seed_b))
    assert ("benign", "none", "pgd_best", 0, "pgd", 0) in pairs
    assert ("benign", "none", "fgsm_best", 0, "fgsm", 0) in pairs
    assert ("benign", "none", "fgsm_best", 1, "fgsm", 1) not in pairs
    # kinds are compared between seeds only (no shared initialisation), each ordered pair, and so is the baseline
    assert ("benign", "none", "standard", 0, "pgd", 1) in pairs and ("benign", "none", "standard", 1, "pgd", 0) in pairs
    assert ("benign", "none", "standard", 0, "pgd", 0) not in pairs
    assert ("benign", "none", "fgsm", 1, "fgsm", 0) in pairs
    assert {("pgd", side, "standard", 0, "pgd", 1) for side in "ab"} <= pairs
    assert ("benign", "none", "untrained", 1, "untrained", 1) in pairs
    assert ("pgd", "a", "untrained", 0, "untrained", 0) in pairs
    x = as_float(split.test_x[20:50])  # after the 10 log and 10 evaluation images
    network = _stored_network

    def table(*key):
        return _cka_of(cka, *key)

    best, final = network(stored[("pgd", 0)][1], "best"), network(stored[("pgd", 0)][1], "final")
    acts_best, acts_final = hidden_and_output(best, x), hidden_and_output(final, x)
    expected = linear_cka(acts_best["relu1"], acts_final["relu3"]).item()
    assert table("benign", "none", "pgd_best", 0, "pgd", 0, "relu1", "relu3") == pytest.approx(expected, abs=1e-9)
    debiased = debiased_linear_cka(acts_best["relu1"], acts_final["relu3"]).item()
    assert debiased != pytest.approx(expected, abs=1e-3)
    value = table("benign", "none", "pgd_best", 0, "pgd", 0, "relu1", "relu3", "cka_debiased")
    assert value == pytest.approx(debiased, abs=1e-9)
    # the control: seed 1's initialisation, the same network whichever run of the seed it is rebuilt from
    torch.manual_seed(1)
    untrained = build(spec).eval()
    acts = hidden_and_output(untrained, x)
    assert table("benign", "none", "untrained", 1, "untrained", 1, "relu2", "output") == pytest.approx(
        linear_cka(acts["relu2"], acts["output"]).item(), abs=1e-9)
    # PGD inputs of standard (seed 1) vs PGD (seed 0): made against network b (the PGD network), fed to both
    standard, robust = network(stored[("standard", 1)][1], "final"), network(stored[("pgd", 0)][1], "final")
    y = split.test_y[20:50]
    generator = torch.Generator().manual_seed(1000 * NETWORKS.index("pgd") + 0)
    attacked = linf_ascent(robust, x, y, loss="cross_entropy", eps=0.3, ascent=pgd(2, 0.5), generator=generator)
    assert not torch.equal(attacked, x)
    expected = linear_cka(hidden_and_output(standard, attacked)["relu1"],
                          hidden_and_output(robust, attacked)["output"]).item()
    assert table("pgd", "b", "standard", 1, "pgd", 0, "relu1", "output") == pytest.approx(expected, abs=1e-9)
    assert table("pgd", "a", "standard", 1, "pgd", 0, "relu1", "output") != pytest.approx(expected, abs=1e-6)
    # the tables read it: the control's scalars from its debiased matrix, subtracted from each network's
    verdicts = pd.DataFrame([dict(network=n, seed=sd, co=False, after_co=False) for n, sd in stored])
    structures = structure_table(cka, verdicts).set_index(["inputs", "network", "seed"])
    own = cka[(cka.inputs == "benign") & (cka.network_a == "untrained") & (cka.network_b == "untrained")
              & (cka.seed_a == 1) & (cka.seed_b == 1)]
    control = structure(torch.tensor(own.pivot(index="layer_a", columns="layer_b", values="cka_debiased")
                                     .reindex(index=list(acts), columns=list(acts)).to_numpy()))
    assert structures.loc[("benign", "untrained", 1), "block_index"] == pytest.approx(control["block_index"])
    assert structures.loc[("benign", "pgd", 1), "block_index_minus_untrained"] == pytest.approx(
        structures.loc[("benign", "pgd", 1), "block_index"] - control["block_index"])
    summary = summary_table(structures.reset_index(), cka, BOOT)
    assert set(summary.statistic) == {"value", "minus_untrained", "minus_standard", "co"}
    co = summary[summary.statistic == "co"]  # no run collapsed: the 3 best networks (PGD 0, 1; FGSM 0) are the baseline
    assert (co.n_seeds == 0).all() and (co.baseline_n_seeds == 3).all()
    layers = layers_table(cka, BOOT)
    assert set(layers.loc[layers.inputs == "pgd", "against"]) == {"a", "b"}
    assert (layers.loc[layers.comparison == "standard vs fgsm (two seeds)", "baseline"]
            == "standard vs standard (two seeds)").all()


def test_compare_streams_minibatch_cka_over_batches_and_makes_the_pgd_inputs_in_chunks(tmp_path):
    # Cianfarani et al.'s protocol for image sets whose activations do not fit: batches of 8 over 2 passes
    from robustgen.data import as_float
    from robustgen.measures.attacks import linf_ascent, pgd
    from robustgen.settings import CkaEstimator, InputAttack, RepresentationComparison
    from robustgen.stages.representations import NETWORKS, compare

    split, stored = _stored_comparison(tmp_path)
    runs, nets = zip(*stored.values())
    s = RepresentationComparison(images=30, pgd_inputs=InputAttack(steps=2, step=0.5))
    for kernel in ("linear", "rbf"):
        estimator = CkaEstimator(batch_size=8, passes=2, estimator=kernel, rbf_threshold=1.0)
        cka = compare(tmp_path / "split.pt", list(runs), list(nets), s, estimator, "cpu")
        x, y = as_float(split.test_x[20:50]), split.test_y[20:50]
        best, final = _stored_network(stored[("pgd", 0)][1], "best"), _stored_network(stored[("pgd", 0)][1], "final")
        acts_best, acts_final = hidden_and_output(best, x), hidden_and_output(final, x)
        layers = list(acts_best)
        options = dict(batch_size=8, passes=2)
        debiased = cka_between(list(acts_best.values()), list(acts_final.values()), **options)
        value = _cka_of(cka, "benign", "none", "pgd_best", 0, "pgd", 0, "relu1", "relu3", "cka_debiased")
        assert value == pytest.approx(debiased[layers.index("relu1"), layers.index("relu3")].item(), abs=1e-9)
        study = cka_between(list(acts_best.values()), list(acts_final.values()), estimator=kernel, **options)
        value = _cka_of(cka, "benign", "none", "pgd_best", 0, "pgd", 0, "relu1", "relu3")
        assert value == pytest.approx(study[layers.index("relu1"), layers.index("relu3")].item(), abs=1e-9)
        # with a linear kernel both columns are one estimate (unbiased HSIC per batch); with rbf they differ
        assert (cka["cka"] == cka["cka_debiased"]).all() == (kernel == "linear")
    # PGD inputs against network b, made 8 images at a time from the pair's one generator, fed to both networks
    standard, robust = _stored_network(stored[("standard", 1)][1], "final"), _stored_network(stored[("pgd", 0)][1], "final")
    generator = torch.Generator().manual_seed(1000 * NETWORKS.index("pgd") + 0)
    attacked = torch.cat([linf_ascent(robust, x[i:i + 8], y[i:i + 8], loss="cross_entropy", eps=0.3, ascent=pgd(2, 0.5),
                                      generator=generator) for i in range(0, 30, 8)])
    expected = cka_between([hidden_and_output(standard, attacked)["relu1"]],
                           [hidden_and_output(robust, attacked)["output"]], **options)[0, 0].item()
    assert _cka_of(cka, "pgd", "b", "standard", 1, "pgd", 0, "relu1", "output", "cka_debiased") == pytest.approx(
        expected, abs=1e-9)


def test_the_control_is_the_initialisation_the_adversarial_stage_trains_from(tmp_path):
    """A run with learning rate 0 never moves: its stored final network is its initialisation."""
    from robustgen.data import save_split
    from robustgen.io import load_file
    from robustgen.settings import AdversarialTraining, PgdTraining, RobustEvaluation, TrainingLog
    from robustgen.stages.adversarial import run
    from robustgen.stages.representations import initial_network

    save_split(load_embedded_mnist(train_size=100, split_seed=0), tmp_path / "split.pt")
    frozen = AdversarialTraining(epochs=1, batch_size=50, lr=0.0, warmup_epochs=0, dtype="float32",
                                 optimizer=ADAM, augment="none", single_step=SINGLE_STEP,
                                 pgd=PgdTraining(steps=1, step=1.0), log=TrainingLog(every=2, images=10, pgd_steps=1),
                                 evaluation=RobustEvaluation(images=10, steps=1, step=1.0, restarts=1))
    run(tmp_path / "split.pt", frozen, model="cnn", method="standard", eps=0.1, beta=0.0, seed=3, device="cpu",
        log_path=tmp_path / "log.csv", run_path=tmp_path / "run.json", networks_path=tmp_path / "networks.pt")
    blob = load_file(tmp_path / "networks.pt")
    state = torch.get_rng_state()
    init = initial_network(blob["model_spec"], 3, device="cpu", dtype=torch.float32).state_dict()
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left where it was
    stored = blob["networks"]["final"]["state_dict"]
    assert stored.keys() == init.keys() and all(torch.equal(stored[k], init[k]) for k in init)
    other = initial_network(blob["model_spec"], 4, device="cpu", dtype=torch.float32).state_dict()
    assert not all(torch.equal(stored[k], other[k]) for k in init)


# --- block structure at depth ---------------------------------------------------------------------------------

def _block_settings(**changes):
    from robustgen.sections import RepresentationsBlocksPgd
    from robustgen.settings import BlockTraining

    values = dict(model="resnet8_w4_s2", epsilon=0.1, epochs=2, batch_size=32, lr=0.05, momentum=0.9,
                  weight_decay=5e-4, pgd=RepresentationsBlocksPgd(steps=2, step=0.5), evaluation_images=20,
                  evaluation_steps=2)
    return BlockTraining(**(values | changes))


def test_block_networks_start_from_the_seeds_control_and_are_scored_against_it(tmp_path):
    from robustgen.data import save_split
    from robustgen.io import load_file
    from robustgen.data import as_float, read_split
    from robustgen.models import from_state
    from robustgen.settings import BlockComparison, CkaBatches
    from robustgen.stages.representations import (block_structure, blocks_table, initial_network,
                                                  train_block_network)

    b = _block_settings()
    split_path = tmp_path / "split.pt"
    save_split(load_embedded_mnist(train_size=60, split_seed=0, subset="balanced"), split_path)
    runs, networks = [], []
    for method in ("standard", "pgd"):
        run, net = tmp_path / f"{method}.json", tmp_path / f"{method}.pt"
        summary = train_block_network(split_path, b, method=method, seed=3, device="cpu", run_path=run,
                                      networks_path=net)
        assert summary["steps"] == 2 * 2  # two epochs of ⌈60 / 32⌉ batches
        runs.append(run), networks.append(net)
    # the control is the trained network's own initialisation: with a vanishing learning rate, training leaves
    # every weight where the control has it
    still = tmp_path / "still.pt"
    train_block_network(split_path, _block_settings(lr=1e-12, weight_decay=0.0), method="standard", seed=3,
                        device="cpu", run_path=tmp_path / "still.json", networks_path=still)
    blob = load_file(still, "cpu")
    start = initial_network(blob["model_spec"], 3, device="cpu", dtype=torch.float32)
    trained = blob["networks"]["final"]["state_dict"]
    weights = dict(start.named_parameters())
    assert len(weights) > 20 and all(torch.allclose(w, trained[k], atol=1e-9) for k, w in weights.items())
    first = next(iter(weights))  # while the standard network above moved away from it
    assert not torch.allclose(weights[first], load_file(networks[0], "cpu")["networks"]["final"]["state_dict"][first])
    scalars, cells = block_structure(split_path, runs, networks, BlockComparison(images=40, threshold=0.8),
                                    CkaBatches(batch_size=0, passes=1), "cpu")
    assert list(scalars["network"]) == ["untrained", "standard", "pgd"]
    assert scalars["largest_block"].between(1, scalars["layers"]).all()
    assert np.isnan(scalars.loc[0, "clean_acc"]) and scalars["clean_acc"].iloc[1:].between(0, 1).all()
    # the matrices are those the scalars were read from: symmetric, 1 on the diagonal
    m = cells[cells["network"] == "pgd"].pivot(index="layer_a", columns="layer_b", values="cka_debiased")
    assert np.allclose(m.to_numpy(), m.to_numpy().T) and np.allclose(np.diag(m.to_numpy()), 1)
    # streamed minibatch CKA (batches of 16, two passes) is that of the network's activations, batch by batch
    streamed, streamed_cells = block_structure(split_path, runs, networks, BlockComparison(images=40, threshold=0.8),
                                               CkaBatches(batch_size=16, passes=2), "cpu")
    blob = load_file(networks[1], "cpu")
    acts = hidden_and_output(from_state(blob["model_spec"], blob["networks"]["final"]["state_dict"]).eval(),
                             as_float(read_split(split_path).test_x[20:60]))  # after the 20 evaluation images
    expected = cka_between(list(acts.values()), list(acts.values()), batch_size=16, passes=2)
    m = streamed_cells[streamed_cells["network"] == "pgd"].set_index(["layer_a", "layer_b"])["cka_debiased"]
    assert m["relu1", "output"] == pytest.approx(expected[0, -1].item(), abs=1e-9)
    assert m["relu1", "output"] != pytest.approx(cells.set_index(["network", "layer_a", "layer_b"]).loc[
        ("pgd", "relu1", "output"), "cka_debiased"], abs=1e-6)
    assert list(streamed["layers"]) == list(scalars["layers"])
    # a second run of the same seed is the same network (the seed is the whole draw)
    again = tmp_path / "again.pt"
    train_block_network(split_path, b, method="pgd", seed=3, device="cpu", run_path=tmp_path / "again.json",
                        networks_path=again)
    assert all(torch.equal(v, load_file(again, "cpu")["networks"]["final"]["state_dict"][k])
               for k, v in load_file(networks[1], "cpu")["networks"]["final"]["state_dict"].items())
    scalars.to_csv(tmp_path / "seed3.csv", index=False)
    other = scalars.assign(seed=4, largest_block=[2, 7, 3])
    other.to_csv(tmp_path / "seed4.csv", index=False)
    table = blocks_table([tmp_path / "seed3.csv", tmp_path / "seed4.csv"])
    seed4 = table[table["seed"] == 4].set_index("network")["largest_block_minus_untrained"]
    assert seed4.to_dict() == {"untrained": 0, "standard": 5, "pgd": 1}


def test_a_block_network_refuses_a_method_it_does_not_train(tmp_path):
    from robustgen.stages.representations import train_block_network

    with pytest.raises(ValueError, match="standard or with pgd, not 'fgsm'"):
        train_block_network(tmp_path / "none.pt", _block_settings(), method="fgsm", seed=0, device="cpu",
                            run_path=tmp_path / "r.json", networks_path=tmp_path / "n.pt")


def test_the_untrained_control_normalises_with_its_training_images_statistics():
    from robustgen.models import calibrate_batchnorm

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 26 * 26, 10))
    x = torch.rand(600, 1, 28, 28) * 5 + 2  # far from mean 0, variance 1
    calibrate_batchnorm(net, x, batch_size=200)
    features = net[0](x)
    # three equal batches: the running mean is the mean over all images; the variance the mean of the batches'
    # unbiased variances
    assert torch.allclose(net[1].running_mean, features.mean(dim=(0, 2, 3)), atol=1e-5)
    variances = torch.stack([c.transpose(0, 1).flatten(1).var(dim=1) for c in features.split(200)]).mean(0)
    assert torch.allclose(net[1].running_var, variances, rtol=1e-4)
    assert not net.training and net[1].momentum == 0.1  # eval mode, BatchNorm's own momentum back
    normalised = net[1](features)  # what eval mode computes: per channel mean ≈ 0 and variance ≈ 1
    assert normalised.mean(dim=(0, 2, 3)).abs().max() < 1e-3
