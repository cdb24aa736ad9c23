"""Stored files: readable by the group (the user's umask), device-independent, and named when unreadable."""

import os
import stat

import pandas as pd
import pytest
import torch
import torch.serialization

from robustgen.io import CorruptFile, atomic_torch_save, load_file, read_json, write_csv, write_json


@pytest.fixture
def umask():
    """Set the process umask for a test, restoring the previous one afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_keep_the_users_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_json({"a": 1}, tmp_path / "run.json")
    write_csv(pd.DataFrame({"step": [0, 1]}), tmp_path / "metrics.csv")
    atomic_torch_save({"w": torch.ones(2)}, tmp_path / "sub" / "weights.pt")
    for name in ("run.json", "metrics.csv", "sub/weights.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def _save_as_if_on(device: str, obj, path):
    """torch.save `obj` with every storage tagged as living on `device` (a file written on another machine)."""
    tagger = lambda storage: device  # noqa: E731
    torch.serialization.register_package(-1, tagger, lambda storage, location: None)
    try:
        torch.save(obj, path)
    finally:
        torch.serialization._package_registry[:] = [
            entry for entry in torch.serialization._package_registry if entry[1] is not tagger]


def test_a_file_written_on_a_foreign_device_loads_on_cpu(tmp_path):
    path = tmp_path / "step_0000100.pt"
    state = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 100}
    _save_as_if_on("cuda:99", state, path)  # a GPU this machine does not have (nor does any GPU node)
    with pytest.raises(Exception):  # the simulation holds: torch's own default cannot read it here
        torch.load(path, weights_only=True)
    loaded = load_file(path)
    assert loaded["state_dict"]["w"].device == torch.device("cpu")
    assert torch.equal(loaded["state_dict"]["w"], state["state_dict"]["w"]) and loaded["step"] == 100
    assert load_file(path, "cpu")["state_dict"]["w"].device == torch.device("cpu")


def test_a_complete_file_that_cannot_be_read_here_is_not_called_corrupt(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints.pt"
    torch.save({"w": torch.ones(3)}, path)

    def refuse(*args, **kwargs):
        raise RuntimeError("Attempting to deserialize object on a CUDA device but torch.cuda.is_available() is False")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CorruptFile) as err:
        load_file(path)
    message = str(err.value)
    assert "checkpoints.pt" in message and "keep it" in message and "'device'" in message
    assert "delete" not in message


def test_a_truncated_file_is_named_and_called_truncated(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"w": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CorruptFile) as err:
        load_file(path)
    assert "state.pt" in str(err.value) and "truncated or corrupt" in str(err.value)
    assert "delete it" in str(err.value)


def test_a_truncated_json_is_named(tmp_path):
    path = tmp_path / "run.json"
    write_json({"steps": 300, "stop_reason": "max_steps"}, path)
    assert read_json(path)["steps"] == 300
    path.write_text(path.read_text()[:20])
    with pytest.raises(CorruptFile) as err:
        read_json(path)
    assert str(path) in str(err.value) and "truncated" in str(err.value) and "rerun" in str(err.value)
