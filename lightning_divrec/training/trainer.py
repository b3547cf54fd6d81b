"""Build the Lightning ``Trainer`` with the callbacks and loggers of a run."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from omegaconf import DictConfig

from lightning_divrec.training.checkpoint_io import AtomicCheckpointIO
from lightning_divrec.training.resume import LastCheckpoint, SeedEachBatch
from lightning_divrec.training.slurm_env import RequeueOnSignal, in_slurm_job, slurm_plugins

log = logging.getLogger(__name__)

# Evaluation metrics are summed across processes by torchmetrics before they are
# logged, so logging them without ``sync_dist`` is correct; silence Lightning's advice.
warnings.filterwarnings("ignore", message=".*sync_dist=True.*when logging on epoch level.*")


def build_loggers(cfg: DictConfig, run_dir: Path, resume_wandb_id: str | None = None, csv_version: str = "") -> list[Logger]:
    """Return the CSV and W&B loggers that ``cfg.logger`` enables; Lightning writes only on rank zero.

    ``resume_wandb_id`` continues that W&B run instead of starting a new one.
    ``csv_version`` names a sub-folder of ``csv/``, so that a resumed run does
    not overwrite the first part's ``metrics.csv``.
    """
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(CSVLogger(save_dir=str(run_dir), name="csv", version=csv_version))
    wandb_config = cfg.logger.wandb
    if wandb_config.enabled:
        loggers.append(
            WandbLogger(
                project=wandb_config.project,
                entity=wandb_config.entity,
                name=run_dir.name,
                save_dir=str(run_dir),
                offline=wandb_config.mode == "offline",
                tags=list(wandb_config.tags),
                log_model=False,
                **({"id": resume_wandb_id, "resume": "allow"} if resume_wandb_id else {}),
            )
        )
    return loggers


def build_trainer(cfg: DictConfig, run_dir: Path, loggers: list[Logger]) -> tuple[L.Trainer, ModelCheckpoint]:
    """Return the Trainer of a training run and its best-checkpoint callback.

    ``LastCheckpoint``, not ``ModelCheckpoint``, writes ``checkpoints/last.ckpt``.
    """
    trainer_cfg = cfg.trainer
    checkpoint = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        filename="best",
        monitor=cfg.eval.monitor,
        mode="max",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    callbacks: list = [checkpoint, SeedEachBatch(cfg.seed)]
    if trainer_cfg.enable_progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=10))
    if trainer_cfg.early_stopping_patience is not None:
        callbacks.append(EarlyStopping(monitor=cfg.eval.monitor, mode="max", patience=trainer_cfg.early_stopping_patience))
    if in_slurm_job():
        callbacks.append(RequeueOnSignal())
    # Listed after ModelCheckpoint, so that last.ckpt contains the best score of the epoch it ends.
    callbacks.append(LastCheckpoint(run_dir / "checkpoints" / "last.ckpt", cfg.checkpoint.every_n_train_steps))
    trainer = L.Trainer(
        accelerator=trainer_cfg.accelerator,
        devices=trainer_cfg.devices,
        num_nodes=trainer_cfg.num_nodes,
        strategy=trainer_cfg.strategy,
        precision=trainer_cfg.precision,
        max_epochs=trainer_cfg.max_epochs,
        check_val_every_n_epoch=trainer_cfg.check_val_every_n_epoch,
        gradient_clip_val=trainer_cfg.gradient_clip_val,
        accumulate_grad_batches=trainer_cfg.accumulate_grad_batches,
        deterministic=trainer_cfg.deterministic,
        log_every_n_steps=trainer_cfg.log_every_n_steps,
        enable_progress_bar=trainer_cfg.enable_progress_bar,
        limit_train_batches=trainer_cfg.limit_train_batches,
        default_root_dir=str(run_dir),
        callbacks=callbacks,
        logger=loggers or False,
        # The data module shards evaluation users itself, without the padding
        # that DistributedSampler adds, and builds its own training sampler.
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        plugins=[AtomicCheckpointIO(), *slurm_plugins()],
    )
    return trainer, checkpoint


def build_eval_trainer(accelerator: str, devices: int) -> L.Trainer:
    """Return a Trainer that only evaluates: no loggers, no checkpoints."""
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        logger=False,
        enable_checkpointing=False,
        use_distributed_sampler=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )

