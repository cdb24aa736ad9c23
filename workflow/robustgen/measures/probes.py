"""Robustness probes: random-noise radius (grid and bisection) and adversarial radius (docs/protocols.md §4).

All probes are batched over images × draws (or images × PGD iterates) and return one radius per image:
NaN for images misclassified without perturbation (excluded), +inf where no misclassification was found
up to the search limit (censored).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..evaluation import predict

NOISES = ("uniform", "gaussian", "sign")
NORMS = ("l2", "linf")


def noise_norm(noise: str) -> str:
    """The norm in which a noise's amplitude is measured: L2 for uniform/gaussian, L∞ for sign."""
    return "linf" if noise == "sign" else "l2"


def noise_directions(n: int, k: int, d: int, noise: str, generator: torch.Generator,
                     dtype: torch.dtype = torch.float32, device="cpu") -> torch.Tensor:
    """(n, k, d) unit directions: `uniform` 2·U[0,1]^d − 1 and `gaussian` N(0, I), both scaled to unit L2
    norm (Walker's draw is `uniform`); `sign` uniform ±1 entries (unit L∞ norm)."""
    shape = (n, k, d)
    if noise == "uniform":
        u = torch.rand(shape, generator=generator, dtype=dtype, device=device).mul_(2).sub_(1)
    elif noise == "gaussian":
        u = torch.randn(shape, generator=generator, dtype=dtype, device=device)
    elif noise == "sign":
        return torch.randint(0, 2, shape, generator=generator, device=device).to(dtype).mul_(2).sub_(1)
    else:
        raise ValueError(f"unknown noise {noise!r}; allowed: {', '.join(NOISES)}")
    return u / u.norm(dim=-1, keepdim=True)


def bisect(succeeds, lo: torch.Tensor, hi: torch.Tensor, steps: int):
    """Per-item bisection of brackets [lo, hi] whose upper end succeeds: `steps` halvings, each keeping the
    half whose upper end `succeeds(mid)` (a bool tensor) says works. Returns (lo, hi, whether any midpoint
    succeeded). Used by every search of the probes: along random rays, over ε, and along an attack's δ."""
    seen = torch.zeros(lo.shape, dtype=torch.bool, device=lo.device)
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = succeeds(mid)
        seen |= ok
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    return lo, hi, seen


def misclassified(model: nn.Module, points: torch.Tensor, labels: torch.Tensor, clip: bool) -> torch.Tensor:
    """Whether each of `points` (…, d) is misclassified; labels broadcast over the leading dimensions."""
    if clip:
        points = points.clamp(0.0, 1.0)
    flat = points.reshape(-1, points.shape[-1])
    return predict(model, flat).reshape(points.shape[:-1]) != labels


def _start(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """Radii initialised to +inf for correctly classified images and NaN for the excluded ones."""
    correct = predict(model, x) == y
    radius = torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device)
    radius[~correct] = math.nan
    return radius, correct


@torch.no_grad()
def grid_radius(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, delta: float, k: int, noise: str,
                max_radius: float, generator: torch.Generator, clip: bool = False) -> torch.Tensor:
    """Walker's radius: the first amplitude a ∈ {Δ, 2Δ, …} at which any of k fresh noise draws of
    amplitude a misclassifies the image. Each amplitude is a new trial, so the radius depends on Δ."""
    radius, alive = _start(model, x, y)
    for i in range(1, int(math.floor(max_radius / delta + 1e-9)) + 1):
        index = alive.nonzero().squeeze(1)
        if len(index) == 0:
            break
        amplitude = i * delta
        u = noise_directions(len(index), k, x.shape[1], noise, generator, x.dtype, x.device)
        hit = misclassified(model, x[index, None, :] + amplitude * u, y[index, None], clip).any(dim=1)
        radius[index[hit]] = amplitude
        alive[index[hit]] = False
    return radius


@torch.no_grad()
def ray_crossings(model: nn.Module, x: torch.Tensor, y: torch.Tensor, directions: torch.Tensor, *,
                  max_radius: float, bracket_step: float, tol: float, clip: bool = False) -> torch.Tensor:
    """(n, k) distance along each ray x + t·u to its first misclassified point, to within `tol`.

    The rays are scanned at t = s, 2s, … (s = `bracket_step`) to bracket the first crossing, then bisected.
    A misclassified stretch shorter than s between two scanned points can be missed. +inf: none up to
    `max_radius`. Returns the upper end of the final bracket, a point verified misclassified.
    """
    n, k, d = directions.shape
    origin = x[:, None, :].expand(n, k, d).reshape(-1, d)
    labels = y[:, None].expand(n, k).reshape(-1)
    rays = directions.reshape(-1, d)
    hi = torch.full((n * k,), math.inf, dtype=torch.float64, device=x.device)
    pending = torch.ones(n * k, dtype=torch.bool, device=x.device)
    for i in range(1, int(math.floor(max_radius / bracket_step + 1e-9)) + 1):
        index = pending.nonzero().squeeze(1)
        if len(index) == 0:
            break
        t = i * bracket_step
        wrong = misclassified(model, origin[index] + t * rays[index], labels[index], clip)
        hi[index[wrong]] = t
        pending[index[wrong]] = False
    found = torch.isfinite(hi).nonzero().squeeze(1)

    def wrong(t):
        return misclassified(model, origin[found] + t[:, None].to(x.dtype) * rays[found], labels[found], clip)

    _, hi[found], _ = bisect(wrong, hi[found] - bracket_step, hi[found],
                             max(0, math.ceil(math.log2(bracket_step / tol))))
    return hi.reshape(n, k)


@torch.no_grad()
def bisection_radius(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, k: int, noise: str,
                     max_radius: float, bracket_step: float, tol: float, generator: torch.Generator,
                     clip: bool = False) -> torch.Tensor:
    """Grid-free random-noise radius: the smallest, over k fixed random directions, first crossing of the
    decision boundary along the ray (Fawzi et al. 2016's robustness to random noise, estimated by k rays)."""
    radius, correct = _start(model, x, y)
    directions = noise_directions(len(x), k, x.shape[1], noise, generator, x.dtype, x.device)
    index = correct.nonzero().squeeze(1)
    crossings = ray_crossings(model, x[index], y[index], directions[index], max_radius=max_radius,
                              bracket_step=bracket_step, tol=tol, clip=clip)
    radius[index] = crossings.min(dim=1).values
    return radius
