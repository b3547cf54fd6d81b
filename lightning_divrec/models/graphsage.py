"""GraphSAGE recommender trained with BPR or sampled softmax on the user-item graph of training interactions.

Legend: B batch, N negatives per positive, U users, I items, D dim, E training edges, F item feature width.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from lightning_divrec.data.neighbors import SampledBatch, require_neighbor_backend, sampled_batch
from lightning_divrec.models.base import RankingModule
from lightning_divrec.models.components.graph import BipartiteGraph, category_rebalance_weights
from lightning_divrec.models.components.sage import BipartiteSAGE
from lightning_divrec.models.components.text_encoder import item_text_embeddings
from lightning_divrec.models.losses import bpr_loss, sampled_softmax_loss

log = logging.getLogger(__name__)

ITEM_FEATURES = ("categories", "text")


def item_feature_matrix(model_config: dict, datamodule, cache_dir: str | None) -> torch.Tensor | None:
    """Return the fixed item inputs named by ``model.item_features``, [I, F] float32, or None.

    ``categories`` contributes each item's multi-hot genres divided by its
    number of genres; ``text`` the frozen title embeddings of
    ``model.text_model``, cached under ``<cache_dir>/text``.
    """
    names = list(model_config.get("item_features") or [])
    unknown = [name for name in names if name not in ITEM_FEATURES]
    if unknown:
        raise ValueError(f"model.item_features has unknown value(s) {unknown}; choose from {list(ITEM_FEATURES)}")
    parts = []
    if "categories" in names:
        categories = datamodule.item_categories.float()  # [I, C]
        if categories.shape[1] == 0:
            raise ValueError("model.item_features includes 'categories' but this dataset has no item categories")
        parts.append(categories / categories.sum(dim=1, keepdim=True).clamp(min=1))
    if "text" in names:
        titles = list(datamodule.interactions.item_titles)
        if not any(titles):
            raise ValueError("model.item_features includes 'text' but this dataset has no item titles")
        text_cache = None if cache_dir is None else str(Path(cache_dir).expanduser() / "text")
        parts.append(item_text_embeddings(titles, model_config.get("text_model"), cache_dir=text_cache))
    return torch.cat(parts, dim=1) if parts else None


class GraphSAGEModule(RankingModule):
    """GraphSAGE trained on the full graph (default) or on sampled neighbourhoods.

    By default every training step propagates over all training edges. With
    ``model.num_neighbors`` each step propagates over the neighbourhood that
    PyG's ``LinkNeighborLoader`` samples around the batch's edges (see
    ``lightning_divrec.data.neighbors``); evaluation always uses
    the full graph.

    Score of user u for item i is the dot product of their final
    representations. The graph and the item features are taken from the data
    module in ``setup`` and never stored in checkpoints, which hold only
    weights.

    Args:
        item_feature_dim: F, the width of ``item_feature_matrix`` for this
            data (0 without item features); ``from_datamodule`` sets it.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        model_config: dict,
        ks: list[int],
        run_config: dict | None = None,
        item_feature_dim: int = 0,
    ):
        super().__init__(num_users, num_items, model_config, ks, run_config)
        weights_aggregation = model_config.get("rebalance_mode", "aggregation") in ("aggregation", "both")
        if model_config.get("rebalance_strength", 0.0) != 0 and weights_aggregation and model_config["aggr"] != "mean":
            raise ValueError(
                f"model.rebalance_strength={model_config['rebalance_strength']} with "
                f"model.rebalance_mode={model_config.get('rebalance_mode', 'aggregation')} weights the neighbour mean, "
                f"so it needs model.aggr=mean (got {model_config['aggr']!r}); model.rebalance_mode=loss works with any aggregation"
            )
        if model_config.get("num_negatives", 1) < 1:
            raise ValueError(f"model.num_negatives must be at least 1, got {model_config['num_negatives']}")
        fanout = model_config.get("num_neighbors")
        if fanout is not None:
            if len(fanout) != model_config["num_layers"] or model_config["num_layers"] == 0:
                raise ValueError(
                    f"model.num_neighbors={list(fanout)} needs one entry per GraphSAGE layer "
                    f"(model.num_layers={model_config['num_layers']}, at least 1)"
                )
            if any(count == 0 or count < -1 for count in fanout):
                raise ValueError(f"model.num_neighbors={list(fanout)}: each entry is a positive count, or -1 for all neighbours")
        self.encoder = BipartiteSAGE(
            num_users,
            num_items,
            dim=model_config["embedding_dim"],
            num_layers=model_config["num_layers"],
            aggr=model_config["aggr"],
            layer_combination=model_config["layer_combination"],
            dropout=model_config["dropout"],
            activation=model_config["activation"],
            identity_init=model_config["identity_init"],
            normalize=model_config.get("normalize", False),
            item_feature_dim=item_feature_dim,
            embedding_init=model_config.get("embedding_init", "normal"),
        )
        self.graph: BipartiteGraph | None = None
        self._edge_weight: torch.Tensor | None = None  # [E] weights of the neighbour mean, also used for sampled subgraphs.
        self._loss_weight: EdgeWeightTable | None = None  # Rebalancing weights of each training interaction's loss.
        self._negative_sampler = None  # The data module's NegativeSampler, for model.num_negatives > 1.
        self.register_buffer("item_features", None, persistent=False)
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None
        self._epoch_loss_sums: dict[str, torch.Tensor] = {}
        self._epoch_loss_count = 0

    @classmethod
    def from_datamodule(cls, datamodule, model_config: dict, ks: list[int], run_config: dict | None = None) -> GraphSAGEModule:
        features = item_feature_matrix(model_config, datamodule, _cache_dir(run_config))
        feature_dim = 0 if features is None else features.shape[1]
        model = cls(datamodule.num_users, datamodule.num_items, model_config, ks, run_config, item_feature_dim=feature_dim)
        if model_config.get("num_neighbors") is not None:
            # Checked when a run is built, not in __init__: evaluating such a
            # checkpoint uses the full graph and needs no sampling backend.
            require_neighbor_backend("model.num_neighbors")
        return model

    def attach_data(self, datamodule) -> None:
        strength = self.model_config.get("rebalance_strength", 0.0)
        edges = datamodule.train_edges
        weights = category_rebalance_weights(edges, datamodule.item_categories, self.num_users, strength) if strength else None
        mode = self.model_config.get("rebalance_mode", "aggregation")
        aggregation_weights = weights if mode in ("aggregation", "both") else None
        self.graph = BipartiteGraph(edges, self.num_users, self.num_items, user_edge_weight=aggregation_weights)
        self._negative_sampler = getattr(datamodule, "negative_sampler", None)
        self._edge_weight = aggregation_weights
        self._loss_weight = None
        if weights is not None and mode in ("loss", "both"):
            self._loss_weight = EdgeWeightTable(edges, per_user_normalised(edges[0], weights, self.num_users), self.num_items)
        if self.model_config.get("num_neighbors") is not None:
            datamodule.use_link_neighbor_batches(list(self.model_config["num_neighbors"]), self.model_config.get("num_negatives", 1))
        features = item_feature_matrix(self.model_config, datamodule, _cache_dir(self.hparams.get("run_config")))
        expected = 0 if self.encoder.item_feature_projection is None else self.encoder.item_feature_projection.in_features
        found = 0 if features is None else features.shape[1]
        if found != expected:
            raise ValueError(f"the model was built for {expected} item feature columns but the data gives {found}")
        self.item_features = None if features is None else features.to(self.device)

    def _encode(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.graph = self.graph.to(self.device)
        return self.encoder(self.graph, self.item_features)  # [U, D], [I, D]

    def _encode_sampled(self, batch: SampledBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate over a sampled subgraph: [U', D] and [I', D] for its local nodes."""
        weight = None if self._edge_weight is None else self._edge_weight.to(self.device)[batch.edge_ids]
        graph = BipartiteGraph(batch.edges, len(batch.users), len(batch.items), user_edge_weight=weight)
        return self.encoder(graph, self.item_features, node_ids=(batch.users, batch.items))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        if isinstance(batch, dict):
            users_all, items_all = self._encode()
            negatives = self._negatives(batch)  # [B, N]
            seed_users, positives = batch["users"], batch["positives"]
            global_ids = (seed_users, positives, negatives)
        else:  # A LinkNeighborLoader batch: seed_users, positives and negatives index the subgraph.
            sampled = sampled_batch(batch)
            users_all, items_all = self._encode_sampled(sampled)
            seed_users, positives, negatives = sampled.seed_users, sampled.positives, sampled.negatives
            global_ids = (sampled.users[seed_users], sampled.items[positives], sampled.items[negatives])
        # index_select, not users_all[index]: on a multi-threaded CPU the backward of advanced
        # indexing (index_put_ with accumulation) adds in a varying order, so same-seed runs drift apart.
        users = users_all.index_select(0, seed_users)  # [B, D]
        positive_items = items_all.index_select(0, positives)  # [B, D]
        negative_items = items_all.index_select(0, negatives.flatten()).view(*negatives.shape, -1)  # [B, N, D]
        positive_scores = (users * positive_items).sum(dim=1)  # [B]
        negative_scores = torch.einsum("bd,bnd->bn", users, negative_items)  # [B, N]
        weight = None if self._loss_weight is None else self._loss_weight.lookup(global_ids[0], global_ids[1])  # [B]
        if self.model_config.get("loss", "bpr") == "softmax":
            temperature = self.model_config.get("softmax_temperature", 1.0)
            loss = sampled_softmax_loss(positive_scores, negative_scores, temperature, weight=weight)
            loss_name = "train/softmax"
        else:
            loss = bpr_loss(positive_scores[:, None], negative_scores, weight=weight)
            loss_name = "train/bpr"
        batch_size = len(seed_users)
        if batch_idx == 0 and self.current_epoch == 0:
            log.info("learning rate %.6g (model.lr_scaling=%s)", self.learning_rate(), self.model_config.get("lr_scaling", "none"))
        losses = {loss_name: loss}
        regularisation = self.model_config["embedding_reg"]
        if regularisation > 0:
            seed_user_ids, positive_ids, negative_ids = global_ids
            embedding_norms = (
                self.encoder.user_embedding(seed_user_ids).pow(2).sum()
                + self.encoder.item_embedding(positive_ids).pow(2).sum()
                + self.encoder.item_embedding(negative_ids).pow(2).sum() / negatives.shape[1]
            )
            penalty = regularisation * embedding_norms / (2 * batch_size)
            losses["train/reg"] = penalty
            loss = loss + penalty
        losses["train/loss"] = loss
        self._log_losses(losses, batch_size)
        return loss

    def _log_losses(self, losses: dict[str, torch.Tensor], batch_size: int) -> None:
        """Add the step's losses to the epoch sums, and log them on the steps where Lightning writes logs.

        A ``self.log`` call costs far more than a small training step here, so
        the epoch means are summed in place and logged once in
        ``on_train_epoch_end`` (``<name>_epoch``). Step values are logged as
        ``<name>_step`` only every ``trainer.log_every_n_steps`` steps. These
        are the keys that ``self.log(on_step=True, on_epoch=True)`` writes.
        """
        for name, value in losses.items():
            total = self._epoch_loss_sums.get(name)
            weighted = value.detach() * batch_size
            self._epoch_loss_sums[name] = weighted if total is None else total + weighted
        self._epoch_loss_count += batch_size
        connector = getattr(self._trainer, "_logger_connector", None)
        if connector is None or connector.should_update_logs:
            for name, value in losses.items():
                if name != "train/reg":
                    self.log(f"{name}_step", value.detach(), prog_bar=name == "train/loss", batch_size=batch_size)

    def on_train_epoch_start(self) -> None:
        self._epoch_loss_sums = {}
        self._epoch_loss_count = 0

    def on_train_epoch_end(self) -> None:
        if self._epoch_loss_count:
            for name, total in self._epoch_loss_sums.items():
                self.log(f"{name}_epoch", total / self._epoch_loss_count, on_step=False, on_epoch=True, sync_dist=True)

    def score_items(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users_all, items_all = self._encode()  # [U, D], [I, D]
        return torch.einsum("bd,bnd->bn", users_all[users], items_all[items])  # [B, D], [B, N, D] -> [B, N]

    def _negatives(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return [B, N] negatives: the batch's own and N - 1 more from the data module's sampler."""
        negatives = batch["negatives"].reshape(len(batch["users"]), -1)  # [B, 1]
        extra = self.model_config.get("num_negatives", 1) - negatives.shape[1]
        if extra <= 0:
            return negatives
        if self._negative_sampler is None:
            raise RuntimeError(
                f"model.num_negatives={extra + 1} needs a negative sampler, which is missing: "
                "call attach_data with a data module after its setup('fit')"
            )
        users = batch["users"].cpu().repeat_interleave(extra)  # [B * (N - 1)]
        more = self._negative_sampler.sample(users).view(-1, extra)  # [B, N - 1]
        return torch.cat([negatives, more.to(negatives.device)], dim=1)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate(), weight_decay=self.model_config["weight_decay"])

    def prepare_scoring(self) -> None:
        with torch.no_grad():
            users, items = self._encode()
        self._cached = (users.float(), items.float())

    def finish_scoring(self) -> None:
        self._cached = None

    def item_embeddings(self) -> torch.Tensor:
        if self._cached is None:
            self.prepare_scoring()
        return self._cached[1]

    def score(self, users: torch.Tensor) -> torch.Tensor:
        if self._cached is None:
            self.prepare_scoring()
        user_vectors, item_vectors = self._cached
        return user_vectors[users] @ item_vectors.T  # [B, D] @ [D, I] -> [B, I]


def per_user_normalised(users: torch.Tensor, weights: torch.Tensor, num_users: int) -> torch.Tensor:
    """Scale each user's edge weights to average 1 over the user's edges.

    Every user then keeps the total weight of an unweighted loss (one per
    interaction), and only the balance inside each history changes.
    Shapes: users [E], weights [E] -> [E].
    """
    weights = weights.float()
    totals = torch.zeros(num_users, dtype=weights.dtype).index_add_(0, users, weights)
    counts = torch.bincount(users, minlength=num_users).to(weights.dtype)
    return weights * counts[users] / totals[users]


class EdgeWeightTable:
    """Look up a weight by (user, item) among the training edges.

    Keys user * I + item are kept sorted, so a lookup is one binary search per
    pair. Shapes: edges [2, E], weights [E]; ``lookup`` users [B], items [B] -> [B].
    """

    def __init__(self, edges: torch.Tensor, weights: torch.Tensor, num_items: int):
        self.num_items = num_items
        keys = edges[0].long() * num_items + edges[1].long()
        self.keys, order = torch.sort(keys)
        self.weights = weights.float()[order]

    def lookup(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users.long().cpu() * self.num_items + items.long().cpu()
        position = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        if not torch.equal(self.keys[position], keys):
            raise ValueError(
                "model.rebalance_mode=loss: a (user, item) pair of the batch is missing from the training edges; "
                "the loss weights cover training interactions only"
            )
        return self.weights[position].to(users.device)


def _cache_dir(run_config: dict | None) -> str | None:
    return ((run_config or {}).get("data") or {}).get("cache_dir")
