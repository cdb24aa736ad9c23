"""Write a small image set in torchvision's on-disk CIFAR10 format (cifar-10-batches-py/), so tests and
timings can exercise the real torchvision loader without the internet."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                  test_y: np.ndarray) -> Path:
    """uint8 images (N, 3072) channel-first and int labels → root/cifar-10-batches-py/{data_batch_1..5,
    test_batch, batches.meta}, pickled dicts as torchvision reads them."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, (x, y) in enumerate(zip(np.array_split(train_x, 5), np.array_split(train_y, 5)), start=1):
        _dump(folder / f"data_batch_{i}", {"data": x.astype(np.uint8), "labels": [int(v) for v in y]})
    _dump(folder / "test_batch", {"data": test_x.astype(np.uint8), "labels": [int(v) for v in test_y]})
    _dump(folder / "batches.meta", {"label_names": LABEL_NAMES, "num_cases_per_batch": len(train_x) // 5})
    return folder


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def random_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A CIFAR10-format set of random images whose labels depend on their mean colour (learnable, not real)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n_train + n_test, 3072))
    channel_means = x.reshape(-1, 3, 1024).mean(axis=2)
    y = np.argmax(channel_means, axis=1) * 3 + x[:, 0] % 4  # 0..9
    return write_cifar10(root, x[:n_train], y[:n_train], x[n_train:], y[n_train:])
