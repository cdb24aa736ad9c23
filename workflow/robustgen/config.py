"""Study configuration: validation against the JSON schema with errors that name the key and its allowed values."""

from __future__ import annotations

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
    return config


def _cross_checks(config: dict) -> list[str]:
    """What the schema cannot say: values that must name other values of the config."""
    out = []
    delayed = config.get("delayed", {})
    if delayed and delayed["onset"]["complexity_radius"] not in delayed["complexity"]["radii"]:
        out.append(f"config key 'delayed.onset.complexity_radius' = {delayed['onset']['complexity_radius']} is not "
                   f"one of delayed.complexity.radii {delayed['complexity']['radii']}; allowed: one of those")
    return out


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
