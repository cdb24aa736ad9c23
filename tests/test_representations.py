"""Robust vs standard representations: the compared layers, the structure scalars on matrices with known
answers, the tables' paired statistics, and the architectures by name."""

import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from robustgen.data import load_embedded_mnist
from robustgen.measures.similarity import hidden_and_output, layer_activations, linear_cka, structure
from robustgen.models import build, cnn
from robustgen.settings import Bootstrap
from robustgen.stages.adversarial import network_spec
from robustgen.stages.representations import grokking_table, layers_table, summary_table

BOOT = Bootstrap(resamples=200, seed=0)


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
    with pytest.raises(ValueError, match="cnn_x<k> or mlp_w<width>_d<depth>"):
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


# --- tables ------------------------------------------------------------------------------------------------------

def _structures():
    rows = []
    values = {"standard": [0.30, 0.32, 0.34], "pgd": [0.10, 0.16, 0.13]}
    for network, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            rows.append(dict(dataset="d", model="m", inputs="benign", network=network, seed=seed, near=0.9,
                             far=0.9 - v, block_index=v, long_range=0.5))
    return pd.DataFrame(rows)


def test_summary_pairs_networks_by_seed_and_gives_the_seed_baseline():
    table = summary_table(_structures(), BOOT).set_index(["network", "measure", "statistic"])
    value = table.loc[("pgd", "block_index", "value")]
    assert value["mean"] == pytest.approx(np.mean([0.10, 0.16, 0.13])) and value["n"] == 3
    assert value["min"] == pytest.approx(0.10) and value["max"] == pytest.approx(0.16)
    paired = table.loc[("pgd", "block_index", "minus_standard")]
    assert paired["mean"] == pytest.approx(np.mean([-0.20, -0.16, -0.21]))
    assert (paired["min"], paired["max"]) == pytest.approx((-0.21, -0.16))  # seed by seed, not across seeds
    assert paired["ci_low"] <= paired["mean"] <= paired["ci_high"] < 0
    baseline = table.loc[("standard", "block_index", "seed_baseline")]
    assert baseline["mean"] == pytest.approx(np.mean([0.02, 0.04, 0.02])) and baseline["n"] == 3
    assert ("standard", "block_index", "minus_standard") not in table.index


def test_layers_table_separates_same_seed_pairs_from_the_seed_baseline():
    rows = []
    for a, b, sa, sb, value in [("standard", "pgd", 0, 0, 0.8), ("standard", "pgd", 1, 1, 0.6),
                                ("standard", "standard", 0, 1, 0.95), ("standard", "standard", 0, 0, 1.0)]:
        rows += [dict(dataset="d", model="m", inputs="benign", network_a=a, seed_a=sa, network_b=b, seed_b=sb,
                      layer_a=layer, layer_b=layer, cka=value) for layer in ("relu1", "output")]
    table = layers_table(pd.DataFrame(rows), BOOT).set_index(["comparison", "layer"])
    assert table.loc[("standard vs pgd", "relu1"), "mean"] == pytest.approx(0.7)
    assert table.loc[("standard vs pgd", "relu1"), "n"] == 2
    assert table.loc[("standard vs standard (two seeds)", "output"), "mean"] == pytest.approx(0.95)
    assert len(table) == 4  # a network with itself is no comparison


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
    write_json(dict(settings=dict(model="cnn", method=method, eps=eps, seed=seed, dtype="float32"),
                    data=dict(dataset="mnist_embedded"), evaluation_images=[10, 19],
                    evaluation={k: dict(step=v) for k, v in steps.items()}), directory / "run.json")
    return directory / "run.json", directory / "networks.pt"


def test_compare_pairs_the_stored_networks_and_attacks_the_row_network(tmp_path):
    from robustgen.data import as_float, save_split
    from robustgen.io import load_file
    from robustgen.measures.perturbations import linf_ascent, pgd
    from robustgen.models import cnn_spec, from_state
    from robustgen.settings import CkaEstimator, InputAttack, RepresentationComparison
    from robustgen.stages.representations import NETWORKS, compare

    split = load_embedded_mnist(train_size=100, split_seed=0)
    save_split(split, tmp_path / "split.pt")
    spec = cnn_spec([1, 28, 28], 10)
    stored = {}
    for seed in (0, 1):
        stored[("standard", seed)] = _store(tmp_path / f"standard{seed}", "standard", seed, {"final": 10, "best": None}, spec)
        stored[("pgd", seed)] = _store(tmp_path / f"pgd{seed}", "pgd", seed, {"final": 10, "best": 5}, spec)
        # seed 1's best FGSM network is its final one: no second network
        stored[("fgsm", seed)] = _store(tmp_path / f"fgsm{seed}", "fgsm", seed, {"final": 10, "best": 10 if seed else 6}, spec)
    runs, nets = zip(*stored.values())
    s = RepresentationComparison(images=30, pgd_inputs=InputAttack(steps=2, step=0.5))
    cka = compare(tmp_path / "split.pt", list(runs), list(nets), s, CkaEstimator("linear", 1.0, 0), "cpu")
    pairs = set(zip(cka.inputs, cka.network_a, cka.seed_a, cka.network_b, cka.seed_b))
    assert ("benign", "pgd_best", 0, "pgd", 0) in pairs and ("benign", "fgsm_best", 0, "fgsm", 0) in pairs
    assert ("benign", "fgsm_best", 1, "fgsm", 1) not in pairs and ("benign", "fgsm", 0, "fgsm", 1) in pairs
    x = as_float(split.test_x[20:50])  # after the 10 log and 10 evaluation images

    def network(path, which):
        blob = load_file(path)
        return from_state(blob["model_spec"], blob["networks"][which]["state_dict"])

    def table(inputs, a, sa, b, sb, la, lb):
        rows = cka[(cka.inputs == inputs) & (cka.network_a == a) & (cka.seed_a == sa) & (cka.network_b == b)
                   & (cka.seed_b == sb) & (cka.layer_a == la) & (cka.layer_b == lb)]
        return rows.cka.item()

    best, final = network(stored[("pgd", 0)][1], "best"), network(stored[("pgd", 0)][1], "final")
    expected = linear_cka(hidden_and_output(best, x)["relu1"], hidden_and_output(final, x)["relu3"]).item()
    assert table("benign", "pgd_best", 0, "pgd", 0, "relu1", "relu3") == pytest.approx(expected, abs=1e-9)
    # PGD inputs of standard vs PGD (seed 1): made against the standard (row) network, with its generator
    standard, robust = network(stored[("standard", 1)][1], "final"), network(stored[("pgd", 1)][1], "final")
    y = split.test_y[20:50]
    generator = torch.Generator().manual_seed(1000 * NETWORKS.index("standard") + 1)
    attacked = linf_ascent(standard, x, y, loss="cross_entropy", eps=0.3, ascent=pgd(2, 0.5), generator=generator)
    assert not torch.equal(attacked, x)
    expected = linear_cka(hidden_and_output(standard, attacked)["relu1"],
                          hidden_and_output(robust, attacked)["output"]).item()
    assert table("pgd", "standard", 1, "pgd", 1, "relu1", "output") == pytest.approx(expected, abs=1e-9)
