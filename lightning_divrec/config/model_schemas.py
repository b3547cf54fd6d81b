"""Config schemas of the ``model`` group, one dataclass per model.

``model.name`` chooses the dataclass from ``MODEL_SCHEMAS``, and validation
checks every other ``model.*`` key against that class alone, so a key of one
model given to another is reported as unknown. A new model adds a subclass of
``ModelConfig`` here (a docstring under each field), one entry in
``MODEL_SCHEMAS``, one in ``lightning_divrec.models.MODELS`` and a file
``configs/model/<name>.yaml``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal


@dataclass
class ModelConfig:
    """Fields shared by every model: its name and the optimiser settings."""

    name: str = "graphsage"
    """Model to train; one of the keys of ``MODEL_SCHEMAS``."""

    lr: float = 0.002
    """Adam learning rate at the global batch ``lr_reference_batch``."""

    lr_scaling: Literal["none", "linear", "sqrt"] = "none"
    """Rule that relates the learning rate to ``data.batch_size``. ``none``
    keeps ``lr``, ``linear`` uses lr * batch / lr_reference_batch, and ``sqrt``
    the square root of that ratio. The number of GPUs does not change it,
    because the batch is global."""

    lr_reference_batch: int = 2048
    """Global batch at which ``lr`` was tuned."""

    weight_decay: float = 0.0
    """Adam weight decay."""

    @classmethod
    def schema_for(cls, node: dict, path: str) -> tuple[type | None, str | None]:
        """Return the dataclass that ``node['name']`` names, or None and a message naming the key."""
        name = node.get("name")
        if name is None:
            return None, f"'{path}.name' is missing; choose one of {_choices()}"
        schema = MODEL_SCHEMAS.get(name)
        if schema is None:
            close = difflib.get_close_matches(str(name), list(MODEL_SCHEMAS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return None, f"'{path}.name' has invalid value {name!r}; choose one of {_choices()}{hint}"
        return schema, None


@dataclass
class GraphSAGEConfig(ModelConfig):
    """GraphSAGE over the bipartite user-item graph, trained with BPR."""

    name: Literal["graphsage"] = "graphsage"
    """Selects this model."""

    embedding_dim: int = 64
    """Width of the id embeddings and of every GraphSAGE layer."""

    num_layers: int = 2
    """Message-passing layers; 0 gives plain matrix factorisation."""

    aggr: Literal["mean", "max", "sum"] = "mean"
    """Neighbour aggregation of ``SAGEConv``."""

    layer_combination: Literal["last", "mean"] = "mean"
    """Final node representation: the last layer, or the mean of the input
    embeddings and every layer output."""

    dropout: float = 0.2
    """Dropout on node representations between layers."""

    activation: Literal["relu", "none"] = "relu"
    """Non-linearity between GraphSAGE layers."""

    identity_init: bool = False
    """Initialise every SAGEConv weight at the identity (an untrained layer
    then adds the neighbour aggregate to the node's own embedding)."""

    embedding_reg: float = 0.0
    """L2 penalty on the id embeddings of each batch's users and items,
    divided by the batch size (the LightGCN form)."""


@dataclass
class PopularityConfig(ModelConfig):
    """Most-popular baseline: ranks items by training interaction count; nothing is trained."""

    name: Literal["popularity"] = "popularity"
    """Selects this model."""


MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "graphsage": GraphSAGEConfig,
    "popularity": PopularityConfig,
}
"""Schema of each ``model.name``."""


def _choices() -> str:
    return ", ".join(repr(name) for name in MODEL_SCHEMAS)
