"""The one training loop: minibatch steps on device-resident data, evaluations on a schedule.

Every experiment (grokking, the capacity sweep) calls `train`; what differs between them — the loss,
the evaluation schedule, the stopping rule, what to keep at an evaluation — comes in as plain values
and small callables.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .backprop import relu_mlp_layers, set_gradients
from .evaluation import evaluate
from .io import atomic_torch_save, load_file
from .models import weight_norms

PROGRESS_SECONDS = 20.0  # at most one progress line per this many seconds of wall time in a job's log

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
    eval_seconds: list[float] = field(default_factory=list)  # wall seconds of training at each record
    steps: int = 0
    stop_reason: str = ""
    seconds: float = 0.0
    resumed_from: list[int] = field(default_factory=list)  # steps at which a saved state was picked up


class Preempted(Exception):
    """Training was asked to stop (SIGTERM) and saved its state; rerunning the job resumes it."""

    def __init__(self, step: int, path: Path):
        super().__init__(f"stopped by SIGTERM at step {step}; state saved to {path}, rerun to resume")
        self.step, self.path = step, path


@dataclass
class Resume:
    """Preemption safety: the full training state is saved to `path` every `every` steps (and on SIGTERM),
    and picked up by a rerun whose `identity` (the run's settings and data) is the same. Resuming is exact:
    model, optimiser, generator, epoch order and history all continue as if never interrupted."""

    path: Path
    every: int
    identity: dict

    def load(self, device) -> dict | None:
        if not Path(self.path).exists():
            return None
        state = load_file(self.path, device)
        if state.get("identity") != self.identity:
            print(f"ignoring {self.path}: saved by a run with other settings or data", flush=True)
            return None
        return state

    def save(self, state: dict) -> None:
        atomic_torch_save(dict(state, identity=self.identity), self.path)


def measure(model: nn.Module, data: Data, loss: str, step: int) -> dict:
    """One evaluation record: losses and accuracies on the whole train and test sets, weight norms."""
    no_test = torch.full((2,), math.nan, dtype=torch.float64, device=data.train_x.device)
    values = torch.cat([
        evaluate(model, data.train_x, data.train_y, loss),
        no_test if data.test_x is None else evaluate(model, data.test_x, data.test_y, loss),
        weight_norms(model).double(),
    ]).tolist()  # the only host synchronisation: once per evaluation, never per step
    return dict(zip(METRICS, [step, *values]))


@contextmanager
def sigterm_requests():
    """While active, SIGTERM (SLURM preemption, scancel, a job's time limit) sets a flag instead of killing."""
    requested = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def handler(signum, frame):
        requested["stop"] = True

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    resume: Resume | None = None,
    perturb: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    jacobian_penalty: float = 0.0,
    progress_every: float | None = PROGRESS_SECONDS,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    learning_rate: Callable[[int], float] | None = None,
    regulariser: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> TrainResult:
    """Train `model` for up to `max_steps` minibatch steps of `batch_size` shuffled training points.

    Each epoch draws a fresh permutation and gathers the training set in that order once, so a batch is
    a contiguous slice (a shuffled DataLoader, without the DataLoader or a gather per step). A step's
    gradients come from `backprop.set_gradients`: explicit backpropagation for Linear/ReLU stacks,
    autograd for any other model.
    At every step in `eval_steps` (and at the last step) the model is measured and `on_evaluation`
    called; training stops when `should_stop(history)` names a reason, the loss stops being finite
    ("diverged"), or `max_steps` is reached. Step s's record describes the network after s updates.
    With `resume`, the state is saved on its interval and on SIGTERM (then `Preempted` is raised), and
    a saved state of the same run is continued. `perturb(model, xb, yb)`, if given, replaces each batch's
    inputs before the step (adversarial training: `measures.attacks`); it must leave `.grad` alone.
    A `jacobian_penalty` > 0 adds that multiple of the batch's mean input-Jacobian norm to the loss
    (`backprop.set_gradients`; its random projections come from `generator`).
    `augment(xb, generator)`, if given, transforms each batch first (random crops and flips, drawn from
    `generator`); `learning_rate(step)` sets every parameter group's learning rate before step `step` + 1 (a
    schedule per iteration, a function of the step alone, so a resumed run continues it exactly);
    `regulariser(model, xb, yb)` adds a differentiable term computed on the batch before `perturb` (GradAlign).
    Every `progress_every` seconds of wall time (None: never) a progress line is printed (flushed, so `tail -f`
    on the job's log shows it): the step, the accuracies of the last evaluation, elapsed and remaining time.
    It reads the clock only; no result depends on it.
    """
    evaluate_at = set(eval_steps) | {max_steps}
    # explicit backpropagation for Linear/ReLU stacks, else autograd (always, with a regulariser)
    mlp_layers = relu_mlp_layers(model) if regulariser is None else None
    device = data.train_x.device
    n = len(data.train_x)
    result = TrainResult()
    step, perm, position, seconds_before = 0, None, n, 0.0
    saved = resume.load(device) if resume else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"].cpu())
        step, perm, position = saved["step"], saved["perm"], saved["position"]
        result.history, result.eval_seconds = saved["history"], saved["eval_seconds"]
        result.resumed_from = saved["resumed_from"] + [step]
        seconds_before = saved["seconds"]
        print(f"resuming from the state saved at step {step} ({resume.path})", flush=True)
    epoch_order = lambda perm: (data.train_x.index_select(0, perm), data.train_y.index_select(0, perm))  # noqa: E731
    epoch_x, epoch_y = (None, None) if perm is None else epoch_order(perm)
    start = time.perf_counter()
    elapsed = lambda: seconds_before + time.perf_counter() - start  # noqa: E731

    def save_state():
        resume.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                         generator=generator.get_state(), step=step, perm=perm, position=position,
                         history=result.history, eval_seconds=result.eval_seconds,
                         resumed_from=result.resumed_from, seconds=elapsed()))

    last_saved = step
    first_step, next_report = step, (start + progress_every if progress_every is not None else math.inf)

    def report_progress(now):
        rate = (now - start) / max(step - first_step, 1)  # seconds per step in this process
        last = result.history[-1] if result.history else {}
        accs = (f"train acc {last['train_acc']:.4f}, test acc {last['test_acc']:.4f} (evaluated at step "
                f"{last['step']})" if last else "not evaluated yet")
        print(f"progress: step {step}/{max_steps} ({100 * step / max(max_steps, 1):.1f} %), {accs}, elapsed "
              f"{_duration(elapsed())}, at most {_duration(rate * (max_steps - step))} left at this pace",
              flush=True)

    with sigterm_requests() as requested:
        while True:
            if step in evaluate_at and not (result.history and result.history[-1]["step"] == step):
                model.eval()  # evaluations and their hook see the network in eval mode (BatchNorm: running stats)
                record = measure(model, data, loss, step)
                result.history.append(record)
                result.eval_seconds.append(round(elapsed(), 3))
                on_evaluation(step, model, record)
                model.train()
                if not (math.isfinite(record["train_loss"]) and math.isfinite(record["weight_norm"])):
                    result.stop_reason = "diverged"
                elif step >= max_steps:
                    result.stop_reason = "max_steps"
                else:
                    result.stop_reason = should_stop(result.history) or ""
                if result.stop_reason:
                    break
            if resume and (requested["stop"] or step - last_saved >= resume.every):
                save_state()
                last_saved = step
                if requested["stop"]:
                    raise Preempted(step, resume.path)
            if position >= n:
                perm = torch.randperm(n, generator=generator, device=generator.device)
                epoch_x, epoch_y = epoch_order(perm)  # index_select: a row copy, 4x faster than x[perm]
                position = 0
            xb, yb = epoch_x[position:position + batch_size], epoch_y[position:position + batch_size]
            position += batch_size
            if augment is not None:
                xb = augment(xb, generator)
            clean = xb
            if perturb is not None:
                xb = perturb(model, xb, yb)
            extra = None if regulariser is None else (lambda: regulariser(model, clean, yb))  # noqa: E731, B023
            set_gradients(model, xb, yb, loss, mlp_layers, jacobian_penalty, generator, extra)
            if learning_rate is not None:
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step)
            optimizer.step()
            step += 1
            if (now := time.perf_counter()) >= next_report:
                report_progress(now)
                next_report = now + progress_every
    result.steps = step
    result.seconds = elapsed()
    return result


def _duration(seconds: float) -> str:
    """Seconds as 42 s, 3 min 05 s or 2 h 07 min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def adam_options(device: torch.device) -> dict:
    """Adam(W) keyword arguments for `device`: the fused kernel (one pass over all parameters) where
    PyTorch has one."""
    return {"fused": True} if torch.device(device).type in ("cpu", "cuda") else {}


def make_optimizer(name: str, parameters, *, lr: float, device, momentum: float = 0.9, nesterov: bool = False,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The study's optimisers by name: `adam` (Adam; weight decay added to the gradient) or `sgd` (SGD with
    `momentum`, Nesterov or not, and L2 `weight_decay`: the CIFAR recipe of Wong et al. and Rice et al.)."""
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, **adam_options(device))
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; allowed: adam, sgd")


SCHEDULES = ("constant", "cyclic", "piecewise", "cosine")


def lr_schedule(schedule: str, lr: float, total_steps: int, *, peak: float = 0.5,
                milestones: Iterable[float] = ()) -> Callable[[int], float]:
    """The learning rate before step s + 1 of `total_steps`, by name: `constant`; `cyclic` (Wong et al. 2020's
    one cycle: linear from 0 to `lr` at `peak`·T, then to 0 at T, evaluated at the step's middle, s + ½, so no
    step has rate 0); `piecewise` (`lr`, ×0.1 at every milestone fraction of T passed: Rice et al. 2020); `cosine`
    (lr·½(1 + cos(π s/T)))."""
    if schedule == "constant":
        return lambda step: lr
    if schedule == "cyclic":
        top = peak * total_steps
        return lambda step: lr * min((step + 0.5) / top, max(0.0, (total_steps - step - 0.5) / (total_steps - top)))
    if schedule == "piecewise":
        cuts = sorted(milestones)
        return lambda step: lr * 0.1 ** sum(step >= m * total_steps for m in cuts)
    if schedule == "cosine":
        return lambda step: lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; allowed: {', '.join(SCHEDULES)}")


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else CPU; otherwise the named device, which must exist here (a ConfigError
    naming config key 'device' if not)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from .config import check_device

    check_device(str(name))
    return torch.device(name)


DTYPES = {"float32": torch.float32, "float64": torch.float64}
