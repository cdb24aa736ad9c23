import struct

import numpy as np
import pytest
import torch

from robustgen.data import (EMBEDDED, DatasetUnavailable, as_float, load_split, read_split, save_split)


def test_embedded_mnist_split(embedded_split):
    s = embedded_split
    assert s.train_x.shape == (1000, 784) and s.test_x.shape == (4000, 784)
    assert s.train_x.dtype == torch.uint8 and s.train_y.dtype == torch.int64
    assert int(s.train_x.max()) == 255 and int(s.train_x.min()) == 0
    assert sorted(s.train_y.unique().tolist()) == list(range(10))
    # the 5 000 images hold 500 per class; the split partitions them
    labels = torch.cat([s.train_y, s.test_y])
    assert torch.bincount(labels).tolist() == [500] * 10
    assert s.meta["split_seed"] == 0 and s.meta["dataset"] == EMBEDDED and s.num_classes == 10


def test_embedded_split_is_seeded(embedded_split):
    again = load_split(EMBEDDED, data_dir=None, train_size=1000, split_seed=0, download=False)
    other = load_split(EMBEDDED, data_dir=None, train_size=1000, split_seed=1, download=False)
    assert torch.equal(again.train_x, embedded_split.train_x)
    assert not torch.equal(other.train_y, embedded_split.train_y)
    # disjoint: no training image reappears in the test set
    train_rows = {bytes(r.numpy()) for r in embedded_split.train_x}
    assert not any(bytes(r.numpy()) in train_rows for r in embedded_split.test_x[:500])


def test_as_float_scales_to_unit_interval(embedded_split):
    x = as_float(embedded_split.train_x[:10], dtype=torch.float64)
    assert x.dtype == torch.float64 and float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(x * 255, embedded_split.train_x[:10].double())


def test_split_round_trip(tmp_path, embedded_split):
    save_split(embedded_split, tmp_path / "split.pt")
    back = read_split(tmp_path / "split.pt")
    assert torch.equal(back.test_x, embedded_split.test_x) and back.meta == embedded_split.meta
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def _write_idx(path, array, magic):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for dim in array.shape:
            f.write(struct.pack(">I", dim))
        f.write(array.astype(np.uint8).tobytes())


def _fake_mnist(root, n_train=30, n_test=12):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 0x803)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 0x801)


def test_torchvision_mnist_through_the_real_loader(tmp_path):
    _fake_mnist(tmp_path)
    s = load_split("mnist", data_dir=tmp_path, train_size=20, split_seed=0, download=False)
    assert s.train_x.shape == (20, 784) and s.test_x.shape == (12, 784)   # first 20 train, all test
    assert s.train_y.tolist() == [i % 10 for i in range(20)]
    assert s.meta["source"] == "torchvision.datasets.MNIST"


def test_missing_dataset_offline_says_what_to_do(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        load_split("mnist", data_dir=tmp_path / "nowhere", train_size=1000, split_seed=0, download=False)
    message = str(err.value)
    assert "'mnist' was not found" in message and str(tmp_path / "nowhere") in message
    assert "robustgen download --dataset mnist" in message and EMBEDDED in message
