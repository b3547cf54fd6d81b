"""``RankingModule``: the evaluation loop shared by every model.

A subclass implements ``score(users) -> [B, I]`` (and a training step when it
trains). Evaluation then ranks the full catalogue for each user, removes the
user's history from the ranking but never a held-out target, and updates the
metric suite. The data module decides what counts as history in each stage.

Legend: B users in the batch, I items.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from lightning_divrec.metrics import RankingMetricSuite
from lightning_divrec.metrics.functional.calibration import category_distribution
from lightning_divrec.rerank.rerank import Candidates, rerank
from lightning_divrec.rerank.sweep import lists_as_scores

log = logging.getLogger(__name__)

STAGES = ("val", "test")


class RankingModule(L.LightningModule):
    """Base of every recommender: full-catalogue evaluation with the metric suite.

    Args:
        num_users: U.
        num_items: I.
        model_config: the ``model`` config group as a plain dict.
        ks: metric cut-offs.
        run_config: the whole resolved run configuration, stored in every
            checkpoint so that ``evaluate`` can rebuild the data.
    """

    trainable = True
    """False for models with nothing to fit; ``train`` then only evaluates them."""

    def __init__(self, num_users: int, num_items: int, model_config: dict, ks: list[int], run_config: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.num_users, self.num_items = num_users, num_items
        self.model_config = model_config
        self.ks = list(ks)
        self.data_fingerprint: str | None = None
        self.results: dict[str, dict[str, float]] = {}
        """Last computed metrics per stage in full float64 precision (logged values are float32)."""

    @classmethod
    def from_datamodule(cls, datamodule, model_config: dict, ks: list[int], run_config: dict | None = None) -> RankingModule:
        """Build the model for the data in ``datamodule`` (after its ``setup``); override to read more sizes from it."""
        return cls(datamodule.num_users, datamodule.num_items, model_config, ks, run_config=run_config)

    # ----- wiring to the data module ---------------------------------------------------------

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if (datamodule.num_users, datamodule.num_items) != (self.num_users, self.num_items):
            raise ValueError(
                f"the model was built for {self.num_users} users and {self.num_items} items but the data "
                f"has {datamodule.num_users} and {datamodule.num_items}; the checkpoint does not match this data"
            )
        self.data_fingerprint = datamodule.fingerprint()
        self.metrics = torch.nn.ModuleDict(
            {
                stage_name: RankingMetricSuite(
                    self.ks,
                    self.num_items,
                    item_categories=datamodule.item_categories,
                    item_popularity=datamodule.item_popularity,
                    num_users=self.num_users,
                    item_interactions=datamodule.item_interaction_counts,
                    # Re-ranked lists are scored as lists, so no full-catalogue AUC.
                    compute_auc=stage_name != "val_rerank",
                )
                for stage_name in STAGES + (("val_rerank",) if self._eval_option("rerank_method", "none") != "none" else ())
            }
        )
        self.attach_data(datamodule)

    def _eval_option(self, name: str, default):
        """Return ``eval.<name>`` of the run configuration (checkpoints of older runs may lack it)."""
        run_config = self.hparams.get("run_config") or {}
        return run_config.get("eval", {}).get(name, default)

    def attach_data(self, datamodule) -> None:
        """Take what the model needs from the data module (graph, counts); override as needed."""

    def learning_rate(self) -> float:
        """Return ``model.lr`` scaled to the global batch by ``model.lr_scaling``."""
        rule = self.model_config.get("lr_scaling", "none")
        if rule == "none":
            return self.model_config["lr"]
        batch = (self.hparams.get("run_config") or {}).get("data", {}).get("batch_size")
        if batch is None:
            raise ValueError("model.lr_scaling needs the run configuration's data.batch_size")
        ratio = batch / self.model_config.get("lr_reference_batch", 2048)
        return self.model_config["lr"] * (ratio if rule == "linear" else ratio**0.5)

    # ----- scoring -----------------------------------------------------------------------------

    def score(self, users: torch.Tensor) -> torch.Tensor:
        """Return scores of every item for each user, [B] -> [B, I]; higher ranks first."""
        raise NotImplementedError

    def score_items(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Return differentiable scores of chosen items, users [B] and items [B, N] -> [B, N].

        Distillation trains its student through this method; a model that
        does not implement it cannot be a student.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement score_items")

    def prepare_scoring(self) -> None:
        """Precompute what ``score`` reuses during one evaluation pass (embeddings)."""

    def finish_scoring(self) -> None:
        """Free what ``prepare_scoring`` cached."""

    def item_embeddings(self) -> torch.Tensor | None:
        """Return [I, D] item vectors for embedding-based diversity, or None for a model without them."""
        return None

    # ----- evaluation loop ---------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self.prepare_scoring()

    def on_test_epoch_start(self) -> None:
        self.prepare_scoring()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def _evaluation_step(self, batch: dict[str, torch.Tensor], stage: str) -> None:
        users = batch["users"]
        # [B, I], copied into float32: masking writes in place, and a model may
        # return a view (an expanded row) or a tensor it keeps for later.
        scores = self.score(users).to(torch.float32, copy=True)
        history = torch.zeros_like(scores, dtype=torch.bool)
        history[batch["exclude_rows"], batch["exclude_items"]] = True
        scores.masked_fill_(history, float("-inf"))
        target = torch.zeros_like(scores, dtype=torch.bool)
        target[batch["target_rows"], batch["target_items"]] = True
        self.metrics[stage].update(scores, target, history=history)
        if stage == "val" and "val_rerank" in self.metrics:
            self._update_reranked(scores, target, history)

    def _update_reranked(self, scores: torch.Tensor, target: torch.Tensor, history: torch.Tensor) -> None:
        suite = self.metrics["val_rerank"]
        history_distribution = category_distribution(history, suite.item_categories)  # [B, C]
        candidates = Candidates.from_scores(
            scores,
            self._eval_option("rerank_candidates", 200),
            item_categories=suite.item_categories,
            history_distribution=history_distribution,
        )
        method = self._eval_option("rerank_method", "none")
        lists = rerank(method, candidates, max(self.ks), self._eval_option("rerank_trade_off", 0.5))
        suite.update(lists_as_scores(lists, self.num_items), target, history_distribution=history_distribution)

    def on_validation_epoch_end(self) -> None:
        self._log_stage("val")
        if "val_rerank" in self.metrics:
            self._log_stage("val_rerank")
        weight = self._eval_option("objective_weight", None)
        if weight is not None:
            source = "val_rerank" if "val_rerank" in self.metrics else "val"
            k = self.ks[0]
            values = self.results[source]
            objective = (1 - weight) * values[f"{source}/ndcg@{k}"] + weight * values[f"{source}/ild@{k}"]
            self.results["val"]["val/objective"] = objective
            self.log("val/objective", torch.tensor(objective, dtype=torch.float32), sync_dist=False)
        self.finish_scoring()

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")
        self.finish_scoring()

    def _log_stage(self, stage: str) -> None:
        # compute() already summed the states of every process, so every rank
        # has the same values and logging needs no sync_dist averaging.
        values = self.metrics[stage].compute()
        self.metrics[stage].reset()
        self.results[stage] = {f"{stage}/{name}": float(value) for name, value in values.items()}
        self.log_dict({f"{stage}/{name}": value.float() for name, value in values.items()}, sync_dist=False)

    # ----- checkpoints -------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["divrec"] = {"data_fingerprint": self.data_fingerprint, "model": self.model_config.get("name")}
