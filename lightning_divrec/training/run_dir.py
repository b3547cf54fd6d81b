"""Run folders: created late, written atomically, removed when a run fails before its first checkpoint."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

from lightning_divrec.training.slurm_env import slurm_job_tag

log = logging.getLogger(__name__)

RUN_DIR_ENV = "DIVREC_RUN_DIR"
"""Set by the launching process so that DDP workers started later by Lightning
(which re-run the command) write into the same run folder."""


def resolve_run_dir(output_dir: str, run_name: str | None, default_name: str) -> tuple[Path, bool]:
    """Return the run folder and whether this process must create it.

    A process started by a DDP launcher inherits ``DIVREC_RUN_DIR`` and reuses
    that folder; any other process gets ``<output_dir>/<run_name>``, which must
    not exist yet.
    """
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited:
        return Path(inherited), False
    name = run_name or default_name
    job_tag = slurm_job_tag()
    if run_name is None and job_tag:
        # All ranks of a Slurm job start at slightly different times; the job
        # id, unlike a timestamp, is the same on each of them.
        name = f"{default_name.rsplit('-', 2)[0]}-{job_tag}"
    run_dir = Path(output_dir).expanduser() / name
    if not is_global_rank_zero():
        # A task that srun started beside rank zero: rank zero creates the folder.
        return run_dir, False
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(f"run folder {run_dir} already exists and is not empty; pass another run_name=...")
    return run_dir, True


def is_global_rank_zero() -> bool:
    """Return True unless the launcher (``RANK``, ``LOCAL_RANK`` or Slurm's ``SLURM_PROCID``) marks another rank."""
    return rank_zero_only.rank == 0


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def write_json_atomic(path: Path, content: Any) -> None:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        json.dump(content, handle, indent=2, sort_keys=True)
        handle.write("\n")
        temporary = handle.name
    os.replace(temporary, path)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8") as handle:
        handle.write(text)
        temporary = handle.name
    os.replace(temporary, path)


def remove_if_incomplete(run_dir: Path) -> None:
    """Delete a run folder without checkpoints, and keep one that can be resumed or inspected."""
    if not run_dir.exists():
        return
    if any(run_dir.glob("checkpoints/*.ckpt")):
        log.error("run failed; keeping %s because it contains checkpoints", run_dir)
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    log.error("run failed before its first checkpoint; removed %s", run_dir)
