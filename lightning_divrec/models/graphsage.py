"""GraphSAGE recommender trained with BPR on the user-item graph of training interactions.

Legend: B batch, U users, I items, D dim, E training edges.
"""

from __future__ import annotations

import logging

import torch

from lightning_divrec.models.base import RankingModule
from lightning_divrec.models.components.sage import BipartiteSAGE
from lightning_divrec.models.losses import bpr_loss

log = logging.getLogger(__name__)


class GraphSAGEModule(RankingModule):
    """Full-graph GraphSAGE: every training step propagates over all training edges.

    Score of user u for item i is the dot product of their final
    representations. The graph is taken from the data module in ``setup`` and
    kept as a non-persistent buffer, so checkpoints hold only weights.
    """

    def __init__(self, num_users: int, num_items: int, model_config: dict, ks: list[int], run_config: dict | None = None):
        super().__init__(num_users, num_items, model_config, ks, run_config)
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
        )
        self.register_buffer("edge_index", torch.empty(2, 0, dtype=torch.long), persistent=False)
        self._cached: tuple[torch.Tensor, torch.Tensor] | None = None

    def attach_data(self, datamodule) -> None:
        self.edge_index = datamodule.train_edges.to(self.edge_index.device)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        users_all, items_all = self.encoder(self.edge_index)  # [U, D], [I, D]
        users = users_all[batch["users"]]  # [B, D]
        positive_scores = (users * items_all[batch["positives"]]).sum(dim=1)  # [B]
        negative_scores = (users * items_all[batch["negatives"]]).sum(dim=1)  # [B]
        loss = bpr_loss(positive_scores, negative_scores)
        batch_size = len(batch["users"])
        if batch_idx == 0 and self.current_epoch == 0:
            log.info("learning rate %.6g (model.lr_scaling=%s)", self.learning_rate(), self.model_config.get("lr_scaling", "none"))
        self.log("train/bpr", loss, on_step=True, on_epoch=True, batch_size=batch_size, sync_dist=True)
        regularisation = self.model_config["embedding_reg"]
        if regularisation > 0:
            embedding_norms = (
                self.encoder.user_embedding(batch["users"]).pow(2).sum()
                + self.encoder.item_embedding(batch["positives"]).pow(2).sum()
                + self.encoder.item_embedding(batch["negatives"]).pow(2).sum()
            )
            penalty = regularisation * embedding_norms / (2 * batch_size)
            self.log("train/reg", penalty, on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=True)
            loss = loss + penalty
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
        return loss

    def score_items(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        users_all, items_all = self.encoder(self.edge_index)  # [U, D], [I, D]
        return (users_all[users].unsqueeze(1) * items_all[items]).sum(dim=2)  # [B, 1, D] * [B, N, D] -> [B, N]

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate(), weight_decay=self.model_config["weight_decay"])

    def prepare_scoring(self) -> None:
        with torch.no_grad():
            users, items = self.encoder(self.edge_index)
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
