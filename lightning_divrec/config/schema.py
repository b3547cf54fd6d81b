"""Typed schemas of every configuration key, one dataclass per group.

Each field carries its default and a docstring. ``validate`` in
``lightning_divrec.config.validation`` checks a loaded YAML tree against
these classes and reports every unknown key and wrong type at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from lightning_divrec.config.model_schemas import (  # noqa: F401 (re-exported)
    MODEL_SCHEMAS,
    DistillationConfig,
    GraphSAGEConfig,
    ModelConfig,
    PopularityConfig,
)


@dataclass
class TabularConfig:
    """Files and column names of ``data.name=tabular`` (CSV, TSV, Parquet or JSONL)."""

    interactions_file: str = "interactions.csv"
    """Interaction file, relative to ``data.path`` unless absolute."""

    items_file: Optional[str] = None
    """Optional item-feature file (same formats), relative to ``data.path``."""

    format: Optional[Literal["csv", "tsv", "parquet", "jsonl"]] = None
    """File format of both files; null infers it from each file's suffix
    (``.csv``, ``.tsv``/``.tab``, ``.parquet``/``.pq``, ``.jsonl``/``.json``)."""

    user: str = "user_id"
    """Interaction column with the user id (integers or strings)."""

    item: str = "item_id"
    """Interaction column with the item id (integers or strings)."""

    rating: Optional[str] = "rating"
    """Interaction column with the rating; null gives every interaction rating 1."""

    timestamp: Optional[str] = "timestamp"
    """Interaction column with the Unix time in seconds; null uses the row
    number as the time, so time-ordered splits follow the file order."""

    item_id: str = "item_id"
    """Item-file column with the item id, matched against ``item``."""

    title: Optional[str] = "title"
    """Item-file column with the item text; null leaves every text empty."""

    categories: Optional[str] = "categories"
    """Item-file column with the categories: a list, or a string split on
    ``category_separator``; null gives no categories."""

    category_separator: str = "|"
    """Separator of categories stored as one string."""


@dataclass
class AmazonConfig:
    """Files of ``data.name=amazon-2023`` (Amazon Reviews 2023, McAuley Lab)."""

    reviews: str = "reviews.jsonl"
    """Review file (JSONL or Parquet) with ``user_id``, ``parent_asin``,
    ``rating`` and ``timestamp`` (milliseconds), relative to ``data.path``."""

    metadata: Optional[str] = "meta.jsonl"
    """Item metadata file (JSONL or Parquet) with ``parent_asin``, ``title``,
    ``main_category`` and ``categories``; null reads no item features."""

    category: Optional[str] = None
    """Hub subset such as ``All_Beauty``, loaded from the Hugging Face hub
    only when ``data.download=true`` and the local files are missing."""


@dataclass
class SyntheticConfig:
    """Size and shape of ``data.name=synthetic``."""

    num_users: int = 1000
    """Users U; every user gets at least one interaction."""

    num_items: int = 500
    """Items I; item popularity follows a power law over a shuffled item order."""

    num_interactions: int = 20000
    """Interactions N before preprocessing (repeated user-item pairs included)."""

    num_categories: int = 20
    """Categories C; each item gets 1 to 3 of them."""

    popularity_exponent: float = 1.0
    """Exponent a of the item popularity: the r-th most popular item is drawn
    with probability proportional to r^-a."""

    seed: int = 0
    """Seed of the generator; equal configs give identical data."""


@dataclass
class DataConfig:
    name: Literal[
        "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "recbole", "tabular", "amazon-2023", "synthetic"
    ] = "ml-100k"
    """Source reader: a MovieLens size, RecBole atomic files, generic tables
    (``data.tabular``), Amazon Reviews 2023 (``data.amazon``) or the generator
    (``data.synthetic``)."""

    path: Optional[str] = None
    """Folder with the dataset files. ``ml-100k``: ``u.data`` and ``u.item``,
    or RecBole atomic ``ml-100k.inter`` and ``ml-100k.item``; when null, the
    copy shipped in the ``recbole`` wheel is used, then the download cache.
    ``ml-1m``/``ml-10m``: ``ratings.dat`` and ``movies.dat``. ``ml-20m`` to
    ``ml-32m``: ``ratings.csv`` and ``movies.csv``. ``recbole``: one
    ``*.inter`` file and at most one ``*.item`` file. ``tabular`` and
    ``amazon-2023``: the folder that the file names in ``data.tabular`` and
    ``data.amazon`` are relative to (the working directory when null for
    ``tabular``). ``synthetic`` reads no files."""

    download: bool = False
    """Download the GroupLens zip (checksum verified) when no local copy is
    found. Off by default so that runs never touch the network silently."""

    cache_dir: str = "~/.cache/lightning_divrec"
    """Folder for downloaded archives and, with ``data.cache``, prepared datasets."""

    cache: bool = False
    """Write the preprocessed and split dataset once under ``cache_dir/prepared``
    and read it back in later runs and on every DDP process."""

    tabular: TabularConfig = field(default_factory=TabularConfig)
    """Files and columns of ``data.name=tabular``."""

    amazon: AmazonConfig = field(default_factory=AmazonConfig)
    """Files of ``data.name=amazon-2023``."""

    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    """Size of ``data.name=synthetic``."""

    rating_threshold: Optional[float] = None
    """Keep only interactions with rating >= this value; null keeps all."""

    duplicates: Literal["keep", "first", "last", "drop"] = "keep"
    """Repeated (user, item) pairs: ``keep`` every row, keep the ``first`` or
    ``last`` by time (ties by file order), or ``drop`` every row of a repeated pair."""

    min_user_interactions: int = 0
    """k-core: repeatedly remove users with fewer interactions than this
    (and items below ``min_item_interactions``) until none is left; 0 keeps all."""

    min_item_interactions: int = 0
    """k-core threshold of items, applied together with ``min_user_interactions``."""

    split: Literal["loo", "random_811", "ratio_time", "ratio_random", "time_cut"] = "loo"
    """``loo``: per user by time, the last interaction is test and the second
    to last validation. ``random_811``: RecBole's random order 8:1:1 per user.
    ``ratio_time`` and ``ratio_random``: each user's interactions, ordered by
    time or shuffled, split by ``split_ratios``. ``time_cut``: one global cut
    by time (``split_cut_times``, or the quantiles of ``split_ratios``)."""

    split_seed: int = 2020
    """Seed of the shuffle used by ``random_811`` and ``ratio_random``."""

    split_ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    """Train, validation and test shares of ``ratio_time``, ``ratio_random`` and ``time_cut``."""

    split_cut_times: Optional[list[int]] = None
    """``time_cut`` only: Unix times [t_valid, t_test]; interactions before
    t_valid train, before t_test validate, the rest test. Null derives both
    from ``split_ratios``."""

    cold_users: Literal["error", "drop"] = "error"
    """A user with validation or test interactions but none in training:
    ``error`` stops with the user's id, ``drop`` removes those held-out interactions."""

    negative_sampling: Literal["uniform", "popularity"] = "uniform"
    """Distribution of training negatives over the user's non-positive items:
    uniform, or proportional to (training interactions of the item)^``negative_alpha``."""

    negative_alpha: float = 0.75
    """Exponent of popularity negative sampling; 0 gives every item weight 1 (uniform sampling),
    and with alpha > 0 items without training interactions are never drawn."""

    batch_size: int = 2048
    """Global batch: training triples (user, positive, negative) per optimizer
    step, summed over every process and accumulation step. Each process loads
    batch_size / (processes * trainer.accumulate_grad_batches), which must be
    a whole number, so the optimisation does not change with the number of GPUs."""

    eval_batch_size: int = 256
    """Users scored against the full catalogue per evaluation batch."""

    num_workers: int = 0
    """DataLoader worker processes."""

    mask_valid_at_test: bool = True
    """At test time, also remove each user's validation items from the ranking
    (training items are always removed; the held-out targets never are)."""


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    """Lightning accelerator: ``cpu``, ``gpu``, ``auto``."""

    devices: int = 1
    """Devices (processes) per node."""

    num_nodes: int = 1
    """Nodes in the job."""

    strategy: str = "auto"
    """Lightning strategy: ``auto`` or ``ddp`` (spawn-based strategies are rejected)."""

    precision: Literal["32-true", "16-mixed", "bf16-mixed"] = "32-true"
    """Numeric precision of training."""

    max_epochs: int = 100
    """Upper bound on training epochs; -1 trains until early stopping ends the run."""

    check_val_every_n_epoch: int = 1
    """Validate after this many epochs."""

    early_stopping_patience: Optional[int] = 10
    """Stop after this many validations without a better monitored metric;
    null disables early stopping."""

    accumulate_grad_batches: int = 1
    """Micro-batches per optimizer step on each process (see ``data.batch_size``)."""

    gradient_clip_val: Optional[float] = None
    """Clip the gradient norm to this value; null disables clipping."""

    deterministic: bool = False
    """Ask PyTorch for deterministic kernels."""

    log_every_n_steps: int = 20
    """Training-loss logging interval in optimizer steps."""

    enable_progress_bar: bool = True
    """Show a progress bar."""

    limit_train_batches: Optional[float] = None
    """Fraction (float <= 1) of training batches per epoch; null uses all."""


@dataclass
class WandbConfig:
    enabled: bool = True
    """Log to Weights & Biases."""

    mode: Literal["offline", "online"] = "offline"
    """``offline`` writes the run under the run folder and needs no account;
    sync it later with ``wandb sync``. ``online`` streams to the server."""

    project: str = "lightning_divrec"
    """W&B project name."""

    entity: Optional[str] = None
    """W&B team or user; null uses the account default."""

    tags: list[str] = field(default_factory=list)
    """Tags attached to the run."""


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)
    """Weights & Biases logger settings."""

    csv: bool = True
    """Also write ``csv/metrics.csv`` in the run folder."""


@dataclass
class EvalConfig:
    ks: list[int] = field(default_factory=lambda: [10, 20])
    """Cut-offs K of every ranking metric."""

    monitor: str = "val/ndcg@10"
    """Validation metric that selects the best checkpoint (higher is better)."""

    rerank_method: Literal["none", "mmr", "mmr_mean", "dpp", "calibration"] = "none"
    """Also re-rank each validation user's candidates with this method and
    log the metrics of the re-ranked lists as ``val_rerank/<metric>@k``."""

    rerank_trade_off: float = 0.5
    """Trade-off knob of the validation re-ranker, in [0, 1]."""

    rerank_candidates: int = 200
    """Top-M items that the validation re-ranker chooses from."""

    objective_weight: Optional[float] = None
    """When set to w in [0, 1], log ``val/objective`` = (1 - w) NDCG@K + w ILD@K
    at the first K of ``ks``, of the re-ranked lists when a re-ranker is set;
    choose checkpoints by it with ``eval.monitor=val/objective``."""


@dataclass
class CheckpointConfig:
    every_n_train_steps: Optional[int] = None
    """Optimizer steps between two writes of ``checkpoints/last.ckpt`` inside
    an epoch, so that ``resume=last`` continues from the middle of the epoch.
    Null writes ``last.ckpt`` only at the end of each epoch."""


@dataclass
class TrainConfig:
    seed: int = 42
    """Seed of Python, NumPy and torch on every process."""

    output_dir: str = "runs"
    """Parent folder of run folders."""

    run_name: Optional[str] = None
    """Run folder name; null uses ``<model>-<data>-<timestamp>``."""

    resume: Optional[str] = None
    """``last`` continues the run ``run_name`` from its ``checkpoints/last.ckpt``
    (model, optimizer, epoch) and its W&B run; a path continues from that
    checkpoint instead. The run folder must exist. ``auto`` resumes like
    ``last`` when ``checkpoints/last.ckpt`` exists and starts the run
    otherwise; in a Slurm job it needs no ``run_name``, because the job id
    names the folder (so a requeued job finds it again)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=GraphSAGEConfig)
    """Model and its options; the keys allowed depend on ``model.name`` (see ``MODEL_SCHEMAS``)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Mid-epoch writes of ``last.ckpt``, besides the one at the end of each epoch."""


@dataclass
class RerankConfig:
    methods: list[str] = field(default_factory=lambda: ["mmr", "mmr_mean", "dpp", "calibration"])
    """Re-rankers to sweep: any of ``mmr``, ``mmr_mean``, ``dpp`` and ``calibration``. ``mmr_mean``
    is MMR with the mean similarity to the selected items instead of the highest. An empty list
    skips the sweep."""

    grid: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    """Values of the trade-off knob in (0, 1]; 0, the model's own order, is always included."""

    candidates: int = 200
    """Top-M items of each user that a re-ranker chooses from."""

    k: int = 10
    """Length of the re-ranked lists and cut-off of the sweep's metrics."""

    similarity: Literal["categories", "embeddings"] = "categories"
    """Item similarity of MMR and DPP: Jaccard of genres, or cosine of the
    model's item embeddings. The Pareto front uses the matching ILD."""

    wandb: bool = False
    """Also log the sweep table and plot to an offline W&B run in the output folder."""


@dataclass
class EvaluateConfig:
    ckpt_path: Optional[str] = None
    """Checkpoint written by ``train``; required."""

    data_path: Optional[str] = None
    """Override of ``data.path`` stored in the checkpoint, for a run moved to
    another machine."""

    accelerator: str = "cpu"
    """Lightning accelerator used for scoring."""

    devices: int = 1
    """Devices used for scoring."""

    eval_batch_size: Optional[int] = None
    """Override of ``data.eval_batch_size``; the metrics do not depend on it."""

    output_file: Optional[str] = None
    """Path of the metrics JSON; null writes ``evaluation.json`` in the
    checkpoint's run folder."""

    rerank: RerankConfig = field(default_factory=RerankConfig)
    """Trade-off sweep written next to the metrics JSON, in ``tradeoff/``."""
