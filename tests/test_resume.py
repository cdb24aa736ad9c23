"""Preemption safety: a training job killed (SIGKILL) or stopped (SIGTERM) and rerun resumes from its saved
state and finishes bitwise identical to a run never interrupted; unreadable files are named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from robustgen.data import save_split
from robustgen.io import CorruptFile, load_file, read_json
from robustgen.train import Data, Resume, train

ROOT = Path(__file__).resolve().parents[1]


class Interrupt(Exception):
    pass


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 6, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    return model, Data(x, y, x[:32].clone(), y[:32].clone()), optimizer, torch.Generator().manual_seed(seed)


def _train(resume=None, interrupt_at=None):
    model, data, optimizer, generator = _setup()

    def on_evaluation(step, model, record):
        if step == interrupt_at:
            raise Interrupt

    result = train(model, data, optimizer, loss="mse", batch_size=10, max_steps=300,
                   eval_steps=range(0, 301, 25), generator=generator, on_evaluation=on_evaluation, resume=resume)
    return model, result


def test_resumed_training_is_bitwise_identical(tmp_path):
    reference_model, reference = _train()
    resume = Resume(tmp_path / "state.pt", every=40, identity={"run": 1})
    with pytest.raises(Interrupt):
        _train(resume, interrupt_at=175)  # dies between saves: the last state is that of step 160
    assert load_file(resume.path)["step"] == 160
    model, result = _train(resume)
    assert result.resumed_from == [160]
    assert result.history == reference.history
    for name, tensor in reference_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_a_state_of_other_settings_is_not_resumed(tmp_path):
    with pytest.raises(Interrupt):
        _train(Resume(tmp_path / "state.pt", every=40, identity={"lr": 1}), interrupt_at=100)
    _, result = _train(Resume(tmp_path / "state.pt", every=40, identity={"lr": 2}))
    assert result.resumed_from == []
    assert result.history == _train()[1].history


def _grokking_command(tmp_path: Path, split: Path, run_dir: Path) -> list[str]:
    """The training step run by hand from the study's config.yaml, with a few keys overridden."""
    overrides = dict(state_every=200, width=48, max_steps=2500, **{"stop.steps_after": 100000,
                     "evaluation.per_decade": 10, "evaluation.max_interval": 500})
    sets = [arg for key, value in overrides.items() for arg in ("--set", f"grokking.{key}={value}")]
    return [sys.executable, "-m", "robustgen", "train-grokking", "--config", str(ROOT / "config.yaml"), *sets,
            "--set", "device=cpu", "--data", str(split),
            "--metrics", str(run_dir / "metrics.csv"), "--run-json", str(run_dir / "run.json"),
            "--snapshots", str(run_dir / "snapshots"), "--alpha", "8", "--wd", "0.1",
            "--seed", "0", "--jacobian-penalty", "0.0001", "--long-run", "0", "--threads", "1"]


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT / "workflow"))


def _outputs(run_dir: Path) -> dict:
    files = {"metrics.csv": (run_dir / "metrics.csv").read_bytes()}
    for path in sorted((run_dir / "snapshots").iterdir()):
        files[path.name] = load_file(path)["state_dict"]
    return files


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name, value in a.items():
        if isinstance(value, bytes):
            assert value == b[name], name
        else:
            assert all(torch.equal(value[k], b[name][k]) for k in value), name


@pytest.fixture(scope="module")
def grokking_split(tmp_path_factory, embedded_split):
    path = tmp_path_factory.mktemp("data") / "mnist_embedded.pt"
    save_split(embedded_split, path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, grokking_split):
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run(_grokking_command(run_dir, grokking_split, run_dir), check=True, env=_env(),
                   capture_output=True)
    assert not (run_dir / "in_progress").exists()
    return _outputs(run_dir)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_job_resumes_and_matches_an_uninterrupted_run(tmp_path, grokking_split, uninterrupted, sig):
    command = _grokking_command(tmp_path, grokking_split, tmp_path)
    job = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = tmp_path / "in_progress" / "state.pt"
    deadline = time.monotonic() + 120
    while not state.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.poll() is None, "the run finished before it could be killed: make it longer"
    job.send_signal(sig)
    out, _ = job.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert job.returncode == 143 and "state saved" in out
    else:
        assert job.returncode == -signal.SIGKILL
    assert not (tmp_path / "metrics.csv").exists() and not (tmp_path / "snapshots").exists()
    saved_step = load_file(state)["step"]
    assert 0 < saved_step < 2500

    rerun = subprocess.run(command, env=_env(), capture_output=True, text=True, check=True)
    assert f"resuming from the state saved at step {saved_step}" in rerun.stdout
    assert read_json(tmp_path / "run.json")["resumed_from"] == [saved_step]
    assert not (tmp_path / "in_progress").exists()
    _assert_same(_outputs(tmp_path), uninterrupted)


def test_a_truncated_snapshot_is_named(tmp_path):
    path = tmp_path / "step_0000100.pt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CorruptFile, match="step_0000100.pt"):
        load_file(path)
