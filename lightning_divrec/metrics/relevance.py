"""Relevance metrics at K as torchmetrics ``Metric``s; formulas in ``functional.relevance``."""

from __future__ import annotations

import torch

from lightning_divrec.metrics.base import MeanOverUsers
from lightning_divrec.metrics.functional import relevance as F
from lightning_divrec.metrics.functional.ranking import RankedLists


class NDCG(MeanOverUsers):
    """NDCG@K, linear gain, ideal DCG from all held-out items. Range [0, 1], higher is better."""

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.ndcg(lists)


class Recall(MeanOverUsers):
    """Recall@K, divided by the held-out count (``capped=True``: by min(K, count)). Range [0, 1]."""

    def __init__(self, k: int, capped: bool = False, **kwargs):
        super().__init__(k, **kwargs)
        self.capped = capped

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.recall(lists, capped=self.capped)


class Precision(MeanOverUsers):
    """Precision@K with a fixed denominator K (``adjusted=True``: min(K, rankable items)). Range [0, 1]."""

    def __init__(self, k: int, adjusted: bool = False, **kwargs):
        super().__init__(k, **kwargs)
        self.adjusted = adjusted

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.precision(lists, self.k, adjusted=self.adjusted)


class F1(MeanOverUsers):
    """Mean per-user F1 of Precision@K and Recall@K. Range [0, 1]."""

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.f1(lists, self.k)


class HitRate(MeanOverUsers):
    """HitRate@K: share of users with at least one held-out item in the list. Range [0, 1]."""

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.hit_rate(lists)


class MRR(MeanOverUsers):
    """MRR@K: mean reciprocal rank of the first relevant item, 0 if none in the list. Range [0, 1]."""

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.reciprocal_rank(lists)


class MAP(MeanOverUsers):
    """MAP@K, each AP normalised by min(K, held-out count). Range [0, 1]."""

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.average_precision(lists)


class EvaluatedUsers(MeanOverUsers):
    """Number of users evaluated (a count, not a mean); checks that DDP counted each user once."""

    uses_targets = False

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return torch.ones(lists.items.shape[0], dtype=torch.float64, device=lists.items.device)

    def compute(self) -> torch.Tensor:
        return self.count.double()


class AUC(MeanOverUsers):
    """Full-catalogue AUC: share of (held-out, other rankable item) pairs ordered correctly,
    ties counting one half. Range [0, 1], 0.5 is random. Independent of K.

    Reads the per-user values that ``RankingMetricSuite`` puts in ``lists.extras["auc"]``.
    """

    def __init__(self, **kwargs):
        super().__init__(1, **kwargs)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return lists.extras["auc"]
