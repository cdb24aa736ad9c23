"""The glue between the study's steps (`robustgen.steps`) and their callers, generic for every step.

A Snakemake rule runs its step through `script: "../scripts/step.py"`, which calls `run_job`: the step named like
the rule gets the rule's input, output and params by name, the wildcards it takes, its threads, and its log.
By hand, the same step reads the study's own config files, so a hand run and the study's run of a step cannot
differ:

    robustgen probe-checkpoints --config config.yaml --set robustness.adversarial.steps=5 \\
        --data results/data/grokking/mnist_embedded.pt --checkpoints RUN/checkpoints.pt \\
        --run-json RUN/run.json --output probes.csv

Each step's flags come from its function's signature (`robustgen STEP --help` lists the config keys it reads).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import typing
from collections.abc import Mapping
from pathlib import Path

from .config import ConfigError, load
from .settings import Knob, SettingsError, build, is_view, leaf_keys, section_of, slice_of
from .steps import COMPUTE, STEPS

# --- the process a step runs in ----------------------------------------------------------------------------

# glibc's mallopt parameters (malloc.h) and the values a step's process runs with
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
KEPT_MEMORY = {M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 1 << 30, M_TOP_PAD: 256 << 20}


def keep_freed_memory() -> bool:
    """Let the C allocator keep the memory PyTorch frees, instead of handing it back to the kernel at once.

    A training or probing job allocates and frees tensors of the same few sizes thousands of times. With
    glibc's defaults, large blocks are mappings of their own and the freed top of the heap is trimmed, so the
    kernel maps and zeroes the same pages again and again: a tenth of the study's CPU time was such system
    time. Blocks up to 32 MiB now come from the heap and freed heap memory stays with the process up to 1 GiB
    (a job's resident memory stays near its peak instead of falling back). Only allocation changes: results
    are bitwise the same. False (nothing changed) where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(option, value) == 1 for option, value in KEPT_MEMORY.items())


# --- what a step's arguments are -------------------------------------------------------------------------------


def arguments(fn) -> dict[str, tuple[object, Knob | None]]:
    """{argument: (type, Knob or None)} of a step, in signature order; an argument typed with a settings class
    reads the section of its own name."""
    out = {}
    for name, hint in typing.get_type_hints(fn, include_extras=True).items():
        if name == "return":
            continue
        knob = None
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extras = typing.get_args(hint)
            knob = next((e for e in extras if isinstance(e, Knob)), None)
        elif is_view(hint):
            knob = Knob(name)
        out[name] = (hint, knob)
    return out


def knobs_of(fn) -> dict[str, tuple[object, Knob]]:
    return {name: (kind, knob) for name, (kind, knob) in arguments(fn).items() if knob is not None}


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in ("0", "1", "true", "false"):
        raise ValueError(f"{value!r} is not a boolean (0, 1, true or false)")
    return text in ("1", "true")


def _as(kind, value, name: str):
    """A file name, a wildcard or a param as the type the step declares."""
    if kind is Path:
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise SettingsError(f"'{name}' is one file, got {len(value)}")
            value = value[0]
        return Path(value)
    if typing.get_origin(kind) is list:
        return [Path(v) for v in ([value] if isinstance(value, (str, os.PathLike)) else value)]
    if kind is bool:
        return _bool(value)
    return kind(value)


def sections(fn, given: Mapping) -> dict[str, str]:
    """{knob argument: the config section it reads}, a section naming another argument filled in from `given`."""
    return {arg: knob.section.format(**given) for arg, (_, knob) in knobs_of(fn).items()}


RUNNER_KEYS = ("deterministic",)  # config keys the job runner itself reads (for every step), changing no result


def call(name: str, given: Mapping, knobs: Mapping, *, threads: int | None = None, deterministic: bool = False) -> int:
    """Run step `name` with `given` (files and values by argument name) and `knobs` (each knob argument's
    config value by argument name: a section, or the slice of it a rule passes). Returns the exit status:
    2 for bad input, 143 when preempted. `deterministic` (config key `deterministic`): CUDA's deterministic
    kernels only."""
    from .data import DatasetUnavailable
    from .io import CorruptFile

    fn = STEPS[name]
    preempted = ()
    keep_freed_memory()
    try:
        values = {}
        for arg, (kind, knob) in arguments(fn).items():
            if knob is None:
                if arg not in given:
                    raise SettingsError(f"{name} needs '{arg}' (a file, param or wildcard of that name)")
                values[arg] = _as(kind, given[arg], arg)
        kinds = knobs_of(fn)
        for arg, section in sections(fn, given).items():
            if arg not in knobs:
                raise SettingsError(f"{name} reads config section '{section}', which is missing")
            values[arg] = build(kinds[arg][0], knobs[arg], section)
        if name in COMPUTE:
            import torch

            from .train import Preempted

            torch.set_num_threads(max(1, threads or 1))
            if deterministic:
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's deterministic workspace
                torch.use_deterministic_algorithms(True)
                torch.backends.cudnn.benchmark = False
            preempted = (Preempted,)
        try:
            fn(**values)
        except preempted as err:
            print(f"preempted: {err}", file=sys.stderr)
            return 143  # the conventional status of a process ended by SIGTERM
    except (ConfigError, SettingsError, DatasetUnavailable, CorruptFile, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


# --- a rule's job ----------------------------------------------------------------------------------------------


def rule_knobs(fn, params: Mapping, rule: str) -> dict:
    """A step's knobs from its rule's params (named like its arguments). A param must be exactly the slice its
    settings class reads, so that the rule reruns on exactly the changes that touch the step."""
    out = {}
    for arg, (kind, knob) in knobs_of(fn).items():
        if arg not in params:
            raise SettingsError(f"rule {rule} lacks the param '{arg}' (config section '{knob.section}')")
        value = params[arg]
        if is_view(kind) and isinstance(value, Mapping) and slice_of(kind, value) != dict(value):
            raise SettingsError(f"rule {rule}: param '{arg}' holds more than its step reads of config section "
                                f"'{knob.section}' ({kind.__name__}); pass knobs(<the step's view>, "
                                f"\"{knob.section}\")")
        out[arg] = value
    return out


def run_job(job) -> int:
    """Run the step named like Snakemake `job`'s rule (the `snakemake` object of a `script:`); its exit status.
    A rule that names something its step does not take, or lacks a setting it reads, is refused (status 2)."""
    try:
        fn = STEPS[job.rule]
        takes = arguments(fn)
        knob_args = knobs_of(fn)
        params = dict(job.params.items())  # by name (a Namedlist's `in` looks at values)
        named = {**dict(job.input.items()), **dict(job.output.items()),
                 **{k: v for k, v in params.items() if k not in knob_args}}
        unknown = sorted(set(named) - set(takes))
        if unknown:
            raise SettingsError(f"rule {job.rule} names {unknown}, which its step does not take "
                                f"(it takes {', '.join(takes)})")
        knobs = rule_knobs(fn, params, job.rule)
    except (KeyError, SettingsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    wildcards = {k: v for k, v in job.wildcards.items() if k in takes}
    status = call(job.rule, {**wildcards, **named}, knobs, threads=job.threads,
                  deterministic=bool(getattr(job, "config", {}).get("deterministic", False)))
    sys.stdout.flush()
    sys.stderr.flush()
    return status


# --- by hand ---------------------------------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def reads(fn) -> list[str]:
    """The dotted config keys a step reads (an untracked one marked: it changes no result)."""
    keys = []
    for arg, (kind, knob) in knobs_of(fn).items():
        found = leaf_keys(kind, knob.section) if is_view(kind) else [knob.section]
        keys += found if knob.tracked else [f"{key} (changes no result)" for key in found]
    return keys


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="robustgen", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="step", required=True, metavar="STEP")
    for name, fn in STEPS.items():
        doc = (fn.__doc__ or "").strip()
        keys = reads(fn)
        p = sub.add_parser(name.replace("_", "-"), help=doc.splitlines()[0].replace("%", "%%") if doc else None,
                           description=doc + ("\n\nReads config keys " + ", ".join(keys) if keys else ""))
        for arg, (kind, knob) in arguments(fn).items():
            if knob is not None:
                continue
            if kind is Path:
                p.add_argument(_flag(arg), type=Path, required=True, dest=arg, metavar="PATH")
            elif typing.get_origin(kind) is list:
                p.add_argument(_flag(arg), type=Path, required=True, nargs="+", dest=arg, metavar="PATH")
            else:
                p.add_argument(_flag(arg), type=_bool if kind is bool else kind, required=True, dest=arg,
                               metavar=kind.__name__.upper())
        if keys:
            p.add_argument("--config", action="append", type=Path, default=[], metavar="YAML",
                           help="the study's config files, merged in order (config.yaml first)")
            p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                           help="override one config key, e.g. robustness.adversarial.steps=5")
        if name in COMPUTE:
            p.add_argument("--threads", type=int, default=1, help="PyTorch threads (the rule's threads)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    name = args.step.replace("-", "_")
    config = {}
    fn = STEPS[name]
    if reads(fn):
        if not args.config:
            print(f"error: {args.step} reads config keys; give the study's config: --config config.yaml",
                  file=sys.stderr)
            return 2
        try:
            config = load(args.config, args.set)
        except (ConfigError, SettingsError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    given = {arg: getattr(args, arg) for arg, (_, knob) in arguments(fn).items() if knob is None}
    found = {arg: section_of(config, section) for arg, section in sections(fn, given).items()}
    knobs = {arg: value for arg, value in found.items() if value is not None}
    return call(name, given, knobs, threads=getattr(args, "threads", None),
                deterministic=bool(config.get("deterministic", False)))


if __name__ == "__main__":
    sys.exit(main())
