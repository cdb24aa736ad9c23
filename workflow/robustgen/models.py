"""The study's networks: fully-connected ReLU networks with Omnigrok's init scaling (docs/protocols.md §2), the
small CNN of Wong et al.'s MNIST adversarial training (§8), and the residual networks of the papers' CIFAR
settings (PreActResNet-18, WideResNet-28-k, CIFAR ResNet-n; §7-8). Every network takes flattened images in
[0, 1] (the residual networks normalise inside, so radii stay in pixel units) and builds every ReLU as its own
module, so the measures find each layer by its module (forward hooks) whatever the architecture.

Architectures are named in the config by `ARCHITECTURE` (one grammar, read by the config models too)."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from .settings import ARCHITECTURE, ARCHITECTURE_HELP


def mlp(input_dim: int, width: int, depth: int, num_classes: int) -> nn.Sequential:
    """`depth` Linear layers of `width` hidden units with ReLU between them (Omnigrok's "depth 3, width 200").

    Linear(input_dim, width) → ReLU → … → Linear(width, num_classes); PyTorch default init.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    sizes = [input_dim] + [width] * (depth - 1) + [num_classes]
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class GrayscaleInputConv2d(nn.Conv2d):
    """A one-channel input convolution (same parameters and outputs as `nn.Conv2d`) whose input gradient is
    cheap on the CPU: when the input needs a gradient (an attack, a Jacobian), the forward pass is
    unfold → matmul, so autograd's input gradient is a fold. oneDNN's input gradient of a one-channel, stride-2
    convolution takes ~4 ms for 100 MNIST images where the fold takes ~1 ms; an attack step of Wong's CNN gets
    ~25 % faster (benchmarks/adversarial_epoch.py). Outputs agree with `nn.Conv2d` to rounding
    (tests/test_models.py)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (x.requires_grad and x.device.type == "cpu"):
            return super().forward(x)
        n, _, height, width = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        columns = F.unfold(x, (kh, kw), padding=(ph, pw), stride=(sh, sw))  # n × (channels·kh·kw) × positions
        out = self.weight.flatten(1) @ columns + self.bias[:, None]
        return out.view(n, self.out_channels, (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1)


def cnn(image_shape: list[int], num_classes: int, extra: int = 0) -> nn.Sequential:
    """Wong et al.'s MNIST network: conv 16 (4×4, stride 2) → ReLU → conv 32 (4×4, stride 2) → ReLU →
    dense 100 → ReLU → dense `num_classes`, on flattened images of `image_shape` (channels, height, width);
    with `extra` > 0, that many conv 32 (3×3, same size) → ReLU after the second convolution (depth for
    layer-wise similarity)."""
    channels, height, width = image_shape
    first = GrayscaleInputConv2d if channels == 1 else nn.Conv2d
    deeper = [layer for _ in range(extra) for layer in (nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())]
    return nn.Sequential(
        nn.Unflatten(1, tuple(image_shape)),
        first(channels, 16, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
        *deeper,
        nn.Flatten(),
        nn.Linear(32 * (height // 4) * (width // 4), 100), nn.ReLU(),
        nn.Linear(100, num_classes),
    )


def architecture_spec(name: str, image_shape: list[int], num_classes: int,
                      mean: list[float] | None = None, std: list[float] | None = None) -> dict:
    """The spec of architecture `name` (`ARCHITECTURE`) for images of `image_shape` (channels, height, width);
    the residual networks normalise their input by the per-channel `mean` and `std` (of the training images)."""
    match = re.fullmatch(ARCHITECTURE, name)
    if match is None:
        raise ValueError(f"unknown architecture {name!r}; allowed: {ARCHITECTURE_HELP}")
    channels = image_shape[0]
    mean, std = list(mean or [0.0] * channels), list(std or [1.0] * channels)
    if name.startswith("cnn"):
        return cnn_spec(image_shape, num_classes, int(match["extra"] or 0))
    if name.startswith("mlp"):
        input_dim = int(torch.tensor(image_shape).prod())
        return model_spec(input_dim, int(match["width"]), int(match["depth"]), num_classes)
    common = dict(image_shape=list(image_shape), num_classes=num_classes, mean=mean, std=std)
    if name.startswith("preact"):
        return dict(kind="preact_resnet18", width=int(match["preact_width"] or 64), **common)
    if name.startswith("wrn"):
        depth = int(match["wrn_depth"])
        if (depth - 4) % 6:
            raise ValueError(f"architecture {name!r}: a WideResNet's depth is 6n + 4 (e.g. 16, 22, 28, 34)")
        return dict(kind="wide_resnet", depth=depth, widen=int(match["widen"]), width=int(match["wrn_width"] or 16),
                    **common)
    depth = int(match["resnet_depth"])
    if (depth - 2) % 6:
        raise ValueError(f"architecture {name!r}: a CIFAR ResNet's depth is 6n + 2 (e.g. 20, 32, 56, 110)")
    return dict(kind="resnet", depth=depth, width=int(match["resnet_width"]), stem_stride=int(match["stem_stride"] or 1),
                shortcut="zero_pad" if match["option_a"] else "projection", **common)


class Normalize(nn.Module):
    """(x − mean) / std per channel, inside the network: attacks and radii stay in pixel units."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def conv3x3(fan_in: int, fan_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(fan_in, fan_out, 3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """BN → ReLU → conv 3×3 → BN → ReLU → conv 3×3, plus the input — a 1×1 convolution where the shape changes,
    of the raw input (`shortcut_from="input"`: the PreActResNet-18 of Wong et al.'s, de Jorge et al.'s and
    Ortiz-Jiménez et al.'s code) or of the first ReLU's output (`"activation"`: Zagoruyko & Komodakis's
    WideResNet, as Cianfarani et al.'s code) — He et al.'s pre-activation block."""

    def __init__(self, fan_in: int, fan_out: int, stride: int, shortcut_from: str = "input"):
        super().__init__()
        self.bn1, self.relu1, self.conv1 = nn.BatchNorm2d(fan_in), nn.ReLU(), conv3x3(fan_in, fan_out, stride)
        self.bn2, self.relu2, self.conv2 = nn.BatchNorm2d(fan_out), nn.ReLU(), conv3x3(fan_out, fan_out)
        self.shortcut = (nn.Conv2d(fan_in, fan_out, 1, stride=stride, bias=False)
                         if stride != 1 or fan_in != fan_out else None)
        self.shortcut_from = shortcut_from

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(x if self.shortcut_from == "input" else out)
        out = self.conv1(out)
        return self.conv2(self.relu2(self.bn2(out))) + skip


class ZeroPadShortcut(nn.Module):
    """He et al.'s option A: the input at every `stride`-th pixel, its channels padded with zeros on both sides
    to `fan_out` (no parameters; the shortcut of their CIFAR ResNets)."""

    def __init__(self, fan_in: int, fan_out: int, stride: int):
        super().__init__()
        added = fan_out - fan_in
        self.stride, self.before, self.after = stride, added // 2, added - added // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.before, self.after))


class BasicBlock(nn.Module):
    """conv 3×3 → BN → ReLU → conv 3×3 → BN, plus the input, → ReLU: the post-activation block of He et al.'s
    CIFAR ResNets. Where the shape changes the shortcut is a 1×1 convolution with BN (`"projection"`, their
    option B) or the zero-padded input (`"zero_pad"`, option A, which their CIFAR networks use)."""

    def __init__(self, fan_in: int, fan_out: int, stride: int, shortcut: str = "projection"):
        super().__init__()
        self.conv1, self.bn1, self.relu1 = conv3x3(fan_in, fan_out, stride), nn.BatchNorm2d(fan_out), nn.ReLU()
        self.conv2, self.bn2 = conv3x3(fan_out, fan_out), nn.BatchNorm2d(fan_out)
        if stride == 1 and fan_in == fan_out:
            self.shortcut = nn.Identity()
        elif shortcut == "zero_pad":
            self.shortcut = ZeroPadShortcut(fan_in, fan_out, stride)
        elif shortcut == "projection":
            self.shortcut = nn.Sequential(nn.Conv2d(fan_in, fan_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(fan_out))
        else:
            raise ValueError(f"unknown shortcut {shortcut!r}; allowed: projection, zero_pad")
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


def _stages(block, fan_in: int, widths: list[int], blocks: list[int], strides: list[int]) -> nn.Sequential:
    layers = []
    for width, count, stride in zip(widths, blocks, strides):
        for i in range(count):
            layers.append(block(fan_in, width, stride if i == 0 else 1))
            fan_in = width
    return nn.Sequential(*layers)


def _wide_block(fan_in: int, fan_out: int, stride: int) -> PreActBlock:
    return PreActBlock(fan_in, fan_out, stride, shortcut_from="activation")


def residual_network(spec: dict) -> nn.Sequential:
    """A residual network of `spec` (`architecture_spec`): flattened images → normalisation → stem convolution
    → residual stages → (BN → ReLU for pre-activation networks) → global average pooling → linear."""
    channels = spec["image_shape"][0]
    kind, width = spec["kind"], spec["width"]
    if kind == "preact_resnet18":
        widths, blocks, strides, block = [width, 2 * width, 4 * width, 8 * width], [2, 2, 2, 2], [1, 2, 2, 2], PreActBlock
        stem = [conv3x3(channels, width)]
    elif kind == "wide_resnet":
        n, k = (spec["depth"] - 4) // 6, spec["widen"]
        widths, blocks, strides, block = [width * k, 2 * width * k, 4 * width * k], [n] * 3, [1, 2, 2], _wide_block
        stem = [conv3x3(channels, width)]
    elif kind == "resnet":
        n = (spec["depth"] - 2) // 6
        shortcut = spec.get("shortcut", "projection")  # specs stored before option A carry no key

        def block(fan_in: int, fan_out: int, stride: int) -> BasicBlock:
            return BasicBlock(fan_in, fan_out, stride, shortcut)

        widths, blocks, strides = [width, 2 * width, 4 * width], [n] * 3, [1, 2, 2]
        stem = [conv3x3(channels, width, spec["stem_stride"]), nn.BatchNorm2d(width), nn.ReLU()]
    else:
        raise ValueError(f"not a residual network: {kind!r}")
    head = [] if kind == "resnet" else [nn.BatchNorm2d(widths[-1]), nn.ReLU()]  # post-activation blocks end in a ReLU
    return nn.Sequential(
        nn.Unflatten(1, tuple(spec["image_shape"])), Normalize(spec["mean"], spec["std"]),
        *stem, _stages(block, width, widths, blocks, strides), *head,
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[-1], spec["num_classes"]))


def model_spec(input_dim: int, width: int, depth: int, num_classes: int) -> dict:
    """The plain-value description stored with every snapshot, enough to rebuild the network."""
    return dict(kind="mlp", input_dim=input_dim, width=width, depth=depth, num_classes=num_classes)


def cnn_spec(image_shape: list[int], num_classes: int, extra: int = 0) -> dict:
    return dict(kind="cnn", image_shape=list(image_shape), num_classes=num_classes, extra=extra)


RESIDUAL = ("preact_resnet18", "wide_resnet", "resnet")
KINDS = ("mlp", "cnn", *RESIDUAL)


def build(spec: dict) -> nn.Sequential:
    if spec.get("kind") == "mlp":
        return mlp(spec["input_dim"], spec["width"], spec["depth"], spec["num_classes"])
    if spec.get("kind") == "cnn":
        return cnn(spec["image_shape"], spec["num_classes"], spec.get("extra", 0))
    if spec.get("kind") in RESIDUAL:
        return residual_network(spec)
    raise ValueError(f"unknown model kind {spec.get('kind')!r}; allowed: {', '.join(KINDS)}")


def from_state(spec: dict, state_dict: dict, *, device="cpu", dtype: torch.dtype | None = None) -> nn.Sequential:
    """A stored network (spec + state dict) rebuilt in eval mode on `device` (in `dtype`, else as stored)."""
    model = build(spec)
    model.load_state_dict(state_dict)
    dtype = dtype or next(iter(state_dict.values())).dtype
    return model.to(device=device, dtype=dtype).eval()


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> nn.Module:
    """Set every BatchNorm's running statistics to the average over `x`'s batches of the statistics it computes
    there (train mode, no update of any weight), then eval mode: an untrained network as training meets it at
    step 0, each BatchNorm normalising with data statistics. With fresh running statistics (mean 0, variance 1)
    an untrained network's BatchNorms are the identity in eval mode: another function than the one training
    starts from. A network without BatchNorm is left as it is."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
        model.train()
        for chunk in x.split(batch_size):
            model(chunk)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    return model.eval()


@torch.no_grad()
def scale_init_(model: nn.Module, alpha: float) -> nn.Module:
    """Multiply every parameter (weights and biases) by `alpha` in place (Omnigrok's init scale)."""
    for p in model.parameters():
        p.mul_(alpha)
    return model


@torch.no_grad()
def weight_norms(model: nn.Sequential) -> torch.Tensor:
    """[total L2 norm of all parameters, L2 norm of the last layer's parameters], as one tensor."""
    squares = torch.stack([p.square().sum() for p in model.parameters()])
    last = len(list(output_layer(model).parameters()))
    return torch.stack([squares.sum(), squares[-last:].sum()]).sqrt()


def output_layer(model: nn.Module) -> nn.Linear:
    """The network's last Linear layer (its logits)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def relu_layers(model: nn.Sequential) -> list[int]:
    """Indices in `model` of the Linear and Conv2d layers whose outputs feed a ReLU (the hidden
    pre-activations: one unit per output feature, per channel and position for a convolution)."""
    return [i for i, m in enumerate(model[:-1])
            if isinstance(m, (nn.Linear, nn.Conv2d)) and isinstance(model[i + 1], nn.ReLU)]


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
