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
from .measures.sensitivity import projected_jacobian_norms


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
def mlp_gradients(layers: list[nn.Linear], x: torch.Tensor, labels: torch.Tensor, loss: str,
                  jacobian_penalty: float = 0.0,
                  generator: torch.Generator | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight gradient, bias gradient) of the mean `loss` on (x, labels) for every layer, by backpropagation,
    plus that of `jacobian_penalty` × the batch mean of the projected Jacobian norm (`penalty_gradients`).

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
    grads = grads[::-1]
    if jacobian_penalty:
        for (weight_grad, _), extra in zip(grads, penalty_gradients(layers, activations, outputs, jacobian_penalty,
                                                                    generator)):
            weight_grad += extra
    return grads


def penalty_gradients(layers: list[nn.Linear], activations: list[torch.Tensor], outputs: torch.Tensor,
                      penalty: float, generator: torch.Generator) -> list[torch.Tensor]:
    """Weight gradients of penalty × mean_b ‖u_b‖·√C, u_b = v_bᵀ J(x_b) (what autograd differentiates in
    `set_gradients`, with the same v_b drawn from `generator`), written out.

    Between ReLU masks the Jacobian is a product of weight matrices, so u_b = v_bᵀ W_L M_(L−1) W_(L−1) ⋯ M_1 W_1
    (M_i: the mask of layer i's output); the masks do not move under a small change of the weights, so the
    biases get no gradient and each weight gets (row vector before it)ᵀ × (gradient after it).
    """
    v = torch.randn(outputs.shape, generator=generator, device=outputs.device, dtype=outputs.dtype)
    rows = [v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)]  # rows[k]: the row vector at layer L−1−k's output
    for i in reversed(range(1, len(layers))):
        rows.append(torch.ops.aten.threshold_backward(rows[-1] @ layers[i].weight, activations[i], 0))
    rows = rows[::-1]  # rows[i]: at layer i's output
    u = rows[0] @ layers[0].weight
    classes = outputs.shape[1]
    squared = classes * u.square().sum(dim=1, keepdim=True)
    norm = squared.clamp_min(1e-12).sqrt()
    grad = (penalty / len(u)) * classes * u / norm * (squared > 1e-12)  # d penalty / d u_b (0 where clamped)
    out = []
    for i in range(len(layers)):
        out.append(rows[i].T @ grad)
        if i + 1 < len(layers):
            grad = torch.ops.aten.threshold_backward(grad @ layers[i].weight.T, activations[i + 1], 0)
    return out


def set_gradients(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, loss: str,
                  layers: list[nn.Linear] | None = None, jacobian_penalty: float = 0.0,
                  generator: torch.Generator | None = None, extra=None) -> None:
    """Set every parameter's `.grad` to the gradient of the mean `loss` of `model` on (x, labels), plus
    `jacobian_penalty` × the batch mean of ‖∂f(x)/∂x‖_F (GrokAlign; estimated with one random projection
    drawn from `generator`, `measures.sensitivity.projected_jacobian_norms`).

    `layers` is `relu_mlp_layers(model)` (looked up once by the caller); without them, autograd (with a
    penalty, through a second backward pass of the input gradient). `extra()`, if given (autograd only),
    returns a term added to the loss (a regulariser on the clean batch).
    """
    if layers is not None and extra is not None:
        raise ValueError("an extra loss term needs autograd: pass layers=None")
    if layers is None:
        for p in model.parameters():
            p.grad = None
        if not jacobian_penalty:
            objective = loss_fn(loss, model(x), labels)
            (objective if extra is None else objective + extra()).backward()
            return
        x = x.detach().requires_grad_(True)
        outputs = model(x)
        penalty = projected_jacobian_norms(outputs, x, generator).mean()
        (loss_fn(loss, outputs, labels) + jacobian_penalty * penalty + (0 if extra is None else extra())).backward()
        return
    for layer, (weight_grad, bias_grad) in zip(layers, mlp_gradients(layers, x, labels, loss, jacobian_penalty,
                                                                     generator)):
        layer.weight.grad, layer.bias.grad = weight_grad, bias_grad
