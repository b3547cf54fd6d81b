"""``RankingMetricSuite``: ranks once per batch and feeds every metric the same top-K lists."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lightning_divrec.metrics.base import check_empty_target_action
from lightning_divrec.metrics.diversity import CatalogCoverage, GiniIndex, IntraListDiversity, Novelty, ShannonEntropy
from lightning_divrec.metrics.functional.ranking import RankedLists
from lightning_divrec.metrics.relevance import F1, MAP, MRR, NDCG, EvaluatedUsers, HitRate, Precision, Recall


class RankingMetricSuite(nn.Module):
    """Relevance and beyond-accuracy metrics at every K in ``ks``, keyed ``name@k``.

    ``update`` takes full-catalogue scores with excluded items set to ``-inf``
    and the held-out targets; ``compute`` syncs across processes (when
    ``torch.distributed`` is initialised) and returns a dict of scalars that
    is identical on every process.

    Users without held-out items follow ``empty_target_action``: under ``skip``
    (default) they are left out of every metric, beyond-accuracy ones included,
    so all metrics describe the same users.

    Args:
        ks: cut-offs, for example ``[10, 20]``.
        num_items: catalogue size I.
        item_categories: [I, C] bool; enables ``ild@k``.
        item_popularity: [I] training users per item; enables ``novelty@k``.
        num_users: training users, the denominator of popularity shares.
        empty_target_action: ``skip``, ``zero``, ``one`` or ``error``.
    """

    def __init__(
        self,
        ks: Sequence[int],
        num_items: int,
        item_categories: torch.Tensor | None = None,
        item_popularity: torch.Tensor | None = None,
        num_users: int | None = None,
        empty_target_action: str = "skip",
    ):
        super().__init__()
        if not ks:
            raise ValueError("ks must name at least one cut-off")
        self.ks = sorted(set(int(k) for k in ks))
        self.empty_target_action = check_empty_target_action(empty_target_action)
        metrics: dict[str, nn.Module] = {"users": EvaluatedUsers(1)}
        relevance = {"recall": Recall, "precision": Precision, "f1": F1, "ndcg": NDCG, "mrr": MRR, "hit": HitRate, "map": MAP}
        for k in self.ks:
            for name, metric in relevance.items():
                metrics[f"{name}@{k}"] = metric(k, empty_target_action=empty_target_action)
            metrics[f"coverage@{k}"] = CatalogCoverage(k, num_items)
            metrics[f"gini@{k}"] = GiniIndex(k, num_items)
            metrics[f"entropy@{k}"] = ShannonEntropy(k, num_items)
            if item_categories is not None:
                metrics[f"ild@{k}"] = IntraListDiversity(k, item_categories)
            if item_popularity is not None:
                if num_users is None:
                    raise ValueError("num_users is required with item_popularity")
                metrics[f"novelty@{k}"] = Novelty(k, item_popularity, num_users)
        self.metrics = nn.ModuleDict(metrics)

    @torch.no_grad()
    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        """Rank ``scores`` [B, I] once and update every metric; ``target`` [B, I] is bool or graded."""
        lists = RankedLists.from_scores(scores, target, max(self.ks))
        empty = lists.num_relevant == 0
        if empty.any():
            if self.empty_target_action == "error":
                raise ValueError(f"{int(empty.sum())} user(s) have no held-out item and empty_target_action='error'")
            if self.empty_target_action == "skip":
                lists = lists.select(~empty)
        for metric in self.metrics.values():
            metric.update(lists)

    def compute(self) -> dict[str, torch.Tensor]:
        return {name: metric.compute() for name, metric in self.metrics.items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
