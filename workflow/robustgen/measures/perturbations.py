"""L∞ adversarial perturbations of a training batch: the single-step methods and PGD of adversarial training
(docs/protocols.md §8).

Every method is signed-gradient ascent of the training loss from a starting perturbation, so one function,
`linf_ascent`, computes them all; `METHODS` names the published settings:

- ``fgsm``: zero start, one step of ε, projected onto the ε-ball (Goodfellow et al. 2015);
- ``rs_fgsm``: uniform start in [−ε, ε], one step of 1.25 ε, projected (Wong, Rice & Kolter 2020);
- ``n_fgsm``: uniform start in [−2ε, 2ε], one step of ε, *not* projected (de Jorge et al. 2022);
- ``pgd``: uniform start, `steps` steps of `step` · ε, projected after each (Madry et al. 2018).

Images stay in [0, 1]. Gradients are taken with respect to the input only (`torch.autograd.grad`), so the
parameters' `.grad` is left as it was: the training step computes its own gradients afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..evaluation import loss_fn


@dataclass(frozen=True)
class Ascent:
    """A signed-gradient ascent: start ('zero', or 'uniform' in [−start·ε, start·ε]), steps of step·ε, and
    whether each iterate is projected back onto the ε-ball."""

    start: float
    step: float
    steps: int
    project: bool


METHODS = {
    "fgsm": Ascent(start=0.0, step=1.0, steps=1, project=True),
    "rs_fgsm": Ascent(start=1.0, step=1.25, steps=1, project=True),
    "n_fgsm": Ascent(start=2.0, step=1.0, steps=1, project=False),
}


def pgd(steps: int, step: float) -> Ascent:
    """PGD-k of adversarial training: a uniform start in the ε-ball, `steps` projected steps of step·ε."""
    return Ascent(start=1.0, step=step, steps=steps, project=True)


def linf_ascent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: str, eps: float, ascent: Ascent,
                generator: torch.Generator, stop_when_misclassified: bool = False) -> torch.Tensor:
    """x + δ after `ascent` on the mean `loss` (the training objective) of `model`, in [0, 1]; the random
    start is drawn with `generator`. With `stop_when_misclassified` (an evaluation attack) a point keeps the
    first iterate at which it is misclassified, so a later step cannot undo a success (Wong et al.'s
    evaluation PGD)."""
    delta = torch.zeros_like(x)
    if ascent.start:
        delta = (torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) * 2 - 1) * ascent.start * eps
    delta = (x + delta).clamp(0, 1) - x
    with torch.enable_grad():
        for _ in range(ascent.steps):
            delta.requires_grad_(True)
            outputs = model(x + delta)
            (grad,) = torch.autograd.grad(loss_fn(loss, outputs, y), delta)
            with torch.no_grad():
                moved = delta + ascent.step * eps * grad.sign()
                if ascent.project:
                    moved = moved.clamp(-eps, eps)
                moved = (x + moved).clamp(0, 1) - x
                if stop_when_misclassified:
                    moved = torch.where((outputs.argmax(dim=1) != y)[:, None], delta, moved)
                delta = moved
    return (x + delta).detach()


@torch.no_grad()
def robust_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, ascent: Ascent,
                   restarts: int, generator: torch.Generator, loss: str = "cross_entropy") -> torch.Tensor:
    """Which points `model` still classifies correctly after `restarts` runs of `ascent` (each from its own
    random start, each keeping a point's first misclassified iterate): the evaluation attack, e.g. PGD-50 ×
    10 restarts. A point broken by one restart is not attacked again, so restarts cost only on the points
    that resist."""
    correct = model(x).argmax(dim=1) == y
    for _ in range(restarts):
        index = correct.nonzero().squeeze(1)
        if not len(index):
            break
        adversarial = linf_ascent(model, x[index], y[index], loss=loss, eps=eps, ascent=ascent, generator=generator,
                                  stop_when_misclassified=True)
        correct[index] = model(adversarial).argmax(dim=1) == y[index]
    return correct


def input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "cross_entropy") -> torch.Tensor:
    """∇ₓ of each point's own loss (the summed loss's gradient, so no 1/N scaling), per point."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        outputs = model(x)
        per_point = loss_fn(loss, outputs, y) * len(x)  # a mean over the batch, undone
        (grad,) = torch.autograd.grad(per_point, x)
    return grad.detach()


def gradient_alignment(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                       generator: torch.Generator, loss: str = "cross_entropy") -> tuple[torch.Tensor, torch.Tensor]:
    """Per point: cos(∇ₓℓ(x), ∇ₓℓ(x + η)) with η ~ U[−ε, ε] (Andriushchenko & Flammarion 2020: it falls
    before catastrophic overfitting), and ‖∇ₓℓ(x)‖₂. A point with a zero gradient has alignment 1 with
    itself only if both are zero; it is returned as NaN and left out of means."""
    eta = (torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) * 2 - 1) * eps
    clean = input_gradients(model, x, y, loss)
    noisy = input_gradients(model, (x + eta).clamp(0, 1), y, loss)
    norms = clean.norm(dim=1)
    cosine = (clean * noisy).sum(dim=1) / (norms * noisy.norm(dim=1))
    return cosine, norms
