"""Compose ``configs/train.yaml`` with its groups and command-line overrides.

Overrides take two forms, as in Hydra:

* ``group=choice`` picks ``configs/<group>/<choice>.yaml`` (``model=popularity``);
* ``dotted.key=value`` sets one value (``trainer.max_epochs=5``); values are
  parsed as YAML, so ``5`` is an integer and ``null`` is None.

The composed tree is validated against the schema before anything runs, and
every wrong key is reported in one ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Sequence

import yaml
from omegaconf import DictConfig, OmegaConf

from lightning_divrec.config.schema import EvaluateConfig, TrainConfig
from lightning_divrec.config.validation import ConfigError, find_problems

CONFIG_DIR_ENV = "DIVREC_CONFIG_DIR"


def default_config_dir() -> Path:
    """Return the ``configs/`` folder: ``$DIVREC_CONFIG_DIR``, else the one beside the package."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV]).expanduser()
    return Path(__file__).resolve().parents[2] / "configs"


def load_train_config(overrides: Sequence[str] = (), config_dir: str | Path | None = None) -> DictConfig:
    """Compose, override and validate the training configuration."""
    return _compose("train.yaml", TrainConfig, overrides, config_dir)


def load_evaluate_config(overrides: Sequence[str] = (), config_dir: str | Path | None = None) -> DictConfig:
    """Compose, override and validate the evaluation configuration."""
    return _compose("evaluate.yaml", EvaluateConfig, overrides, config_dir)


def validate_config(cfg: Any, schema: type, source: str = "configuration") -> DictConfig:
    """Check ``cfg`` against ``schema`` and return it as a typed ``DictConfig``.

    Raises ``ConfigError`` listing every problem when any key is unknown or
    any value has the wrong type.
    """
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    problems = find_problems(container, schema)
    if problems:
        raise ConfigError(problems, source)
    return OmegaConf.merge(_structured(schema, container), container)


def _structured(schema: type, container: dict) -> DictConfig:
    """Return the typed defaults of ``schema``, with each variant group typed by its chosen class."""
    defaults = OmegaConf.structured(schema)
    for item in dataclasses.fields(schema):
        field_type = typing.get_type_hints(schema)[item.name]
        value = container.get(item.name)
        if not (dataclasses.is_dataclass(field_type) and isinstance(value, dict)):
            continue
        if hasattr(field_type, "schema_for"):
            variant, _ = field_type.schema_for(value, item.name)
            defaults[item.name] = _structured(variant, value)
    return defaults


def _compose(root_name: str, schema: type, overrides: Sequence[str], config_dir) -> DictConfig:
    config_dir = Path(config_dir) if config_dir is not None else default_config_dir()
    root_file = config_dir / root_name
    if not root_file.is_file():
        raise FileNotFoundError(
            f"config file {root_file} not found; run from a clone of lightning_divrec "
            f"or set {CONFIG_DIR_ENV} to its configs/ folder"
        )
    root = _read_yaml(root_file)
    defaults = root.pop("defaults", []) or []
    choices = {group: choice for entry in defaults for group, choice in entry.items()}

    problems: list[str] = []
    dotted: list[str] = []
    for override in overrides:
        if "=" not in override:
            problems.append(f"override {override!r} is not of the form key=value")
            continue
        key, value = override.split("=", 1)
        if key in choices:
            choices[key] = value
        else:
            dotted.append(override)

    layers = [OmegaConf.create(root)]
    for group, choice in choices.items():
        group_file = config_dir / group / f"{choice}.yaml"
        if not group_file.is_file():
            available = sorted(path.stem for path in (config_dir / group).glob("*.yaml"))
            problems.append(
                f"'{group}={choice}' names no file {group_file}; choose one of: {', '.join(available)}"
            )
            continue
        layers.append(OmegaConf.create({group: _read_yaml(group_file)}))
    try:
        layers.append(OmegaConf.from_dotlist(dotted))
    except Exception as error:  # OmegaConf raises several grammar error types.
        problems.append(f"could not parse overrides {dotted}: {error}")

    # Keys and types are checked even when a group choice was wrong, so that
    # one run of the command reports every problem.
    merged = OmegaConf.to_container(OmegaConf.merge(*layers), resolve=True)
    problems.extend(find_problems(merged, schema))
    if problems:
        raise ConfigError(problems, f"configuration composed from {root_file} and overrides")
    return validate_config(merged, schema)


def _read_yaml(path: Path) -> dict:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError([f"{path} is not valid YAML: {error}"], str(path)) from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError([f"{path} must contain a mapping at the top level"], str(path))
    return content
