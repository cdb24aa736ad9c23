"""Every rule's script: runs the robustgen step named like the rule (robustgen.steps) with the rule's files,
params and wildcards by name and its threads (robustgen.cli.run_job), the rule's log taking stdout and stderr."""

import os
import sys
from pathlib import Path

if snakemake.log:  # noqa: F821 - first, so that even an import error lands in the job's log
    log = os.open(snakemake.log[0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # noqa: F821
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821 - workflow/, holding the package

from robustgen.cli import run_job  # noqa: E402

sys.exit(run_job(snakemake))  # noqa: F821
