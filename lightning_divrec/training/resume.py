"""Callbacks that make a run resumable at any checkpoint: per-batch seeding and an up-to-date ``last.ckpt``."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, Checkpoint

from lightning_divrec.data.resumable import GLOBAL_RNG_STREAM, batch_seed

log = logging.getLogger(__name__)


class SeedEachBatch(Callback):
    """Seed Python's, NumPy's and torch's global generators before every training batch.

    The seed is a function of (seed, epoch, rank, batch index), so dropout and
    the negatives that a model draws inside ``training_step`` do not depend on
    what ran before the batch. A run resumed from any checkpoint therefore
    draws the same numbers as the uninterrupted run, on every rank, without
    the generator states being saved. ``torch.manual_seed`` also seeds every
    CUDA device.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        value = batch_seed(self.seed, trainer.current_epoch, trainer.global_rank, batch_idx, GLOBAL_RNG_STREAM)
        torch.manual_seed(value)
        np.random.seed(value % 2**32)
        random.seed(value)


class LastCheckpoint(Checkpoint):
    """Write ``last.ckpt`` at the end of every training epoch and, optionally, every N optimizer steps.

    It replaces ``ModelCheckpoint(save_last=True)``, which in Lightning 2.6
    writes ``last.ckpt`` only when it also writes a top-k checkpoint, so after
    epochs without improvement that file is older than the run. This callback writes it
    at the end of every epoch (after that epoch's validation) and, with
    ``every_n_train_steps``, after every that many optimizer steps, except at
    the last batch of an epoch, where the epoch-end write follows. Each file
    is the full trainer state (model, optimizer, scheduler, loop progress,
    callbacks and the training loader's position), written by the trainer's
    checkpoint writer (atomic in this project).

    Being a ``Checkpoint``, it runs its epoch-end hook after ``EarlyStopping``
    and after a ``ModelCheckpoint`` listed before it, so the file contains
    their state after this epoch's validation.

    Args:
        path: the checkpoint file, ``<run>/checkpoints/last.ckpt``.
        every_n_train_steps: optimizer steps between two mid-epoch writes
            (at least 1); None writes only at the end of each epoch.
    """

    def __init__(self, path: Path, every_n_train_steps: int | None = None):
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise ValueError(f"checkpoint.every_n_train_steps must be at least 1, got {every_n_train_steps}")
        self.path = Path(path)
        self.every_n_train_steps = every_n_train_steps
        self._step_at_batch_start = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every_n_train_steps is None:
            return
        step = trainer.global_step
        # Only a batch that ended with an optimizer step is a safe point, because
        # a checkpoint does not contain the gradients accumulated before it.
        if step == self._step_at_batch_start or step % self.every_n_train_steps:
            return
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state: a resume needs the optimizer and loops
        log.debug("mid-epoch checkpoint at epoch %d, batch %d, step %d: %s", trainer.current_epoch, batch_idx, step, self.path)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
