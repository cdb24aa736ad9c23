"""The one training loop: minibatch steps on device-resident data, evaluations on a schedule.

Every experiment (grokking, the capacity sweep) calls `train`; what differs between them — the loss,
the evaluation schedule, the stopping rule, what to keep at an evaluation — comes in as plain values
and small callables.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from .evaluation import evaluate, loss_fn
from .models import weight_norms

METRICS = ("step", "train_loss", "train_acc", "test_loss", "test_acc", "weight_norm", "last_layer_norm")


def _round_sig(x: float, digits: int = 2) -> int:
    return int(round(x, digits - 1 - int(math.floor(math.log10(x)))))


def evaluation_steps(max_steps: int, per_decade: int = 20, max_interval: int = 1000) -> list[int]:
    """Steps at which to evaluate: dense early, sparse later (for log-step curves and checkpoints).

    Geometric with `per_decade` points per decade (rounded to 2 significant digits) while that spacing
    is below `max_interval`, every `max_interval` steps after; always includes 0 and `max_steps`.
    """
    if max_steps < 0 or per_decade < 1 or max_interval < 1:
        raise ValueError("need max_steps >= 0, per_decade >= 1, max_interval >= 1")
    ratio = 10 ** (1 / per_decade)
    geometric_until = max_interval / (ratio - 1)  # beyond this the geometric spacing exceeds max_interval
    steps = {0, max_steps, *range(0, max_steps + 1, max_interval)}
    i = 0
    while (value := 10 ** (i / per_decade)) <= min(geometric_until, max_steps):
        steps.add(_round_sig(value))
        i += 1
    return sorted(s for s in steps if s <= max_steps)


@dataclass
class Data:
    """Train and test tensors, already on the training device with the training dtype. Without a test
    set, evaluations record NaN for it (a run that only needs train accuracy to stop)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one record per evaluation, keys METRICS
    steps: int = 0
    stop_reason: str = ""
    seconds: float = 0.0


def measure(model: nn.Module, data: Data, loss: str, step: int) -> dict:
    """One evaluation record: losses and accuracies on the whole train and test sets, weight norms."""
    no_test = torch.full((2,), math.nan, dtype=torch.float64, device=data.train_x.device)
    values = torch.cat([
        evaluate(model, data.train_x, data.train_y, loss),
        no_test if data.test_x is None else evaluate(model, data.test_x, data.test_y, loss),
        weight_norms(model).double(),
    ]).tolist()  # the only host synchronisation: once per evaluation, never per step
    return dict(zip(METRICS, [step, *values]))


def train(
    model: nn.Module,
    data: Data,
    optimizer: torch.optim.Optimizer,
    *,
    loss: str,
    batch_size: int,
    max_steps: int,
    eval_steps: Iterable[int],
    generator: torch.Generator,
    should_stop: Callable[[list[dict]], str | None] = lambda history: None,
    on_evaluation: Callable[[int, nn.Module, dict], None] = lambda step, model, record: None,
) -> TrainResult:
    """Train `model` for up to `max_steps` minibatch steps of `batch_size` shuffled training points.

    Batches follow a fresh permutation each epoch (a shuffled DataLoader, without the DataLoader).
    At every step in `eval_steps` (and at the last step) the model is measured and `on_evaluation`
    called; training stops when `should_stop(history)` names a reason, the loss stops being finite
    ("diverged"), or `max_steps` is reached. Step s's record describes the network after s updates.
    """
    evaluate_at = set(eval_steps) | {max_steps}
    n = len(data.train_x)
    result = TrainResult()
    start = time.perf_counter()
    perm, position, step = None, n, 0
    while True:
        if step in evaluate_at:
            model.eval()
            record = measure(model, data, loss, step)
            model.train()
            result.history.append(record)
            on_evaluation(step, model, record)
            if not (math.isfinite(record["train_loss"]) and math.isfinite(record["weight_norm"])):
                result.stop_reason = "diverged"
            elif step >= max_steps:
                result.stop_reason = "max_steps"
            else:
                result.stop_reason = should_stop(result.history) or ""
            if result.stop_reason:
                break
        if position >= n:
            perm = torch.randperm(n, generator=generator, device=generator.device)
            position = 0
        batch = perm[position:position + batch_size]
        position += batch_size
        outputs = model(data.train_x[batch])
        objective = loss_fn(loss, outputs, data.train_y[batch])
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        step += 1
    result.steps = step
    result.seconds = time.perf_counter() - start
    return result


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


DTYPES = {"float32": torch.float32, "float64": torch.float64}
