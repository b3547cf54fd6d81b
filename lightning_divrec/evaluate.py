"""``evaluate(cfg)``: recompute the test metrics of a saved checkpoint and sweep the re-rankers."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lightning_divrec.config import DataConfig, EvaluateConfig, validate_config
from lightning_divrec.data import RecDataModule
from lightning_divrec.models import MODELS
from lightning_divrec.rerank import RERANKERS
from lightning_divrec.rerank.report import log_to_wandb, write_report
from lightning_divrec.rerank.sweep import run_sweep
from lightning_divrec.training.run_dir import write_json_atomic
from lightning_divrec.training.trainer import build_eval_trainer

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig | dict) -> dict[str, float]:
    """Rebuild the checkpoint's data and model, rank the test users, and return the metrics.

    The data configuration is the one stored in the checkpoint. The data must
    have the same fingerprint as at training time, because otherwise the
    metrics would describe other data, so a mismatch raises ``ValueError``.
    """
    cfg = validate_config(cfg, EvaluateConfig)
    _check_rerank_config(cfg)
    if cfg.ckpt_path is None:
        raise ValueError("ckpt_path is required: evaluate.py ckpt_path=runs/<run>/checkpoints/best.ckpt")
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    if not ckpt_path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={cfg.ckpt_path}: no such checkpoint file; pass a .ckpt written by train, "
            "such as runs/<run>/checkpoints/best.ckpt"
        )
    payload = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    try:
        run_config = payload["hyper_parameters"]["run_config"]
        stored = payload["divrec"]
    except KeyError as error:
        raise ValueError(f"{ckpt_path} was not written by lightning_divrec's train (missing {error})") from error

    data_config = dict(run_config["data"])
    if cfg.data_path is not None:
        data_config["path"] = cfg.data_path
    if cfg.eval_batch_size is not None:
        data_config["eval_batch_size"] = cfg.eval_batch_size
    data_config = validate_config(data_config, DataConfig, f"data configuration stored in {ckpt_path}")
    datamodule = RecDataModule(data_config, seed=run_config["seed"])
    datamodule.prepare_data()
    datamodule.setup("test")
    if datamodule.fingerprint() != stored["data_fingerprint"]:
        raise ValueError(
            f"the data found now differs from the data {ckpt_path} was trained on (fingerprint "
            f"{datamodule.fingerprint()[:12]} vs {stored['data_fingerprint'][:12]}); point data_path at the original files"
        )

    model = MODELS[stored["model"]].load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
    trainer = build_eval_trainer(cfg.accelerator, cfg.devices)
    trainer.test(model, datamodule=datamodule, verbose=False)
    results = model.results["test"]

    output_file = Path(cfg.output_file) if cfg.output_file else ckpt_path.parent.parent / "evaluation.json"
    if not trainer.is_global_zero:
        return results
    record = {"test": results, "checkpoint": str(ckpt_path), "config": OmegaConf.to_container(cfg)}
    if cfg.rerank.methods:
        record["tradeoff"] = _sweep(model, datamodule, cfg, output_file.parent / "tradeoff")
    write_json_atomic(output_file, record)
    log.info("wrote %s", output_file)
    return results


def _check_rerank_config(cfg: DictConfig) -> None:
    choices = [method for method in RERANKERS if method != "none"]  # "none" is always the sweep's first point
    unknown = [method for method in cfg.rerank.methods if method not in choices]
    if unknown:
        raise ValueError(f"rerank.methods has unknown re-ranker(s) {unknown}; choose from {', '.join(choices)}")
    bad_values = [value for value in cfg.rerank.grid if not 0 < value <= 1]
    if bad_values:
        raise ValueError(f"rerank.grid values must lie in (0, 1], got {bad_values}")
    if cfg.rerank.k < 1 or cfg.rerank.candidates < cfg.rerank.k:
        raise ValueError(
            f"rerank.candidates ({cfg.rerank.candidates}) must be at least rerank.k ({cfg.rerank.k}), which must be at least 1"
        )


def _sweep(model, datamodule, cfg: DictConfig, folder: Path) -> dict:
    """Run the re-ranking sweep on every test user and write its report; return the summary."""
    rows = run_sweep(
        model,
        datamodule.all_users_dataloader("test"),
        datamodule,
        list(cfg.rerank.methods),
        list(cfg.rerank.grid),
        num_candidates=cfg.rerank.candidates,
        k=cfg.rerank.k,
        similarity=cfg.rerank.similarity,
    )
    diversity = "ild_cosine" if cfg.rerank.similarity == "embeddings" else "ild"
    summary = write_report(rows, folder, cfg.rerank.k, diversity)
    if cfg.rerank.wandb:
        summary["wandb_run_id"] = log_to_wandb(rows, folder, "lightning_divrec")
    log.info("trade-off report in %s", folder)
    return {"folder": str(folder), "knee": summary["knee"], "baseline": summary["baseline"]}
