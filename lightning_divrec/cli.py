"""Command-line entry points ``divrec-train`` and ``divrec-evaluate`` (and ``train.py``, ``evaluate.py``)."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Callable, Sequence

from omegaconf import OmegaConf

from lightning_divrec.config import ConfigError, default_config_dir, load_evaluate_config, load_train_config
from lightning_divrec.data.sources.common import DataFormatError

TRAIN_USAGE = """usage: divrec-train [--print-config] [group=choice ...] [dotted.key=value ...]

Train a recommender and report validation and test metrics.

Groups (files in {config_dir}):
{groups}
Examples:
  divrec-train                                   GraphSAGE on MovieLens-100K
  divrec-train model=popularity                  most-popular baseline
  divrec-train data.split=random_811 trainer.max_epochs=50
  divrec-train trainer=ddp_sim                   two CPU processes over gloo
"""

EVALUATE_USAGE = """usage: divrec-evaluate ckpt_path=PATH [data_path=DIR] [output_file=FILE]

Recompute the test metrics of a checkpoint written by divrec-train.
"""

# Errors caused by the user's input: reported in one message, without a traceback.
USER_ERRORS = (ConfigError, DataFormatError, FileNotFoundError, FileExistsError, ValueError)


class _RankZeroFilter(logging.Filter):
    """Drop log records on every process but global rank 0."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _is_rank_zero()


def silence_library_noise() -> None:
    """Hide warnings of installed libraries that a user of the command line cannot act on."""
    # Lightning 2.6 warns about its own use of a deprecated torch pytree API.
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)")
    # wandb prints its own status lines and, with Lightning's WandbLogger, a
    # warning about the deprecated "anonymous" setting. The printed run folder shows where the run went.
    os.environ.setdefault("WANDB_SILENT", "true")


def configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(_RankZeroFilter())
    package_log = logging.getLogger("lightning_divrec")
    package_log.setLevel(logging.INFO)
    package_log.addHandler(handler)


def _groups_help() -> str:
    config_dir = default_config_dir()
    lines = []
    for folder in sorted(path for path in config_dir.iterdir() if path.is_dir()) if config_dir.is_dir() else []:
        choices = ", ".join(sorted(path.stem for path in folder.glob("*.yaml")))
        lines.append(f"  {folder.name}: {choices}")
    return "\n".join(lines) + "\n"


def _run(argv: Sequence[str] | None, usage: str, body: Callable[[list[str]], int]) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in args):
        print(usage.format(config_dir=default_config_dir(), groups=_groups_help()))
        return 0
    configure_logging()
    silence_library_noise()
    try:
        return body(args)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def train_main(argv: Sequence[str] | None = None) -> int:
    """Run ``divrec-train``; return the process exit code."""

    def body(args: list[str]) -> int:
        from lightning_divrec.train import train

        print_only = "--print-config" in args
        cfg = load_train_config([arg for arg in args if arg != "--print-config"])
        if print_only:
            print(OmegaConf.to_yaml(cfg))
            return 0
        metrics = train(cfg)
        if _is_rank_zero():
            _print_table("test", metrics["test"])
            print(f"run folder: {metrics['run_dir']}")
        return 0

    return _run(argv, TRAIN_USAGE, body)


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """Run ``divrec-evaluate``; return the process exit code."""

    def body(args: list[str]) -> int:
        from lightning_divrec.evaluate import evaluate

        metrics = evaluate(load_evaluate_config(args))
        if _is_rank_zero():
            _print_table("test", metrics)
        return 0

    return _run(argv, EVALUATE_USAGE, body)


def _is_rank_zero() -> bool:
    """Return True unless a DDP or Slurm launcher marked this process as another rank."""
    rank = os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0"))
    return rank == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def _print_table(stage: str, metrics: dict[str, float]) -> None:
    print(f"{stage} metrics:")
    for name, value in metrics.items():
        print(f"  {name:<22} {value:.6f}")
