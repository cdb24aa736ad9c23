"""One place per knob: config.yaml (values), the schema (types, ranges, descriptions) and the settings classes
(which step reads which key) hold together, and no step restates a default."""

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from robustgen import cli, settings
from robustgen.config import SCHEMA, load, merge, validate
from robustgen.settings import SettingsError, build, leaf_keys, slice_of
from robustgen.steps import HAND_ONLY, STEPS

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ("grokking", "capacity", "adversarial", "representations.blocks")
# what the workflow itself reads to fan the study out (common.smk builds these)
FAN_OUT = {"grokking": settings.GrokkingGrid, "capacity": settings.CapacityGrid,
           "adversarial": settings.AdversarialGrid, "representations": settings.RepresentationGrid,
           "representations.blocks": settings.BlockGrid}


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
    for name, fn in STEPS.items():
        for kind, knob in cli.knobs_of(fn).values():
            for study in STUDIES:
                pairs.append((knob.section.format(study=study), kind, name))
    for section, kind, name in pairs:
        for key in leaf_keys(kind, section):
            readers.setdefault(key, []).append(name)
    for key in cli.RUNNER_KEYS:
        readers.setdefault(key, []).append("cli.call")
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
    """The CLI's flags are files, identifying values and the config sources; none carries a default value
    except --threads (the rule's threads) and the repeatable config sources (empty lists)."""
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
        build(kind, settings.section_of(config, section), section)


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
    """What a rule passes (common.smk's knobs(view, section): slice_of) is exactly what its step reads."""
    config = load([ROOT / "config.yaml"])
    checkpoints = slice_of(settings.CheckpointProbes, config["robustness"])
    trajectory = slice_of(settings.TrajectoryProbes, config["robustness"])
    assert checkpoints["grid_deltas"] == config["robustness"]["grid_deltas"] and "adversarial" in checkpoints
    # the trajectory probes read neither the grid nor PGD: changing those cannot rerun them
    assert {"grid_deltas", "adversarial", "bootstrap"}.isdisjoint(trajectory)
    assert trajectory["trajectory"] == config["robustness"]["trajectory"]
    training = slice_of(settings.GrokkingTraining, config["grokking"])
    assert "state_every" not in training and "seeds" not in training and training["stop"] == config["grokking"]["stop"]
    assert slice_of(settings.TrainingState, config["grokking"]) == {"state_every": config["grokking"]["state_every"]}
    # the step's signature says what it reads: the rule's params are named like its arguments
    assert {name: (kind, knob.section, knob.tracked) for name, (kind, knob) in
            cli.knobs_of(STEPS["train_grokking"]).items()} == {
        "grokking": (settings.GrokkingTraining, "grokking", True),
        "state": (settings.TrainingState, "grokking", False), "device": (str, "device", True)}
    assert cli.sections(STEPS["prepare_data"], {"study": "capacity"}) == {"data": "data", "subset": "capacity"}


def test_a_rule_param_holding_more_than_its_step_reads_is_refused():
    config = load([ROOT / "config.yaml"])
    params = {"robustness": slice_of(settings.TrajectoryProbes, config["robustness"]), "device": "cpu"}
    assert cli.rule_knobs(STEPS["probe_trajectory"], params, "probe_trajectory") == params
    with pytest.raises(SettingsError, match="holds more than its step reads of config section .robustness. \\(TrajectoryProbes\\)"):
        cli.rule_knobs(STEPS["probe_trajectory"], {**params, "robustness": config["robustness"]}, "probe_trajectory")
    with pytest.raises(SettingsError, match="lacks the param 'device'"):
        cli.rule_knobs(STEPS["probe_trajectory"], {"robustness": params["robustness"]}, "probe_trajectory")


def test_every_rule_runs_the_step_of_its_name_and_every_step_has_a_rule():
    """A step is named once per language: `rule NAME:` runs `script: STEP` into robustgen.steps.NAME, whose
    arguments are the rule's files, params and wildcards by name (checked as each job runs: cli.run_job)."""
    rules = {}
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        for match in re.finditer(r"^rule (\w+):\n(.*?)(?=^rule |\Z)", text, re.M | re.S):
            rules[match.group(1)] = match.group(2)
    assert "shell:" not in "".join(rules.values()), "a rule with a hand-written command line"
    assert sorted(rules) == sorted(set(STEPS) - HAND_ONLY)
    for name, body in rules.items():
        assert re.search(r"^    script:\n        STEP$", body, re.M), name
        blocks = re.findall(r"^    (?:input|output|params):\n((?:        .*\n|\s*#.*\n)+)", body, re.M)
        named = set(re.findall(r"^        (\w+)=", "".join(blocks), re.M))
        assert named <= set(cli.arguments(STEPS[name])), (name, named - set(cli.arguments(STEPS[name])))


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
    assert proc.returncode == 2 and "give the study's config: --config config.yaml" in proc.stderr


def test_validate_rejects_what_the_schema_rejects():
    config = load([ROOT / "config.yaml"])
    config["grokking"]["train_subset"] = "random"
    with pytest.raises(ValueError, match="grokking.train_subset"):
        validate(config)


def test_every_stage_has_its_parts():
    """docs/changing.md's recipe for a stage, checked for every stage that has a rule file."""
    stages = sorted(p.stem for p in (ROOT / "workflow" / "rules").glob("*.smk") if p.stem not in ("common", "data", "targets"))
    assert {"grokking", "adversarial", "claims"} <= set(stages)
    snakefile, readme = (ROOT / "Snakefile").read_text(), (ROOT / "README.md").read_text()
    protocols, changing = (ROOT / "docs" / "protocols.md").read_text(), (ROOT / "docs" / "changing.md").read_text()
    config, smoke = load([ROOT / "config.yaml"]), yaml.safe_load((ROOT / "tests" / "smoke.yaml").read_text())
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    for stage in stages:
        rules = (ROOT / "workflow" / "rules" / f"{stage}.smk").read_text()
        assert f'include: "workflow/rules/{stage}.smk"' in snakefile, stage
        assert (ROOT / "workflow" / "robustgen" / "stages" / f"{stage}.py").exists(), stage
        assert (ROOT / "workflow" / "robustgen" / "figures" / f"{stage}.py").exists(), stage
        assert f"(docs/stages/{stage}.md)" in readme and (ROOT / "docs" / "stages" / f"{stage}.md").exists(), stage
        assert f"`stages/{stage}.py`" in protocols or f"`{stage}." in protocols, stage
        if stage in config and stage != "claims":  # the claims' rule has nothing to shrink
            assert stage in smoke, f"tests/smoke.yaml has no '{stage}:' section"
        for name in re.findall(r'figure\("(\w+)"', rules):
            assert (ROOT / "workflow" / "report" / f"{name}.rst").exists(), name
            assert f'"{name}"' in common or stage == "claims", f"{name} is in no FIGURES list of common.smk"
        for name in re.findall(r'results_table\(\s*"(\w+)"', rules):
            assert f'"{name}"' in common or name == "claims", f"{name} is in no TABLES list of common.smk"
        assert f"{stage}.smk" in changing, f"docs/changing.md's layout does not list {stage}.smk"


class _Named(dict):
    """What run_job reads of a Snakemake Namedlist: its names and values (`items`)."""


def _job(rule, **parts):
    from types import SimpleNamespace

    empty = {k: _Named() for k in ("input", "output", "params", "wildcards")}
    return SimpleNamespace(rule=rule, threads=1, log=[], **{**empty, **{k: _Named(v) for k, v in parts.items()}})


def test_a_rules_job_is_refused_when_its_names_and_its_step_disagree(capsys):
    """cli.run_job: a name the step does not take, or a param holding more than the step reads, exits 2 with the
    rule named; a matching job runs the step (here the checkpoint extraction, on a run without files: status 2,
    its error naming the missing run.json it was given)."""
    config = load([ROOT / "config.yaml"])
    thresholds = slice_of(settings.CheckpointThresholds, config["checkpoints"])
    files = dict(metrics="m.csv", run_json="r.json", snapshots="s")
    outputs = dict(output_json="c.json", output_weights="c.pt")
    assert cli.run_job(_job("extract_checkpoints", input={**files, "typo": "x"}, output=outputs,
                            params=dict(checkpoints=thresholds))) == 2
    assert "rule extract_checkpoints names ['typo']" in capsys.readouterr().err
    assert cli.run_job(_job("extract_checkpoints", input=files, output=outputs,
                            params=dict(checkpoints=config["checkpoints"] | {"extra": 1}))) == 2
    assert "holds more than its step reads of config section 'checkpoints'" in capsys.readouterr().err
    assert cli.run_job(_job("extract_checkpoints", input=files, output=outputs, params=dict())) == 2
    assert "lacks the param 'checkpoints'" in capsys.readouterr().err
    assert cli.run_job(_job("extract_checkpoints", input=files, output=outputs,
                            params=dict(checkpoints=thresholds))) == 2
    assert "No such file or directory: 'r.json'" in capsys.readouterr().err  # the rule's run_json reached the step


def test_the_deterministic_switch_reaches_torch_before_a_compute_step(tmp_path, capsys):
    """Config key `deterministic` (read by the job runner, not a param): a compute step runs with PyTorch's
    deterministic algorithms on (here one that then fails on its missing data: status 2, the file named)."""
    import torch

    config = load([ROOT / "config.yaml"])
    given = dict(data=str(tmp_path / "split.pt"), log=str(tmp_path / "log.csv"), run_json=str(tmp_path / "run.json"),
                 networks=str(tmp_path / "n.pt"), model="cnn", method="fgsm", eps="0.1", beta="0", seed="0")
    knobs = dict(adversarial=slice_of(settings.AdversarialTraining, config["adversarial"]), device="cpu")
    try:
        assert cli.call("train_adversarial", given, knobs, deterministic=False) == 2
        assert not torch.are_deterministic_algorithms_enabled()
        assert cli.call("train_adversarial", given, knobs, deterministic=True) == 2
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    assert "split.pt" in capsys.readouterr().err
