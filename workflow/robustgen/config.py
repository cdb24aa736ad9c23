"""Study configuration: validation against the JSON schema with errors that name the key and its allowed values."""

from __future__ import annotations

import sys
from pathlib import Path

import jsonschema
import yaml

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """config.yaml (or --config) holds a value the study cannot use."""


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _allowed(schema: dict) -> str:
    """A person-readable statement of what `schema` accepts."""
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    kind = schema.get("type")
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if "exclusiveMaximum" in schema:
        bounds.append(f"< {schema['exclusiveMaximum']}")
    if kind == "array":
        item = _allowed(schema.get("items", {}))
        size = f"at least {schema['minItems']} " if schema.get("minItems") else ""
        unique = "distinct " if schema.get("uniqueItems") else ""
        return f"a list of {size}{unique}values, each {item}".replace("  ", " ")
    if kind == "object":
        keys = ", ".join(schema.get("properties", {}))
        return f"a mapping with keys {keys}"
    text = {"number": "a number", "integer": "an integer", "boolean": "true or false",
            "string": "a string"}.get(kind, "a value")
    if "pattern" in schema:
        text += f" matching {schema['pattern']}"
    if bounds:
        text += " " + " and ".join(bounds)
    if schema.get("description"):
        text += f" ({schema['description']})"
    return text


def _message(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        key = _key(path + [missing])
        allowed = _allowed(error.schema.get("properties", {}).get(missing, {}))
        return f"config key '{key}' is missing; it must be {allowed}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(error.schema.get("properties", {}))
        return f"config key '{_key(path)}' has unknown keys ({error.message}); allowed keys: {allowed}"
    return f"config key '{_key(path)}' = {error.instance!r} is invalid: {error.message}; allowed: {_allowed(error.schema)}"


def _coerce(value, schema: dict):
    """Numbers and booleans given as strings (Snakemake's nested --config values) → their type."""
    kind = schema.get("type")
    if isinstance(value, dict) and kind == "object":
        props = schema.get("properties", {})
        for key in value:
            if key in props:
                value[key] = _coerce(value[key], props[key])
        return value
    if isinstance(value, list) and kind == "array":
        return [_coerce(v, schema.get("items", {})) for v in value]
    if isinstance(value, str):
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                number = float(value)
                return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        except ValueError:
            return value
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
    return value


def validate(config: dict, schema_path: Path = SCHEMA) -> dict:
    """Check `config` against the study schema; raise ConfigError listing every offending key.

    Numbers and booleans that arrive as strings (nested `--config` values) are converted in place first.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    _coerce(config, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    messages = [_message(e) for e in errors] or _cross_checks(config)
    if messages:
        lines = "\n".join(f"  - {m}" for m in messages)
        raise ConfigError(f"invalid study configuration:\n{lines}\n"
                          f"Fix these in config.yaml (or the --config/--configfile you passed).")
    for line in warnings(config):
        print(f"WARNING (config): {line}", file=sys.stderr, flush=True)
    return config


def _cross_checks(config: dict) -> list[str]:
    """What the schema cannot say: values that must name other values of the config."""
    out = []
    delayed = config.get("delayed", {})
    if delayed and delayed["onset"]["complexity_radius"] not in delayed["complexity"]["radii"]:
        out.append(f"config key 'delayed.onset.complexity_radius' = {delayed['onset']['complexity_radius']} is not "
                   f"one of delayed.complexity.radii {delayed['complexity']['radii']}; allowed: one of those")
    a = config.get("adversarial", {})
    stray = [e for e in a.get("probes", {}).get("epsilons", []) if e not in a.get("epsilons", [])]
    if stray:
        out.append(f"config key 'adversarial.probes.epsilons' names {stray}, which are not in adversarial.epsilons "
                   f"{a['epsilons']}: no run is trained there; allowed: values of adversarial.epsilons, or [] for all")
    return out + _grid_checks(config) + _size_checks(config)


def _group(g: dict) -> tuple[float, float]:
    return float(g["init_scale"]), float(g["weight_decay"])


def _show(groups) -> str:
    return ", ".join(f"{{init_scale: {tag(a)}, weight_decay: {tag(w)}}}" for a, w in groups) or "none"


def _grid(g: dict):
    grid = [(float(a), float(w)) for a in g["init_scales"] for w in g["weight_decays"]]
    excluded = [_group(x) for x in g["excluded_groups"]]
    return grid, excluded, [x for x in grid if x not in excluded]


def _grid_checks(config: dict) -> list[str]:
    """Some group of the grokking grid must be left to run: the other stages probe those runs."""
    g = config.get("grokking")
    if not g:
        return []
    grid, _, running = _grid(g)
    if grid and not running:
        return [f"the study has no grokking run: config key 'grokking.excluded_groups' excludes every group of "
                f"grokking.init_scales {g['init_scales']} x grokking.weight_decays {g['weight_decays']} "
                f"({_show(grid)}), and the robustness, sensitivity, similarity and delayed stages probe those runs. "
                f"Remove at least one group from grokking.excluded_groups"]
    return []


def _grid_warnings(g: dict) -> list[str]:
    """grokking.long_runs and grokking.excluded_groups entries that name no group of the init_scales ×
    weight_decays grid: a typo (the group runs anyway, or no long run is made), or a grid narrowed on the
    command line (then the entry rightly does nothing) — said before the plan, not refused."""
    grid, excluded, running = _grid(g)
    if not running:
        return []
    out = []
    for i, group in enumerate(excluded):
        if group not in grid:
            out.append(f"config key 'grokking.excluded_groups[{i}]' = {_show([group])} names no group of the grid "
                       f"grokking.init_scales {g['init_scales']} x grokking.weight_decays {g['weight_decays']}, so it "
                       f"excludes nothing (every group of the grid runs); allowed: one of {_show(grid)}. If it is a "
                       f"typo, fix the values; otherwise remove the entry")
    for i, group in enumerate(_group(x) for x in g["long_runs"]):
        if group not in grid:
            out.append(f"config key 'grokking.long_runs[{i}]' = {_show([group])} names no group of the grid "
                       f"grokking.init_scales {g['init_scales']} x grokking.weight_decays {g['weight_decays']}: no "
                       f"long run and no GrokAlign run (grokking.jacobian_penalties) is made for it; allowed: one of "
                       f"{_show(running)}. If it is a typo, fix the values; otherwise remove the entry")
        elif group not in running:
            out.append(f"config key 'grokking.long_runs[{i}]' = {_show([group])} is also in grokking.excluded_groups, "
                       f"so it never runs (no long run, no GrokAlign run); allowed: one of {_show(running)}. Remove it "
                       f"from one of the two lists")
    return out


def _size_checks(config: dict) -> list[str]:
    """Training sizes and probed image ranges against the dataset sizes known before any data is read, and
    settings of one stage that contradict another's."""
    from .data import EMBEDDED, known_sizes

    out = []

    def train_size(section: str, dataset: str):
        size = config[section]["train_size"]
        largest, _ = known_sizes(dataset, size)
        if size > largest:
            rest = " (the rest is the test set)" if dataset == EMBEDDED else ""
            out.append(f"config key '{section}.train_size' = {size} exceeds the {largest + (dataset == EMBEDDED)} "
                       f"images of {dataset}{rest}; allowed: 1..{largest}. Lower {section}.train_size")
            return False
        return True

    def within(key: str, value, end: int, limit: int, what: str, fix: str):
        if end > limit:
            out.append(f"config key '{key}' = {value} needs the first {end} {what}, but there are {limit}; {fix}")

    g = config.get("grokking")
    if g:
        for dataset in g["datasets"]:
            if not train_size("grokking", dataset):
                continue
            n_train = g["train_size"]
            _, n_test = known_sizes(dataset, n_train)
            test = f"test images of {dataset} (grokking.datasets)"
            train = f"training images of {dataset} (grokking.train_size)"
            r = config.get("robustness")
            if r:
                images = r["images"]
                within("robustness.images", images, images["first"] + images["count"], n_test, test,
                       f"lower robustness.images.first or .count (first + count <= {n_test})")
            s = config.get("similarity")
            if s:
                images = s["images"]
                within("similarity.images", images, images["first"] + images["count"], n_test, test,
                       f"lower similarity.images.first or .count (first + count <= {n_test})")
            sens = config.get("sensitivity")
            if sens:
                for key, sizes in (("sensitivity", sens), ("sensitivity.trajectory", sens.get("trajectory", {}))):
                    if "test_points" in sizes:
                        within(f"{key}.test_points", sizes["test_points"], sizes["test_points"], n_test, test,
                               f"lower {key}.test_points to <= {n_test}")
                    if "train_points" in sizes:
                        within(f"{key}.train_points", sizes["train_points"], sizes["train_points"], n_train, train,
                               f"lower {key}.train_points to <= {n_train} (or raise grokking.train_size)")
            d = config.get("delayed")
            if d:
                points = d["complexity"]["points"]
                within("delayed.complexity.points", points, points, min(n_train, n_test),
                       f"training and test images of {dataset} each", f"lower delayed.complexity.points to <= "
                       f"{min(n_train, n_test)}")
    c = config.get("capacity")
    if c and train_size("capacity", c["dataset"]):
        _, n_test = known_sizes(c["dataset"], c["train_size"])
        sens = c["sensitivity"]
        within("capacity.sensitivity.test_points", sens["test_points"], sens["test_points"], n_test,
               f"test images of {c['dataset']} (capacity.dataset)", f"lower it to <= {n_test}")
        within("capacity.sensitivity.train_points", sens["train_points"], sens["train_points"], c["train_size"],
               "training images (capacity.train_size)", f"lower it to <= {c['train_size']}")
    a = config.get("adversarial")
    if a:
        if a["warmup_epochs"] >= a["epochs"]:
            out.append(f"config key 'adversarial.warmup_epochs' = {a['warmup_epochs']} is not below adversarial.epochs "
                       f"= {a['epochs']}: ε would never reach the run's ε (its label) before training ends and no "
                       f"network would be eligible as 'best'; allowed: 0..{a['epochs'] - 1}. Lower "
                       f"adversarial.warmup_epochs or raise adversarial.epochs")
        if train_size("adversarial", a["dataset"]):
            _, n_test = known_sizes(a["dataset"], a["train_size"])
            test = f"test images of {a['dataset']} (adversarial.dataset at adversarial.train_size {a['train_size']})"
            log_n, eval_n = a["log"]["images"], a["evaluation"]["images"]
            within("adversarial.log.images + adversarial.evaluation.images", f"{log_n} + {eval_n}", log_n + eval_n,
                   n_test, test, f"lower them (sum <= {n_test})")
            if a["probes"]["images"] > eval_n:
                out.append(f"config key 'adversarial.probes.images' = {a['probes']['images']} exceeds "
                           f"adversarial.evaluation.images = {eval_n} (the probes take the first of the evaluation "
                           f"images); allowed: 1..{eval_n}. Lower adversarial.probes.images")
            rep = config.get("representations")
            if rep and log_n + eval_n <= n_test:
                within("representations.images", rep["images"], log_n + eval_n + rep["images"], n_test,
                       test[:-1] + f"; the compared images come after the {log_n + eval_n} log and evaluation images)",
                       f"lower representations.images to <= {n_test - log_n - eval_n} (or adversarial.log.images, "
                       f"adversarial.evaluation.images)")
    return out


def _placement_overlap(g: dict, a: dict, used: int, count: int) -> list[str]:
    """The grokking checkpoints are compared with their family on the representation images (the adversarial
    split's test images after its log and evaluation images), which must not be grokking training images. On
    the embedded MNIST both studies split one permutation (data.split_seed): grokking trains on its first
    grokking.train_size, the adversarial test set is its last 5000 − adversarial.train_size — disjoint only
    with train_subset 'first' for both and grokking.train_size <= adversarial.train_size + the images before."""
    from .data import EMBEDDED

    if a["dataset"] != EMBEDDED or EMBEDDED not in g["datasets"]:
        return []  # a torchvision set's test set is never trained on; no placement without the dataset
    if g["train_subset"] == "balanced":
        return [f"config key 'grokking.train_subset' = balanced draws the grokking training images from all of "
                f"{EMBEDDED}, so they overlap the representation images (adversarial test images "
                f"{used}..{used + count - 1}) on which the grokking checkpoints are placed beside their family "
                f"(representations.grokking); allowed here: first. Set grokking.train_subset: first, or set "
                f"adversarial.dataset to another dataset (which leaves the placement out)"]
    if a["train_subset"] == "balanced":
        return [f"config key 'adversarial.train_subset' = balanced makes the adversarial test set (whose images "
                f"{used}..{used + count - 1} are the representation images) overlap the grokking training images "
                f"of {EMBEDDED}; allowed here: first. Set adversarial.train_subset: first, or set adversarial.dataset "
                f"to another dataset (which leaves the placement out)"]
    first_image = a["train_size"] + used  # position in the split order of the first representation image
    if g["train_size"] > first_image:
        return [f"config key 'grokking.train_size' = {g['train_size']} makes the grokking training images (the "
                f"first {g['train_size']} of {EMBEDDED}'s split order) overlap the representation images (from "
                f"position {first_image}: adversarial.train_size {a['train_size']} + {used} log and evaluation "
                f"images), on which the grokking checkpoints are placed beside their family; allowed: <= "
                f"{first_image}. Lower grokking.train_size or raise adversarial.train_size"]
    return []


def warnings(config: dict) -> list[str]:
    """Legitimate choices whose consequence a user should see before committing cores."""
    out = []
    g, a, rep = config.get("grokking"), config.get("adversarial"), config.get("representations")
    if g:
        out += _grid_warnings(g)
    if g and a and rep and a["dataset"] not in g["datasets"]:
        out.append(f"adversarial.dataset = {a['dataset']} is not in grokking.datasets {g['datasets']}, so the "
                   f"grokking checkpoints are not placed beside their family (representations.grokking: no "
                   f"representation_grokking table or figure). To include it, add {a['dataset']} to "
                   f"grokking.datasets or set adversarial.dataset to one of {g['datasets']}")
    if g and a and rep and a["dataset"] in g["datasets"]:
        out += _placement_overlap(g, a, a["log"]["images"] + a["evaluation"]["images"], rep["images"])
    device = str(config.get("device", "auto"))
    if device not in ("auto", "cpu"):
        problem = device_problem(device)
        if problem:
            out.append(f"config key 'device' = {device}, but {problem}: every training and probing job run on this "
                       f"machine will fail. Fine only if the jobs run on other (GPU) nodes; otherwise set device: auto "
                       f"or cpu")
    return out


def device_problem(name: str) -> str | None:
    """Why device `name` (config key 'device') cannot be used on this machine, or None if it can."""
    import torch

    kind, _, index = name.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "this machine has no CUDA device (torch.cuda.is_available() is False)"
        if index and int(index) >= torch.cuda.device_count():
            return f"this machine has {torch.cuda.device_count()} CUDA device(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})"
    elif kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return "this machine has no MPS device (torch.backends.mps.is_available() is False)"
    return None


def check_device(name: str) -> None:
    """Raise ConfigError naming config key 'device' if `name` cannot be used here."""
    problem = device_problem(name)
    if problem:
        raise ConfigError(f"config key 'device' = {name}, but {problem}; allowed here: auto (uses CUDA when present) "
                          f"or cpu. Set device: auto or cpu in config.yaml (or --config device=cpu), or run the job on "
                          f"a machine with that device")


def tag(value: float) -> str:
    """A number as it appears in paths and tables: 8 → '8', 0.01 → '0.01', 1e-05 → '1e-05'."""
    return f"{float(value):g}"


def merge(base: dict, update: dict) -> dict:
    """`update` laid over `base`, mapping by mapping (as Snakemake merges --configfile and --config)."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load(paths: list[Path], assignments: list[str] = ()) -> dict:
    """The study configuration from config files merged in order, then `key.sub=value` assignments (YAML
    values), validated: what a step run by hand reads instead of the knobs Snakemake passes it."""
    config: dict = {}
    for path in paths:
        config = merge(config, yaml.safe_load(Path(path).read_text()) or {})
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: write it as KEY=VALUE, e.g. robustness.adversarial.steps=5")
        update = yaml.safe_load(text)
        for part in reversed(key.split(".")):
            update = {part: update}
        config = merge(config, update)
    return validate(config)
