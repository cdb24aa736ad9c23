import math

import pandas as pd

from robustgen.stages.checkpoints import extract

COLUMNS = ["step", "train_loss", "train_acc", "test_loss", "test_acc", "weight_norm", "last_layer_norm"]


def _log(rows):
    return pd.DataFrame([dict(zip(COLUMNS, r)) for r in rows])


LOG = _log([
    (0, 1.0, 0.10, 1.0, 0.10, 90.0, 14.0),
    (100, 0.5, 0.985, 0.9, 0.15, 89.0, 13.9),
    (200, 0.1, 0.99, 0.8, 0.18, 88.0, 13.8),   # memorised: first train_acc >= 0.99
    (300, 0.0, 1.00, 0.5, 0.85, 80.0, 12.0),   # 0.85 is not > 0.85
    (400, 0.0, 1.00, 0.3, 0.851, 70.0, 10.0),  # generalised: first test_acc > 0.85
    (500, 0.0, 1.00, 0.2, 0.84, 65.0, 9.0),
])


def test_walker_thresholds():
    found = extract(LOG, memorised_train_acc=0.99, generalised_test_acc=0.85)
    cps = found["checkpoints"]
    assert cps["memorised"]["step"] == 200 and cps["memorised"]["test_acc"] == 0.18
    assert cps["generalised"]["step"] == 400 and cps["generalised"]["test_acc"] == 0.851
    assert cps["final"]["step"] == 500
    assert found["status"] == "generalised"
    assert found["thresholds"] == dict(memorised_train_acc=0.99, generalised_test_acc=0.85)


def test_threshold_never_met_is_recorded_not_reached():
    found = extract(LOG, memorised_train_acc=0.99, generalised_test_acc=0.9)
    assert found["checkpoints"]["generalised"] == dict(reached=False, step=None, previous_step=None, train_acc=None,
                                                        test_acc=None, train_loss=None, test_loss=None,
                                                        weight_norm=None)
    assert found["status"] == "memorised_only"
    found = extract(LOG.iloc[:2], memorised_train_acc=0.99, generalised_test_acc=0.85)
    assert not found["checkpoints"]["memorised"]["reached"]
    assert found["status"] == "neither"
    assert found["checkpoints"]["final"]["step"] == 100


def test_rows_out_of_order_and_divergence():
    found = extract(LOG.iloc[::-1], memorised_train_acc=0.9, generalised_test_acc=0.5)
    assert found["checkpoints"]["memorised"]["step"] == 100
    assert found["checkpoints"]["generalised"]["step"] == 300
    diverged = pd.concat([LOG.iloc[:3], _log([(300, math.nan, 0.1, math.nan, 0.1, math.nan, math.nan)])])
    found = extract(diverged, memorised_train_acc=0.99, generalised_test_acc=0.85, stop_reason="diverged")
    assert found["status"] == "diverged"
    assert found["checkpoints"]["memorised"]["step"] == 200


def test_each_checkpoint_records_the_evaluation_before_it():
    cps = extract(LOG, memorised_train_acc=0.99, generalised_test_acc=0.85)["checkpoints"]
    assert (cps["memorised"]["previous_step"], cps["generalised"]["previous_step"]) == (100, 300)
    first = extract(LOG, memorised_train_acc=0.05, generalised_test_acc=0.05)["checkpoints"]
    assert first["memorised"]["step"] == 0 and first["memorised"]["previous_step"] is None


def test_generalising_before_memorising_is_no_delay():
    """α = 1: test accuracy passes 0.85 while train accuracy is 0.90, memorisation comes later."""
    log = _log([(0, 1.0, 0.1, 1.0, 0.1, 9.0, 1.0), (28, 0.1, 0.90, 0.2, 0.86, 9.0, 1.0),
                (89, 0.0, 0.995, 0.2, 0.92, 9.0, 1.0)])
    found = extract(log, memorised_train_acc=0.99, generalised_test_acc=0.85)
    assert found["status"] == "no_delay"
    assert extract(log.iloc[:2], memorised_train_acc=0.99, generalised_test_acc=0.85)["status"] == "no_delay"
    same = _log([(0, 1.0, 0.1, 1.0, 0.1, 9.0, 1.0), (28, 0.0, 0.995, 0.2, 0.86, 9.0, 1.0)])
    assert extract(same, memorised_train_acc=0.99, generalised_test_acc=0.85)["status"] == "no_delay"


# --- a run whose stored files disagree (issue 25) ---------------------------------------------------------------

import pytest  # noqa: E402
import torch  # noqa: E402

from robustgen.io import CorruptFile, atomic_torch_save, write_csv, write_json  # noqa: E402
from robustgen.settings import CheckpointThresholds  # noqa: E402
from robustgen.stages.checkpoints import extract_run  # noqa: E402

THRESHOLDS = CheckpointThresholds(memorised_train_acc=0.99, generalised_test_acc=0.85)


def _stored_run(tmp_path, log=LOG):
    """A run directory as train-grokking leaves it: metrics.csv, run.json, a snapshot per evaluation."""
    snapshots = tmp_path / "snapshots"
    for step in log["step"]:
        atomic_torch_save(dict(step=int(step), state_dict={"w": torch.full((2,), float(step))}),
                          snapshots / f"step_{int(step):07d}.pt")
    write_csv(log, tmp_path / "metrics.csv")
    write_json(dict(steps=int(log["step"].iloc[-1]), stop_reason="max_steps", model_spec={"layers": []},
                    eval_seconds=[0.1] * len(log)), tmp_path / "run.json")
    return tmp_path / "metrics.csv", tmp_path / "run.json", snapshots


def test_extract_run_reads_a_consistent_run(tmp_path):
    found, weights = extract_run(*_stored_run(tmp_path), THRESHOLDS)
    assert found["checkpoints"]["final"]["step"] == 500
    assert torch.equal(weights["checkpoints"]["generalised"]["state_dict"]["w"], torch.full((2,), 400.0))


def test_a_metric_log_shorter_than_the_run_fails_naming_both_files(tmp_path):
    metrics, run_json, snapshots = _stored_run(tmp_path)
    metrics.write_text("\n".join(metrics.read_text().splitlines()[:4]) + "\n")  # header + 3 rows
    with pytest.raises(CorruptFile) as err:
        extract_run(metrics, run_json, snapshots, THRESHOLDS)
    message = str(err.value)
    assert str(metrics) in message and str(run_json) in message
    assert "3 evaluations up to step 200" in message and "up to step 500" in message
    assert "Delete the run's directory" in message


def test_a_metric_log_cut_mid_row_fails(tmp_path):
    metrics, run_json, snapshots = _stored_run(tmp_path)
    metrics.write_text(metrics.read_text()[:-25])
    with pytest.raises(CorruptFile, match="metrics.csv"):
        extract_run(metrics, run_json, snapshots, THRESHOLDS)


def test_a_truncated_run_json_fails_naming_it(tmp_path):
    metrics, run_json, snapshots = _stored_run(tmp_path)
    run_json.write_text(run_json.read_text()[:30])
    with pytest.raises(CorruptFile, match="run.json"):
        extract_run(metrics, run_json, snapshots, THRESHOLDS)


def test_a_missing_checkpoint_snapshot_fails_naming_it(tmp_path):
    metrics, run_json, snapshots = _stored_run(tmp_path)
    (snapshots / "step_0000400.pt").unlink()
    with pytest.raises(CorruptFile, match="step_0000400.pt"):
        extract_run(metrics, run_json, snapshots, THRESHOLDS)
