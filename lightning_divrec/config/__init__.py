"""Configuration schemas, composition and validation."""

from lightning_divrec.config.loading import (
    default_config_dir,
    load_evaluate_config,
    load_train_config,
    validate_config,
)
from lightning_divrec.config.schema import (
    DataConfig,
    DistillationConfig,
    EvalConfig,
    EvaluateConfig,
    GraphSAGEConfig,
    LoggerConfig,
    MODEL_SCHEMAS,
    ModelConfig,
    PopularityConfig,
    TrainConfig,
    TrainerConfig,
)
from lightning_divrec.config.validation import ConfigError

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "EvaluateConfig",
    "DistillationConfig",
    "GraphSAGEConfig",
    "LoggerConfig",
    "MODEL_SCHEMAS",
    "ModelConfig",
    "PopularityConfig",
    "TrainConfig",
    "TrainerConfig",
    "default_config_dir",
    "load_evaluate_config",
    "load_train_config",
    "validate_config",
]
