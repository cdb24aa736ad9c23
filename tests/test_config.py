import copy
from pathlib import Path

import pytest
import yaml

from robustgen.config import ConfigError, SCHEMA, tag, validate
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
