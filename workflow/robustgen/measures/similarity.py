"""Representation similarity: centred kernel alignment (CKA) between layers and networks (docs/protocols.md §7).

Kornblith et al. 2019 (linear and RBF CKA), Song et al. 2012 (the unbiased HSIC estimator behind the
debiased CKA), Nguyen et al. 2021 (minibatch CKA: unbiased HSIC accumulated over minibatches).
Every function takes (n, features) activation matrices of the same n examples, in float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def centre(x: torch.Tensor) -> torch.Tensor:
    """Subtract each column's mean."""
    return x - x.mean(dim=0, keepdim=True)


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Linear CKA in feature space: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred X, Y."""
    x, y = centre(x.double()), centre(y.double())
    return (y.T @ x).square().sum() / ((x.T @ x).norm() * (y.T @ y).norm())


def gram_linear(x: torch.Tensor) -> torch.Tensor:
    return x.double() @ x.double().T


def gram_rbf(x: torch.Tensor, threshold: float = 1.0) -> torch.Tensor:
    """RBF Gram matrix exp(−‖x_i − x_j‖² / (2σ²)) with σ = threshold × the median pairwise distance."""
    x = x.double()
    squared = torch.cdist(x, x).square()
    upper = torch.triu_indices(len(x), len(x), offset=1, device=x.device)
    distances = squared[upper[0], upper[1]].sqrt().sort().values
    median = (distances[(len(distances) - 1) // 2] + distances[len(distances) // 2]) / 2
    sigma = threshold * median
    return torch.exp(-squared / (2 * sigma**2))


def _centre_gram(k: torch.Tensor) -> torch.Tensor:
    """H K H with H = I − 11ᵀ/n."""
    k = k - k.mean(dim=0, keepdim=True)
    return k - k.mean(dim=1, keepdim=True)


def hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Biased HSIC estimate tr(K H L H) / (n − 1)² from Gram matrices (H = I − 11ᵀ/n)."""
    return hsic_matrix(prepare([k], debiased=False), prepare([l], debiased=False))[0, 0]


def hsic_unbiased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC (Song et al. 2012) from Gram matrices, with K̃, L̃ their zero-diagonal copies:
    [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)). Needs n ≥ 4."""
    return hsic_matrix(prepare([k], debiased=True), prepare([l], debiased=True))[0, 0]


def cka_from_grams(k: torch.Tensor, l: torch.Tensor, debiased: bool = False) -> torch.Tensor:
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), with the biased or the unbiased HSIC."""
    return cka_matrix([k], [l], debiased)[0, 0]


def debiased_linear_cka(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return cka_from_grams(gram_linear(x), gram_linear(y), debiased=True)


def rbf_cka(x: torch.Tensor, y: torch.Tensor, threshold: float = 1.0, debiased: bool = False) -> torch.Tensor:
    return cka_from_grams(gram_rbf(x, threshold), gram_rbf(y, threshold), debiased=debiased)


def minibatch_cka(x: torch.Tensor, y: torch.Tensor, batch_size: int, passes: int = 1) -> torch.Tensor:
    """Minibatch linear CKA (Nguyen et al. 2021): Σ_b HSIC_u(K_b, L_b) / sqrt(Σ_b HSIC_u(K_b, K_b) Σ_b HSIC_u(L_b, L_b))
    over the batches of `minibatches` — for sets too large for one n×n Gram matrix."""
    options = dict(batch_size=batch_size, passes=passes)
    return Representation([x], **options).cka(Representation([y], **options))[0, 0]


def minibatches(n: int, batch_size: int, passes: int = 1) -> list[torch.Tensor]:
    """The example indices of minibatch CKA's batches: `passes` passes over the n examples, the first in their
    order and every later one in a random order drawn from the pass's number (so the same on every machine),
    each cut into consecutive batches of `batch_size`; a short last batch is kept where it has the 4 examples
    the unbiased HSIC needs. Later passes average over which examples share a batch (Cianfarani et al.: 3)."""
    if batch_size < 4 or passes < 1:
        raise ValueError(f"minibatch CKA needs batches of at least 4 examples and at least one pass, got "
                         f"batch_size {batch_size}, passes {passes}")
    orders = [torch.arange(n)] + [torch.randperm(n, generator=torch.Generator().manual_seed(p)) for p in range(1, passes)]
    return [order[start:start + batch_size] for order in orders for start in range(0, n - 3, batch_size)]


ESTIMATORS = ("linear", "debiased", "rbf")


def gram(x: torch.Tensor, estimator: str, rbf_threshold: float) -> torch.Tensor:
    return gram_rbf(x, rbf_threshold) if estimator == "rbf" else gram_linear(x)


def prepare(grams: list[torch.Tensor], debiased: bool) -> dict:
    """Per-layer statistics from which every pairwise HSIC follows by matrix products, computed once per
    network: the flattened centred Gram matrices (biased HSIC), or the flattened zero-diagonal ones with
    their row sums and totals (unbiased HSIC)."""
    n = grams[0].shape[0]
    if not debiased:
        return dict(n=n, debiased=False, flat=torch.stack([_centre_gram(k).flatten() for k in grams]))
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 examples, got {n}")
    zeroed = [k - torch.diag(torch.diag(k)) for k in grams]
    rows = torch.stack([k.sum(dim=1) for k in zeroed])
    return dict(n=n, debiased=True, flat=torch.stack([k.flatten() for k in zeroed]), rows=rows, totals=rows.sum(dim=1))


def hsic_matrix(a: dict, b: dict) -> torch.Tensor:
    """HSIC of every layer prepared in `a` with every layer prepared in `b` (same examples, same estimator)."""
    n = a["n"]
    products = a["flat"] @ b["flat"].T
    if not a["debiased"]:
        return products / (n - 1) ** 2
    sums = a["totals"][:, None] * b["totals"][None, :] / ((n - 1) * (n - 2))
    cross = 2 / (n - 2) * (a["rows"] @ b["rows"].T)
    return (products + sums - cross) / (n * (n - 3))


def self_hsic(a: dict) -> torch.Tensor:
    """HSIC of each prepared layer with itself."""
    n = a["n"]
    squares = a["flat"].square().sum(dim=1)
    if not a["debiased"]:
        return squares / (n - 1) ** 2
    return (squares + a["totals"] ** 2 / ((n - 1) * (n - 2)) - 2 / (n - 2) * a["rows"].square().sum(dim=1)) / (n * (n - 3))


def cka_matrix(grams_a: list[torch.Tensor], grams_b: list[torch.Tensor], debiased: bool) -> torch.Tensor:
    """CKA of every Gram matrix in `grams_a` with every one in `grams_b`: the layer × layer heatmap."""
    a, b = prepare(grams_a, debiased), prepare(grams_b, debiased)
    return hsic_matrix(a, b) / torch.sqrt(self_hsic(a)[:, None] * self_hsic(b)[None, :])


@torch.no_grad()
def layer_activations(model: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input and the output of every convolution, normalisation, ReLU, pooling and Linear layer (the layer
    types Cianfarani et al. compare), flattened per example, by forward hooks, in the order the network
    computes them (in a residual network a shortcut's 1×1 convolution comes where it runs).

    Names: input, then conv1, norm1, relu1, …, pool1, linear1, …, linearL (the network's output)."""
    found = {"input": x.flatten(1)}
    counts = {}
    handles = []
    kinds = {nn.Conv2d: "conv", nn.BatchNorm2d: "norm", nn.ReLU: "relu",
             (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d): "pool", nn.Linear: "linear"}
    def record(kind):
        def hook(_module, _inputs, output):  # named when it runs: numbers follow the order of computation
            counts[kind] = counts.get(kind, 0) + 1
            found[f"{kind}{counts[kind]}"] = output.flatten(1)
        return hook

    for module in model.modules():
        kind = next((name for cls, name in kinds.items() if isinstance(module, cls)), None)
        if kind is not None:
            handles.append(module.register_forward_hook(record(kind)))
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found


def hidden_and_output(model: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The representations whose layer-wise similarity carries structure: every hidden layer's ReLU output,
    then the network's output ('output'). Pre-activations are left out: each would be near its own ReLU and
    inflate the similarity of neighbours."""
    acts = layer_activations(model, x)
    return {**{name: a for name, a in acts.items() if name.startswith("relu")}, "output": list(acts.values())[-1]}


def structure(matrix: torch.Tensor, block_threshold: float = 0.8) -> dict[str, float]:
    """Scalars of a network's layer × layer CKA matrix over L compared layers (hidden layers, then the output):

    - near: mean CKA of adjacent layers (|i − j| = 1);
    - far: mean CKA of layers at least ⌈L/2⌉ apart;
    - block_index = near − far: high where neighbours are alike and distant layers are not (block structure),
      near 0 where similarity stays high across the whole depth (no specialisation), or low everywhere;
    - long_range: CKA of the first and the last hidden layer;
    - largest_block: the most consecutive layers whose every pair has CKA above `block_threshold` (Nguyen et
      al.'s block; the adjacent-minus-far index fails for residual networks, whose untrained residual streams
      already score high on it), 1 where no two neighbours do."""
    m = matrix.double()
    size = len(m)
    if size < 3:
        raise ValueError(f"structure needs at least 3 compared layers, got {size}")
    i, j = torch.triu_indices(size, size, offset=1)
    distance = j - i
    near = m[i[distance == 1], j[distance == 1]].mean()
    far = m[i[distance >= math.ceil(size / 2)], j[distance >= math.ceil(size / 2)]].mean()
    return dict(near=float(near), far=float(far), block_index=float(near - far), long_range=float(m[0, size - 2]),
                largest_block=largest_block(m, block_threshold))


def largest_block(matrix: torch.Tensor, block_threshold: float = 0.8) -> int:
    """The size of the largest run of consecutive layers a..b whose every pair has CKA > `block_threshold`."""
    alike = matrix > block_threshold
    size, best = len(matrix), 1
    for start in range(size):
        end = start + 1
        while end < size and bool(alike[start:end, end].all()):
            end += 1
        best = max(best, end - start)
    return best


class Representation:
    """One network's activations on a fixed set of examples, prepared once for CKA with any other."""

    def __init__(self, acts: list[torch.Tensor], *, estimator: str = "linear", rbf_threshold: float = 1.0,
                 batch_size: int = 0, passes: int = 1, grams: list[torch.Tensor] | None = None):
        """`grams`: the whole set's Gram matrices of `acts` under `estimator`'s kernel where already computed
        (e.g. linear ones shared by the biased and the debiased estimator); ignored in minibatch mode
        (`batch_size` from 4 to n − 1: unbiased HSIC per batch of `minibatches`)."""
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown CKA estimator {estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        self.minibatch = minibatch_mode(len(acts[0]), batch_size)
        if self.minibatch:
            self.batches = [prepare([gram(a[batch], estimator, rbf_threshold) for a in acts], True)
                            for batch in minibatches(len(acts[0]), batch_size, passes)]
        else:
            grams = grams if grams is not None else [gram(a, estimator, rbf_threshold) for a in acts]
            self.batches = [prepare(grams, estimator == "debiased")]
        self.self_hsic = sum(self_hsic(batch) for batch in self.batches)

    def cka(self, other: "Representation") -> torch.Tensor:
        """(layers of self, layers of other) CKA; in minibatch mode HSICs are summed over the batches."""
        cross = sum(hsic_matrix(a, b) for a, b in zip(self.batches, other.batches, strict=True))
        return cross / torch.sqrt(self.self_hsic[:, None] * other.self_hsic[None, :])


def cka_between(acts_a: list[torch.Tensor], acts_b: list[torch.Tensor], *, estimator: str = "linear",
                rbf_threshold: float = 1.0, batch_size: int = 0, passes: int = 1) -> torch.Tensor:
    """(len(acts_a), len(acts_b)) CKA of every layer's activations in `acts_a` with every one in `acts_b`
    (the same examples in the same order). `estimator`: linear, debiased (linear kernel, unbiased HSIC) or
    rbf. With `batch_size` > 0 and below n: minibatch CKA, unbiased HSIC summed over `minibatches`."""
    options = dict(estimator=estimator, rbf_threshold=rbf_threshold, batch_size=batch_size, passes=passes)
    return Representation(acts_a, **options).cka(Representation(acts_b, **options))


def minibatch_mode(n: int, batch_size: int) -> bool:
    """Whether CKA on n examples is accumulated over minibatches (0 < batch_size < n) or taken on the whole set."""
    return 0 < batch_size < n


class StreamedCka:
    """Minibatch CKA between the layers of many networks, accumulated one batch at a time (Nguyen et al. 2021;
    Cianfarani et al.'s online CKA): per batch each network's activations are turned into its prepared Gram
    matrices as soon as they are taken (`prepare`; the activations can then be dropped), and at the batch's end
    every requested pair's HSIC is added (`end_batch`) — so at most one network's activations on one batch are
    held, for image sets or networks whose activations do not fit at once. The same sums as Representation's
    minibatch mode over the same batches, in the other loop order."""

    def __init__(self, pairs, *, estimator: str = "linear", rbf_threshold: float = 1.0):
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown CKA estimator {estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        self.pairs = list(dict.fromkeys(pairs))
        self.estimator, self.rbf_threshold = estimator, rbf_threshold
        self.cross: dict = {}
        self.own: dict = {}
        self.batch: dict = {}  # this batch's prepared Gram matrices, per network

    def prepare(self, key, layers: list[torch.Tensor]) -> None:
        """Network `key`'s layers' activations on this batch's examples (the same examples for every network)."""
        self.batch[key] = prepared = prepare([gram(a, self.estimator, self.rbf_threshold) for a in layers], True)
        self.own[key] = self.own.get(key, 0) + self_hsic(prepared)

    def end_batch(self) -> None:
        """Add the batch's HSIC of every pair, whose networks were all prepared, and forget the batch."""
        for a, b in self.pairs:
            self.cross[a, b] = self.cross.get((a, b), 0) + hsic_matrix(self.batch[a], self.batch[b])
        self.batch = {}

    def add(self, acts: dict) -> None:
        """One whole batch: {network: its layers' activations on the batch's examples}."""
        for key, layers in acts.items():
            self.prepare(key, layers)
        self.end_batch()

    def cka(self, a, b) -> torch.Tensor:
        """(layers of a, layers of b) minibatch CKA of the pair (a, b), over the batches added so far."""
        return self.cross[a, b] / torch.sqrt(self.own[a][:, None] * self.own[b][None, :])
