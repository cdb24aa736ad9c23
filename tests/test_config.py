import dataclasses
import copy
from pathlib import Path

import pytest
import yaml

from robustgen.config import ConfigError, SCHEMA, load, tag, validate
from robustgen.data import DATASETS

ROOT = Path(__file__).resolve().parents[1]


def _default():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _merge(base, update):
    out = copy.deepcopy(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def test_default_and_smoke_configs_are_valid():
    validate(_default())
    validate(_merge(_default(), yaml.safe_load((ROOT / "tests" / "smoke.yaml").read_text())))


def test_default_grid_has_grokking_and_control():
    g = _default()["grokking"]
    assert 8 in g["init_scales"] and 0.01 in g["weight_decays"]
    assert min(g["init_scales"]) <= 1 and len(g["seeds"]) >= 3
    assert g["datasets"] == ["mnist_embedded"]


@pytest.mark.parametrize("update, key, allowed", [
    ({"grokking": {"weight_decays": [0.01, -0.1]}}, "grokking.weight_decays[1]", ">= 0"),
    ({"checkpoints": {"generalised_test_acc": 1.5}}, "checkpoints.generalised_test_acc", "<= 1"),
    ({"checkpoints": {"memorised_train_acc": -0.2}}, "checkpoints.memorised_train_acc", ">= 0"),
    ({"grokking": {"datasets": ["mnist-full"]}}, "grokking.datasets[0]", "one of " + ", ".join(DATASETS)),
    ({"grokking": {"seeds": []}}, "grokking.seeds", "at least 1"),
    ({"grokking": {"dtype": "float16"}}, "grokking.dtype", "one of float32, float64"),
    ({"grokking": {"init_scales": [0]}}, "grokking.init_scales[0]", "> 0"),
    ({"device": "gpu"}, "device", "auto"),
    ({"robustness": {"noise": "salt"}}, "robustness.noise", "one of uniform, gaussian, sign"),
    ({"robustness": {"adversarial": {"norms": ["l1"]}}}, "robustness.adversarial.norms[0]", "one of l2, linf"),
])
def test_bad_values_name_the_key_and_the_allowed_values(update, key, allowed):
    with pytest.raises(ConfigError) as err:
        validate(_merge(_default(), update))
    message = str(err.value)
    assert f"config key '{key}'" in message
    assert allowed in message


def test_unknown_and_missing_keys_are_named():
    config = _default()
    config["grokking"]["weight_decay"] = 0.1  # a typo of weight_decays
    del config["checkpoints"]["memorised_train_acc"]
    with pytest.raises(ConfigError) as err:
        validate(config)
    message = str(err.value)
    assert "'weight_decay' was unexpected" in message and "weight_decays" in message
    assert "config key 'checkpoints.memorised_train_acc' is missing" in message


def test_schema_datasets_match_the_loaders():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert tuple(schema["properties"]["grokking"]["properties"]["datasets"]["items"]["enum"]) == DATASETS


def test_tag_formats_numbers_for_paths():
    assert [tag(8), tag(8.0), tag(0.01), tag(1e-5), tag(0.3)] == ["8", "8", "0.01", "1e-05", "0.3"]


def test_snakemake_refuses_a_bad_config_before_any_job(workflow_factory):
    wf = workflow_factory()
    proc = wf.run("-n", "--config", "checkpoints={generalised_test_acc: 2}", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "config key 'checkpoints.generalised_test_acc'" in output and "<= 1" in output
    assert not (wf.workdir / "results").exists()


def test_nested_command_line_values_are_typed():
    # Snakemake hands nested --config values over as strings
    config = _merge(_default(), {"checkpoints": {"generalised_test_acc": "0.9"},
                                 "grokking": {"seeds": ["0", "5"], "max_steps": "500"},
                                 "data": {"download": "false"}})
    validate(config)
    assert config["checkpoints"]["generalised_test_acc"] == 0.9
    assert config["grokking"]["seeds"] == [0, 5] and config["grokking"]["max_steps"] == 500
    assert config["data"]["download"] is False
    with pytest.raises(ConfigError, match="grokking.max_steps"):
        validate(_merge(_default(), {"grokking": {"max_steps": "many"}}))


def test_default_evaluations_are_at_least_as_dense_as_omnigroks():
    """Checkpoints sit up to one evaluation interval past their crossing: no coarser than Omnigrok's 667."""
    from robustgen.train import evaluation_steps

    g = _default()["grokking"]
    steps = evaluation_steps(g["max_steps"], g["evaluation"]["per_decade"], g["evaluation"]["max_interval"])
    assert max(b - a for a, b in zip(steps, steps[1:])) <= 667


# --- settings that contradict each other, or the data (issue 25) ------------------------------------------------

ALL_GROUPS = [{"init_scale": a, "weight_decay": w} for a in (1, 8) for w in (0.01, 0.1)]


@pytest.mark.parametrize("update, key, fix", [
    ({"grokking": {"excluded_groups": ALL_GROUPS}}, "grokking.excluded_groups",
     "Remove at least one group from grokking.excluded_groups"),
    ({"adversarial": {"warmup_epochs": 10}}, "adversarial.warmup_epochs", "allowed: 0..9"),
    ({"grokking": {"train_size": 6000}}, "grokking.train_size", "allowed: 1..4999"),
    ({"capacity": {"dataset": "mnist_embedded", "train_size": 5000}}, "capacity.train_size", "allowed: 1..4999"),
    ({"adversarial": {"dataset": "cifar10", "train_size": 60000}}, "adversarial.train_size", "allowed: 1..50000"),
    ({"robustness": {"images": {"first": 3900, "count": 500}}}, "robustness.images", "first + count <= 4000"),
    ({"similarity": {"images": {"first": 0, "count": 4500}}}, "similarity.images", "first + count <= 4000"),
    ({"sensitivity": {"test_points": 5000}}, "sensitivity.test_points", "<= 4000"),
    ({"sensitivity": {"train_points": 1500}}, "sensitivity.train_points", "<= 1000"),
    ({"sensitivity": {"trajectory": {"test_points": 4001}}}, "sensitivity.trajectory.test_points", "<= 4000"),
    ({"delayed": {"complexity": {"points": 1001}}}, "delayed.complexity.points", "<= 1000"),
    ({"capacity": {"dataset": "mnist_embedded", "sensitivity": {"test_points": 4000}}},
     "capacity.sensitivity.test_points", "<= 3000"),
    ({"adversarial": {"log": {"images": 2000}, "evaluation": {"images": 600}}},
     "adversarial.log.images + adversarial.evaluation.images", "sum <= 2500"),
    ({"adversarial": {"probes": {"images": 101}}}, "adversarial.probes.images", "allowed: 1..100"),
    ({"representations": {"images": 2301}}, "representations.images", "<= 2300"),
])
def test_conflicting_settings_fail_naming_the_key_and_the_fix(update, key, fix):
    with pytest.raises(ConfigError) as err:
        validate(_merge(_default(), update))
    message = str(err.value)
    assert f"config key '{key}'" in message
    assert fix in message


def test_sizes_of_a_torchvision_set_are_its_own():
    # 10 000 test images: a range beyond the embedded MNIST's 4 000 fits mnist's official test set
    validate(_merge(_default(), {"grokking": {"datasets": ["mnist"]}, "adversarial": {"dataset": "mnist"},
                                 "robustness": {"images": {"first": 3900, "count": 500}}}))
    with pytest.raises(ConfigError, match=r"config key 'robustness.images'.*mnist"):
        validate(_merge(_default(), {"grokking": {"datasets": ["mnist"]},
                                     "robustness": {"images": {"first": 9900, "count": 500}}}))


@pytest.mark.parametrize("update, key", [
    ({"grokking": {"long_runs": [{"init_scale": 4, "weight_decay": 0.01}]}}, "config key 'grokking.long_runs[0]' = "
     "{init_scale: 4, weight_decay: 0.01} names no group"),
    ({"grokking": {"long_runs": [{"init_scale": 1, "weight_decay": 0.1}]}},   # the excluded control group
     "config key 'grokking.long_runs[0]' = {init_scale: 1, weight_decay: 0.1} is also in grokking.excluded_groups"),
    ({"grokking": {"excluded_groups": [{"init_scale": 1, "weight_decay": 0.2}]}},
     "config key 'grokking.excluded_groups[0]' = {init_scale: 1, weight_decay: 0.2} names no group"),
    ({"adversarial": {"dataset": "fashion_mnist"}}, "adversarial.dataset"),      # no grokking placement
    ({"grokking": {"train_subset": "balanced"}}, "grokking.train_subset"),       # overlaps representation images
    ({"adversarial": {"train_subset": "balanced"}}, "adversarial.train_subset"),
    ({"adversarial": {"train_size": 500}}, "grokking.train_size"),               # beyond adversarial.train_size
])
def test_choices_with_a_hidden_consequence_are_warned_before_the_plan(update, key, capsys):
    validate(_default())
    assert "WARNING" not in capsys.readouterr().err  # the default study warns of nothing
    validate(_merge(_default(), update))
    err = capsys.readouterr().err
    assert "WARNING (config)" in err and key in err


def test_an_unavailable_device_is_named():
    import torch

    from robustgen.train import resolve_device

    if torch.cuda.is_available():
        name = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU
    else:
        name = "cuda"
    with pytest.raises(ConfigError) as err:
        resolve_device(name)
    assert f"config key 'device' = {name}" in str(err.value) and "device: auto or cpu" in str(err.value)
    assert resolve_device("cpu") == torch.device("cpu")


def test_snakemake_refuses_conflicting_settings_before_any_job(workflow_factory):
    wf = workflow_factory()
    proc = wf.run("-n", "--config", "grokking={train_size: 6000}", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "config key 'grokking.train_size' = 6000" in output and "allowed: 1..4999" in output
    assert not (wf.workdir / "results").exists()
    # a warning comes before the plan, which is still made
    proc = wf.run("-n", "--config", "grokking={excluded_groups: [{init_scale: 1, weight_decay: 0.2}]}")
    assert "WARNING (config): config key 'grokking.excluded_groups[0]'" in proc.stderr
    assert "Job stats" in proc.stdout + proc.stderr


def test_probed_epsilons_must_be_trained_epsilons():
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    config["adversarial"]["probes"]["epsilons"] = [0.33]
    with pytest.raises(ConfigError, match="adversarial.probes.epsilons"):
        validate(config)


def test_the_schema_and_config_yaml_are_generated_from_the_config_models():
    """One place per knob: configmodel.py's fields carry type, range, description and default; the checked-in
    schema and config.yaml are exactly what they generate (`python -m robustgen.configmodel --write`)."""
    from robustgen import configmodel

    assert configmodel.SCHEMA_FILE.read_text() == configmodel.schema_text(), "run python -m robustgen.configmodel --write"
    assert configmodel.CONFIG_FILE.read_text() == configmodel.config_text(), "run python -m robustgen.configmodel --write"
    assert configmodel.SECTIONS_FILE.read_text() == configmodel.sections_text(), "run python -m robustgen.configmodel --write"
    text = yaml.safe_load(configmodel.CONFIG_FILE.read_text())
    assert text == configmodel.defaults(configmodel.StudyConfig)
    configmodel.StudyConfig.model_validate(text)  # the defaults satisfy the models' own types and ranges


def test_a_view_of_a_whole_section_follows_its_model():
    """A step that reads a whole section takes the section's generated dataclass: a field added to the model
    reaches the step's params (and its reruns) with no second declaration."""
    from robustgen import configmodel, sections, settings

    assert settings.PgdTraining is sections.AdversarialPgd
    for name, model in configmodel._section_models(configmodel.StudyConfig, {}).items():
        generated = getattr(sections, name)
        assert [f.name for f in dataclasses.fields(generated)] == list(model.model_fields)
    # a knob added to a section model (here: restarts) is in the generated view, so in the slice a rule passes
    extended = type("AdversarialPgd", (configmodel.AdversarialPgd,), {
        "__annotations__": {"restarts": int},
        "restarts": configmodel.Field(default=1, ge=1, description="random restarts")})
    namespace = {}
    exec("import dataclasses\n" + "\n".join(configmodel.dataclass_lines("AdversarialPgd", extended)), namespace)
    view = namespace["AdversarialPgd"]
    section = {"steps": 3, "step": 0.5, "restarts": 4}
    assert settings.slice_of(view, section) == section
    assert settings.build(view, section, "adversarial.pgd").restarts == 4


def test_a_models_range_reaches_the_schema_and_its_message():
    """A field's bound is the schema's bound, and validation names it."""
    from robustgen import configmodel

    field = configmodel.Checkpoints.model_fields["generalised_test_acc"]
    node = configmodel.schema()["properties"]["checkpoints"]["properties"]["generalised_test_acc"]
    assert node["maximum"] == 1 and node["description"] == field.description
    config = load([ROOT / "config.yaml"], [])
    config["checkpoints"]["generalised_test_acc"] = 2
    with pytest.raises(ConfigError, match=r"checkpoints.generalised_test_acc.*<= 1"):
        validate(config)
