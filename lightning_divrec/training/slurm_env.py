"""Slurm awareness of a training run: task layout checks, run names and requeue on the warning signal.

What happens on preemption or at the time limit (the templates in ``slurm/``
ask for ``--signal=USR1@<seconds>`` and ``--requeue``):

1. Slurm sends SIGUSR1 to every task some seconds before it stops the job.
2. :class:`RequeueOnSignal` on global rank zero runs ``scontrol requeue <job>``.
3. Slurm sends SIGTERM; Lightning stops every rank at the next batch.
4. The job starts again with the same job id, so ``resume=auto`` finds the
   same run folder, resumes from its ``checkpoints/last.ckpt`` and continues
   the W&B run whose id is stored in ``wandb_run_id``.

Lightning's own handler (``SLURMEnvironment(auto_requeue=True)``, its default
under Slurm) would instead write ``hpc_ckpt_<n>.ckpt`` in the middle of an
epoch and resume from it whenever ``ckpt_path`` is not given. That would be a
second resume path beside ``last.ckpt``, so the trainer turns it off and
installs :class:`RequeueOnSignal` instead.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, Optional

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

# Job names under which Lightning does not treat a Slurm allocation as a
# cluster launch (an interactive shell started with salloc or srun --pty).
INTERACTIVE_JOB_NAMES = ("bash", "interactive")


@dataclass
class SlurmLayout:
    """Task layout of a Slurm job, as requested or as Slurm reports it; ``None`` where unknown."""

    nodes: Optional[int] = None
    """``--nodes``: nodes of the job (``SLURM_JOB_NUM_NODES`` inside a job)."""

    ntasks_per_node: Optional[int] = None
    """``--ntasks-per-node`` (``SLURM_NTASKS_PER_NODE``); Lightning needs it set."""

    ntasks: Optional[int] = None
    """Total tasks of the job (``SLURM_NTASKS``)."""

    gpus_per_node: Optional[int] = None
    """``--gpus-per-node`` (``SLURM_GPUS_PER_NODE``)."""


def layout_from_env(env: Mapping[str, str] | None = None) -> SlurmLayout | None:
    """Return the layout of the Slurm job this process runs in, or None outside Slurm and in interactive jobs."""
    env = os.environ if env is None else env
    if "SLURM_NTASKS" not in env or env.get("SLURM_JOB_NAME") in INTERACTIVE_JOB_NAMES:
        return None
    return SlurmLayout(
        nodes=_int_or_none(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES")),
        ntasks_per_node=_int_or_none(env.get("SLURM_NTASKS_PER_NODE")),
        ntasks=_int_or_none(env.get("SLURM_NTASKS")),
        gpus_per_node=_int_or_none(env.get("SLURM_GPUS_PER_NODE")),
    )


def layout_problems(layout: SlurmLayout, devices: int, num_nodes: int, accelerator: str) -> list[str]:
    """Return one message per way that a Slurm layout disagrees with ``trainer.devices``/``num_nodes``.

    Lightning runs one process per task and expects ``trainer.devices`` tasks
    on each of ``trainer.num_nodes`` nodes. With fewer tasks it waits for ranks
    that never start. It rejects a job that gives only ``--ntasks``.
    """
    problems = []
    world_size = devices * num_nodes
    if layout.ntasks_per_node is not None and layout.ntasks_per_node != devices:
        problems.append(
            f"--ntasks-per-node={layout.ntasks_per_node} but trainer.devices={devices}; "
            "Lightning starts one process per task, so make them equal"
        )
    if layout.nodes is not None and layout.nodes != num_nodes:
        problems.append(f"--nodes={layout.nodes} but trainer.num_nodes={num_nodes}; make them equal")
    if not problems and layout.ntasks is not None and layout.ntasks != world_size:
        problems.append(
            f"Slurm started {layout.ntasks} task(s) but trainer.devices x trainer.num_nodes = {world_size}; "
            "make --ntasks-per-node equal trainer.devices and --nodes equal trainer.num_nodes"
        )
    if layout.ntasks_per_node is None and layout.ntasks is not None and layout.ntasks > 1:
        problems.append(
            f"the job sets --ntasks={layout.ntasks} without --ntasks-per-node, which Lightning rejects; "
            f"use --ntasks-per-node={devices} (trainer.devices) and --nodes={num_nodes} (trainer.num_nodes)"
        )
    if accelerator == "gpu":
        if layout.gpus_per_node is not None and layout.gpus_per_node < devices:
            problems.append(
                f"--gpus-per-node={layout.gpus_per_node} is less than trainer.devices={devices}; "
                f"request --gpus-per-node={devices}"
            )
    elif layout.gpus_per_node:
        problems.append(
            f"--gpus-per-node={layout.gpus_per_node} requests GPUs but trainer.accelerator={accelerator}; "
            "use a GPU trainer preset (trainer=gpu or trainer=multinode) or drop the GPU request"
        )
    return problems


def slurm_job_tag(env: Mapping[str, str] | None = None) -> str | None:
    """Return ``slurm<job>`` or, in a job array, ``slurm<array job>_<task>``; None outside Slurm.

    Both stay the same when Slurm requeues the job, so a run folder named
    after them is found again by the requeued job.
    """
    env = os.environ if env is None else env
    array_job, array_task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array_job and array_task:
        return f"slurm{array_job}_{array_task}"
    job = env.get("SLURM_JOB_ID")
    return f"slurm{job}" if job else None


def requeue_job_id(env: Mapping[str, str] | None = None) -> str | None:
    """Return the id that ``scontrol requeue`` takes for this job (``<array job>_<task>`` in an array)."""
    env = os.environ if env is None else env
    array_job, array_task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array_job and array_task:
        return f"{array_job}_{array_task}"
    return env.get("SLURM_JOB_ID")


def in_slurm_job() -> bool:
    """Return True when Lightning treats this process as a task of a Slurm job."""
    return SLURMEnvironment.detect()


def slurm_plugins() -> list[Any]:
    """Return the Trainer plugins of a Slurm task: Lightning's Slurm environment without its hpc checkpoints."""
    if not in_slurm_job():
        return []
    return [SLURMEnvironment(auto_requeue=False)]


class RequeueOnSignal(Callback):
    """Ask Slurm to requeue the job when the warning signal arrives; the new job resumes from ``last.ckpt``.

    Every rank receives the signal; only global rank zero calls
    ``scontrol requeue``, once. Slurm then stops the job with SIGTERM, and
    the requeued job continues with ``resume=auto`` from ``last.ckpt``: from the
    start of the epoch in progress, or with ``checkpoint.every_n_train_steps``
    from the last mid-epoch checkpoint.
    """

    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self.signum = signum
        self.requeued = False
        self._trainer: L.Trainer | None = None
        self._previous: Any = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._trainer = trainer
        self._previous = signal.signal(self.signum, self._handle)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or self._trainer is None:
            return
        signal.signal(self.signum, self._previous if self._previous is not None else signal.SIG_DFL)
        self._trainer = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._trainer is None or not self._trainer.is_global_zero or self.requeued:
            return
        job_id = requeue_job_id()
        if job_id is None:
            log.error("received signal %d but SLURM_JOB_ID is not set; cannot requeue", signum)
            return
        self.requeued = True
        log.info("received signal %d; requeueing Slurm job %s", signum, job_id)
        try:
            result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.error("scontrol requeue %s failed: %s", job_id, error)
            return
        if result.returncode != 0:
            log.error("scontrol requeue %s failed with exit status %d: %s", job_id, result.returncode, result.stderr.strip())


def _int_or_none(value: str | None) -> int | None:
    """Parse a Slurm count such as ``2``, ``2(x3)`` or ``a100:2``; return None when absent."""
    if not value:
        return None
    head = value.split("(", 1)[0].split(",", 1)[0].rsplit(":", 1)[-1]
    try:
        return int(head)
    except ValueError:
        return None
