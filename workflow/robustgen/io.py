"""Atomic file writes: a reader never sees a half-written table, JSON or tensor file."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path

import torch


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path | str):
    """Yield a temporary path beside `path`; on success rename it onto `path`, on failure remove it.

    The file gets the mode an ordinary `open` would give it (0666 less the user's umask), not mkstemp's 0600:
    results stay readable by the group on a shared cluster where the umask says so.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
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
    """A stored file that cannot be read back (truncated, corrupt, not a torch file, or not readable here),
    or stored files of one run that disagree with each other."""


def _intact_archive(path: Path | str) -> bool:
    """Whether `path` is a complete zip archive (torch.save's format) whose members all pass their CRC."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def load_file(path: Path | str, device=None):
    """torch.load a file written by `atomic_torch_save` onto `device` (CPU when None), naming the file if it is
    unreadable. Every tensor is mapped onto the reading machine's device, whatever device wrote it."""
    try:
        return torch.load(path, weights_only=True, map_location=torch.device("cpu") if device is None else device)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for truncated or corrupt archives
        if _intact_archive(path):  # whole and undamaged: it loads elsewhere (another device, another torch)
            raise CorruptFile(
                f"cannot read {path} here: {type(error).__name__}: {error}. The file is complete (not truncated or "
                f"corrupt), so keep it: it was probably written on another device or by another PyTorch version "
                f"(this is {torch.__version__}). Read it where it was written, or check config key 'device' and "
                "the installed PyTorch."
            ) from error
        raise CorruptFile(
            f"cannot read {path}: {type(error).__name__}: {error}. The file is truncated or corrupt (not a complete "
            "archive, e.g. a job killed while copying it); delete it (or the run directory holding it) and rerun the "
            "workflow to recreate it."
        ) from error


def write_json(obj, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: Path | str):
    """A JSON file written by `write_json`; a truncated or corrupt one raises CorruptFile naming it."""
    text = Path(path).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CorruptFile(
            f"cannot read {path}: it is not complete JSON ({error}; {len(text)} characters). The file is truncated "
            "or was edited by hand; delete it and rerun the workflow (snakemake recreates it and what depends on it)."
        ) from error


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


def write_text(text: str, path: Path | str) -> None:
    """Write a text page atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
