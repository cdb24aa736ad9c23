"""The study's probes of one network, shared by every stage that measures networks: random-noise and adversarial
radii (docs/protocols.md §4) and the per-item sensitivity (§5), each with its settings."""

from __future__ import annotations

import math

import pandas as pd
import torch

from ..settings import Adversarial, NoiseSearch
from .attacks import adversarial_radius, minimal_perturbations, tightest_radius
from .probes import bisection_radius, grid_radius, noise_norm
from .sensitivity import jacobian_norms, trajectory_sensitivity


def _generator(seed: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def random_noise_probes(model, x, y, s: NoiseSearch, grid_deltas=()) -> list[tuple[dict, torch.Tensor]]:
    """(probe key, radii) for the bisection mode and Walker's grid mode at every Δ of `grid_deltas`."""
    norm = noise_norm(s.noise)
    out = [(dict(measure="random", mode="bisection", norm=norm, delta=math.nan),
            bisection_radius(model, x, y, k=s.draws, noise=s.noise, max_radius=s.max_radius,
                             bracket_step=s.bisection.bracket_step, tol=s.bisection.tol,
                             generator=_generator(s.seed, x.device), clip=s.clip))]
    for delta in grid_deltas:
        out.append((dict(measure="random", mode="grid", norm=norm, delta=float(delta)),
                    grid_radius(model, x, y, delta=delta, k=s.draws, noise=s.noise, max_radius=s.max_radius,
                                generator=_generator(s.seed, x.device), clip=s.clip)))
    return out


def adversarial_probes(model, x, y, a: Adversarial, clip: bool) -> list[tuple[dict, torch.Tensor]]:
    """(probe key, radii) in every norm of `a.norms`: the PGD radius, the radius of each minimal-norm attack
    of `a.attacks`, and the tightest of them per image (mode 'tightest', key `found_by`: which attack found
    it). Every radius is certified by a misclassified point, so the smallest is the tightest upper bound on
    the distance to the decision boundary (docs/protocols.md §4)."""
    out = []
    for norm in a.norms:
        radii = {"pgd": adversarial_radius(model, x, y, norm=norm, steps=a.steps, step_size=a.step_size,
                                           max_eps=getattr(a.max_eps, norm), tol=getattr(a.tol, norm), clip=clip,
                                           targeted=a.targeted)}
        radii |= minimal_perturbations(model, x, y, norm=norm, attacks=tuple(getattr(a.attacks, norm)), clip=clip)
        out += [(dict(measure="adversarial", mode=name, norm=norm, delta=math.nan), radius)
                for name, radius in radii.items()]
        if len(radii) > 1:
            tightest, found_by = tightest_radius(radii)
            out.append((dict(measure="adversarial", mode="tightest", norm=norm, delta=math.nan,
                             found_by=found_by), tightest))
    return out


def measure_network(model: torch.nn.Sequential, test_x: torch.Tensor, train_x: torch.Tensor,
                    anchors: dict[str, torch.Tensor], *, ellipse_points: int, jacobian_every: int):
    """Per-item sensitivity of one network: the Jacobian norm at test and at training points, and the
    transitions, length, transition density and mean Jacobian norm along every ellipse of each kind."""
    frames = []
    for where, x in (("test_points", test_x), ("train_points", train_x)):
        frames.append(pd.DataFrame(dict(where=where, item=range(len(x)),
                                        jacobian_norm=jacobian_norms(model, x).double().cpu().numpy())))
    for kind, kind_anchors in anchors.items():
        result = trajectory_sensitivity(model, kind_anchors, k=ellipse_points, jacobian_every=jacobian_every)
        frames.append(pd.DataFrame(dict(where=kind, item=range(len(kind_anchors)),
                                        **{k: v.cpu().numpy() for k, v in result.items()})))
    return pd.concat(frames, ignore_index=True)
