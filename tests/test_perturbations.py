"""Adversarial-training perturbations: known answers on linear models, the ε-ball and the [0, 1] box, and
the trainer's perturbation hook."""

import pytest
import torch
from torch import nn

from robustgen.evaluation import loss_fn
from robustgen.measures.attacks import METHODS, linf_ascent, pgd
from robustgen.models import mlp
from robustgen.train import Data, train


def _linear(seed=0, d=12, classes=3):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, classes)).double()
    x = torch.rand(40, d, dtype=torch.float64) * 0.6 + 0.2    # inside the box with room for ε = 0.1
    return model, x, torch.randint(0, classes, (40,))


def test_fgsm_is_one_signed_gradient_step():
    model, x, y = _linear()
    x.requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn("cross_entropy", model(x), y), x)
    expected = (x + 0.1 * grad.sign()).clamp(0, 1).detach()
    got = linf_ascent(model, x.detach(), y, loss="cross_entropy", eps=0.1, ascent=METHODS["fgsm"],
                      generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("method, bound", [("fgsm", 1.0), ("rs_fgsm", 1.0), ("n_fgsm", 3.0), ("pgd", 1.0)])
def test_perturbations_stay_in_their_ball_and_the_box(method, bound):
    model, x, y = _linear(seed=1)
    x = torch.rand(40, 12, dtype=torch.float64)                  # anywhere in the box, edges included
    ascent = pgd(steps=5, step=0.25) if method == "pgd" else METHODS[method]
    got = linf_ascent(model, x, y, loss="mse", eps=0.1, ascent=ascent, generator=torch.Generator().manual_seed(0))
    assert (got >= 0).all() and (got <= 1).all()
    assert (got - x).abs().max() <= bound * 0.1 + 1e-12
    if method == "n_fgsm":                                         # unprojected: it does leave the ε-ball
        assert (got - x).abs().max() > 0.1


def test_ascent_raises_the_loss_and_leaves_the_parameter_gradients_alone():
    model, x, y = _linear(seed=2)
    before = loss_fn("cross_entropy", model(x), y)
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    adv = linf_ascent(model, x, y, loss="cross_entropy", eps=0.1, ascent=pgd(steps=10, step=0.25),
                      generator=torch.Generator().manual_seed(0))
    assert loss_fn("cross_entropy", model(adv), y) > before
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())


def test_the_trainer_steps_on_the_perturbed_batch():
    """Without a hook, or with the identity, training is bitwise the same; with FGSM every step's batch is
    moved by exactly ε (before the box) and the network ends elsewhere."""
    x, y = torch.rand(60, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1)), torch.arange(60) % 3

    def run(perturb=None):
        torch.manual_seed(0)
        model = mlp(12, 16, 2, 3).double()
        train(model, Data(x, y), torch.optim.Adam(model.parameters(), lr=1e-2), loss="cross_entropy",
              batch_size=20, max_steps=9, eval_steps=[0], generator=torch.Generator().manual_seed(0),
              perturb=perturb)
        return list(model.state_dict().values())

    moved = []

    def fgsm(model, xb, yb):
        out = linf_ascent(model, xb, yb, loss="cross_entropy", eps=0.1, ascent=METHODS["fgsm"],
                          generator=torch.Generator())
        moved.append((out - xb).abs().max().item())
        return out

    plain = run()
    assert all(torch.equal(a, b) for a, b in zip(plain, run(lambda model, xb, yb: xb)))
    adversarial = run(fgsm)
    assert len(moved) == 9 and all(m == pytest.approx(0.1) for m in moved)
    assert not all(torch.equal(a, b) for a, b in zip(plain, adversarial))
