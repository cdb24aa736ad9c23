"""Shared fixtures: the repository root, a small embedded-MNIST split, a Snakemake runner."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))  # the package, also when not pip-installed


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def embedded_split():
    from robustgen.data import load_embedded_mnist

    return load_embedded_mnist(train_size=1000, split_seed=0)


class Workflow:
    """A Snakemake working directory holding the default config.yaml, run against the repo's Snakefile."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "config.yaml", workdir / "config.yaml")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(self.workdir), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def planned_jobs(self, *args: str) -> dict[str, int]:
        """Jobs a dry run would execute, by rule (empty when there is nothing to do)."""
        out = self.run("-n", *args).stdout
        jobs, in_table = {}, False
        for line in out.splitlines():
            if line.startswith("job ") and "count" in line:
                in_table, jobs = True, {}
                continue
            if in_table:
                parts = line.split()
                if not parts or parts[0].startswith("-"):
                    continue
                if parts[0] == "total":
                    in_table = False
                    continue
                jobs[parts[0]] = int(parts[1])
        return jobs


@pytest.fixture
def workflow_factory(tmp_path):
    return lambda name="study": Workflow(tmp_path / name)
