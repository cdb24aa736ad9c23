"""Sensitivity of a network to its input (Novak et al. 2018; docs/protocols.md §5).

- Jacobian norm: ‖∂ softmax(f(x)) / ∂x‖_F per point, batched with torch.func (vmap of jacrev); and, for
  training with a Jacobian penalty (GrokAlign), an unbiased one-projection estimate of ‖∂f(x)/∂x‖²_F.
- Transitions: the ReLU activation code c(x) (1 where a hidden unit's pre-activation is > 0) and the sum of
  Hamming distances between consecutive codes along a closed trajectory.
- Trajectories: ellipses through three anchor points (random images, or training points of different or
  of the same class), sampled at k angles.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import jacrev, vmap


KINDS = ("random", "different_class", "same_class")


def jacobian_norms(model: nn.Module, x: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """Frobenius norm of the Jacobian of the class probabilities with respect to the input, per point.

    J(x) has shape (classes, inputs); the norm is over both axes: sqrt(Σ_ij J_ij²).
    """
    probabilities = lambda point: torch.softmax(model(point[None]), dim=1)[0]
    per_point = vmap(jacrev(probabilities))
    norms = [per_point(x[s:s + chunk]).flatten(1).norm(dim=1).detach() for s in range(0, len(x), chunk)]
    return torch.cat(norms) if norms else x.new_empty(0)


def projected_jacobian_norms(outputs: torch.Tensor, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per point, an estimate of ‖∂f(x)/∂x‖_F (raw outputs f, C of them) that training can differentiate.

    With v uniform on the unit sphere of R^C, E[C·‖vᵀJ‖²] = ‖J‖²_F (Hoffman et al. 2019): one vector-Jacobian
    product per batch instead of C. `outputs` = model(x), with x requiring grad; v is drawn from `generator`.
    """
    v = torch.randn(outputs.shape, generator=generator, device=outputs.device, dtype=outputs.dtype)
    v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
    (vjp,) = torch.autograd.grad(outputs, x, grad_outputs=v, create_graph=True)
    return (outputs.shape[1] * vjp.flatten(1).square().sum(dim=1)).clamp_min(1e-12).sqrt()


@torch.no_grad()
def hidden_preactivations(model: nn.Module, x: torch.Tensor, output: bool = False) -> list[torch.Tensor]:
    """Per ReLU module, in the order the network applies them, the (N, units) inputs it receives — the
    pre-activations whose signs make the linear region (a convolution's flattened: one unit per channel and
    position) — and the network's output last if `output`, in one pass. In a residual network with BatchNorm
    (in eval mode: an affine map) these are the normalised sums each ReLU sees, the skip included where the
    ReLU follows the addition; a 1×1 shortcut convolution or pooling adds no units."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if any(m.inplace for m in relus):
        raise ValueError("an in-place ReLU overwrites its input: the pre-activations need nn.ReLU(inplace=False)")
    found = []
    handles = [m.register_forward_hook(lambda _m, inputs, _out: found.append(inputs[0].flatten(1))) for m in relus]
    try:
        out = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return found + ([out.flatten(1)] if output else [])


@torch.no_grad()
def activation_codes(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """(N, hidden units) booleans: which ReLU units are active (pre-activation > 0) at each point."""
    return torch.cat([h > 0 for h in hidden_preactivations(model, x)], dim=1)


def closed_transitions(codes: torch.Tensor) -> torch.Tensor:
    """Σ_i ‖c(z_i) − c(z_(i+1) mod k)‖₁ for codes of shape (..., k, units): one count per trajectory."""
    return (codes != codes.roll(-1, dims=-2)).sum(dim=(-1, -2))


def closed_length(points: torch.Tensor) -> torch.Tensor:
    """Length of the closed polygon through points (..., k, d)."""
    return (points - points.roll(-1, dims=-2)).norm(dim=-1).sum(dim=-1)


def ellipses(anchors: torch.Tensor, k: int) -> torch.Tensor:
    """(n, k, d) points on the ellipse through each triple of anchors (n, 3, d).

    z(θ) = m + u cos θ + v sin θ with m the anchors' mean, u = a − m, v = (b − c)/√3 passes through
    a, b and c at θ = 0, 2π/3 and 4π/3; θ is sampled at 2π i / k.
    """
    a, b, c = anchors.unbind(dim=1)
    centre = (a + b + c) / 3
    u, v = a - centre, (b - c) / math.sqrt(3)
    theta = torch.arange(k, dtype=anchors.dtype, device=anchors.device) * (2 * math.pi / k)
    return centre[:, None] + theta.cos()[None, :, None] * u[:, None] + theta.sin()[None, :, None] * v[:, None]


def anchor_indices(labels: torch.Tensor, kind: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 3) indices of anchor points: three of different classes or three distinct points of one class."""
    labels = labels.cpu()
    classes = labels.unique()
    by_class = [torch.nonzero(labels == c).squeeze(1) for c in classes]
    if kind == "different_class" and len(classes) < 3:
        raise ValueError(f"ellipses through points of different classes need 3 classes, found {len(classes)}")
    if kind == "same_class" and not any(len(members) >= 3 for members in by_class):
        raise ValueError("ellipses through points of the same class need a class with 3 points")
    out = torch.empty(n, 3, dtype=torch.long)
    for i in range(n):
        if kind == "different_class":
            chosen = torch.randperm(len(classes), generator=generator)[:3]
            out[i] = torch.stack([by_class[c][torch.randint(len(by_class[c]), (1,), generator=generator)[0]]
                                  for c in chosen.tolist()])
        elif kind == "same_class":
            eligible = [c for c in range(len(classes)) if len(by_class[c]) >= 3]
            c = eligible[torch.randint(len(eligible), (1,), generator=generator)[0]]
            out[i] = by_class[c][torch.randperm(len(by_class[c]), generator=generator)[:3]]
        else:
            raise ValueError(f"anchor kind must be different_class or same_class, got {kind!r}")
    return out


def trajectory_anchors(kind: str, x: torch.Tensor, labels: torch.Tensor, n: int,
                       generator: torch.Generator) -> torch.Tensor:
    """(n, 3, d) anchors of one trajectory kind: `random` images uniform in [0, 1]^d (far from the data),
    or data points `x` of different classes / of the same class."""
    if kind == "random":
        return torch.rand((n, 3, x.shape[1]), generator=generator).to(device=x.device, dtype=x.dtype)
    return x[anchor_indices(labels, kind, n, generator).to(x.device)]


def jacobian_sample(k: int, every: int) -> torch.Tensor:
    """Which of an ellipse's k points carry its mean Jacobian norm: the middle point of each run of `every`
    (a midpoint rule). Starting at point 0 instead would always include the first anchor, a training
    point, and never the other two (at k/3 and 2k/3), biasing the mean towards the data."""
    return torch.arange(every // 2, k, every)


def trajectory_sensitivity(model: nn.Sequential, anchors: torch.Tensor, *, k: int, jacobian_every: int,
                           chunk: int = 64) -> dict[str, torch.Tensor]:
    """Per ellipse through each anchor triple: transitions, length, transitions per unit length and the
    mean Jacobian norm over every `jacobian_every`-th point of the k (`jacobian_sample`)."""
    sample = jacobian_sample(k, jacobian_every).to(anchors.device)
    transitions, lengths, jacobians = [], [], []
    for s in range(0, len(anchors), chunk):
        points = ellipses(anchors[s:s + chunk], k)
        n, _, d = points.shape
        codes = activation_codes(model, points.reshape(-1, d)).reshape(n, k, -1)
        transitions.append(closed_transitions(codes))
        lengths.append(closed_length(points))
        sub = points[:, sample].reshape(-1, d)
        jacobians.append(jacobian_norms(model, sub).reshape(n, -1).mean(dim=1))
    transitions, lengths = torch.cat(transitions), torch.cat(lengths)
    return dict(transitions=transitions.double(), length=lengths.double(),
                transition_density=transitions.double() / lengths.double(),
                jacobian_norm=torch.cat(jacobians).double())


def region_slice(model: nn.Sequential, anchors: torch.Tensor, resolution: int, margin: float = 0.25,
                 last_layer_only: bool = True):
    """Linear regions on the plane through three anchor points (Novak et al.'s Figure 3).

    The plane is p(s, t) = a + s (b − a) + t (c − a) for s, t ∈ [−margin, 1 + margin]; the code is that of
    the last hidden layer (Novak's pre-logits layer) or of every hidden unit. Returns the boundary mask
    (resolution, resolution) — pixels whose code differs from the next pixel right or up — the number of
    distinct codes on the slice, and the anchors' (s, t) coordinates.
    """
    a, b, c = anchors
    coords = torch.linspace(-margin, 1 + margin, resolution, dtype=anchors.dtype, device=anchors.device)
    s, t = torch.meshgrid(coords, coords, indexing="xy")
    points = a + s.reshape(-1, 1) * (b - a) + t.reshape(-1, 1) * (c - a)
    codes = hidden_preactivations(model, points)[-1] > 0 if last_layer_only else activation_codes(model, points)
    regions = len(torch.unique(codes, dim=0))
    grid = codes.reshape(resolution, resolution, -1)
    boundary = torch.zeros(resolution, resolution, dtype=torch.bool, device=codes.device)
    boundary[:, :-1] |= (grid[:, 1:] != grid[:, :-1]).any(dim=-1)
    boundary[:-1, :] |= (grid[1:, :] != grid[:-1, :]).any(dim=-1)
    return boundary, regions, [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
