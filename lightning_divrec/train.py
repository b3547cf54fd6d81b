"""``train(cfg)``: data, model, Trainer, checkpoints and metrics of one run."""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from lightning_divrec.config import ConfigError, TrainConfig, validate_config
from lightning_divrec.data import RecDataModule
from lightning_divrec.data.datamodule import per_device_batch_size
from lightning_divrec.models import MODELS
from lightning_divrec.training.run_dir import (
    RUN_DIR_ENV,
    is_global_rank_zero,
    remove_if_incomplete,
    resolve_run_dir,
    timestamp,
    write_json_atomic,
    write_text_atomic,
)
from lightning_divrec.training.slurm_env import layout_from_env, layout_problems, slurm_job_tag
from lightning_divrec.training.trainer import build_loggers, build_trainer

log = logging.getLogger(__name__)


def train(cfg: DictConfig | dict) -> dict:
    """Train the configured model, evaluate its best checkpoint, and return the metrics.

    Writes into the run folder ``<output_dir>/<run_name>``: ``config.yaml``
    (the resolved configuration after every override), ``checkpoints/best.ckpt``
    (best by ``eval.monitor``) and ``last.ckpt``, ``metrics.json``, ``csv/`` and
    ``wandb/``. Every input is checked before the folder is created, and a run
    that fails before its first checkpoint removes the folder again.

    Returns:
        ``{"val": {...}, "test": {...}, "run_dir": str, "best_checkpoint": str}``
        with metric keys such as ``test/ndcg@10``, in float64 precision.
    """
    cfg = validate_config(cfg, TrainConfig)
    _check_run_options(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = RecDataModule(cfg.data, seed=cfg.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    container = OmegaConf.to_container(cfg, resolve=True)
    model = MODELS[cfg.model.name].from_datamodule(datamodule, container["model"], container["eval"]["ks"], run_config=container)

    run_dir, creates_run_dir, resume_from, wandb_id = _run_target(cfg)
    # Lightning starts extra DDP processes by running the command again; they
    # find this run folder through the variable instead of naming their own.
    sets_run_dir_env = RUN_DIR_ENV not in os.environ
    loggers = []
    try:
        if creates_run_dir:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
        if sets_run_dir_env:
            os.environ[RUN_DIR_ENV] = str(run_dir)
        csv_version = f"resumed-{timestamp()}" if resume_from else ""
        loggers = build_loggers(cfg, run_dir, resume_wandb_id=wandb_id, csv_version=csv_version)
        for logger in loggers:
            logger.log_hyperparams(container)
            if sets_run_dir_env and is_global_rank_zero() and isinstance(logger, WandbLogger):
                # Kept so that a resumed or requeued run can continue the same W&B run.
                write_text_atomic(run_dir / "wandb_run_id", logger.experiment.id + "\n")
        trainer, checkpoint = build_trainer(cfg, run_dir, loggers)

        if model.trainable:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
            best = checkpoint.best_model_path or str(run_dir / "checkpoints" / "last.ckpt")
        else:
            trainer.validate(model, datamodule=datamodule, verbose=False)
            best = str(run_dir / "checkpoints" / "best.ckpt")
            trainer.save_checkpoint(best, weights_only=False)
        trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
        trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)

        metrics = {
            "val": model.results["val"] | model.results.get("val_rerank", {}),
            "test": model.results["test"],
            "run_dir": str(run_dir),
            "best_checkpoint": str(best),
            "data_fingerprint": datamodule.fingerprint(),
            "epochs_trained": trainer.current_epoch,
            "versions": _versions(),
        }
        if trainer.is_global_zero:
            write_json_atomic(run_dir / "metrics.json", metrics)
            log.info("run folder: %s", run_dir)
        return metrics
    except BaseException:
        if creates_run_dir:
            _close_loggers(loggers)
            remove_if_incomplete(run_dir)
        raise
    finally:
        _close_loggers(loggers)
        if sets_run_dir_env:
            os.environ.pop(RUN_DIR_ENV, None)


def _run_target(cfg: DictConfig) -> tuple[Path, bool, str | None, str | None]:
    """Return the run folder, whether this process creates it, the checkpoint to resume from and the W&B id to continue.

    ``resume=auto`` resumes when the folder contains ``checkpoints/last.ckpt``
    and otherwise starts a new run in it, continuing the W&B run of an earlier
    attempt that was stopped before its first checkpoint.
    """
    if cfg.resume is None:
        run_dir, creates_run_dir = resolve_run_dir(
            cfg.output_dir, cfg.run_name, f"{cfg.model.name}-{cfg.data.name}-{timestamp()}"
        )
        return run_dir, creates_run_dir, None, None

    run_dir = Path(cfg.output_dir).expanduser() / _resume_run_name(cfg)
    id_file = run_dir / "wandb_run_id"
    wandb_id = id_file.read_text().strip() if id_file.is_file() else None
    if cfg.resume == "auto":
        checkpoint = run_dir / "checkpoints" / "last.ckpt"
        if checkpoint.is_file():
            log.info("resume=auto: continuing %s from %s", run_dir, checkpoint)
            return run_dir, False, str(checkpoint), wandb_id
        log.info("resume=auto: no checkpoint in %s; starting the run there", run_dir)
        creates_run_dir = RUN_DIR_ENV not in os.environ and is_global_rank_zero()
        return run_dir, creates_run_dir, None, wandb_id

    if not run_dir.is_dir():
        raise FileNotFoundError(f"resume: run folder {run_dir} not found; check output_dir and run_name")
    checkpoint = run_dir / "checkpoints" / "last.ckpt" if cfg.resume == "last" else Path(cfg.resume).expanduser()
    if not checkpoint.is_file():
        raise FileNotFoundError(f"resume={cfg.resume}: checkpoint {checkpoint} not found")
    return run_dir, False, str(checkpoint), wandb_id


def _resume_run_name(cfg: DictConfig) -> str:
    """Return ``run_name``, or under ``resume=auto`` in a Slurm job the name that the job id gives."""
    if cfg.run_name is not None:
        return cfg.run_name
    job_tag = slurm_job_tag()
    if cfg.resume == "auto" and job_tag:
        # The same name as resolve_run_dir gives a new run of this Slurm job.
        return f"{cfg.model.name}-{cfg.data.name}-{job_tag}"
    raise ValueError(f"resume={cfg.resume} needs run_name=<the run folder to continue>")


def _check_run_options(cfg: DictConfig) -> None:
    problems = []
    if not 0 <= cfg.eval.rerank_trade_off <= 1:
        problems.append(f"eval.rerank_trade_off={cfg.eval.rerank_trade_off} must lie in [0, 1]")
    if cfg.eval.objective_weight is not None and not 0 <= cfg.eval.objective_weight <= 1:
        problems.append(f"eval.objective_weight={cfg.eval.objective_weight} must lie in [0, 1]")
    if cfg.eval.rerank_candidates < max(cfg.eval.ks):
        problems.append(f"eval.rerank_candidates={cfg.eval.rerank_candidates} must be at least max(eval.ks)={max(cfg.eval.ks)}")
    every_n_train_steps = cfg.checkpoint.every_n_train_steps
    if every_n_train_steps is not None and every_n_train_steps < 1:
        problems.append(f"checkpoint.every_n_train_steps={every_n_train_steps} must be at least 1, or null to disable it")
    world_size = cfg.trainer.devices * cfg.trainer.num_nodes
    try:
        per_device_batch_size(cfg.data.batch_size, world_size, cfg.trainer.accumulate_grad_batches)
    except ValueError as error:
        problems.append(str(error))
    layout = layout_from_env()
    if layout is not None:
        # Lightning would wait for processes that Slurm never starts.
        problems.extend(layout_problems(layout, cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.accelerator))
    if "spawn" in cfg.trainer.strategy:
        # Spawned workers return only logged float32 metrics to the parent,
        # not the float64 results that metrics.json is written from.
        problems.append(f"trainer.strategy={cfg.trainer.strategy} is not supported; use trainer.strategy=ddp")
    if cfg.eval.monitor == "val/objective" and cfg.eval.objective_weight is None:
        problems.append("eval.monitor=val/objective needs eval.objective_weight")
    if problems:
        raise ConfigError(problems)


def _close_loggers(loggers: list) -> None:
    """Finish the W&B run, so that the next ``train`` call in this process opens a new one."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()


def _versions() -> dict[str, str]:
    import torch_geometric
    import torchmetrics

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "torch_geometric": torch_geometric.__version__,
        "torchmetrics": torchmetrics.__version__,
    }
