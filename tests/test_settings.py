"""One place per knob: config.yaml (values), the schema (types, ranges, descriptions) and the settings classes
(which step reads which key) hold together, and no step restates a default."""

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robustgen import cli, settings
from robustgen.config import SCHEMA, load, merge, validate
from robustgen.settings import SettingsError, build, leaf_keys

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ("grokking", "capacity", "adversarial")
# what the workflow itself reads to fan the study out (common.smk builds these)
FAN_OUT = {"grokking": settings.GrokkingGrid, "capacity": settings.CapacityGrid,
           "adversarial": settings.AdversarialGrid, "representations": settings.RepresentationGrid}


def _schema_leaves(node=None, prefix=""):
    node = yaml.safe_load(SCHEMA.read_text()) if node is None else node
    if node.get("type") == "object" and "properties" in node:
        out = {}
        for key, sub in node["properties"].items():
            out |= _schema_leaves(sub, f"{prefix}.{key}" if prefix else key)
        return out
    return {prefix: node}


def _read_keys():
    """{dotted key: [readers]} over every step's settings and the workflow's fan-out."""
    readers = {}
    pairs = [(section, kind, name) for section, kind in FAN_OUT.items() for name in ["workflow"]]
    for name, step in cli.STEPS.items():
        for section, kind in [*step.reads.items(), *step.untracked.items()]:
            for study in STUDIES:
                pairs.append((section.format(study=study), kind, name))
    for section, kind, name in pairs:
        for key in leaf_keys(kind, section):
            readers.setdefault(key, []).append(name)
    return readers


def test_every_schema_key_is_read_and_every_read_key_is_in_the_schema():
    leaves, read = _schema_leaves(), _read_keys()
    assert sorted(set(leaves) - set(read)) == [], "schema keys that no step reads"
    assert sorted(set(read) - set(leaves)) == [], "keys a settings class reads that the schema lacks"


def test_every_schema_key_has_a_description():
    assert [key for key, node in _schema_leaves().items() if not node.get("description")] == []


def test_settings_classes_have_no_defaults_of_their_own():
    for kind in vars(settings).values():
        if settings.is_view(kind):
            for f in dataclasses.fields(kind):
                assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, \
                    f"{kind.__name__}.{f.name}"


def test_no_step_flag_restates_a_knob():
    """The CLI's flags are files, identifying values and the knob sources; none carries a default value
    except --threads (the rule's threads) and the repeatable knob sources (empty lists)."""
    top = cli.parser()
    subparsers = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in subparsers.choices.items():
        for action in parser._actions:
            if action.dest in ("help", "threads") or action.default in (None, []):
                continue
            pytest.fail(f"{name} {action.option_strings} has default {action.default!r}")


@pytest.mark.parametrize("overlay", [None, "tests/smoke.yaml", *sorted(p.relative_to(ROOT).as_posix()
                                                                       for p in (ROOT / "configs").glob("*.yaml"))])
def test_shipped_configs_validate(overlay):
    files = [ROOT / "config.yaml"] + ([ROOT / overlay] if overlay else [])
    config = load(files)
    for section, kind in FAN_OUT.items():
        build(kind, config[section], section)


def test_build_takes_exactly_the_keys_and_names_a_missing_one():
    config = load([ROOT / "config.yaml"])
    probes = build(settings.CheckpointProbes, config["robustness"], "robustness")
    assert probes.adversarial.max_eps.linf == config["robustness"]["adversarial"]["max_eps"]["linf"]
    assert probes.bisection.tol == config["robustness"]["bisection"]["tol"]
    broken = json.loads(json.dumps(config["robustness"]))
    del broken["adversarial"]["steps"]
    with pytest.raises(SettingsError, match=r"'robustness\.adversarial\.steps'"):
        build(settings.CheckpointProbes, broken, "robustness")


def test_a_steps_knobs_are_the_slice_it_reads():
    config = load([ROOT / "config.yaml"])
    checkpoints = json.loads(cli.knobs("probe-checkpoints", config))
    trajectory = json.loads(cli.knobs("probe-trajectory", config))
    assert checkpoints["robustness"]["grid_deltas"] == config["robustness"]["grid_deltas"]
    assert "adversarial" in checkpoints["robustness"] and checkpoints["device"] == config["device"]
    # the trajectory probes read neither the grid nor PGD: changing those cannot rerun them
    assert {"grid_deltas", "adversarial", "bootstrap"}.isdisjoint(trajectory["robustness"])
    assert trajectory["robustness"]["trajectory"] == config["robustness"]["trajectory"]
    training = json.loads(cli.knobs("train-grokking", config))["grokking"]
    assert "state_every" not in training and "seeds" not in training and training["stop"] == config["grokking"]["stop"]
    assert json.loads(cli.knobs("train-grokking", config, untracked=True)) == {
        "grokking": {"state_every": config["grokking"]["state_every"]}}
    data = json.loads(cli.knobs("prepare-data", config, study="capacity", dataset="cifar10"))
    assert data == {"data": config["data"], "capacity": {"train_size": config["capacity"]["train_size"],
                                                         "train_subset": config["capacity"]["train_subset"]}}


def test_hand_run_overrides_are_typed_and_checked():
    config = load([ROOT / "config.yaml"], ["robustness.adversarial.steps=5", "device=cpu"])
    assert config["robustness"]["adversarial"]["steps"] == 5 and config["device"] == "cpu"
    with pytest.raises(ValueError, match="robustness.adversarial.steps"):
        load([ROOT / "config.yaml"], ["robustness.adversarial.steps=-1"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load([ROOT / "config.yaml"], ["robustness.adversarial.steps"])
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}


def test_cli_refuses_a_bad_hand_run_naming_the_key(tmp_path):
    command = [sys.executable, "-m", "robustgen", "extract-checkpoints", "--config", str(ROOT / "config.yaml"),
               "--set", "checkpoints.generalised_test_acc=2", *[arg for name in ("metrics", "run-json", "snapshots",
                                                                               "output-json", "output-weights")
                                                               for arg in (f"--{name}", str(tmp_path / name))]]
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "config key 'checkpoints.generalised_test_acc'" in proc.stderr and "<= 1" in proc.stderr
    proc = subprocess.run(command[:4] + command[8:], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "needs its knobs" in proc.stderr


def test_validate_rejects_what_the_schema_rejects():
    config = load([ROOT / "config.yaml"])
    config["grokking"]["train_subset"] = "random"
    with pytest.raises(ValueError, match="grokking.train_subset"):
        validate(config)
