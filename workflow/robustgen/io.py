"""Atomic file writes: a reader never sees a half-written table, JSON or tensor file."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def atomic_path(path: Path | str):
    """Yield a temporary path beside `path`; on success rename it onto `path`, on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class CorruptFile(RuntimeError):
    """A stored tensor file that cannot be read back (truncated, corrupt, or not a torch file)."""


def load_file(path: Path | str, device=None):
    """torch.load a file written by `atomic_torch_save`, naming the file if it is unreadable."""
    try:
        return torch.load(path, weights_only=True, map_location=device)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for truncated or corrupt archives
        raise CorruptFile(
            f"cannot read {path}: {type(error).__name__}: {error}. The file is truncated or corrupt; delete it "
            "(or the run directory holding it) and rerun the workflow to recreate it."
        ) from error


def write_json(obj, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path | str):
    return json.loads(Path(path).read_text())


def write_csv(frame, path: Path | str) -> None:
    """Write a pandas DataFrame as CSV atomically, with floats in full precision."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def save_figure(fig, png: Path | str, pdf: Path | str | None = None) -> None:
    """Save a matplotlib figure as PNG (and PDF) atomically."""
    for target, fmt in ((png, "png"), (pdf, "pdf")):
        if target is None:
            continue
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
