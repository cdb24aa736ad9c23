import torch
from torch import nn

from robustgen.models import (GrayscaleInputConv2d, build, cnn, mlp, model_spec, num_parameters, relu_layers,
                              scale_init_, weight_norms)


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


def test_grayscale_input_convolution_equals_conv2d_in_outputs_and_gradients():
    """The unfold route of the CNN's first layer (taken when the input needs a gradient) gives nn.Conv2d's
    outputs, input gradient and weight gradients to float64 rounding; without an input gradient it is nn.Conv2d."""
    torch.manual_seed(0)
    fast = GrayscaleInputConv2d(1, 16, 4, stride=2, padding=1).double()
    plain = nn.Conv2d(1, 16, 4, stride=2, padding=1).double()
    plain.load_state_dict(fast.state_dict())
    x = torch.rand(7, 1, 28, 28, dtype=torch.float64)
    upstream = torch.randn(7, 16, 14, 14, dtype=torch.float64)
    results = []
    for layer in (fast, plain):
        xg = x.clone().requires_grad_(True)
        out = layer(xg)
        grads = torch.autograd.grad((out * upstream).sum(), [xg, layer.weight, layer.bias])
        results.append((out, *grads))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast(x), plain(x), rtol=0, atol=0)  # no gradient needed: the same kernel
    assert isinstance(cnn([1, 28, 28], 10)[1], GrayscaleInputConv2d)
    assert type(cnn([3, 32, 32], 10)[1]) is nn.Conv2d
