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
    remove_if_incomplete,
    resolve_run_dir,
    timestamp,
    write_json_atomic,
    write_text_atomic,
)
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

    resume_from, wandb_id = None, None
    if cfg.resume is not None:
        run_dir, resume_from, wandb_id = _resume_target(cfg)
        creates_run_dir = False
        if RUN_DIR_ENV not in os.environ:
            os.environ[RUN_DIR_ENV] = str(run_dir)
            launching_resume = True
        else:
            launching_resume = False
    else:
        launching_resume = False
        run_dir, creates_run_dir = resolve_run_dir(
            cfg.output_dir, cfg.run_name, f"{cfg.model.name}-{cfg.data.name}-{timestamp()}"
        )
    loggers = []
    try:
        if creates_run_dir:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))
            os.environ[RUN_DIR_ENV] = str(run_dir)
        csv_version = f"resumed-{timestamp()}" if resume_from else ""
        loggers = build_loggers(cfg, run_dir, resume_wandb_id=wandb_id, csv_version=csv_version)
        for logger in loggers:
            logger.log_hyperparams(container)
            if (creates_run_dir or launching_resume) and isinstance(logger, WandbLogger):
                # Kept so that a resumed or requeued run can continue the same W&B run.
                write_text_atomic(run_dir / "wandb_run_id", logger.experiment.id + "\n")
        trainer, checkpoint = build_trainer(cfg, run_dir, loggers)

        if model.trainable:
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
            best = checkpoint.best_model_path or checkpoint.last_model_path
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
        if creates_run_dir or launching_resume:
            os.environ.pop(RUN_DIR_ENV, None)


def _resume_target(cfg: DictConfig) -> tuple[Path, str, str | None]:
    """Return the run folder, checkpoint and W&B run id that ``resume`` names; raise naming what is missing."""
    if cfg.run_name is None:
        raise ValueError("resume needs run_name=<the run folder to continue>")
    run_dir = Path(cfg.output_dir).expanduser() / cfg.run_name
    if not run_dir.is_dir():
        raise FileNotFoundError(f"resume: run folder {run_dir} not found; check output_dir and run_name")
    checkpoint = run_dir / "checkpoints" / "last.ckpt" if cfg.resume == "last" else Path(cfg.resume).expanduser()
    if not checkpoint.is_file():
        raise FileNotFoundError(f"resume={cfg.resume}: checkpoint {checkpoint} not found")
    id_file = run_dir / "wandb_run_id"
    wandb_id = id_file.read_text().strip() if id_file.is_file() else None
    return run_dir, str(checkpoint), wandb_id


def _check_run_options(cfg: DictConfig) -> None:
    problems = []
    if not 0 <= cfg.eval.rerank_trade_off <= 1:
        problems.append(f"eval.rerank_trade_off={cfg.eval.rerank_trade_off} must lie in [0, 1]")
    if cfg.eval.objective_weight is not None and not 0 <= cfg.eval.objective_weight <= 1:
        problems.append(f"eval.objective_weight={cfg.eval.objective_weight} must lie in [0, 1]")
    if cfg.eval.rerank_candidates < max(cfg.eval.ks):
        problems.append(f"eval.rerank_candidates={cfg.eval.rerank_candidates} must be at least max(eval.ks)={max(cfg.eval.ks)}")
    world_size = cfg.trainer.devices * cfg.trainer.num_nodes
    try:
        per_device_batch_size(cfg.data.batch_size, world_size, cfg.trainer.accumulate_grad_batches)
    except ValueError as error:
        problems.append(str(error))
    slurm_tasks = os.environ.get("SLURM_NTASKS")
    if slurm_tasks and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive") and int(slurm_tasks) != world_size:
        # Lightning would wait for processes that Slurm never starts.
        problems.append(
            f"Slurm started {slurm_tasks} task(s) but trainer.devices x trainer.num_nodes = {world_size}; "
            "make --ntasks-per-node equal trainer.devices and --nodes equal trainer.num_nodes"
        )
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
