"""Local complexity (Humayun, Balestriero & Baraniuk 2024; docs/protocols.md §9): around a point x, the frame of
2P points x ± r·v_p along P random orthonormal directions v_p; a hidden unit whose pre-activation does not
keep one sign over the frame has its boundary through the neighbourhood. LC_r(x) counts those units, per
hidden layer, and optionally for the output layer too: Humayun et al.'s code hooks every nn.Linear, output
included, so their count is the hidden one plus the output units whose sign changes over the frame."""

from __future__ import annotations

import torch
from torch import nn

from ..models import relu_layers
from .sensitivity import hidden_preactivations


def frame_directions(dim: int, count: int, generator: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    """(count, dim) random orthonormal directions: the Q factor of a Gaussian matrix."""
    if not 1 <= count <= dim:
        raise ValueError(f"a frame needs 1 to {dim} orthonormal directions in {dim} dimensions, got {count}")
    gaussian = torch.randn(dim, count, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    return (q * torch.sign(torch.diagonal(r))).T.to(dtype)  # signs fixed: one answer per draw


@torch.no_grad()
def local_complexity(model: nn.Sequential, x: torch.Tensor, directions: torch.Tensor, radii: list[float],
                     chunk: int = 64, output: bool = False) -> torch.Tensor:
    """(N, len(radii), layers) counts: per point, radius and hidden layer, the units whose pre-activation
    changes sign over the frame {x ± r·v_p} (`directions`: (P, D) rows v_p); with `output`, one more last
    entry: the output units whose value changes sign (the reference code's count of the output layer).

    A first Linear layer is affine, so its pre-activations over a frame are W·x + b ± r·(W·v_p): computed once
    per point and once per direction instead of at every frame point (the first layer of an MNIST MLP is most
    of its cost); the layers after it see the frame points' first-layer outputs as usual.
    """
    radii_t = torch.as_tensor(radii, dtype=x.dtype, device=x.device)
    offsets = torch.cat([directions, -directions]).to(device=x.device, dtype=x.dtype)  # (2P, D)
    affine_first = isinstance(model, nn.Sequential) and isinstance(model[0], nn.Linear) and 0 in relu_layers(model)
    head, rest = (model[0], model[1:]) if affine_first else (nn.Identity(), model)
    moved = head(offsets) - (head.bias if affine_first and head.bias is not None else 0)  # W·v_p (or v_p)
    counts = []
    for start in range(0, len(x), chunk):
        centre = head(x[start:start + chunk])
        frame = centre[:, None, None, :] + radii_t[None, :, None, None] * moved[None, None]  # (n, R, 2P, H)
        n, r, k, h = frame.shape
        flat = frame.reshape(n * r * k, h)
        layers = hidden_preactivations(rest, flat, output)  # with an affine head, rest's first ReLU sees `flat`
        extremes = [torch.aminmax(h.reshape(n, r, k, -1), dim=2) for h in layers]  # one pass over the frame
        counts.append(torch.stack([((high > 0) & (low < 0)).sum(dim=-1) for low, high in extremes], dim=-1))
    return torch.cat(counts) if counts else x.new_zeros((0, len(radii), 0), dtype=torch.long)
