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


def margin(outputs: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Largest other output (or the `targets` class's output) minus the true class's output; > 0 means
    misclassified (as the target, when given)."""
    true = outputs.gather(1, labels[:, None]).squeeze(1)
    if targets is not None:
        return outputs.gather(1, targets[:, None]).squeeze(1) - true
    others = outputs.scatter(1, labels[:, None], -math.inf)
    return others.max(dim=1).values - true


def pgd_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, *, norm: str,
               steps: int, step_size: float, clip: bool = False, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Projected gradient ascent of the margin inside the `norm`-ball of radius eps (one per image),
    from the clean image; returns whether any iterate was misclassified. Step = step_size · eps."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; allowed: {', '.join(NORMS)}")
    eps = eps.to(x.dtype)[:, None]
    delta = torch.zeros_like(x)
    success = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    with torch.enable_grad():
        for step in range(steps + 1):
            delta.requires_grad_(True)
            point = (x + delta).clamp(0, 1) if clip else x + delta
            outputs = model(point)
            success |= (outputs.argmax(dim=1) != y).detach()
            if step == steps:
                break
            (grad,) = torch.autograd.grad(margin(outputs, y, targets).sum(), delta)
            with torch.no_grad():
                if norm == "l2":
                    delta = delta + step_size * eps * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                    delta = delta * (eps / delta.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1)
                else:
                    delta = (delta + step_size * eps * grad.sign()).clamp(-eps, eps)
    return success


def adversarial_radius(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str, steps: int,
                       step_size: float, max_eps: float, tol: float, clip: bool = False,
                       targeted: bool = False) -> torch.Tensor:
    """Smallest ε at which PGD finds a misclassified point in the ε-ball, by bisection over ε per image
    (to within `tol`; +inf if PGD succeeds at no ε it tries up to `max_eps`). Bisection assumes success is
    monotone in ε, as it nearly is; the radius returned is always an ε at which PGD did succeed.

    Untargeted PGD ascends the margin to the strongest competitor, an upper bound on the true radius;
    `targeted` attacks each image once towards every other class (num_classes − 1 times the cost).
    """
    radius, correct = _start(model, x, y)
    index = correct.nonzero().squeeze(1)
    xs, ys, owner, targets = x[index], y[index], torch.arange(len(index), device=x.device), None
    if targeted:
        classes = model(x[:1]).shape[1]
        others = torch.arange(classes, device=x.device)[None, :].expand(len(index), classes)
        keep = others != ys[:, None]
        targets = others[keep]
        owner = owner[:, None].expand(len(index), classes)[keep]
        xs, ys = xs[owner], ys[owner]

    def attack(eps):
        hit = pgd_attack(model, xs, ys, eps[owner], norm=norm, steps=steps, step_size=step_size, clip=clip,
                         targets=targets)
        return torch.zeros(len(index), dtype=torch.bool, device=x.device).index_put_((owner,), hit, accumulate=True)

    hi = torch.full((len(index),), float(max_eps), dtype=torch.float64, device=x.device)
    reachable = attack(hi)
    _, hi, seen = bisect(attack, torch.zeros_like(hi), hi, max(0, math.ceil(math.log2(max_eps / tol))))
    found = reachable | seen
    # hi is the smallest ε with a verified success; +inf only if PGD succeeded at no ε tried (an attack that
    # fails at max_eps but succeeds at a smaller ε, as PGD's fixed step count allows, is not censored)
    radius[index] = torch.where(found, hi, torch.full_like(hi, math.inf))
    return radius
