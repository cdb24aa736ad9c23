import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from robustgen.stages.capacity import CORRELATIONS, correlations, fitted
from robustgen.train import make_optimizer
from robustgen.data import DatasetUnavailable, balanced_subset, load_split, standardise
from robustgen.settings import Bootstrap
from robustgen.measures.stats import bootstrap_correlation, correlation

sys.path.insert(0, str(Path(__file__).parent))
from cifar_format import write_cifar10  # noqa: E402


def _cifar_fixture(root, n_train=50, n_test=20):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n_train + n_test, 3072))
    y = np.arange(n_train + n_test) % 10
    write_cifar10(root, x[:n_train], y[:n_train], x[n_train:], y[n_train:])
    return x, y


def test_cifar10_through_the_real_torchvision_loader(tmp_path):
    x, y = _cifar_fixture(tmp_path)
    split = load_split("cifar10", data_dir=tmp_path, train_size=20, split_seed=3, download=False,
                       subset="balanced", verify=False)
    assert split.train_x.shape == (20, 3072) and split.test_x.shape == (20, 3072)
    assert torch.bincount(split.train_y).tolist() == [2] * 10           # class-balanced
    assert split.meta["image_shape"] == [3, 32, 32] and split.meta["source"] == "torchvision.datasets.CIFAR10"
    # channel-first flattening, as CIFAR's files store it: the test set comes back unchanged
    assert np.array_equal(split.test_x.numpy(), x[50:]) and split.test_y.tolist() == y[50:].tolist()


def test_cifar10_checksums_are_verified_by_default(tmp_path):
    _cifar_fixture(tmp_path)
    with pytest.raises(DatasetUnavailable, match="verify_checksums: false"):
        load_split("cifar10", data_dir=tmp_path, train_size=20, split_seed=0, download=True, subset="balanced")


def test_missing_cifar10_offline_says_what_to_do(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        load_split("cifar10", data_dir=tmp_path, train_size=20, split_seed=0, download=False)
    assert "robustgen download --dataset cifar10" in str(err.value) and "mnist_embedded" in str(err.value)


def test_balanced_subset():
    labels = torch.tensor([0] * 10 + [1] * 10 + [2] * 10)
    chosen = balanced_subset(labels, 7, seed=0)
    counts = sorted(torch.bincount(labels[chosen], minlength=3).tolist())
    assert counts == [2, 2, 3] and len(set(chosen.tolist())) == 7
    assert torch.equal(chosen, balanced_subset(labels, 7, seed=0))
    with pytest.raises(ValueError, match="has only 10"):
        balanced_subset(labels, 33, seed=0)


def test_standardise_uses_training_statistics_per_channel():
    torch.manual_seed(0)
    train = torch.rand(40, 2 * 9) * torch.tensor([1.0] * 9 + [5.0] * 9) + torch.tensor([0.0] * 9 + [3.0] * 9)
    test = train[:5] + 1.0
    train_s, test_s, mean, std = standardise(train, test, channels=2)
    for channel in (slice(0, 9), slice(9, 18)):
        assert abs(train_s[:, channel].mean()) < 1e-5 and abs(train_s[:, channel].std() - 1) < 1e-5
    torch.testing.assert_close(test_s, train_s[:5] + 1.0 / std.repeat_interleave(9))


def test_stopping_rule_and_optimizers():
    assert fitted([dict(train_acc=0.999)]) is None and fitted([dict(train_acc=1.0)]) == "fitted"
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer("sgd", params, lr=0.1, device="cpu"), torch.optim.SGD)
    with pytest.raises(ValueError, match="adam, sgd"):
        make_optimizer("lbfgs", params, lr=0.1, device="cpu")


def test_correlations_known_answers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 2 * x + 1
    assert correlation(x, y) == pytest.approx(1.0)
    assert correlation(x, np.exp(x), "spearman") == pytest.approx(1.0)          # monotone: rank correlation 1
    assert correlation([1, 2, 3, 4], [1, 3, 2, 4], "spearman") == pytest.approx(0.8)
    assert correlation([1, 2, 2, 3], [1, 2, 3, 4], "spearman") == pytest.approx(0.9486832980505138)  # ties
    noisy = x + rng.normal(size=40)
    r, low, high = bootstrap_correlation(x, noisy, method="pearson", resamples=1000, seed=0)
    assert r == pytest.approx(np.corrcoef(x, noisy)[0, 1]) and low < r < high
    assert all(math.isnan(v) for v in bootstrap_correlation(x[:2], y[:2], method="pearson", resamples=10, seed=0))


def test_sweep_correlations_use_only_fitted_networks():
    rng = np.random.default_rng(1)
    n = 30
    jacobian = 10 ** rng.uniform(-2, 0, n)
    table = pd.DataFrame(dict(parameters=10 ** rng.uniform(4, 6, n), jacobian_test=jacobian,
                              transition_density_different_class=rng.uniform(5, 15, n),
                              transitions_per_unit_different_class=rng.uniform(0, 1, n),
                              gap_acc=0.1 + 0.05 * np.log10(jacobian), gap_loss=rng.uniform(0, 1, n),
                              width=np.arange(n) % 3, depth=2, optimizer="adam", lr=np.arange(n) // 3, batch_size=100,
                              reached_full_train_acc=[True] * (n - 3) + [False] * 3))
    table.loc[n - 3:, "gap_acc"] = 5.0                                          # outliers that were not fitted
    found = correlations(table, Bootstrap(resamples=500, seed=0))
    assert len(found) == 2 * len(CORRELATIONS) and (found["n"] == n - 3).all()
    found = found[found.scope == "all"].set_index(["x", "y"])
    row = found.loc[("jacobian_test", "gap_acc")]
    assert row.pearson == pytest.approx(1.0) and row.spearman == pytest.approx(1.0)
    assert row.pearson_ci_low == pytest.approx(1.0)


def test_offline_cifar10_names_the_sweeps_key_and_the_switch(tmp_path):
    import subprocess

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "robustgen", "prepare-data", "--config", str(root / "config.yaml"),
                           "--set", f"data.dir={tmp_path}", "--set", "data.download=false", "--study", "capacity",
                           "--dataset", "cifar10", "--output", str(tmp_path / "split.pt")],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 2 and not (tmp_path / "split.pt").exists()
    assert "config key capacity.dataset" in proc.stderr
    assert 'snakemake --cores 2 --config "capacity={dataset: mnist_embedded}"' in proc.stderr


def test_within_architecture_correlation_removes_size():
    """Across architectures the gap rises with x (bigger x, bigger networks, bigger gaps); within each
    architecture it falls: the pooled correlation is positive, the within-architecture one −1."""
    rows = []
    for width in (32, 64, 128, 256):
        for lr in (1e-3, 3e-3, 1e-2):
            for seed in (0, 1):
                x = width / 32 + lr * 100 + seed * 0.01
                rows.append(dict(width=width, depth=2, optimizer="adam", lr=lr, batch_size=100, seed=seed,
                                 parameters=width * 800, jacobian_test=10 ** x, gap_loss=0.0,
                                 transition_density_different_class=x, transitions_per_unit_different_class=x,
                                 gap_acc=width / 32 - x + width / 32, reached_full_train_acc=True))
    found = correlations(pd.DataFrame(rows), Bootstrap(resamples=300, seed=0))
    found = found[found.x == "transition_density_different_class"].set_index("scope")
    assert found.loc["all", "spearman"] > 0.8
    assert found.loc["within_architecture", "pearson"] == pytest.approx(-1.0)
