"""The study's networks: fully-connected ReLU networks with Omnigrok's init scaling (docs/protocols.md §2), and
the small CNN of Wong et al.'s MNIST adversarial training (§8). Both are `nn.Sequential` stacks taking
flattened images, so every measure treats them alike."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


def model_spec(input_dim: int, width: int, depth: int, num_classes: int) -> dict:
    """The plain-value description stored with every snapshot, enough to rebuild the network."""
    return dict(kind="mlp", input_dim=input_dim, width=width, depth=depth, num_classes=num_classes)


def cnn_spec(image_shape: list[int], num_classes: int, extra: int = 0) -> dict:
    return dict(kind="cnn", image_shape=list(image_shape), num_classes=num_classes, extra=extra)


KINDS = ("mlp", "cnn")


def build(spec: dict) -> nn.Sequential:
    if spec.get("kind") == "mlp":
        return mlp(spec["input_dim"], spec["width"], spec["depth"], spec["num_classes"])
    if spec.get("kind") == "cnn":
        return cnn(spec["image_shape"], spec["num_classes"], spec.get("extra", 0))
    raise ValueError(f"unknown model kind {spec.get('kind')!r}; allowed: {', '.join(KINDS)}")


def from_state(spec: dict, state_dict: dict, *, device="cpu", dtype: torch.dtype | None = None) -> nn.Sequential:
    """A stored network (spec + state dict) rebuilt in eval mode on `device` (in `dtype`, else as stored)."""
    model = build(spec)
    model.load_state_dict(state_dict)
    dtype = dtype or next(iter(state_dict.values())).dtype
    return model.to(device=device, dtype=dtype).eval()


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
    last = len(list(model[-1].parameters()))
    return torch.stack([squares.sum(), squares[-last:].sum()]).sqrt()


def relu_layers(model: nn.Sequential) -> list[int]:
    """Indices in `model` of the Linear and Conv2d layers whose outputs feed a ReLU (the hidden
    pre-activations: one unit per output feature, per channel and position for a convolution)."""
    return [i for i, m in enumerate(model[:-1])
            if isinstance(m, (nn.Linear, nn.Conv2d)) and isinstance(model[i + 1], nn.ReLU)]


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
