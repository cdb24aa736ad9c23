"""The gradients of one training step: explicit backpropagation through Linear/ReLU stacks, autograd otherwise.

Every network of the study is Linear → ReLU → … → Linear. Its backward pass is two matrix products and a
ReLU mask per layer; written out, it skips autograd's graph and bookkeeping, which cost about an eighth of a
grokking step on a CPU (README, Performance). Any other module gets autograd. Both give the same gradients
(tests/test_backprop.py).
"""

from __future__ import annotations

import torch
from torch import nn

from .evaluation import loss_fn, loss_gradient


def relu_mlp_layers(model: nn.Module) -> list[nn.Linear] | None:
    """The Linear layers of `model` if it is a Sequential Linear (→ ReLU → Linear)* with biases, else None."""
    if not isinstance(model, nn.Sequential) or len(model) % 2 == 0:
        return None
    layers = list(model)
    linears, relus = layers[0::2], layers[1::2]
    if not all(type(m) is nn.Linear and m.bias is not None for m in linears):
        return None
    if not all(type(m) is nn.ReLU for m in relus):
        return None
    return linears


@torch.no_grad()
def mlp_gradients(layers: list[nn.Linear], x: torch.Tensor, labels: torch.Tensor,
                  loss: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight gradient, bias gradient) of the mean `loss` on (x, labels) for every layer, by backpropagation.

    The ReLU mask is autograd's own (threshold_backward on the ReLU's output), so ties at 0 get gradient 0 as
    in autograd.
    """
    activations = [x]  # the input of each layer
    for layer in layers[:-1]:
        activations.append(torch.addmm(layer.bias, activations[-1], layer.weight.T).relu_())
    outputs = torch.addmm(layers[-1].bias, activations[-1], layers[-1].weight.T)
    grad = loss_gradient(loss, outputs, labels)  # d loss / d (this layer's output)
    grads = []
    for i in reversed(range(len(layers))):
        grads.append((grad.T @ activations[i], grad.sum(0)))
        if i > 0:
            grad = torch.ops.aten.threshold_backward(grad @ layers[i].weight, activations[i], 0)
    return grads[::-1]


def set_gradients(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, loss: str,
                  layers: list[nn.Linear] | None = None) -> None:
    """Set every parameter's `.grad` to the gradient of the mean `loss` of `model` on (x, labels).

    `layers` is `relu_mlp_layers(model)` (looked up once by the caller); without them, autograd.
    """
    if layers is None:
        for p in model.parameters():
            p.grad = None
        loss_fn(loss, model(x), labels).backward()
        return
    for layer, (weight_grad, bias_grad) in zip(layers, mlp_gradients(layers, x, labels, loss)):
        layer.weight.grad, layer.bias.grad = weight_grad, bias_grad
