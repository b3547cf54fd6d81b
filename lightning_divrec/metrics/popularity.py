"""Popularity-aware metrics of each list as torchmetrics ``Metric``s; formulas in ``functional.popularity``."""

from __future__ import annotations

import torch

from lightning_divrec.metrics.base import MeanOverUsers
from lightning_divrec.metrics.functional import popularity as F
from lightning_divrec.metrics.functional.ranking import RankedLists, topk_indices


class Novelty(MeanOverUsers):
    """Novelty@K: mean self-information -log2 p(i) in bits of the list items (Zhou et al., PNAS 2010).

    ``by="users"``: p(i) = training users who interacted with i / training
    users. ``by="interactions"``: p(i) = training interactions of i / all
    training interactions. Higher is more novel.

    Args:
        item_counts: [I] users (or interactions) per item in training.
        total: number of training users (or interactions).
    """

    uses_targets = False

    def __init__(self, k: int, item_counts: torch.Tensor, total: int, **kwargs):
        super().__init__(k, **kwargs)
        self.register_buffer("self_information", F.self_information(item_counts, total), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.mean_over_list(self.self_information, lists.items, lists.valid)


class Serendipity(MeanOverUsers):
    """Serendipity@K: share of list positions with an item that is relevant and not among
    the K most popular training items (the primitive recommender). Range [0, 1], higher is better.

    Args:
        item_counts: [I] training interactions per item.
    """

    def __init__(self, k: int, item_counts: torch.Tensor, **kwargs):
        super().__init__(k, **kwargs)
        expected = torch.zeros(item_counts.numel(), dtype=torch.bool)
        expected[topk_indices(item_counts.double().unsqueeze(0), k)[0]] = True
        self.register_buffer("expected", expected, persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        values = F.serendipity(lists.gains, lists.items, lists.valid, self.expected)
        return torch.where(lists.num_relevant > 0, values, torch.full_like(values, float("nan")))


class TailShare(MeanOverUsers):
    """Share of list items outside the short head, the ``head_fraction`` most popular items.
    Range [0, 1], higher recommends more of the long tail.

    Args:
        item_counts: [I] training interactions per item.
        head_fraction: share of the catalogue in the head (default 0.2).
    """

    uses_targets = False

    def __init__(self, k: int, item_counts: torch.Tensor, head_fraction: float = 0.2, **kwargs):
        super().__init__(k, **kwargs)
        self.register_buffer("tail", ~F.head_items(item_counts, head_fraction), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.mean_over_list(self.tail, lists.items, lists.valid)


class AveragePopularity(MeanOverUsers):
    """ARP@K: mean number of training interactions of the list items. Lower is less popularity-biased.

    Args:
        item_counts: [I] training interactions per item.
    """

    higher_is_better = False
    uses_targets = False

    def __init__(self, k: int, item_counts: torch.Tensor, **kwargs):
        super().__init__(k, **kwargs)
        self.register_buffer("item_counts", item_counts.double(), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.mean_over_list(self.item_counts, lists.items, lists.valid)
