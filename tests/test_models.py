import torch
from torch import nn

from robustgen.models import build, mlp, model_spec, num_parameters, relu_layers, scale_init_, weight_norms


def test_omnigrok_architecture_depth3_width200():
    net = mlp(784, 200, 3, 10)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(784, 200), (200, 200), (200, 10)]
    assert [type(m).__name__ for m in net] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert num_parameters(net) == 784 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10
    assert relu_layers(net) == [0, 2]


def test_init_scale_multiplies_every_weight_and_bias():
    torch.manual_seed(3)
    reference = mlp(20, 7, 3, 4)
    torch.manual_seed(3)
    scaled = scale_init_(mlp(20, 7, 3, 4), 8.0)
    pairs = list(zip(reference.parameters(), scaled.parameters()))
    assert len(pairs) == 6  # three weights, three biases
    for ref, got in pairs:
        torch.testing.assert_close(got, 8.0 * ref, rtol=0, atol=0)


def test_weight_norms_total_and_last_layer():
    torch.manual_seed(0)
    net = mlp(5, 4, 3, 3)
    flat = torch.cat([p.flatten() for p in net.parameters()])
    last = torch.cat([net[-1].weight.flatten(), net[-1].bias])
    total, last_norm = weight_norms(net)
    torch.testing.assert_close(total, flat.norm())
    torch.testing.assert_close(last_norm, last.norm())
    # scaling every parameter by α scales both norms by α
    scale_init_(net, 2.5)
    torch.testing.assert_close(weight_norms(net), 2.5 * torch.stack([flat.norm(), last.norm()]))


def test_build_from_spec_round_trips_state():
    spec = model_spec(12, 6, 2, 3)
    a, b = build(spec), build(spec)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 12)
    torch.testing.assert_close(a(x), b(x))
