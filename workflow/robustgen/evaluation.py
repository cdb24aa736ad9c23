"""One evaluation of a classifier on a whole set, batched, used by training and every probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LOSSES = ("mse", "cross_entropy")


def loss_fn(name: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The training objective: MSE against one-hot targets (Omnigrok, `nn.MSELoss()`), or cross-entropy."""
    if name == "mse":
        return F.mse_loss(outputs, F.one_hot(labels, outputs.shape[1]).to(outputs.dtype))
    if name == "cross_entropy":
        return F.cross_entropy(outputs, labels)
    raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")


def loss_gradient(name: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d loss_fn(name, outputs, labels) / d outputs, in closed form (for explicit backpropagation)."""
    targets = torch.zeros_like(outputs).scatter_(1, labels[:, None], 1.0)  # one-hot, without F.one_hot's checks
    if name == "mse":
        return outputs.sub(targets).mul_(2.0 / outputs.numel())
    if name == "cross_entropy":
        return torch.softmax(outputs, dim=1).sub_(targets).div_(len(outputs))
    raise ValueError(f"unknown loss {name!r}; allowed: {', '.join(LOSSES)}")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str, chunk: int = 8192) -> torch.Tensor:
    """[mean loss, accuracy] of `model` on (x, y) as a float64 2-element tensor on x's device (no host sync).

    Accuracy is the argmax of the raw outputs. The loss is the training objective averaged over the set.
    """
    total_loss = torch.zeros((), dtype=x.dtype, device=x.device)
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for start in range(0, len(x), chunk):
        xb, yb = x[start:start + chunk], y[start:start + chunk]
        out = model(xb)
        total_loss += loss_fn(loss, out, yb) * len(xb)
        correct += (out.argmax(dim=1) == yb).sum()
    n = len(x)
    return torch.stack([total_loss.double() / n, correct.double() / n])


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Predicted labels of `model` on a batch of any size, in chunks that bound memory."""
    if len(x) == 0:
        return torch.empty(0, dtype=torch.int64, device=x.device)
    return torch.cat([model(x[s:s + chunk]).argmax(dim=1) for s in range(0, len(x), chunk)])
