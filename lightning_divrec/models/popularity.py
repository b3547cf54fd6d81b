"""Most-popular baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

import torch

from lightning_divrec.models.base import RankingModule


class PopularityModule(RankingModule):
    """Scores each item by its number of training interactions; has nothing to train.

    Under the shared evaluation, each user's own history is still removed,
    so this is the personalised "most popular unseen" list.
    """

    trainable = False

    def __init__(self, num_users: int, num_items: int, model_config: dict, ks: list[int], run_config: dict | None = None):
        super().__init__(num_users, num_items, model_config, ks, run_config)
        self.register_buffer("item_counts", torch.zeros(num_items))

    def attach_data(self, datamodule) -> None:
        self.item_counts = datamodule.item_interaction_counts.to(self.item_counts)

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.item_counts.unsqueeze(0).expand(len(users), -1)  # [I] -> [B, I]
