"""Every attack of the study in one module (docs/protocols.md §4, §8): one projected-gradient ascent, the
published attacks as its presets, and the minimal-norm attacks beside it.

**One projected-gradient ascent** (`projected_ascent`): from a start (the clean point, or uniform in the
start·ε-ball), `steps` steps of step·ε along the gradient of an objective (the sign of it in L∞, the
L2-normalised gradient in L2), each iterate projected back onto the ε-ball or not. Its callers:

- adversarial training and its evaluation (`linf_ascent`, the training loss, L∞, points kept in [0, 1]):
  ``fgsm`` (zero start, one step of ε, projected: Goodfellow et al. 2015), ``rs_fgsm`` (uniform start in
  [−ε, ε], one step of 1.25 ε, projected: Wong, Rice & Kolter 2020), ``n_fgsm`` (uniform start in [−2ε, 2ε],
  one step of ε, *not* projected: de Jorge et al. 2022) — the RS-FGSM step and the N-FGSM noise are knobs
  (`single_step`) —, ``grad_align`` (FGSM's step, the loss plus λ·`alignment_penalty`: Andriushchenko &
  Flammarion 2020), ``pgd`` (uniform start, k projected steps: Madry et al. 2018); `robust_correct` is the restart evaluation (e.g. PGD-50 × 10, each point keeping its first
  misclassified iterate);
- the adversarial radius (`adversarial_radius`): the ascent of the margin from the clean point in L2 or L∞,
  successful if any iterate is misclassified, with bisection over ε per image.

Gradients are taken with respect to the input only (`torch.autograd.grad`), so the parameters' `.grad` is left
as it was: a training step computes its own gradients afterwards.

**Minimal-norm attacks** (`minimal_perturbations`): Foolbox's, named in `MINIMAL_NORM`.

The §4 adversarial radius (`adversarial_radius`) is PGD at fixed ε plus bisection over ε: an upper
bound on the distance to the decision boundary. The attacks here search for the *smallest* perturbation
directly, with the maintained implementations in Foolbox 3 (Rauber et al. 2017, 2020):

- ``deepfool``: DeepFool (Moosavi-Dezfooli, Fawzi & Frossard 2016, "DeepFool: a simple and accurate method to
  fool deep neural networks", CVPR), L2 and L∞ — a linearise-and-step method, exact in one step on an affine
  classifier up to its overshoot;
- ``fmn``: Fast Minimum-Norm attack (Pintor, Roli, Brendel & Biggio 2021, "Fast minimum-norm adversarial
  attacks through adaptive norm constraints", NeurIPS), L2 and L∞, run targeted at the few classes whose
  linearised boundary is nearest (`nearest_classes`), the smallest result kept;
- ``ddn``: Decoupled Direction and Norm (Rony, Hafemann, Oliveira, Ben Ayed, Sabourin & Granger 2019,
  "Decoupling direction and norm for efficient gradient-based L2 adversarial attacks and defenses", CVPR),
  L2 only. It ascends the cross-entropy, whose gradient mixes all classes when the outputs are not
  saturated: on MSE-trained MLPs its radii were a median 10 % above the best found, where FMN's were within
  0.01 %; it rarely gives the tightest radius there.

The Brendel-Bethge attack (Brendel, Rauber, Kümmerer, Ustyuzhaninov & Bethge 2019, "Accurate, reliable and
fast robustness evaluation", NeurIPS) is not offered: Foolbox's implementation needs numba and an
adversarial starting point, and solves a small optimisation per image in a Python loop, far beyond the
probes' time budget.

No attack's own claim of success is trusted. Every perturbation δ an attack returns is shortened along its
ray by bisection (x + t·δ, t ∈ (0, 1], `REFINE_STEPS` halvings, keeping the smallest t whose point is
misclassified), then x + δ is re-evaluated with the network and the distance ‖δ‖ (L2 or L∞, in float64, of
the perturbation actually applied) is kept only where that point is misclassified. Each distance is therefore
an upper bound on the image's true minimal adversarial distance, certified by a misclassified point, exactly
like the PGD radius; the tightest bound is the minimum over attacks (`tightest_radius`). As in §4, images the
network misclassifies unperturbed are excluded (NaN) and a failed search is censored (+inf).

The attack parameters are fixed module constants, chosen and verified as recorded in their comments
(tests/test_attacks.py checks them against the exact distances of affine classifiers, where DeepFool and FMN
are exact to 1e-6 and DDN within a median 0.4 %, max 35 %). Two of Foolbox 3.3's defects are worked around:
its L2 FMN never projects onto the ε-ball (`_L2FMN`), and both FMNs can stall exactly on a linear piece's
boundary (FMN_OVERSHOOT).
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..evaluation import loss_fn, predict
from .probes import NORMS, _start, bisect, misclassified

# --- one projected-gradient ascent --------------------------------------------------------------------------


@dataclass(frozen=True)
class Ascent:
    """A projected-gradient ascent's schedule: its start (0: the clean point; s > 0: uniform in the s·ε-ball),
    `steps` steps of step·ε, and whether each iterate is projected back onto the ε-ball."""

    start: float
    step: float
    steps: int
    project: bool


METHODS = {  # the single-step methods of adversarial training, by name (PGD-k: `pgd`)
    "fgsm": Ascent(start=0.0, step=1.0, steps=1, project=True),
    "rs_fgsm": Ascent(start=1.0, step=1.25, steps=1, project=True),
    "n_fgsm": Ascent(start=2.0, step=1.0, steps=1, project=False),
}


SINGLE_STEP = ("fgsm", "rs_fgsm", "n_fgsm", "grad_align")  # grad_align: FGSM's step plus `alignment_penalty`


def single_step(method: str, *, rs_fgsm_step: float = 1.25, n_fgsm_noise: float = 2.0) -> Ascent:
    """A single-step method's ascent, with the RS-FGSM step and the N-FGSM noise radius (fractions of ε) as
    knobs; GradAlign perturbs as FGSM does (its difference is the training loss's `alignment_penalty`)."""
    if method in ("fgsm", "grad_align"):
        return METHODS["fgsm"]
    if method == "rs_fgsm":
        return Ascent(start=1.0, step=rs_fgsm_step, steps=1, project=True)
    if method == "n_fgsm":
        return Ascent(start=n_fgsm_noise, step=1.0, steps=1, project=False)
    raise ValueError(f"unknown single-step method {method!r}; allowed: {', '.join(SINGLE_STEP)}")


def pgd(steps: int, step: float) -> Ascent:
    """PGD-k: a uniform start in the ε-ball, `steps` projected steps of step·ε."""
    return Ascent(start=1.0, step=step, steps=steps, project=True)


def projected_ascent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, objective, eps, ascent: Ascent,
                     norm: str = "linf", generator: torch.Generator | None = None, in_box: bool = True,
                     clip: bool = False, keep_first_success: bool = False,
                     record_success: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The study's one projected-gradient ascent of `objective`(outputs, y) (a scalar) on x + δ, ‖δ‖ ≤ ε.

    `eps`: a number, or one radius per point (a tensor of shape (n,)). A step moves δ by step·ε along the
    gradient's sign (L∞) or its L2-normalised direction (L2), then projects onto the ε-ball if
    `ascent.project`. `in_box`: every iterate is kept in [0, 1] (adversarial training's points); otherwise
    the network sees x + δ, clipped to [0, 1] only with `clip` (the radius search's points).
    `keep_first_success`: a point misclassified at an iterate stays there (an evaluation attack).
    `record_success`: also return whether any iterate, the last included, was misclassified.
    Returns (the last point, that record or None)."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; allowed: {', '.join(NORMS)}")
    if isinstance(eps, torch.Tensor):
        eps = eps.to(x.dtype)[:, None]
    delta = torch.zeros_like(x)
    if ascent.start:
        delta = (torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) * 2 - 1) * ascent.start * eps
    if in_box:
        delta = (x + delta).clamp(0, 1) - x
    success = torch.zeros(len(x), dtype=torch.bool, device=x.device) if record_success else None
    with torch.enable_grad():
        for step in range(ascent.steps + record_success):
            delta.requires_grad_(True)
            outputs = model((x + delta).clamp(0, 1) if clip and not in_box else x + delta)
            if record_success:
                success |= (outputs.argmax(dim=1) != y).detach()
                if step == ascent.steps:
                    break
            (grad,) = torch.autograd.grad(objective(outputs, y), delta)
            with torch.no_grad():
                if norm == "l2":
                    moved = delta + ascent.step * eps * grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
                    if ascent.project:
                        moved = moved * (eps / moved.norm(dim=1, keepdim=True).clamp_min(1e-12)).clamp(max=1)
                else:
                    moved = delta + ascent.step * eps * grad.sign()
                    if ascent.project:
                        moved = moved.clamp(-eps, eps)
                if in_box:
                    moved = (x + moved).clamp(0, 1) - x
                if keep_first_success:
                    moved = torch.where((outputs.argmax(dim=1) != y)[:, None], delta, moved)
                delta = moved
    return (x + delta).detach(), success


def linf_ascent(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: str, eps: float, ascent: Ascent,
                generator: torch.Generator, stop_when_misclassified: bool = False) -> torch.Tensor:
    """x + δ after `ascent` on the mean `loss` (the training objective) of `model`, in L∞ and in [0, 1]; the
    random start is drawn with `generator`. With `stop_when_misclassified` (an evaluation attack) a point keeps
    the first iterate at which it is misclassified, so a later step cannot undo a success (Wong et al.'s
    evaluation PGD)."""
    point, _ = projected_ascent(model, x, y, objective=lambda outputs, labels: loss_fn(loss, outputs, labels),
                                eps=eps, ascent=ascent, generator=generator, keep_first_success=stop_when_misclassified)
    return point


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


def input_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str = "cross_entropy",
                    create_graph: bool = False) -> torch.Tensor:
    """∇ₓ of each point's own loss (the summed loss's gradient, so no 1/N scaling), per point; with
    `create_graph`, differentiable with respect to the parameters (a regulariser), else detached."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        outputs = model(x)
        per_point = loss_fn(loss, outputs, y) * len(x)  # a mean over the batch, undone
        (grad,) = torch.autograd.grad(per_point, x, create_graph=create_graph)
    return grad if create_graph else grad.detach()


def noisy_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, generator: torch.Generator,
                    loss: str = "cross_entropy", clamp: bool = True,
                    create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(∇ₓℓ(x), ∇ₓℓ(x + η)) per point, η ~ U[−ε, ε] drawn from `generator` (x + η kept in [0, 1] with
    `clamp`); the noisy one differentiable with respect to the parameters with `create_graph`."""
    eta = (torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) * 2 - 1) * eps
    clean = input_gradients(model, x, y, loss)
    noisy = input_gradients(model, (x + eta).clamp(0, 1) if clamp else x + eta, y, loss, create_graph=create_graph)
    return clean, noisy


def gradient_alignment(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                       generator: torch.Generator, loss: str = "cross_entropy") -> tuple[torch.Tensor, torch.Tensor]:
    """Per point: cos(∇ₓℓ(x), ∇ₓℓ(x + η)) with η ~ U[−ε, ε] (Andriushchenko & Flammarion 2020: it falls
    before catastrophic overfitting), and ‖∇ₓℓ(x)‖₂. A point with a zero gradient has alignment 1 with
    itself only if both are zero; it is returned as NaN and left out of means."""
    clean, noisy = noisy_gradients(model, x, y, eps=eps, generator=generator, loss=loss)
    norms = clean.norm(dim=1)
    cosine = (clean * noisy).sum(dim=1) / (norms * noisy.norm(dim=1))
    return cosine, norms


def alignment_penalty(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                      generator: torch.Generator, loss: str = "cross_entropy") -> torch.Tensor:
    """GradAlign's regulariser (Andriushchenko & Flammarion 2020): 1 − the batch mean of
    cos(∇ₓℓ(x), ∇ₓℓ(x + η)), η ~ U[−ε, ε] (not clamped to [0, 1], as in the authors' code), differentiable
    with respect to the parameters through the noisy gradient only (the clean one is detached, as theirs);
    points where either gradient is zero are left out."""
    clean, noisy = noisy_gradients(model, x, y, eps=eps, generator=generator, loss=loss, clamp=False,
                                   create_graph=True)
    clean_norm, noisy_norm = clean.norm(dim=1), noisy.norm(dim=1)
    keep = (clean_norm > 0) & (noisy_norm > 0)
    if not keep.any():
        return noisy.sum() * 0.0
    cosine = (clean[keep] * noisy[keep]).sum(dim=1) / (clean_norm[keep] * noisy_norm[keep])
    return 1.0 - cosine.mean()


def autoattack_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, image_shape: list[int],
                       seed: int, batch_size: int = 250) -> torch.Tensor:
    """Which points `model` (flattened inputs; `x` in [0, 1], where AutoAttack clips its iterates) still
    classifies correctly under AutoAttack's standard version at L∞ radius `eps` (Croce & Hein 2020: APGD-CE,
    then APGD-T, FAB-T and Square on the points still standing), run by pyautoattack (the authors' code,
    packaged), an optional dependency. A check on the study's PGD evaluation, whose accuracy is an upper bound
    that AutoAttack can lower."""
    try:
        from pyautoattack import AutoAttack
    except ImportError as error:
        raise ImportError("AutoAttack needs the optional package pyautoattack: pip install -e '.[autoattack]' "
                          "(or set adversarial.autoattack.images: 0)") from error
    # AutoAttack works in float32 on image-shaped inputs (its Square attack needs the shape): the wrapper
    # flattens them, runs the network in its own type (a float64 run's network stays float64) and hands
    # AutoAttack float32 outputs
    shaped = nn.Sequential(nn.Flatten(), _AsType(x.dtype), model, _AsType(torch.float32)).eval()
    attack = AutoAttack(shaped, eps=eps, norm="Linf", version="standard", seed=seed, device=x.device)
    adversarial, _ = attack.run_standard_evaluation(x.float().view(len(x), *image_shape), y, batch_size=batch_size)
    with torch.no_grad():
        return model(adversarial.flatten(1).to(x.dtype)).argmax(dim=1) == y


class _AsType(nn.Module):
    """Casts its input to `dtype`."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.dtype)


def grad_align_weight(weight: float, eps: float, reference_eps: float = 0.0) -> float:
    """GradAlign's λ for a run at radius `eps`: `weight` at every radius (`reference_eps` 0), or Andriushchenko &
    Flammarion's log-linear scheme, `weight` at `reference_eps` and tenfold for every further `reference_eps`
    (their CIFAR-10 runs: 0.2 at 8/255, so 0.027 at 1/255 and 2.0 at 16/255)."""
    return weight if reference_eps == 0 else weight * 10 ** ((eps - reference_eps) / reference_eps)


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
    """Whether projected gradient ascent of the margin (toward `targets`, if given) inside the `norm`-ball of
    radius eps (one per image), from the clean image, misclassifies any iterate. Step = step_size · eps."""
    _, success = projected_ascent(model, x, y, objective=lambda outputs, labels: margin(outputs, labels, targets).sum(),
                                  eps=eps, ascent=Ascent(start=0.0, step=step_size, steps=steps, project=True),
                                  norm=norm, in_box=False, clip=clip, record_success=True)
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


# --- minimal-norm attacks ------------------------------------------------------------------------------------

MINIMAL_NORM = {"l2": ("deepfool", "fmn", "ddn"), "linf": ("deepfool", "fmn")}

# DeepFool: at most 50 linearisation steps over all classes (Foolbox limits to the 10 largest logits by
# default), stepping (1 + 0.02)× past the linearised boundary (the paper's overshoot η; Foolbox also adds 1e-4
# to every step's length); the ray refinement removes the overshoot afterwards. On the MLPs measured, 10 steps
# gave the same radii as 50.
DEEPFOOL_STEPS = 50
DEEPFOOL_OVERSHOOT = 0.02
# FMN: 100 steps, step size cosine-annealed from FMN_STEPSIZE to 1/100 of it, ε-update factor γ annealed
# from FMN_GAMMA to 0.001 (Foolbox's schedule). Steps are L2-normalised gradients in both norms, so L∞ takes a
# larger one. Measured on 784-200-200-10 MLPs: 50 or 200 steps, step sizes 0.3–3 (L2) or 3–30 (L∞) and
# γ = 0.02 move the 90th percentile of the radius by < 1 %.
FMN_STEPS = 100
FMN_STEPSIZE = {"l2": 1.0, "linf": 10.0}
FMN_GAMMA = 0.05
# Untargeted, FMN follows the currently largest other logit and settles on that class's boundary when another
# class's is nearer: on three 784-200-200-10 MLPs 4–23 % of the images came out > 1 % above the best radius
# found by any method, up to 1.46×. It is run targeted at each of the FMN_CLASSES classes with the nearest
# linearised boundary at x instead: 0–7 % of the images > 1 % above, up to 1.18×, for 3× the cost of one
# run (2 classes: up to 8.5 % and 1.34×; 4 classes: up to 7 % and 1.16×).
FMN_CLASSES = 3
# The FMN ε-ball is projected onto at radius ε·(1 + FMN_OVERSHOOT): FMN's first ε is the linearised
# distance to the boundary, which on a piecewise-linear network lands exactly on the boundary when it lies in
# the current linear piece; without the overshoot FMN can stay on the boundary, never misclassified.
FMN_OVERSHOOT = 1e-4
# DDN: 100 steps of cosine-annealed size 1 → 0.01 on the sphere of radius ε, ε starting at 1 and
# multiplied by 1 ∓ 0.05 each step (Foolbox's defaults). Neither 50–1 000 steps, ε₀ = 0.1 nor γ = 0.1
# changes its bias on trained MLPs (module docstring).
DDN_STEPS = 100
DDN_INIT_EPSILON = 1.0
DDN_GAMMA = 0.05
# Halvings of the ray bisection x + t·δ: t to within 2⁻²⁰ ≈ 1e-6 of the found δ's length.
REFINE_STEPS = 20
# Without clipping the box Foolbox requires is the inputs' range widened by this much on both sides, far
# beyond any radius the probes report, so it never binds.
BOX_MARGIN = 1e3
# DDN replaces an exactly vanishing gradient by a random direction; the attacks run under a private RNG
# seeded with this, leaving the caller's generator untouched.
SEED = 0


@functools.cache
def _fmn_attacks() -> dict:
    """Foolbox's FMN attacks with the two fixes below, by norm (built on first use: Foolbox, imported here and
    in `_attack` only, costs a job that never runs a minimal-norm attack about 0.35 s of start-up)."""
    import eagerpy as ep
    from foolbox.attacks.fast_minimum_norm import L2FMNAttack, LInfFMNAttack
    from foolbox.devutils import atleast_kd, flatten

    class _L2FMN(L2FMNAttack):
        """Foolbox 3.3's L2 FMN with the ε-ball projection it lacks: its `project` scales δ by min(1, ‖x‖/‖x‖) = 1,
        i.e. never projects. This is the projection of the paper (δ ← δ·min(1, ε/‖δ‖₂)), at ε·(1 + FMN_OVERSHOOT)."""

        def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
            delta = x - x0
            norms = ep.maximum(flatten(delta).norms.l2(axis=-1), 1e-12)
            factor = ep.minimum(1, epsilon * (1 + FMN_OVERSHOOT) / norms)
            return x0 + delta * atleast_kd(factor, x.ndim)

    class _LInfFMN(LInfFMNAttack):
        """Foolbox's L∞ FMN, projecting onto the box of half-width ε·(1 + FMN_OVERSHOOT)."""

        def project(self, x: ep.Tensor, x0: ep.Tensor, epsilon: ep.Tensor) -> ep.Tensor:
            return super().project(x, x0, epsilon * (1 + FMN_OVERSHOOT))

    return {"l2": _L2FMN, "linf": _LInfFMN}


def _attack(name: str, norm: str):
    """The configured Foolbox attack `name` in `norm` (a foolbox MinimizationAttack)."""
    import foolbox as fb

    if name == "deepfool":
        cls = fb.attacks.L2DeepFoolAttack if norm == "l2" else fb.attacks.LinfDeepFoolAttack
        return cls(steps=DEEPFOOL_STEPS, candidates=None, overshoot=DEEPFOOL_OVERSHOOT, loss="logits")
    if name == "fmn":
        cls = _fmn_attacks()[norm]
        return cls(steps=FMN_STEPS, max_stepsize=FMN_STEPSIZE[norm], gamma=FMN_GAMMA)
    if name == "ddn" and norm == "l2":
        return fb.attacks.DDNAttack(init_epsilon=DDN_INIT_EPSILON, steps=DDN_STEPS, gamma=DDN_GAMMA)
    allowed = ", ".join(MINIMAL_NORM[norm])
    raise ValueError(f"unknown attack {name!r} for norm {norm!r}; allowed: {allowed}")


def perturbation_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-row L2 or L∞ norm of (n, d) perturbations, in float64."""
    delta = delta.to(torch.float64)
    return delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)


def _perturbed(x: torch.Tensor, delta: torch.Tensor, clip: bool) -> torch.Tensor:
    point = x + delta
    return point.clamp(0.0, 1.0) if clip else point


def _shortest_on_ray(model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor,
                     clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Bisect t ∈ (0, 1] along x + t·δ for the smallest t found misclassified (the probes' `bisect`).
    Returns the points at that t (at t = 1 where x + δ itself is not misclassified) and whether each is
    misclassified, evaluated here."""
    one = torch.ones(len(x), dtype=torch.float64, device=x.device)

    def wrong(t):
        return misclassified(model, x + t[:, None].to(x.dtype) * delta, y, clip)

    _, hi, _ = bisect(wrong, torch.zeros_like(one), one, REFINE_STEPS)
    hi = torch.where(wrong(one), hi, one)
    points = _perturbed(x, hi[:, None].to(x.dtype) * delta, clip)
    return points, predict(model, points) != y


def nearest_classes(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str, k: int) -> torch.Tensor:
    """(n, k) the k classes c ≠ y whose linearised boundary is nearest to x, nearest first: DeepFool's
    (f_y − f_c) / ‖∇f_y − ∇f_c‖ with the dual norm (L2 for L2, L1 for L∞) of the logits' gradients at x."""
    with torch.enable_grad():
        jacobian = torch.func.vmap(torch.func.jacrev(lambda point: model(point[None])[0]))(x.detach())  # (n, C, d)
        outputs = model(x.detach()).detach()
    gaps = outputs.gather(1, y[:, None]) - outputs
    normals = jacobian.gather(1, y[:, None, None].expand(-1, 1, x.shape[1])) - jacobian
    dual = normals.norm(dim=2) if norm == "l2" else normals.abs().sum(dim=2)
    distance = (gaps / dual).scatter(1, y[:, None], math.inf)
    return distance.argsort(dim=1)[:, :k]


@torch.no_grad()
def minimal_perturbations(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, norm: str,
                          attacks: tuple[str, ...], clip: bool) -> dict[str, torch.Tensor]:
    """Per image, the `norm` length of the smallest perturbation each attack in `attacks` finds, verified.

    Returns {attack: (n,) float64}: ‖δ‖₂ or ‖δ‖∞ of a δ with model(x + δ) ≠ y, checked here after the ray
    refinement (module docstring); +inf where the attack found no misclassified point; NaN for images
    misclassified unperturbed (excluded, as every §4 probe does). `attacks`: names from MINIMAL_NORM[norm];
    "fmn" is FMN targeted at each of the FMN_CLASSES classes with the nearest linearised boundary
    (`nearest_classes`), the smallest kept.

    `clip`: as `robustness.clip` in §4. False: perturbed points may leave [0, 1]; Foolbox's box is the
    inputs' range widened by BOX_MARGIN on each side, so it never binds. True: the box is [0, 1], which x must
    lie in (the attacks stay inside it and the verification clamps to it, as the probes do); some images then
    have no adversarial point an attack can reach (+inf).

    The model (an eval-mode network in float32 or float64) is left untouched: the attacks run on a copy whose
    parameters do not require gradients (Foolbox back-propagates with `backward()`, which would otherwise
    fill the parameters' `.grad`), under a private RNG seeded with SEED.
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; allowed: {', '.join(NORMS)}")
    built = {name: _attack(name, norm) for name in attacks}
    radius = torch.full((len(x),), math.inf, dtype=torch.float64, device=x.device)
    correct = predict(model, x) == y
    radius[~correct] = math.nan
    index = correct.nonzero().squeeze(1)
    results = {name: radius.clone() for name in attacks}
    if len(index) == 0:
        return results
    import foolbox as fb

    xs, ys = x[index], y[index]
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    bounds = (0.0, 1.0) if clip else (xs.min().item() - BOX_MARGIN, xs.max().item() + BOX_MARGIN)
    fmodel = fb.PyTorchModel(frozen, bounds=bounds, device=x.device)
    devices = [x.device] if x.device.type == "cuda" else []
    for name, attack in built.items():
        inputs, labels, criterion = xs, ys, fb.criteria.Misclassification(ys)
        if name == "fmn":  # one targeted run per candidate class, stacked: (k·n, d)
            classes = nearest_classes(frozen, xs, ys, norm=norm, k=min(FMN_CLASSES, frozen(xs[:1]).shape[1] - 1))
            inputs, labels = xs.repeat(classes.shape[1], 1), ys.repeat(classes.shape[1])
            criterion = fb.criteria.TargetedMisclassification(classes.T.reshape(-1))
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(SEED)
            found = attack.run(fmodel, inputs, criterion).detach()
        points, wrong = _shortest_on_ray(frozen, inputs, labels, found - inputs, clip)
        distance = perturbation_norm(points.to(torch.float64) - inputs.to(torch.float64), norm)
        distance = torch.where(wrong, distance, torch.full_like(distance, math.inf))
        results[name][index] = distance.reshape(-1, len(xs)).min(dim=0).values
    return results


def tightest_radius(radii: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[str]]:
    """Per image, the smallest finite radius over the attacks in `radii` and the name of the attack that
    found it (ties: the first in dict order). NaN (excluded) stays NaN with name "none"; where every attack
    failed the radius stays +inf with name "none"."""
    names = list(radii)
    if not names:
        raise ValueError("no radii given")
    stacked = torch.stack([radii[name].to(torch.float64) for name in names])
    excluded = stacked.isnan().any(dim=0)
    stacked = stacked.nan_to_num(nan=math.inf, posinf=math.inf)
    best = stacked.min(dim=0).values
    which = (stacked == best).int().argmax(dim=0)  # the first attack reaching the minimum
    best = torch.where(excluded, torch.full_like(best, math.nan), best)
    found = torch.isfinite(best)
    return best, [names[i] if ok else "none" for i, ok in zip(which.tolist(), found.tolist())]
