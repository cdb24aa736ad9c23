import math

import pytest
import torch
from torch import nn

from robustgen.measures.attacks import adversarial_radius, margin
from robustgen.measures.probes import bisection_radius, grid_radius, noise_directions, ray_crossings


class DistanceClassifier(nn.Module):
    """Predicts the label of the nearest centre if it lies closer than R, else a reject class:
    every direction from a centre crosses the decision boundary at exactly distance R."""

    def __init__(self, centres, labels, radius, classes):
        super().__init__()
        self.centres, self.labels, self.radius, self.classes = centres, labels, radius, classes

    def forward(self, z):
        dist = torch.cdist(z, self.centres)
        nearest = dist.argmin(dim=1)
        inside = dist.gather(1, nearest[:, None]).squeeze(1) < self.radius
        predicted = torch.where(inside, self.labels[nearest], torch.full_like(nearest, self.classes - 1))
        return nn.functional.one_hot(predicted, self.classes).to(z.dtype)


def _distance_setup(d=16, n=6, radius=0.83, dtype=torch.float64):
    centres = torch.eye(n, d, dtype=dtype) * 100.0  # far apart: only the own centre matters
    labels = torch.arange(n) % 3
    return DistanceClassifier(centres, labels, radius, classes=4), centres, labels


@pytest.mark.parametrize("noise", ["uniform", "gaussian"])
def test_both_modes_find_a_known_isotropic_radius(noise):
    model, x, y = _distance_setup(radius=0.8337)
    g = torch.Generator().manual_seed(0)
    radius = bisection_radius(model, x, y, k=5, noise=noise, max_radius=5, bracket_step=0.25, tol=1e-6, generator=g)
    assert torch.allclose(radius, torch.full_like(radius, 0.8337), atol=1e-6)
    assert (radius >= 0.8337).all()  # the reported point is verified misclassified
    for delta in (0.01, 0.05, 0.3):
        radius = grid_radius(model, x, y, delta=delta, k=5, noise=noise, max_radius=5, generator=g)
        # the first amplitude of the grid at or beyond R
        expected = math.ceil(0.8337 / delta) * delta
        assert torch.allclose(radius, torch.full_like(radius, expected), atol=1e-9)
        assert (radius - 0.8337 < delta).all()


def test_sign_noise_measures_linf_amplitude():
    d = 16
    model, x, y = _distance_setup(d=d, radius=2.0)
    g = torch.Generator().manual_seed(1)
    radius = bisection_radius(model, x, y, k=3, noise="sign", max_radius=5, bracket_step=0.1, tol=1e-7, generator=g)
    # a sign vector of L∞ amplitude t has L2 length t·sqrt(d)
    assert torch.allclose(radius, torch.full_like(radius, 2.0 / math.sqrt(d)), atol=1e-6)


def test_excluded_and_censored_images():
    model, x, y = _distance_setup(radius=0.83)
    y = y.clone()
    y[0] = 2 if y[0] != 2 else 1                       # misclassified without noise: excluded
    g = torch.Generator().manual_seed(0)
    for radius in (
        bisection_radius(model, x, y, k=2, noise="uniform", max_radius=0.5, bracket_step=0.1, tol=1e-3, generator=g),
        grid_radius(model, x, y, delta=0.1, k=2, noise="uniform", max_radius=0.5, generator=g),
    ):
        assert math.isnan(radius[0])
        assert torch.isinf(radius[1:]).all()           # R = 0.83 lies beyond the search limit 0.5


def _linear(weight, bias):
    model = nn.Linear(weight.shape[1], weight.shape[0]).double()
    with torch.no_grad():
        model.weight.copy_(weight)
        model.bias.copy_(bias)
    return model


def test_bisection_gives_the_analytic_crossing_of_each_ray_of_a_linear_classifier():
    torch.manual_seed(0)
    d, n, k = 10, 8, 6
    w = torch.randn(d, dtype=torch.float64)
    model = _linear(torch.stack([torch.zeros(d, dtype=torch.float64), w]), torch.tensor([0.0, 0.3], dtype=torch.float64))
    x = torch.randn(n, d, dtype=torch.float64)
    x = torch.where(((x @ w + 0.3) > 0)[:, None], x, -x)  # put every point on the class-1 side
    assert ((x @ w + 0.3) > 0).all()
    y = torch.ones(n, dtype=torch.long)
    u = noise_directions(n, k, d, "uniform", torch.Generator().manual_seed(2), torch.float64)
    got = ray_crossings(model, x, y, u, max_radius=50, bracket_step=0.5, tol=1e-8)
    slope = (u @ w)                                     # (n, k)
    expected = torch.where(slope < 0, (x @ w + 0.3)[:, None] / -slope, torch.full_like(slope, math.inf))
    expected = torch.where(expected <= 50, expected, torch.full_like(expected, math.inf))
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    finite = torch.isfinite(expected)
    assert torch.allclose(got[finite], expected[finite], atol=1e-7)
    assert finite.sum() > 10


def _margins(model, x, y):
    out = model(x)
    w = model.weight
    gaps = out.gather(1, y[:, None]) - out                           # f_y - f_j
    diff = w[y][:, None, :] - w[None, :, :]                          # w_y - w_j
    return gaps, diff


def _linear_problem(classes, seed=0, d=12, n=10):
    torch.manual_seed(seed)
    model = _linear(torch.randn(classes, d, dtype=torch.float64), torch.randn(classes, dtype=torch.float64))
    x = torch.randn(n, d, dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
        gaps, diff = _margins(model, x, y)
    others = torch.ones_like(gaps, dtype=torch.bool).scatter(1, y[:, None], False)
    inf = torch.full_like(gaps, math.inf)
    l2 = torch.where(others, gaps / diff.norm(dim=2), inf).min(1).values       # min_j (f_y-f_j)/|w_y-w_j|_2
    linf = torch.where(others, gaps / diff.abs().sum(dim=2), inf).min(1).values  # ... /|w_y-w_j|_1
    return model, x, y, dict(l2=l2, linf=linf)


@pytest.mark.parametrize("norm, max_eps", [("l2", 20.0), ("linf", 5.0)])
def test_pgd_finds_the_minimal_distance_of_a_binary_linear_model(norm, max_eps):
    model, x, y, exact = _linear_problem(classes=2)
    got = adversarial_radius(model, x, y, norm=norm, steps=100, step_size=0.05, max_eps=max_eps, tol=1e-7)
    torch.testing.assert_close(got, exact[norm], rtol=1e-4, atol=1e-6)
    assert (got >= exact[norm] - 1e-9).all()  # never below the true minimum


@pytest.mark.parametrize("norm, max_eps", [("l2", 20.0), ("linf", 5.0)])
def test_targeted_pgd_finds_the_minimal_distance_of_a_multiclass_linear_model(norm, max_eps):
    model, x, y, exact = _linear_problem(classes=4, seed=4)
    targeted = adversarial_radius(model, x, y, norm=norm, steps=100, step_size=0.05, max_eps=max_eps, tol=1e-7,
                                  targeted=True)
    torch.testing.assert_close(targeted, exact[norm], rtol=1e-4, atol=1e-6)
    # untargeted PGD follows the strongest competitor: an upper bound, sometimes not tight
    untargeted = adversarial_radius(model, x, y, norm=norm, steps=100, step_size=0.05, max_eps=max_eps, tol=1e-7)
    assert (untargeted >= exact[norm] - 1e-9).all()


def test_margin_is_positive_exactly_when_misclassified():
    out = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]])
    assert margin(out, torch.tensor([0, 0])).tolist() == [-1.0, 5.0]


def test_noise_directions_are_unit_and_seeded():
    g = torch.Generator().manual_seed(0)
    u = noise_directions(3, 4, 50, "uniform", g)
    assert torch.allclose(u.norm(dim=-1), torch.ones(3, 4))
    assert (u.abs() <= 1).all()
    s = noise_directions(3, 4, 50, "sign", g)
    assert set(s.unique().tolist()) == {-1.0, 1.0}
    again = noise_directions(3, 4, 50, "uniform", torch.Generator().manual_seed(0))
    assert torch.equal(u, again)


def test_a_success_below_max_eps_is_not_censored(monkeypatch):
    """PGD with a fixed step count can fail at max_eps yet succeed at a smaller ε: the radius is then the
    smallest ε found to succeed, not +inf (the attack here succeeds exactly for ε in [0.2, 0.5])."""
    from robustgen.measures import attacks as probes

    model = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
    x, y = torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 0])
    window = lambda model, x, y, eps, **kw: (eps >= 0.2) & (eps <= 0.5)  # noqa: E731
    monkeypatch.setattr(probes, "pgd_attack", window)
    radius = probes.adversarial_radius(model, x, y, norm="l2", steps=1, step_size=1.0, max_eps=1.0, tol=1e-4)
    torch.testing.assert_close(radius, torch.full((2,), 0.2, dtype=torch.float64), atol=2e-4, rtol=0)
    never = lambda model, x, y, eps, **kw: torch.zeros(len(x), dtype=torch.bool)  # noqa: E731
    monkeypatch.setattr(probes, "pgd_attack", never)
    assert torch.isinf(probes.adversarial_radius(model, x, y, norm="l2", steps=1, step_size=1.0, max_eps=1.0,
                                                 tol=1e-4)).all()
