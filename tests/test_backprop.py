import pytest
import torch
from torch import nn

from robustgen import backprop
from robustgen.backprop import mlp_gradients, relu_mlp_layers, set_gradients
from robustgen.evaluation import loss_fn, loss_gradient
from robustgen.models import mlp
from robustgen.train import Data, train


def _net(depth, seed=0, input_dim=6, width=5, classes=3):
    torch.manual_seed(seed)
    return mlp(input_dim, width, depth, classes).double()


def _batch(n=11, input_dim=6, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, input_dim, generator=g, dtype=torch.float64), torch.randint(0, classes, (n,), generator=g)


def _autograd(model, x, y, loss):
    model.zero_grad(set_to_none=True)
    loss_fn(loss, model(x), y).backward()
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_mlps_of_any_depth_are_recognised(depth):
    model = mlp(6, 5, depth, 3)
    assert relu_mlp_layers(model) == [m for m in model if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)),          # another nonlinearity
    nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False)),
    nn.Sequential(nn.Linear(3, 4), nn.ReLU()),                           # ends in a ReLU
    nn.Sequential(nn.Flatten(), nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)),
    nn.Linear(3, 2),                                                     # not a Sequential
])
def test_other_modules_are_left_to_autograd(model):
    assert relu_mlp_layers(model) is None


def test_loss_gradients_known_answers():
    out = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([0, 1])
    # MSE = mean over 4 elements of (out - one_hot)^2 -> gradient 2/4 (out - one_hot)
    assert loss_gradient("mse", out, labels).tolist() == [[0.0, 0.0], [0.0, -0.5]]
    # cross-entropy gradient = (softmax - one_hot) / batch; equal outputs give softmax 1/2
    assert loss_gradient("cross_entropy", torch.zeros(2, 2), labels).tolist() == [[-0.25, 0.25], [0.25, -0.25]]
    with pytest.raises(ValueError, match="allowed: mse, cross_entropy"):
        loss_gradient("hinge", out, labels)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_explicit_gradients_equal_autograd(depth, loss):
    model = _net(depth)
    x, y = _batch()
    expected = _autograd(model, x, y, loss)
    got = [g for pair in mlp_gradients(relu_mlp_layers(model), x, y, loss) for g in pair]
    assert [g.shape for g in got] == [p.shape for p in model.parameters()]
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-14)


def test_explicit_gradients_match_finite_differences():
    model = _net(3)
    x, y = _batch()
    grads = [g for pair in mlp_gradients(relu_mlp_layers(model), x, y, "mse") for g in pair]
    h = 1e-6
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            for index in [(0,) * p.dim(), tuple(s - 1 for s in p.shape)]:
                original = p[index].item()
                p[index] = original + h
                up = loss_fn("mse", model(x), y).item()
                p[index] = original - h
                down = loss_fn("mse", model(x), y).item()
                p[index] = original
                assert g[index].item() == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


def test_a_unit_exactly_at_zero_gets_no_gradient_as_in_autograd():
    model = _net(2)
    with torch.no_grad():
        model[0].weight[0] = 0.0
        model[0].bias[0] = 0.0  # pre-activation exactly 0 for every input: ReLU'(0) = 0
    x, y = _batch()
    weight_grad, bias_grad = mlp_gradients(relu_mlp_layers(model), x, y, "mse")[0]
    assert weight_grad[0].abs().max() == 0 and bias_grad[0] == 0
    torch.testing.assert_close(weight_grad, _autograd(model, x, y, "mse")[0], rtol=1e-12, atol=1e-14)


def test_set_gradients_fills_grad_on_both_paths():
    model = _net(3)
    x, y = _batch()
    set_gradients(model, x, y, "mse", relu_mlp_layers(model))
    explicit = [p.grad.clone() for p in model.parameters()]
    set_gradients(model, x, y, "mse")  # no layers: autograd, replacing (not adding to) the gradients
    for p, g in zip(model.parameters(), explicit):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-14)


def _train(model, steps=30):
    x, y = _batch(n=40)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    train(model, Data(x, y, x, y), opt, loss="mse", batch_size=8, max_steps=steps, eval_steps=[],
          generator=torch.Generator().manual_seed(0))
    return [p.detach() for p in model.parameters()]


def test_trainer_takes_the_explicit_path_for_mlps_and_lands_where_autograd_does(monkeypatch):
    calls = []

    def counted(*args):
        calls.append(1)
        return mlp_gradients(*args)

    monkeypatch.setattr(backprop, "mlp_gradients", counted)
    explicit = _train(_net(3))
    assert len(calls) == 30
    calls.clear()
    via_autograd = _train(nn.Sequential(nn.Identity(), *_net(3)))  # not a plain stack: autograd
    assert calls == []
    for a, b in zip(explicit, via_autograd):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_jacobian_penalty_written_out_matches_autograd(depth):
    """GrokAlign's penalty: the explicit gradients equal autograd's double backward with the same projections."""
    model, (x, y) = _net(depth), _batch()
    layers = relu_mlp_layers(model)
    set_gradients(model, x, y, "mse", layers, jacobian_penalty=0.3, generator=torch.Generator().manual_seed(7))
    explicit = [p.grad.clone() for p in model.parameters()]
    set_gradients(model, x, y, "mse", None, jacobian_penalty=0.3, generator=torch.Generator().manual_seed(7))
    autograd = [p.grad.clone() for p in model.parameters()]
    plain = _autograd(model, x, y, "mse")
    for e, a, p in zip(explicit, autograd, plain):
        assert torch.allclose(e, a, atol=1e-12)
    assert any(not torch.allclose(e, p) for e, p in zip(explicit, plain))  # the penalty did change them


def test_jacobian_penalty_of_a_linear_model_known_answer():
    """f(x) = Wx + b has J = W at every x: the penalty's weight gradient is λ·C·(v vᵀ W)/‖√C vᵀW‖ averaged over
    the batch's unit projections v, the bias gets none."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3)).double()
    x, y = torch.randn(5, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    set_gradients(model, x, y, "mse", relu_mlp_layers(model), jacobian_penalty=2.0,
                  generator=torch.Generator().manual_seed(3))
    weight_grad, bias_grad = model[0].weight.grad.clone(), model[0].bias.grad.clone()
    v = torch.randn(5, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    w = model[0].weight.detach()
    u = v @ w
    expected = 2.0 / 5 * 3 * (v.T @ (u / (3 * u.square().sum(1, keepdim=True)).sqrt()))
    plain = _autograd(model, x, y, "mse")
    assert torch.allclose(weight_grad - plain[0], expected, atol=1e-12)
    assert torch.allclose(bias_grad, plain[1], atol=1e-12)
