import math

import pytest
import torch
from torch import nn

from robustgen.stages.grokking import stop_after_generalising
from robustgen.models import weight_norms
from robustgen.train import Data, evaluation_steps, train


def test_evaluation_schedule_dense_early_sparse_later():
    steps = evaluation_steps(100_000, per_decade=20, max_interval=1000)
    assert steps[0] == 0 and steps[-1] == 100_000
    assert steps == sorted(set(steps))
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert max(gaps) <= 1000
    assert steps[:9] == list(range(9))               # every step at the very start
    assert all(s % 1000 == 0 for s in steps if s > 10_000)  # a round grid once the cap applies
    # about per_decade points in each early decade
    for low, high in ((10, 100), (100, 1000)):
        assert 15 <= sum(low <= s < high for s in steps) <= 21
    assert len(steps) < 200


@pytest.mark.parametrize("max_steps", [1, 7, 150, 2500])
def test_evaluation_schedule_ends_at_max_steps(max_steps):
    steps = evaluation_steps(max_steps, per_decade=10, max_interval=100)
    assert steps[0] == 0 and steps[-1] == max_steps and all(s <= max_steps for s in steps)


class Recorder(nn.Module):
    """Identity that remembers which training points (id in column 0) it saw while training."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append(x[:, 0].long().tolist())
        return x


def _toy(n=10, d=3, classes=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    x[:, 0] = torch.arange(n, dtype=torch.float32)
    y = torch.arange(n) % classes
    return Data(x, y, x.clone(), y.clone())


def test_each_epoch_visits_every_training_point_once():
    data = _toy(n=10)
    recorder = Recorder()
    model = nn.Sequential(recorder, nn.Linear(3, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    train(model, data, opt, loss="cross_entropy", batch_size=4, max_steps=9, eval_steps=[],
          generator=torch.Generator().manual_seed(0))
    batches = recorder.seen
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    for epoch in range(3):
        ids = sum(batches[3 * epoch:3 * epoch + 3], [])
        assert sorted(ids) == list(range(10))
    assert batches[0:3] != batches[3:6]  # reshuffled every epoch


def _separable(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    return Data(x, y, x, y)


def _run(seed, max_steps=200, **kwargs):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    result = train(model, _separable(), opt, loss="mse", batch_size=16, max_steps=max_steps,
                   eval_steps=evaluation_steps(max_steps, 5, 50), generator=torch.Generator().manual_seed(seed),
                   **kwargs)
    return model, result


def test_training_learns_and_records_schedule():
    model, result = _run(0)
    assert result.stop_reason == "max_steps" and result.steps == 200
    assert [r["step"] for r in result.history] == evaluation_steps(200, 5, 50)
    assert result.history[-1]["train_acc"] == 1.0
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    # the last record describes the network as returned
    assert result.history[-1]["weight_norm"] == weight_norms(model)[0].double().item()


def test_training_is_reproducible_for_a_seed():
    _, a = _run(3)
    _, b = _run(3)
    _, c = _run(4)
    assert a.history == b.history
    assert a.history != c.history


def test_stopping_rule_and_evaluation_hook():
    seen = []
    _, result = _run(0, should_stop=lambda h: "enough" if h[-1]["step"] >= 20 else None,
                     on_evaluation=lambda step, model, record: seen.append(step))
    assert result.stop_reason == "enough"
    assert result.steps == seen[-1] == min(s for s in evaluation_steps(200, 5, 50) if s >= 20)


def test_divergence_stops_the_run():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    result = train(model, _separable(), opt, loss="mse", batch_size=16, max_steps=500,
                   eval_steps=range(0, 501, 10), generator=torch.Generator().manual_seed(0))
    assert result.stop_reason == "diverged"
    assert result.steps < 500
    assert not math.isfinite(result.history[-1]["train_loss"])


def test_grokking_stop_rule():
    stop = stop_after_generalising(test_acc=0.85, steps_after=100)
    history = [dict(step=0, test_acc=0.1), dict(step=50, test_acc=0.85)]
    assert stop(history) is None                       # 0.85 is not > 0.85
    history.append(dict(step=60, test_acc=0.86))
    assert stop(history) is None                       # generalised at 60, only 0 steps after
    history.append(dict(step=150, test_acc=0.80))
    assert stop(history) is None                       # 90 steps after
    history.append(dict(step=160, test_acc=0.80))
    assert stop(history) == "generalised"              # 100 steps after the first crossing


def test_progress_lines_are_time_based_and_change_no_result(capsys):
    _, quiet = _run(3, progress_every=None)
    assert "progress:" not in capsys.readouterr().out
    model, default = _run(3)  # the default interval (20 s): a run of a fraction of a second prints none
    assert "progress:" not in capsys.readouterr().out
    _, chatty = _run(3, progress_every=0.0)  # a line after every step
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("progress:")]
    assert len(lines) == chatty.steps == 200
    assert lines[0].startswith("progress: step 1/200 (0.5 %), train acc ")
    assert "test acc" in lines[-1] and "elapsed" in lines[-1] and "left at this pace" in lines[-1]
    assert lines[-1].startswith("progress: step 200/200 (100.0 %)")
    assert quiet.history == default.history == chatty.history


def test_progress_duration_format():
    from robustgen.train import _duration

    assert [_duration(s) for s in (4.4, 65, 3600 + 7 * 60 + 3)] == ["4 s", "1 min 05 s", "1 h 07 min"]
